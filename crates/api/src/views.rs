//! The shapes answers carry, as `openapi.yaml` describes them.

use lector_core::status::{FailureInfo, Progress};
use lector_core::{ConversionId, ConversionState, ConversionStatus, FeedId, Stage, VoiceEngine, VoiceId};
use serde::Serialize;

use crate::extract::BaseUrl;

/// A conversion's status with the links a client needs.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionView {
    pub conversion_id: ConversionId,
    pub state: ConversionState,
    pub stage: Stage,
    pub progress: Progress,
    pub post_url: String,
    pub feed_url: Option<String>,
    pub feed_id: Option<FeedId>,
    pub title: Option<String>,
    pub byline: Option<String>,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    pub words: Option<u32>,
    pub characters: Option<u64>,
    pub duration_seconds: Option<f64>,
    pub audio_bytes: Option<u64>,
    pub audio_url: Option<String>,
    pub embed_url: Option<String>,
    pub embed_html: Option<String>,
    pub podcast_url: Option<String>,
    pub status_url: String,
    pub events_url: String,
    pub error: Option<FailureInfo>,
    pub attempt: u32,
    pub redrives: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub version: u64,
}

impl ConversionView {
    pub fn new(s: ConversionStatus, base: &BaseUrl) -> Self {
        let id = s.conversion_id.clone();
        let completed = s.state == ConversionState::Completed;
        let embed_url = base.join(&format!("/embed/{id}"));
        let title = s.title.clone().unwrap_or_else(|| "Narrated post".into());
        Self {
            audio_url: completed.then(|| base.join(&format!("/conversions/{id}/audio"))),
            embed_html: completed.then(|| embed_snippet(&embed_url, &title)),
            embed_url: completed.then_some(embed_url),
            podcast_url: s.feed_id.as_ref().map(|f| base.join(&format!("/feeds/{f}/podcast.xml"))),
            status_url: base.join(&format!("/conversions/{id}")),
            events_url: base.join(&format!("/conversions/{id}/events")),
            conversion_id: id,
            state: s.state,
            stage: s.stage,
            progress: s.progress,
            post_url: s.post_url.to_string(),
            feed_url: s.feed_url.map(|u| u.to_string()),
            feed_id: s.feed_id,
            title: s.title,
            byline: s.byline,
            voice: s.voice,
            engine: s.engine,
            words: s.words,
            characters: s.characters,
            duration_seconds: s.duration_seconds,
            audio_bytes: s.audio_bytes,
            error: s.error,
            attempt: s.attempt,
            redrives: s.redrives,
            created_at: s.created_at,
            updated_at: s.updated_at,
            completed_at: s.completed_at,
            version: s.version,
        }
    }
}

/// The `<iframe>` a publisher pastes into a page.
pub fn embed_snippet(embed_url: &str, title: &str) -> String {
    format!(
        "<iframe src=\"{}\" title=\"{} (audio)\" width=\"100%\" height=\"130\" style=\"border:0\" loading=\"lazy\"></iframe>",
        escape(embed_url),
        escape(title)
    )
}

/// Text made safe for HTML and XML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

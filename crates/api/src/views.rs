//! The shapes answers carry, as `openapi.yaml` describes them.

use lector_core::ConversionStatus;
use serde::Serialize;

use crate::extract::BaseUrl;

/// A conversion's status with the links a client needs.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionView {
    #[serde(flatten)]
    pub status: ConversionStatus,
    /// The latest audio (of `audio_revision`), served while a newer revision is made.
    pub audio_url: Option<String>,
    /// The same audio at an address of its own revision: a new address per revision, for
    /// podcast enclosures and caches.
    pub revision_audio_url: Option<String>,
    /// The transcripts and chapters of that audio.
    pub transcript_vtt_url: Option<String>,
    pub transcript_srt_url: Option<String>,
    pub transcript_json_url: Option<String>,
    pub chapters_url: Option<String>,
    /// The timeline the read-along player shows: every sentence's start, end and text, the
    /// post's blocks and the chapters.
    pub timeline_url: Option<String>,
    /// What the latest revision's speech cost, in words.
    pub synthesis_summary: Option<String>,
    pub embed_url: Option<String>,
    pub embed_html: Option<String>,
    pub podcast_url: Option<String>,
    pub status_url: String,
    pub events_url: String,
}

impl ConversionView {
    pub fn new(status: ConversionStatus, base: &BaseUrl) -> Self {
        let id = &status.conversion_id;
        let playable = status.has_audio();
        let timed = status.timings_ref.is_some();
        let embed_url = base.join(&format!("/embed/{id}"));
        let title = status.title.clone().unwrap_or_else(|| "Narrated post".into());
        let link = |on: bool, path: String| on.then(|| base.join(&path));
        Self {
            audio_url: link(playable, format!("/conversions/{id}/audio")),
            revision_audio_url: status
                .audio_revision
                .filter(|_| playable)
                .map(|r| base.join(&revision_audio_path(id, r))),
            transcript_vtt_url: link(timed, format!("/conversions/{id}/transcript.vtt")),
            transcript_srt_url: link(timed, format!("/conversions/{id}/transcript.srt")),
            transcript_json_url: link(timed, format!("/conversions/{id}/transcript.json")),
            chapters_url: link(timed, format!("/conversions/{id}/chapters.json")),
            timeline_url: link(timed, format!("/conversions/{id}/timeline.json")),
            synthesis_summary: status.synthesis.as_ref().map(|s| s.describe()),
            embed_html: playable.then(|| embed_snippet(&embed_url, &title)),
            embed_url: playable.then_some(embed_url),
            podcast_url: status.feed_id.as_ref().map(|f| base.join(&format!("/feeds/{f}/podcast.xml"))),
            status_url: base.join(&format!("/conversions/{id}")),
            events_url: base.join(&format!("/conversions/{id}/events")),
            status,
        }
    }
}

/// The path of one revision's audio.
pub fn revision_audio_path(id: &lector_core::ConversionId, revision: u32) -> String {
    format!("/conversions/{id}/audio/r{revision}.mp3")
}

/// The `<iframe>` a publisher pastes into a page: tall enough for the player, its controls and
/// a few lines of the text read along.
pub fn embed_snippet(embed_url: &str, title: &str) -> String {
    format!(
        "<iframe src=\"{}\" title=\"{} (audio)\" width=\"100%\" height=\"360\" style=\"border:0\" loading=\"lazy\"></iframe>",
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

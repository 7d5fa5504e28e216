//! The shapes answers carry, as `openapi.yaml` describes them.

use lector_core::{ConversionState, ConversionStatus};
use serde::Serialize;

use crate::extract::BaseUrl;

/// A conversion's status with the links a client needs.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionView {
    #[serde(flatten)]
    pub status: ConversionStatus,
    pub audio_url: Option<String>,
    pub embed_url: Option<String>,
    pub embed_html: Option<String>,
    pub podcast_url: Option<String>,
    pub status_url: String,
    pub events_url: String,
}

impl ConversionView {
    pub fn new(status: ConversionStatus, base: &BaseUrl) -> Self {
        let id = &status.conversion_id;
        let completed = status.state == ConversionState::Completed;
        let embed_url = base.join(&format!("/embed/{id}"));
        let title = status.title.clone().unwrap_or_else(|| "Narrated post".into());
        Self {
            audio_url: completed.then(|| base.join(&format!("/conversions/{id}/audio"))),
            embed_html: completed.then(|| embed_snippet(&embed_url, &title)),
            embed_url: completed.then_some(embed_url),
            podcast_url: status.feed_id.as_ref().map(|f| base.join(&format!("/feeds/{f}/podcast.xml"))),
            status_url: base.join(&format!("/conversions/{id}")),
            events_url: base.join(&format!("/conversions/{id}/events")),
            status,
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

//! Submitting a post for conversion: the one way a conversion starts, shared by the API and
//! `lector convert`. It only appends `ConversionRequested`; the workflow is started from the
//! log, through the bus.

use bytes::Bytes;
use lector_core::conversion::Command;
use lector_core::event::ConversionRequested;
use lector_core::ports::{Clock, ObjectStore};
use lector_core::service::execute;
use lector_core::{ConversionId, EventMeta, EventStore, FeedId, ObjectKey, StepError, VoiceEngine, VoiceId};
use url::Url;

/// What to convert, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub post_url: Url,
    pub feed_url: Option<Url>,
    pub feed_title: Option<String>,
    /// The post's title as the feed gave it.
    pub title: Option<String>,
    /// The whole post as the feed carried it (HTML); when present, the page is not fetched.
    pub content_html: Option<String>,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// Who asks (a user, a token's subject, `cli`).
    pub requested_by: String,
}

/// The outcome of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub conversion_id: ConversionId,
    /// False when the same post, voice and engine were submitted before: nothing new starts.
    pub created: bool,
}

/// Record a submission. Submitting the same post with the same voice and engine again returns
/// the same id and changes nothing.
pub async fn submit(
    events: &dyn EventStore,
    objects: &dyn ObjectStore,
    clock: &dyn Clock,
    submission: Submission,
) -> Result<Submitted, StepError> {
    let id = ConversionId::derive(&submission.post_url, &submission.voice, submission.engine);
    // The content is stored before the event that names it, so the log never points at an
    // object that is not there.
    let content_ref = match &submission.content_html {
        Some(html) => {
            let key = ObjectKey::feed_content(&id);
            if objects.head(&key).await?.is_none() {
                objects.put(&key, Bytes::from(html.clone()), "text/html; charset=utf-8").await?;
            }
            Some(key)
        }
        None => None,
    };
    let request = ConversionRequested {
        conversion_id: id.clone(),
        feed_id: submission.feed_url.as_ref().map(FeedId::derive),
        post_url: submission.post_url,
        title: submission.title,
        feed_url: submission.feed_url,
        feed_title: submission.feed_title,
        content_ref,
        voice: submission.voice,
        engine: submission.engine,
        requested_by: submission.requested_by,
    };
    let meta = EventMeta { occurred_at: clock.now(), correlation_id: id.to_string(), causation_id: None };
    let executed = execute(events, &id, Command::Request(request), &meta).await?;
    Ok(Submitted { conversion_id: id, created: !executed.appended.is_empty() })
}

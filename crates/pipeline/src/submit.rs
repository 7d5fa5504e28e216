//! Submitting a post for conversion: the one way a conversion starts or gets a new revision,
//! shared by the API, `lector convert` and the feed subscriptions. It only appends
//! `ConversionRequested` (or `ConversionRevisionRequested`); the workflow is started from the
//! log, through the bus.

use bytes::Bytes;
use lector_core::conversion::{Command, Revision};
use lector_core::event::{ConversionRequested, PostInfo, RevisionReason};
use lector_core::ports::{Clock, ObjectStore};
use lector_core::pronunciation::{Pronunciations, RulesError, in_force};
use lector_core::service::{execute, load};
use lector_core::{ConversionId, EventMeta, EventStore, FeedId, ObjectKey, StepError, VoiceEngine, VoiceId};
use url::Url;

use crate::document::Document;

/// What to convert, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub post_url: Url,
    pub feed_url: Option<Url>,
    pub feed_title: Option<String>,
    /// The language the feed declares.
    pub feed_language: Option<String>,
    /// The post's title as the feed gave it.
    pub title: Option<String>,
    /// The whole post as the feed carried it (HTML); when present, the page is not fetched.
    pub content_html: Option<String>,
    /// The hash of the post's text when the caller read the page itself
    /// ([`Document::content_hash`]); used when there is no `content_html`.
    pub text_hash: Option<String>,
    /// What the feed says of the post (its key, dates, summary).
    pub post: Option<PostInfo>,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// Who asks (a user, a token's subject, `cli`, a feed subscription).
    pub requested_by: String,
    /// Why a submission of a post already converted makes a new revision.
    pub revision_reason: RevisionReason,
    /// The event that caused the submission (a subscription's `PostDiscovered`), if any.
    pub causation_id: Option<String>,
    /// The pronunciation rules to read it with; `None` for the global default's.
    pub pronunciations: Option<Pronunciations>,
}

impl Submission {
    /// A submission of `post_url` with `voice` on `engine`, nothing else said.
    pub fn new(post_url: Url, voice: VoiceId, engine: VoiceEngine, requested_by: impl Into<String>) -> Self {
        Self {
            post_url,
            feed_url: None,
            feed_title: None,
            feed_language: None,
            title: None,
            content_html: None,
            text_hash: None,
            post: None,
            voice,
            engine,
            requested_by: requested_by.into(),
            revision_reason: RevisionReason::Resubmitted,
            causation_id: None,
            pronunciations: None,
        }
    }
}

/// What a submission did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new conversion was requested.
    Created,
    /// The post was converted before and its text changed: this revision was requested.
    Revised { revision: u32 },
    /// Nothing new: the same post with the same voice and engine, and no changed text.
    Unchanged,
}

/// The outcome of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub conversion_id: ConversionId,
    pub outcome: Outcome,
    /// False when nothing new starts ([`Outcome::Unchanged`]).
    pub created: bool,
}

/// Record a submission. A new post is requested; the same post with the same voice and engine
/// again gets a new revision when its text is known to differ (its feed content, or the hash
/// the caller read), and otherwise returns the same id and changes nothing.
pub async fn submit(
    events: &dyn EventStore,
    objects: &dyn ObjectStore,
    clock: &dyn Clock,
    mut submission: Submission,
) -> Result<Submitted, StepError> {
    let id = ConversionId::derive(&submission.post_url, &submission.voice, submission.engine);
    let content_hash = match &submission.content_html {
        Some(html) => Some(Document::from_html(html).content_hash()),
        None => submission.text_hash.clone(),
    };
    let (_, state) = load(events, &id).await?;
    let is_new = state.request.is_none();
    let rules = match submission.pronunciations.take() {
        Some(rules) => rules,
        None => in_force(events, None).await.map_err(rules_error)?,
    };
    // Submitted again: a new revision when the text is known to differ, or when the feed says
    // the post changed and does not carry its text (the page is read again).
    let feed_says_changed = submission.revision_reason == RevisionReason::PostChanged;
    let unchanged = match &content_hash {
        Some(hash) => state.content_hash.as_ref() == Some(hash),
        None => !feed_says_changed,
    };
    // Read with other rules than the current revision's: the sentences they touch are spoken
    // again.
    let unchanged = unchanged && state.pronunciations() == rules;
    if !is_new && unchanged {
        return Ok(Submitted { conversion_id: id, outcome: Outcome::Unchanged, created: false });
    }
    // The content is stored before the event that names it, so the log never points at an
    // object that is not there; each text has its own object, so a revision never overwrites
    // the text an earlier revision (or a run in flight) reads.
    let content_ref = match (&submission.content_html, &content_hash) {
        (Some(html), Some(hash)) => {
            let key = ObjectKey::feed_content_version(&id, hash);
            if objects.head(&key).await?.is_none() {
                objects.put(&key, Bytes::from(html.clone()), "text/html; charset=utf-8").await?;
            }
            Some(key)
        }
        _ => None,
    };
    let meta = EventMeta {
        occurred_at: clock.now(),
        correlation_id: id.to_string(),
        causation_id: submission.causation_id.clone(),
    };
    let command = if is_new {
        Command::Request(ConversionRequested {
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
            post: submission.post,
            content_hash,
            feed_language: submission.feed_language,
            pronunciations: rules.rules,
        })
    } else {
        Command::Revise(Revision {
            reason: submission.revision_reason,
            content_ref,
            content_hash,
            title: submission.title,
            post: submission.post,
            requested_by: submission.requested_by,
            pronunciations: rules.rules,
        })
    };
    let executed = execute(events, &id, command, &meta).await?;
    let outcome = match (executed.appended.is_empty(), is_new) {
        (true, _) => Outcome::Unchanged,
        (false, true) => Outcome::Created,
        (false, false) => Outcome::Revised { revision: executed.state.revision },
    };
    Ok(Submitted { conversion_id: id, created: outcome != Outcome::Unchanged, outcome })
}

fn rules_error(e: RulesError) -> StepError {
    let kind =
        if e.is_transient() { lector_core::ErrorKind::Transient } else { lector_core::ErrorKind::Internal };
    StepError::new(kind, format!("the pronunciation rules: {e}"))
}

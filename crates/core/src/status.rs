//! The status projection: what the front-end sees of a conversion, as a pure fold of its
//! stream. One conversion's status is always folded from its own stream, so it is never stale.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::envelope::RecordedEvent;
use crate::event::{ConversionEvent, DecodeError, PostInfo, RetryMethod, SynthesisTotals};
use crate::id::{ConversionId, FeedId};
use crate::object::ObjectKey;
use crate::voice::{VoiceEngine, VoiceId};

/// The coarse state of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversionState {
    Requested,
    Processing,
    Completed,
    Failed,
}

impl ConversionState {
    pub const ALL: [ConversionState; 4] = [
        ConversionState::Requested,
        ConversionState::Processing,
        ConversionState::Completed,
        ConversionState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversionState::Requested => "requested",
            ConversionState::Processing => "processing",
            ConversionState::Completed => "completed",
            ConversionState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ConversionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            format!("unknown state '{s}': expected requested, processing, completed or failed")
        })
    }
}

/// The step a conversion is at, finer than its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for a workflow execution.
    Queued,
    FetchingArticle,
    PreparingSpeech,
    Synthesizing,
    Stitching,
    Completed,
    Failed,
}

/// Chunks with audio out of all chunks (0/0 before the speech is prepared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Progress {
    pub chunks_done: u32,
    pub chunks_total: u32,
}

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureInfo {
    pub state: String,
    pub error: String,
    pub cause: String,
    pub at: DateTime<Utc>,
}

/// The status of one conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConversionStatus {
    pub conversion_id: ConversionId,
    pub state: ConversionState,
    pub stage: Stage,
    pub progress: Progress,
    pub post_url: Url,
    pub feed_url: Option<Url>,
    pub feed_id: Option<FeedId>,
    pub feed_title: Option<String>,
    /// The article's title once fetched, else the feed's title for the post.
    pub title: Option<String>,
    pub byline: Option<String>,
    /// The voice asked for (`auto`: the one that speaks the article's language).
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// The voice that speaks the current revision, once chosen.
    #[serde(default)]
    pub voice_used: Option<VoiceId>,
    /// The language the text is read in (BCP 47), once known.
    #[serde(default)]
    pub language: Option<String>,
    /// Set when the voice asked for does not speak the text's language.
    #[serde(default)]
    pub language_note: Option<String>,
    pub words: Option<u32>,
    /// Characters spoken (billed), once the speech is prepared.
    pub characters: Option<u64>,
    /// The revision being made or last made: 1 for the first conversion, one more per edit.
    #[serde(default = "first_revision")]
    pub revision: u32,
    /// The audio listeners get: the latest completed revision's, kept while a newer revision
    /// is made.
    pub audio_ref: Option<ObjectKey>,
    pub audio_bytes: Option<u64>,
    pub duration_seconds: Option<f64>,
    /// The revision `audio_ref` is of.
    #[serde(default)]
    pub audio_revision: Option<u32>,
    /// The sentence timings and chapters of that audio.
    #[serde(default)]
    pub timings_ref: Option<ObjectKey>,
    /// What the current revision's speech cost so far, and once complete, in all: units
    /// (sentences) and characters synthesized, and reused from stored audio.
    #[serde(default)]
    pub synthesis: Option<SynthesisTotals>,
    /// What the feed says of the post (publication date, summary), for its podcast episode.
    #[serde(default)]
    pub post: Option<PostInfo>,
    /// When the post was published: the feed's date, else the page's.
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    /// The post's summary, plain text: the feed's, else the page's description.
    #[serde(default)]
    pub summary: Option<String>,
    /// Chapters of the served audio (one per heading).
    #[serde(default)]
    pub chapters: Option<u32>,
    /// The last failure, while the conversion is failed.
    pub error: Option<FailureInfo>,
    pub attempt: u32,
    pub redrives: u32,
    pub execution_id: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The stream version this status was folded up to.
    pub version: u64,
}

fn first_revision() -> u32 {
    1
}

impl ConversionStatus {
    /// Whether there is audio to play, of this revision or an earlier one.
    pub fn has_audio(&self) -> bool {
        self.audio_ref.is_some()
    }

    /// Fold a conversion's stream. `None` for an empty stream or one that does not start with
    /// a request.
    pub fn fold(events: &[RecordedEvent]) -> Result<Option<Self>, DecodeError> {
        let mut status: Option<Self> = None;
        for recorded in events {
            let event = recorded.decode()?;
            status = apply(status, &event, recorded);
        }
        Ok(status)
    }

    /// Apply one more event to a status (for projections that follow the log).
    pub fn apply(status: Option<Self>, recorded: &RecordedEvent) -> Result<Option<Self>, DecodeError> {
        let event = recorded.decode()?;
        Ok(apply(status, &event, recorded))
    }
}

fn apply(
    status: Option<ConversionStatus>,
    event: &ConversionEvent,
    recorded: &RecordedEvent,
) -> Option<ConversionStatus> {
    let at = recorded.occurred_at;
    if let ConversionEvent::ConversionRequested(r) = event {
        return Some(status.unwrap_or_else(|| ConversionStatus {
            conversion_id: r.conversion_id.clone(),
            state: ConversionState::Requested,
            stage: Stage::Queued,
            progress: Progress::default(),
            post_url: r.post_url.clone(),
            feed_url: r.feed_url.clone(),
            feed_id: r.feed_id.clone(),
            feed_title: r.feed_title.clone(),
            title: r.title.clone(),
            byline: None,
            voice: r.voice.clone(),
            engine: r.engine,
            voice_used: None,
            language: None,
            language_note: None,
            words: None,
            characters: None,
            revision: 1,
            audio_ref: None,
            audio_bytes: None,
            duration_seconds: None,
            audio_revision: None,
            timings_ref: None,
            synthesis: None,
            published_at: r.post.as_ref().and_then(|p| p.published_at),
            summary: r.post.as_ref().and_then(|p| p.summary.clone()),
            chapters: None,
            post: r.post.clone(),
            error: None,
            attempt: 1,
            redrives: 0,
            execution_id: None,
            requested_by: r.requested_by.clone(),
            created_at: at,
            updated_at: at,
            completed_at: None,
            version: recorded.version,
        }));
    }
    let mut s = status?;
    s.updated_at = at;
    s.version = recorded.version;
    match event {
        ConversionEvent::ConversionRequested(_) => {}
        ConversionEvent::ConversionStarted(e) => {
            s.state = ConversionState::Processing;
            s.stage = Stage::FetchingArticle;
            s.attempt = e.attempt;
            s.execution_id = Some(e.execution_id.clone());
        }
        ConversionEvent::ArticleFetched(e) => {
            s.title = Some(e.title.clone());
            s.byline = e.byline.clone();
            s.words = Some(e.words);
            s.language = e.language.clone();
            if s.published_at.is_none() {
                s.published_at = e.published_at;
            }
            if s.summary.is_none() {
                s.summary = e.summary.clone();
            }
            s.stage = stage_unless_failed(&s, Stage::PreparingSpeech);
        }
        ConversionEvent::SpeechPrepared(e) => {
            s.characters = Some(e.characters);
            s.progress = Progress { chunks_done: 0, chunks_total: e.chunks };
            if e.voice.is_some() {
                s.voice_used = e.voice.clone();
            }
            if e.language.is_some() {
                s.language = e.language.clone();
            }
            s.language_note = e.language_note.clone();
            // Units already stored are reused before any chunk runs.
            s.synthesis = e.units.map(|units| {
                let cached = e.units_cached.unwrap_or(0);
                SynthesisTotals { units, units_reused: cached, ..SynthesisTotals::default() }
            });
            s.stage =
                stage_unless_failed(&s, if e.chunks == 0 { Stage::Stitching } else { Stage::Synthesizing });
        }
        ConversionEvent::ChunkSynthesized(e) => {
            s.progress.chunks_done = (s.progress.chunks_done + 1).min(s.progress.chunks_total);
            if let Some(totals) = &mut s.synthesis {
                totals.units_synthesized += e.units_synthesized;
                totals.units_reused += e.units_reused;
                totals.characters_synthesized += e.characters_synthesized;
                totals.characters_reused += e.characters_reused;
            }
            if s.progress.chunks_done == s.progress.chunks_total {
                s.stage = stage_unless_failed(&s, Stage::Stitching);
            }
        }
        ConversionEvent::ConversionCompleted(e) => {
            s.state = ConversionState::Completed;
            s.stage = Stage::Completed;
            s.audio_ref = Some(e.audio_ref.clone());
            s.audio_bytes = Some(e.bytes);
            s.duration_seconds = Some(e.duration_seconds);
            s.audio_revision = Some(e.revision.unwrap_or(1));
            s.timings_ref = e.timings_ref.clone();
            s.chapters = e.chapters;
            if e.synthesis.is_some() {
                s.synthesis = e.synthesis;
            }
            s.completed_at = Some(at);
            s.error = None;
        }
        ConversionEvent::ConversionRevisionRequested(e) => {
            s.revision = e.revision;
            s.attempt = e.attempt;
            s.state = ConversionState::Requested;
            s.stage = Stage::Queued;
            s.progress = Progress::default();
            s.execution_id = None;
            s.error = None;
            s.synthesis = None;
            if let Some(title) = &e.title {
                s.title = Some(title.clone());
            }
            if let Some(post) = &e.post {
                s.published_at = post.published_at.or(s.published_at);
                s.summary = post.summary.clone().or(s.summary.take());
                s.post = Some(post.clone());
            }
        }
        ConversionEvent::ConversionFailed(e) => {
            s.state = ConversionState::Failed;
            s.stage = Stage::Failed;
            s.error = Some(FailureInfo {
                state: e.state.clone(),
                error: e.error.clone(),
                cause: e.cause.clone(),
                at,
            });
        }
        ConversionEvent::ConversionRetried(e) => {
            s.error = None;
            s.attempt = e.attempt;
            match e.how {
                RetryMethod::Redrive => {
                    s.redrives += 1;
                    s.state = ConversionState::Processing;
                    s.stage = resumed_stage(&s);
                }
                RetryMethod::Restart => {
                    s.state = ConversionState::Requested;
                    s.stage = Stage::Queued;
                    s.progress = Progress::default();
                    s.execution_id = None;
                    s.synthesis = None;
                }
            }
        }
    }
    Some(s)
}

/// Late facts of a failed attempt (a chunk that finished after another failed) do not hide
/// the failure.
fn stage_unless_failed(s: &ConversionStatus, next: Stage) -> Stage {
    if s.state == ConversionState::Failed { Stage::Failed } else { next }
}

/// The stage a redriven conversion resumes at, from what it has.
fn resumed_stage(s: &ConversionStatus) -> Stage {
    if s.progress.chunks_total > 0 {
        if s.progress.chunks_done == s.progress.chunks_total { Stage::Stitching } else { Stage::Synthesizing }
    } else if s.words.is_some() {
        Stage::PreparingSpeech
    } else {
        Stage::FetchingArticle
    }
}

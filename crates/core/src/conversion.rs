//! The `Conversion` aggregate: every rule about what may happen to a conversion, in
//! [`decide`]; how each event changes it, in [`evolve`], which checks nothing.

use std::collections::BTreeMap;

use crate::event::{
    ArticleFetched, ChunkSynthesized, ConversionCompleted, ConversionEvent, ConversionFailed,
    ConversionRequested, ConversionRetried, ConversionRevisionRequested, ConversionStarted, PostInfo,
    RetryMethod, RevisionReason, SpeechPrepared,
};
use crate::id::{ConversionId, EventId};
use crate::object::ObjectKey;

/// Where a conversion is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing was requested: the stream is empty.
    #[default]
    New,
    /// Requested (or restarted) and waiting for a workflow execution.
    Requested,
    /// An execution is working on it.
    Processing,
    Completed,
    Failed,
}

/// The state [`decide`] needs, folded from the stream by [`evolve`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversion {
    pub request: Option<ConversionRequested>,
    pub phase: Phase,
    /// The current attempt: 1 for the first run, one more for each restart and each revision.
    pub attempt: u32,
    /// The current revision: 1 for the first conversion, one more each time the post changed.
    pub revision: u32,
    /// The latest revision request, while that revision is the current one.
    pub revision_request: Option<ConversionRevisionRequested>,
    /// The hash of the current revision's text, once known: a request with the same text
    /// changes nothing.
    pub content_hash: Option<String>,
    /// The audio listeners get: the latest completed revision's, kept while a newer revision
    /// is made.
    pub served: Option<ConversionCompleted>,
    /// The execution working on the current attempt.
    pub execution_id: Option<String>,
    pub article: Option<ArticleFetched>,
    pub speech: Option<SpeechPrepared>,
    /// The chunks synthesized in the current attempt, by index.
    pub chunks: BTreeMap<u32, ChunkSynthesized>,
    pub completed: Option<ConversionCompleted>,
    pub failure: Option<ConversionFailed>,
    /// How many failures and replays the stream holds; they make those events' ids unique.
    pub failures: u32,
    pub retries: u32,
    /// The number of events folded: the version an append must expect.
    pub version: u64,
}

/// What a step or a user asks to happen.
// A request is the largest command by far, but commands are made one at a time and never
// stored in bulk, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Request(ConversionRequested),
    Start(ConversionStarted),
    RecordArticle(ArticleFetched),
    PrepareSpeech(SpeechPrepared),
    RecordChunk(ChunkSynthesized),
    Complete(ConversionCompleted),
    Fail(ConversionFailed),
    Retry {
        how: RetryMethod,
        by: String,
        reason: Option<String>,
    },
    /// The post changed: make the next revision.
    Revise(Revision),
}

/// What a revision is asked with; [`decide`] numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub reason: RevisionReason,
    pub content_ref: Option<ObjectKey>,
    /// The new text's hash when known: the same hash as the current revision's is no change.
    pub content_hash: Option<String>,
    pub title: Option<String>,
    pub post: Option<PostInfo>,
    pub requested_by: String,
    /// The pronunciation rules in force for the new revision.
    pub pronunciations: Vec<crate::pronunciation::Rule>,
}

/// Why a command was refused. Each variant says what the caller should do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// The conversion was never requested: the id is wrong, or the request was lost. Do not
    /// retry.
    #[error("conversion was never requested")]
    NotRequested,
    /// The conversion is complete; nothing more may happen to it. A late step should stop.
    #[error("conversion is already completed")]
    AlreadyCompleted,
    /// Another execution is working on this attempt: this one is a duplicate and should stop.
    #[error("attempt {attempt} is already being run by execution {execution_id}")]
    AlreadyStarted { attempt: u32, execution_id: String },
    /// The command belongs to another attempt than the current one (a late step of an attempt
    /// that was restarted). Stop.
    #[error("attempt {given} is not the current attempt {current}")]
    WrongAttempt { given: u32, current: u32 },
    /// A step ran before the step it depends on was recorded.
    #[error("{step} cannot be recorded before {missing}")]
    OutOfOrder { step: &'static str, missing: &'static str },
    /// A chunk index outside `0..chunks`.
    #[error("chunk {index} is out of range: the speech has {chunks} chunks")]
    ChunkOutOfRange { index: u32, chunks: u32 },
    /// Completing with chunks missing would lose audio. Synthesize them first.
    #[error("cannot complete: chunks {missing:?} are not synthesized")]
    MissingChunks { missing: Vec<u32> },
    /// Completing with no audio.
    #[error("cannot complete with empty audio")]
    EmptyAudio,
    /// A replay only follows a failure.
    #[error("only a failed conversion can be retried (it is {phase:?})")]
    NotFailed { phase: Phase },
    /// The conversion is running or waiting to run: a failure must come from that run.
    #[error("the conversion is not running")]
    NotRunning,
    /// The data of the command is not acceptable as it is.
    #[error("invalid command: {0}")]
    Invalid(String),
}

/// A decided event with the id that makes it unique: deciding the same fact again gives the
/// same id, so the store recognises a repeated append.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub event_id: EventId,
    pub event: ConversionEvent,
}

impl Conversion {
    /// Fold a whole stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a ConversionEvent>) -> Self {
        events.into_iter().fold(Self::default(), evolve)
    }

    pub fn id(&self) -> Option<&ConversionId> {
        self.request.as_ref().map(|r| &r.conversion_id)
    }

    /// The post's content as the feed carried it for the current revision: the revision's own,
    /// else the request's. `None` means the page is fetched.
    pub fn content_ref(&self) -> Option<&ObjectKey> {
        match &self.revision_request {
            Some(revision) => revision.content_ref.as_ref(),
            None => self.request.as_ref().and_then(|r| r.content_ref.as_ref()),
        }
    }

    /// The pronunciation rules the current revision is read with.
    pub fn pronunciations(&self) -> crate::pronunciation::Pronunciations {
        let rules = match &self.revision_request {
            Some(revision) => revision.pronunciations.clone(),
            None => self.request.as_ref().map(|r| r.pronunciations.clone()).unwrap_or_default(),
        };
        crate::pronunciation::Pronunciations::new(rules)
    }

    /// The title the feed gave the post, the latest revision's first.
    pub fn feed_title_of_post(&self) -> Option<&str> {
        self.revision_request
            .as_ref()
            .and_then(|r| r.title.as_deref())
            .or_else(|| self.request.as_ref().and_then(|r| r.title.as_deref()))
    }

    /// The name of the workflow execution of the current revision and attempt.
    pub fn execution_name(&self) -> Option<String> {
        self.id().map(|id| id.revision_execution_name(self.revision, self.attempt))
    }

    /// The chunk indices of the current speech that have no audio yet.
    pub fn missing_chunks(&self) -> Vec<u32> {
        let total = self.speech.as_ref().map_or(0, |s| s.chunks);
        (0..total).filter(|i| !self.chunks.contains_key(i)).collect()
    }

    fn check_step(&self, attempt: u32) -> Result<(), DomainError> {
        match self.phase {
            Phase::New => Err(DomainError::NotRequested),
            Phase::Completed => Err(DomainError::AlreadyCompleted),
            _ if attempt != self.attempt => {
                Err(DomainError::WrongAttempt { given: attempt, current: self.attempt })
            }
            // A step fact of the current attempt is recorded even after the attempt failed:
            // a chunk that finished while another failed still has its audio, and a redrive
            // will not need to make it again.
            Phase::Requested => Err(DomainError::OutOfOrder { step: "a step", missing: "ConversionStarted" }),
            Phase::Processing | Phase::Failed => Ok(()),
        }
    }

    fn event_id(&self, parts: &[&str]) -> EventId {
        let id = self.id().map(ConversionId::as_str).unwrap_or_default();
        let mut all = vec![id];
        all.extend_from_slice(parts);
        EventId::derive(&all)
    }
}

/// Every rule: what `command` makes happen to a conversion in `state`. An empty list means the
/// fact is already recorded (a repeated request or a retried step): nothing to do.
pub fn decide(state: &Conversion, command: Command) -> Result<Vec<Decided>, DomainError> {
    let one =
        |parts: &[&str], event: ConversionEvent| Ok(vec![Decided { event_id: state.event_id(parts), event }]);
    match command {
        Command::Request(request) => {
            if state.phase != Phase::New {
                return Ok(vec![]);
            }
            if request.requested_by.trim().is_empty() {
                return Err(DomainError::Invalid("requested_by is empty".into()));
            }
            Ok(vec![Decided {
                event_id: EventId::derive(&[request.conversion_id.as_str(), "requested"]),
                event: ConversionEvent::ConversionRequested(request),
            }])
        }
        Command::Start(start) => {
            match state.phase {
                Phase::New => return Err(DomainError::NotRequested),
                Phase::Completed => return Err(DomainError::AlreadyCompleted),
                _ => {}
            }
            if start.attempt != state.attempt {
                return Err(DomainError::WrongAttempt { given: start.attempt, current: state.attempt });
            }
            match (&state.execution_id, state.phase) {
                (None, Phase::Requested) => {
                    let attempt = start.attempt.to_string();
                    one(&[&attempt, "started"], ConversionEvent::ConversionStarted(start))
                }
                (Some(running), _) if *running == start.execution_id => Ok(vec![]),
                (Some(running), _) => {
                    Err(DomainError::AlreadyStarted { attempt: state.attempt, execution_id: running.clone() })
                }
                // Failed before any execution took it: a replay must come first.
                (None, _) => {
                    Err(DomainError::OutOfOrder { step: "ConversionStarted", missing: "ConversionRetried" })
                }
            }
        }
        Command::RecordArticle(article) => {
            state.check_step(article.attempt)?;
            if state.article.is_some() {
                return Ok(vec![]);
            }
            if article.title.trim().is_empty() && article.words == 0 {
                return Err(DomainError::Invalid("an article needs a title or text".into()));
            }
            let attempt = article.attempt.to_string();
            one(&[&attempt, "article"], ConversionEvent::ArticleFetched(article))
        }
        Command::PrepareSpeech(speech) => {
            state.check_step(speech.attempt)?;
            if state.article.is_none() {
                return Err(DomainError::OutOfOrder { step: "SpeechPrepared", missing: "ArticleFetched" });
            }
            if state.speech.is_some() {
                return Ok(vec![]);
            }
            // No chunk to synthesize is fine when every unit's audio is already stored; a
            // speech with nothing at all to say is not.
            if speech.chunks == 0 && speech.units.unwrap_or(0) == 0 {
                return Err(DomainError::Invalid("speech needs at least one unit".into()));
            }
            let attempt = speech.attempt.to_string();
            one(&[&attempt, "speech"], ConversionEvent::SpeechPrepared(speech))
        }
        Command::RecordChunk(chunk) => {
            state.check_step(chunk.attempt)?;
            let Some(speech) = &state.speech else {
                return Err(DomainError::OutOfOrder { step: "ChunkSynthesized", missing: "SpeechPrepared" });
            };
            if chunk.index >= speech.chunks {
                return Err(DomainError::ChunkOutOfRange { index: chunk.index, chunks: speech.chunks });
            }
            if state.chunks.contains_key(&chunk.index) {
                return Ok(vec![]);
            }
            if chunk.bytes == 0 {
                return Err(DomainError::EmptyAudio);
            }
            let (attempt, index) = (chunk.attempt.to_string(), chunk.index.to_string());
            one(&[&attempt, "chunk", &index], ConversionEvent::ChunkSynthesized(chunk))
        }
        Command::Complete(done) => {
            if let Some(completed) = &state.completed {
                // A retried stitch that stored the same audio is the same fact.
                return if completed.audio_ref == done.audio_ref && completed.attempt == done.attempt {
                    Ok(vec![])
                } else {
                    Err(DomainError::AlreadyCompleted)
                };
            }
            state.check_step(done.attempt)?;
            if state.speech.is_none() {
                return Err(DomainError::OutOfOrder {
                    step: "ConversionCompleted",
                    missing: "SpeechPrepared",
                });
            }
            let missing = state.missing_chunks();
            if !missing.is_empty() {
                return Err(DomainError::MissingChunks { missing });
            }
            if done.bytes == 0 || done.duration_seconds <= 0.0 || !done.duration_seconds.is_finite() {
                return Err(DomainError::EmptyAudio);
            }
            let attempt = done.attempt.to_string();
            one(&[&attempt, "completed"], ConversionEvent::ConversionCompleted(done))
        }
        Command::Fail(failure) => {
            match state.phase {
                Phase::New => return Err(DomainError::NotRequested),
                Phase::Completed => return Err(DomainError::AlreadyCompleted),
                Phase::Failed if failure.attempt == state.attempt => return Ok(vec![]),
                _ => {}
            }
            if failure.attempt != state.attempt {
                return Err(DomainError::WrongAttempt { given: failure.attempt, current: state.attempt });
            }
            let nth = (state.failures + 1).to_string();
            one(&["failed", &nth], ConversionEvent::ConversionFailed(failure))
        }
        Command::Revise(revision) => {
            if state.phase == Phase::New {
                return Err(DomainError::NotRequested);
            }
            if revision.requested_by.trim().is_empty() {
                return Err(DomainError::Invalid("requested_by is empty".into()));
            }
            // The same text read with the same rules again (a repeated delivery of the same
            // change, or an unchanged resubmission): nothing to make.
            if revision.content_hash.is_some()
                && revision.content_hash == state.content_hash
                && revision.pronunciations == state.pronunciations().rules
            {
                return Ok(vec![]);
            }
            let next = state.revision + 1;
            let event = ConversionRevisionRequested {
                revision: next,
                attempt: state.attempt + 1,
                reason: revision.reason,
                content_ref: revision.content_ref,
                content_hash: revision.content_hash,
                title: revision.title,
                post: revision.post,
                requested_by: revision.requested_by,
                pronunciations: revision.pronunciations,
            };
            let next = next.to_string();
            one(&["revision", &next], ConversionEvent::ConversionRevisionRequested(event))
        }
        Command::Retry { how, by, reason } => {
            if state.phase != Phase::Failed {
                return Err(DomainError::NotFailed { phase: state.phase });
            }
            if by.trim().is_empty() {
                return Err(DomainError::Invalid("a replay must say who made it".into()));
            }
            let attempt = match how {
                RetryMethod::Redrive => state.attempt,
                RetryMethod::Restart => state.attempt + 1,
            };
            let nth = (state.retries + 1).to_string();
            one(
                &["retried", &nth],
                ConversionEvent::ConversionRetried(ConversionRetried { how, by, reason, attempt }),
            )
        }
    }
}

/// Apply one event. Checks nothing: events are facts that already happened.
pub fn evolve(mut state: Conversion, event: &ConversionEvent) -> Conversion {
    state.version += 1;
    match event {
        ConversionEvent::ConversionRequested(r) => {
            state.request = Some(r.clone());
            state.phase = Phase::Requested;
            state.attempt = 1;
            state.revision = 1;
            state.content_hash = r.content_hash.clone();
        }
        ConversionEvent::ConversionRevisionRequested(r) => {
            state.phase = Phase::Requested;
            state.revision = r.revision;
            state.attempt = r.attempt;
            state.execution_id = None;
            state.article = None;
            state.speech = None;
            state.chunks.clear();
            state.completed = None;
            state.failure = None;
            state.content_hash = r.content_hash.clone();
            state.revision_request = Some(r.clone());
        }
        ConversionEvent::ConversionStarted(s) => {
            state.phase = Phase::Processing;
            state.attempt = s.attempt;
            state.execution_id = Some(s.execution_id.clone());
        }
        ConversionEvent::ArticleFetched(a) => {
            if a.content_hash.is_some() {
                state.content_hash = a.content_hash.clone();
            }
            state.article = Some(a.clone());
        }
        ConversionEvent::SpeechPrepared(s) => state.speech = Some(s.clone()),
        ConversionEvent::ChunkSynthesized(c) => {
            state.chunks.insert(c.index, c.clone());
        }
        ConversionEvent::ConversionCompleted(c) => {
            state.phase = Phase::Completed;
            state.completed = Some(c.clone());
            state.served = Some(c.clone());
            state.failure = None;
        }
        ConversionEvent::ConversionFailed(f) => {
            state.phase = Phase::Failed;
            state.failure = Some(f.clone());
            state.failures += 1;
        }
        ConversionEvent::ConversionRetried(r) => {
            state.retries += 1;
            match r.how {
                RetryMethod::Redrive => state.phase = Phase::Processing,
                RetryMethod::Restart => {
                    state.phase = Phase::Requested;
                    state.attempt = r.attempt;
                    state.execution_id = None;
                    state.article = None;
                    state.speech = None;
                    state.chunks.clear();
                }
            }
        }
    }
    state
}

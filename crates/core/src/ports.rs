//! Ports: the capabilities the domain and the steps need, one small trait each. Adapters live in
//! `lector-local` (embedded) and `lector-aws`; the event store's port is in [`crate::store`].

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::envelope::RecordedEvent;
use crate::object::{ObjectKey, ObjectMeta};
use crate::voice::{SpeechLimits, VoiceEngine, VoiceId, VoiceInfo};

/// The time, given to whoever needs it; the domain never reads a clock itself.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("no object at {0}")]
    NotFound(ObjectKey),
    /// The store could not be reached or was throttled; retry.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the store refused; retrying will not help.
    #[error("object store error: {0}")]
    Failed(String),
}

impl ObjectError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjectError::Unavailable(_))
    }
}

/// Large blobs (texts, chunks, audio) by key: a folder locally, S3 on AWS.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Store `body` under `key`, replacing what was there. Atomic: a reader sees the old
    /// object or the new one, never a part.
    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str) -> Result<(), ObjectError>;

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError>;

    /// Bytes `start..end` (end exclusive, clamped to the object's size).
    async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<Bytes, ObjectError>;

    /// The object's size and type, or `None` when there is none.
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError>;

    /// An address a client can download the object from directly for `valid_for` (an S3
    /// presigned URL), or `None` when the store has no such thing and the bytes must be served
    /// by whoever holds the store (the folder store).
    async fn presigned_get(
        &self,
        _key: &ObjectKey,
        _valid_for: std::time::Duration,
    ) -> Result<Option<url::Url>, ObjectError> {
        Ok(None)
    }
}

/// What to speak with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoiceSpec {
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// BCP 47 language of the text, when known.
    pub language: Option<String>,
    /// The pronunciation rules in force for the whole text. The SSML already carries the
    /// rules an engine takes inline; an engine that takes them as a lexicon (Amazon Polly)
    /// makes one of these.
    pub pronunciations: crate::pronunciation::Pronunciations,
}

/// Why a synthesis failed.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Throttled, timed out, or the service failed on its side: retry with backoff.
    #[error("voice service unavailable: {0}")]
    Unavailable(String),
    /// The voice does not exist, or does not speak on this engine.
    #[error("unsupported voice: {0}")]
    UnsupportedVoice(String),
    /// The voice cannot speak this language.
    #[error("unsupported language: {0}")]
    UnsupportedLanguage(String),
    /// The request was refused as it is (markup, length); retrying will not help.
    #[error("speech request refused: {0}")]
    Refused(String),
}

impl VoiceError {
    pub fn is_transient(&self) -> bool {
        matches!(self, VoiceError::Unavailable(_))
    }
}

/// A text-to-speech service. Takes SSML, gives MP3.
#[async_trait]
pub trait Voice: Send + Sync {
    /// The voices this service offers.
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError>;

    /// The per-request limits on `engine`.
    fn limits(&self, engine: VoiceEngine) -> SpeechLimits {
        engine.limits()
    }

    /// Speak one SSML document (`<speak>...</speak>`), as MP3.
    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError>;

    /// What decides the sound besides the SSML, the voice and the engine: the program or model
    /// and its version (`espeak-ng 1.51`). It is part of the speech cache key, so audio made by
    /// another version of the engine is never reused as if it were the same.
    async fn fingerprint(&self, spec: &VoiceSpec) -> Result<String, VoiceError> {
        Ok(spec.engine.as_str().to_owned())
    }
}

/// Why publishing to the bus failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Some or all events were not accepted; retry them.
    #[error("{failed} of {total} events were not published: {reason}")]
    Failed { failed: usize, total: usize, reason: String },
}

/// The bus other teams subscribe to: EventBridge on AWS, the in-process bus locally. Events are
/// published from the log (never directly by a step), in log order, at least once.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), PublishError>;
}

/// The status of a workflow execution, as Step Functions names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

/// What the workflow service knows of one execution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecutionInfo {
    /// The execution's id (its ARN).
    pub id: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub redrive_count: u32,
}

/// Why the workflow service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The name was used before with another input (or the execution is closed).
    #[error("execution '{0}' already exists")]
    AlreadyExists(String),
    #[error("no execution '{0}'")]
    NotFound(String),
    /// The execution cannot be redriven (it succeeded, is running, or is too old); restart
    /// the conversion instead.
    #[error("execution cannot be redriven: {0}")]
    NotRedrivable(String),
    /// Throttled or unreachable: retry.
    #[error("workflow service unavailable: {0}")]
    Unavailable(String),
    #[error("workflow service error: {0}")]
    Failed(String),
}

impl WorkflowError {
    pub fn is_transient(&self) -> bool {
        matches!(self, WorkflowError::Unavailable(_))
    }
}

/// The workflow service that runs `statemachines/conversion.asl.json`: Step Functions on AWS,
/// the local engine locally.
#[async_trait]
pub trait Workflows: Send + Sync {
    /// Start an execution named `name`. Starting a name that is running with the same input
    /// returns that execution, so a repeated start starts nothing new.
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<String, WorkflowError>;

    /// Resume a failed execution from the state that failed, keeping the work done.
    async fn redrive(&self, execution_id: &str) -> Result<(), WorkflowError>;

    async fn describe(&self, execution_id: &str) -> Result<ExecutionInfo, WorkflowError>;
}

/// Polls of subscribed feeds on demand: the polling workflow
/// (`statemachines/poll-feeds.asl.json`) started for some feeds, due or not.
#[async_trait]
pub trait FeedPolls: Send + Sync {
    /// Start polling `feeds` now; returns the execution's id.
    async fn poll_now(&self, feeds: &[crate::id::FeedId]) -> Result<String, WorkflowError>;
}

//! The event store port: an append-only log of streams with optimistic concurrency.

use async_trait::async_trait;

use crate::envelope::{NewEvent, RecordedEvent};
use crate::id::StreamId;

/// The version an append expects the stream to be at: the number of events already in it
/// (0 for a stream that does not exist yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpectedVersion(pub u64);

impl ExpectedVersion {
    pub const NO_STREAM: ExpectedVersion = ExpectedVersion(0);
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The events were written at versions `first..=last`.
    Appended { first_version: u64, last_version: u64 },
    /// The very same events (same ids, same data) were already at those versions: a retried
    /// append. Nothing was written.
    AlreadyAppended { last_version: u64 },
}

impl AppendOutcome {
    /// The stream's version after the append.
    pub fn last_version(self) -> u64 {
        match self {
            AppendOutcome::Appended { last_version, .. }
            | AppendOutcome::AlreadyAppended { last_version } => last_version,
        }
    }
}

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first. Re-read the stream, decide again, append at the new
    /// version. Never overwrite.
    #[error("stream {stream} was expected at version {expected} but is at {actual}")]
    Conflict {
        stream: StreamId,
        expected: u64,
        /// The stream's version when the conflict was seen. Writers that keep appending can
        /// expect this version next time instead of reading the whole stream again.
        actual: u64,
    },
    /// The append cannot be made as asked (empty, too many events for one atomic write, data
    /// too large). Retrying the same append will fail the same way.
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The store could not be reached or was throttled. Retry with backoff.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something the adapter cannot read: damaged data or a bug.
    #[error("event store data is corrupt: {0}")]
    Corrupt(String),
    /// The store refused the call for good (a function wired without an event log). Retrying
    /// will not help.
    #[error("event store refused: {0}")]
    Refused(String),
}

impl StoreError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// An append-only log of event streams.
///
/// Every implementation passes the contract suite in `lector-testkit`: optimistic appends that
/// conflict instead of overwriting, retried appends recognised, streams of any length, and a
/// global order that survives concurrent writers.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Append `events` atomically (all or none) to `stream`, which must be at `expected`.
    /// If the stream has moved on and the events at `expected + 1..` are exactly these events,
    /// the append was already made and [`AppendOutcome::AlreadyAppended`] is returned;
    /// otherwise [`StoreError::Conflict`].
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Every event of `stream` after version `after` (0 for all), in version order. Empty when
    /// the stream does not exist.
    async fn read_stream(&self, stream: &StreamId, after: u64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of all streams with a global position greater than `after`, in
    /// position order: for the outbox and for rebuilding projections.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// The largest number of events one append may carry. DynamoDB's `TransactWriteItems` takes
/// 100 items and one of them keeps the global order, so 99 is the common limit.
pub const MAX_EVENTS_PER_APPEND: usize = 99;

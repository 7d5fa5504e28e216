//! Running a command against a subscription's stream: read, fold, decide, append at the version
//! read; on a conflict (another poller, a push, a user), read again and decide again, so two
//! writers never record the same post twice.

use crate::envelope::{EventMeta, NewEvent, RecordedEvent};
use crate::feed::event::FeedEvent;
use crate::feed::subscription::{FeedCommand, FeedError, Subscription, decide, evolve};
use crate::id::FeedId;
use crate::service::{ExecuteError, MAX_DECISIONS};
use crate::store::{EventStore, ExpectedVersion, MAX_EVENTS_PER_APPEND, StoreError};

/// Why a subscription command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum FeedExecuteError {
    /// The rules refused it.
    #[error(transparent)]
    Rejected(#[from] FeedError),
    /// The log failed, or holds what this build cannot read.
    #[error(transparent)]
    Log(#[from] ExecuteError),
}

impl From<StoreError> for FeedExecuteError {
    fn from(e: StoreError) -> Self {
        FeedExecuteError::Log(ExecuteError::Store(e))
    }
}

impl FeedExecuteError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FeedExecuteError::Rejected(_) => false,
            FeedExecuteError::Log(e) => e.is_transient(),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct FeedExecuted {
    pub state: Subscription,
    /// The events appended, with the ids they were decided with; empty when nothing was new.
    pub appended: Vec<NewEvent>,
}

/// Load a subscription: its stored events and the state folded from them.
pub async fn load_feed(
    store: &dyn EventStore,
    id: &FeedId,
) -> Result<(Vec<RecordedEvent>, Subscription), FeedExecuteError> {
    let events = store.read_stream(&id.stream(), 0).await?;
    let mut state = Subscription::default();
    for recorded in &events {
        let event =
            FeedEvent::from_parts(&recorded.event_type, recorded.schema_version, recorded.data.clone())
                .map_err(|e| FeedExecuteError::Log(ExecuteError::Decode(e)))?;
        state = evolve(state, &event);
    }
    Ok((events, state))
}

/// Decide `command` on the subscription's current state and append what it decides. A poll
/// that found more posts than one append holds is appended in several, the poll's own event
/// last; should the process stop between them, the posts appended stay known and the feed stays
/// due, so the next poll records the rest.
pub async fn execute_feed(
    store: &dyn EventStore,
    id: &FeedId,
    command: FeedCommand,
    meta: &EventMeta,
) -> Result<FeedExecuted, FeedExecuteError> {
    let stream = id.stream();
    let mut appended = Vec::new();
    for _ in 0..MAX_DECISIONS {
        let (_, mut state) = load_feed(store, id).await?;
        let decided = decide(&state, command.clone())?;
        if decided.is_empty() {
            return Ok(FeedExecuted { state, appended });
        }
        let mut conflicted = false;
        for batch in decided.chunks(MAX_EVENTS_PER_APPEND) {
            let new: Vec<NewEvent> =
                batch.iter().map(|d| NewEvent::from_feed_event(d.event_id, &d.event, meta)).collect();
            match store.append(&stream, ExpectedVersion(state.version), new.clone()).await {
                Ok(_) => {
                    state = batch.iter().fold(state, |s, d| evolve(s, &d.event));
                    appended.extend(new);
                }
                Err(StoreError::Conflict { .. }) => {
                    conflicted = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflicted {
            return Ok(FeedExecuted { state, appended });
        }
    }
    Err(FeedExecuteError::Log(ExecuteError::Contention(MAX_DECISIONS)))
}

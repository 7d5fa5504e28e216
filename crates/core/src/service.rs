//! Running a command against a conversion's stream: read, fold, decide, append at the version
//! read; on a conflict, read again and decide again.

use crate::conversion::{Command, Conversion, DomainError, decide, evolve};
use crate::envelope::{EventMeta, NewEvent, RecordedEvent};
use crate::event::DecodeError;
use crate::id::ConversionId;
use crate::store::{EventStore, ExpectedVersion, StoreError};

/// How many times a command is decided again after losing a race. Each conflict means another
/// writer succeeded, so the stream moves on; steps that share a stream (the chunks of a Map)
/// are bounded by the Map's concurrency, far below this.
pub const MAX_DECISIONS: usize = 64;

/// Why a command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The rules refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream holds an event this build cannot read.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Lost the race [`MAX_DECISIONS`] times in a row: the stream is too hot. Retry later.
    #[error("gave up after {0} conflicting appends")]
    Contention(usize),
}

impl ExecuteError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ExecuteError::Store(e) => e.is_transient(),
            ExecuteError::Contention(_) => true,
            ExecuteError::Domain(_) | ExecuteError::Decode(_) => false,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The conversion after the command.
    pub state: Conversion,
    /// The events appended; empty when the fact was already recorded.
    pub appended: Vec<NewEvent>,
}

/// Load a conversion: its stored events and the state folded from them.
pub async fn load(
    store: &dyn EventStore,
    id: &ConversionId,
) -> Result<(Vec<RecordedEvent>, Conversion), ExecuteError> {
    let events = store.read_stream(&id.stream(), 0).await?;
    let mut state = Conversion::default();
    for recorded in &events {
        state = evolve(state, &recorded.decode()?);
    }
    Ok((events, state))
}

/// Decide `command` on the conversion's current state and append what it decides.
pub async fn execute(
    store: &dyn EventStore,
    id: &ConversionId,
    command: Command,
    meta: &EventMeta,
) -> Result<Executed, ExecuteError> {
    let stream = id.stream();
    for _ in 0..MAX_DECISIONS {
        let (_, state) = load(store, id).await?;
        let decided = decide(&state, command.clone())?;
        if decided.is_empty() {
            return Ok(Executed { state, appended: vec![] });
        }
        let new: Vec<NewEvent> =
            decided.iter().map(|d| NewEvent::from_event(d.event_id, &d.event, meta)).collect();
        match store.append(&stream, ExpectedVersion(state.version), new.clone()).await {
            Ok(_) => {
                let state = decided.iter().fold(state, |s, d| evolve(s, &d.event));
                return Ok(Executed { state, appended: new });
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ExecuteError::Contention(MAX_DECISIONS))
}

//! Running a command against a subscription's stream: read, fold, decide, append at the version
//! read; on a conflict (another poller, a push, a user), read again and decide again, so two
//! writers never record the same post twice.

use bytes::Bytes;

use crate::envelope::{EventMeta, NewEvent, RecordedEvent};
use crate::feed::event::FeedEvent;
use crate::feed::subscription::{FeedCommand, FeedError, Subscription, decide, evolve};
use crate::id::{EventId, FeedId};
use crate::kept::KeptMap;
use crate::object::ObjectKey;
use crate::ports::{ObjectError, ObjectStore};
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
    let state = fold_onto(Subscription::default(), &events)?;
    Ok((events, state))
}

fn fold_onto(mut state: Subscription, events: &[RecordedEvent]) -> Result<Subscription, FeedExecuteError> {
    for recorded in events {
        let event =
            FeedEvent::from_parts(&recorded.event_type, recorded.schema_version, recorded.data.clone())
                .map_err(|e| FeedExecuteError::Log(ExecuteError::Decode(e)))?;
        state = evolve(state, &event);
    }
    Ok(state)
}

/// The format of a stored [`FeedSnapshot`]: bumped whenever [`Subscription`]'s fields or
/// [`evolve`] change, so that a snapshot folded by other rules is ignored (and replaced).
pub const SNAPSHOT_FORMAT: u32 = 1;

/// How many events a subscription's stream may gain before its snapshot is written again.
pub const SNAPSHOT_EVERY: u64 = 50;

/// A subscription folded up to `state.version`, stored under [`ObjectKey::feed_snapshot`]. A
/// feed's stream gains an event at every poll, so a poll that folded it from version 0 would
/// read more each time (on DynamoDB, paying for every page); from a snapshot it reads the
/// events appended since, at most about [`SNAPSHOT_EVERY`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FeedSnapshot {
    pub format: u32,
    /// The id of the event at `state.version`: a snapshot whose event is not in the stream at
    /// that version (the log was replaced, not the objects) is not used.
    pub last_event_id: EventId,
    pub state: Subscription,
}

/// A subscription loaded through its snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotLoaded {
    pub state: Subscription,
    /// The version of the snapshot it started from (0: none, the whole stream was read).
    pub snapshot_version: u64,
}

/// Load a subscription from its snapshot and the events after it, or from its whole stream
/// when there is no usable snapshot (none, another format, unreadable, or not matching the
/// log). The snapshot is a cache: any doubt about it costs a full read, never a wrong state.
pub async fn load_feed_snapshot(
    store: &dyn EventStore,
    objects: &dyn ObjectStore,
    id: &FeedId,
) -> Result<SnapshotLoaded, FeedExecuteError> {
    let snapshot = match objects.get(&ObjectKey::feed_snapshot(id)).await {
        Ok(bytes) => serde_json::from_slice::<FeedSnapshot>(&bytes)
            .ok()
            .filter(|s| s.format == SNAPSHOT_FORMAT && s.state.version > 0),
        // None yet, or the store failed: the stream alone is the truth.
        Err(_) => None,
    };
    if let Some(snapshot) = snapshot {
        let version = snapshot.state.version;
        // The snapshot's own last event first: it proves the snapshot is of this stream.
        let events = store.read_stream(&id.stream(), version - 1).await?;
        if events.first().is_some_and(|e| e.version == version && e.event_id == snapshot.last_event_id) {
            let state = fold_onto(snapshot.state, &events[1..])?;
            return Ok(SnapshotLoaded { state, snapshot_version: version });
        }
    }
    let (_, state) = load_feed(store, id).await?;
    Ok(SnapshotLoaded { state, snapshot_version: 0 })
}

/// Subscriptions this process has folded, kept in memory between its polls of them: a poll
/// then reads only the events appended since it last folded the feed (none, usually: the last
/// ones are its own), where the stored snapshot would cost an object read and the fold of up to
/// [`SNAPSHOT_EVERY`] events. The log is append-only, so a subscription folded up to a version
/// stays true up to it; what others appended since (a push, a user's change, another process)
/// is read and folded onto it. Bounded by the posts the kept subscriptions know, the least
/// recently kept dropped first.
#[derive(Debug)]
pub struct FoldedFeeds {
    kept: KeptMap<FeedId, SnapshotLoaded>,
}

/// The posts the kept subscriptions may know in all, by default: about 25 MB.
pub const FOLDED_FEEDS_MAX_POSTS: usize = 100_000;

impl Default for FoldedFeeds {
    fn default() -> Self {
        FoldedFeeds::new(FOLDED_FEEDS_MAX_POSTS)
    }
}

impl FoldedFeeds {
    /// Keeps subscriptions knowing at most `max_posts` posts in all.
    pub fn new(max_posts: usize) -> FoldedFeeds {
        FoldedFeeds { kept: KeptMap::new(max_posts) }
    }

    /// Takes a feed's subscription out: two polls of one feed at once do not share it (the
    /// second loads it from the log, and the stream's optimistic append decides between them).
    fn take(&self, id: &FeedId) -> Option<SnapshotLoaded> {
        self.kept.take(id)
    }

    /// Keeps a subscription as folded up to its `version`.
    pub fn keep(&self, id: &FeedId, loaded: SnapshotLoaded) {
        let w = weight(&loaded.state);
        self.kept.keep(id.clone(), loaded, w);
    }

    /// Whether a feed's subscription is kept.
    pub fn contains(&self, id: &FeedId) -> bool {
        self.kept.contains(id)
    }

    /// How many subscriptions are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

fn weight(state: &Subscription) -> usize {
    state.posts.len() + 1
}

/// Load a subscription as [`load_feed_snapshot`] does, from what this process kept of it when
/// it has (see [`FoldedFeeds`]): the events after it are read and folded onto it.
pub async fn load_feed_folded(
    store: &dyn EventStore,
    objects: &dyn ObjectStore,
    folded: &FoldedFeeds,
    id: &FeedId,
) -> Result<SnapshotLoaded, FeedExecuteError> {
    if let Some(kept) = folded.take(id) {
        let events = store.read_stream(&id.stream(), kept.state.version).await?;
        let state = fold_onto(kept.state, &events)?;
        return Ok(SnapshotLoaded { state, snapshot_version: kept.snapshot_version });
    }
    load_feed_snapshot(store, objects, id).await
}

/// Store `executed`'s state as the subscription's snapshot when its stream has gained
/// [`SNAPSHOT_EVERY`] events since the snapshot it was loaded from. Only after an append: the
/// last appended event's id is what proves the snapshot later.
pub async fn save_feed_snapshot(
    objects: &dyn ObjectStore,
    id: &FeedId,
    executed: &FeedExecuted,
    snapshot_version: u64,
) -> Result<bool, ObjectError> {
    let Some(last) = executed.appended.last() else { return Ok(false) };
    if executed.state.version < snapshot_version + SNAPSHOT_EVERY {
        return Ok(false);
    }
    let snapshot =
        FeedSnapshot { format: SNAPSHOT_FORMAT, last_event_id: last.event_id, state: executed.state.clone() };
    let body = serde_json::to_vec(&snapshot).map_err(|e| ObjectError::Failed(e.to_string()))?;
    objects.put(&ObjectKey::feed_snapshot(id), Bytes::from(body), "application/json").await?;
    Ok(true)
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
    let (_, state) = load_feed(store, id).await?;
    execute_feed_on(store, id, state, command, meta).await
}

/// [`execute_feed`] on a state the caller has loaded (its `version` is what the append expects):
/// nothing is read unless another writer appended since that version, in which case what they
/// appended is read, folded onto the state, and the command decided again. A poll loads its feed
/// once this way.
pub async fn execute_feed_on(
    store: &dyn EventStore,
    id: &FeedId,
    loaded: Subscription,
    command: FeedCommand,
    meta: &EventMeta,
) -> Result<FeedExecuted, FeedExecuteError> {
    let stream = id.stream();
    let mut appended = Vec::new();
    let mut state = loaded;
    for decision in 0..MAX_DECISIONS {
        if decision > 0 {
            let behind = store.read_stream(&stream, state.version).await?;
            state = fold_onto(state, &behind)?;
        }
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

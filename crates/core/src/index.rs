//! The list projection: conversions by feed and state, newest first, for listing pages. Unlike
//! one conversion's status (always folded from its own stream), the list is a read model that
//! follows the log and can be dropped and rebuilt from it at any time.

use std::hash::Hash;

use async_trait::async_trait;

use crate::envelope::RecordedEvent;
use crate::event::DecodeError;
use crate::id::{ConversionId, FeedId};
use crate::kept::KeptMap;
use crate::status::{ConversionState, ConversionStatus};
use crate::store::{EventStore, StoreError};

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub feed_id: Option<FeedId>,
    pub state: Option<ConversionState>,
    /// At most this many (1..=100).
    pub limit: usize,
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
}

/// One page of conversions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub conversions: Vec<ConversionStatus>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why the index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The cursor was not made by this index (or is damaged).
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("conversion index unavailable: {0}")]
    Unavailable(String),
    #[error("conversion index error: {0}")]
    Failed(String),
}

/// The store of the list projection: a SQLite table locally, a DynamoDB table on AWS.
#[async_trait]
pub trait ConversionIndex: Send + Sync {
    async fn get(&self, id: &ConversionId) -> Result<Option<ConversionStatus>, IndexError>;

    /// Store `status` unless the index already holds the same or a later version of it.
    async fn put(&self, status: &ConversionStatus) -> Result<(), IndexError>;

    /// Store each of `statuses` as [`ConversionIndex::put`] does, in one write where the store
    /// allows it.
    async fn put_all(&self, statuses: &[ConversionStatus]) -> Result<(), IndexError> {
        for status in statuses {
            self.put(status).await?;
        }
        Ok(())
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, IndexError>;

    /// Drop everything (before a rebuild).
    async fn clear(&self) -> Result<(), IndexError>;
}

/// Why projecting an event failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A read model folded from the log, one status per stream of one aggregate: the list of
/// conversions, the list of subscriptions. [`follow`], [`rebuild_model`] and [`compare`] work
/// on any of them alike.
#[async_trait]
pub trait ReadModel: Send + Sync {
    type Key: Ord + Clone + Send + Sync + std::fmt::Debug;
    type Status: Clone + PartialEq + Send + Sync;

    /// The key of the status a stream folds into, or `None` for another aggregate's stream.
    fn key_of_stream(stream: &crate::id::StreamId) -> Option<Self::Key>;
    fn key_of(status: &Self::Status) -> Self::Key;
    /// The stream version a status was folded up to.
    fn version_of(status: &Self::Status) -> u64;
    /// One more event of the stream.
    fn apply(
        status: Option<Self::Status>,
        event: &RecordedEvent,
    ) -> Result<Option<Self::Status>, DecodeError>;

    async fn get_status(&self, key: &Self::Key) -> Result<Option<Self::Status>, IndexError>;
    /// Store `status` unless the model already holds the same or a later version of it.
    async fn put_status(&self, status: &Self::Status) -> Result<(), IndexError>;
    /// Store each of `statuses` as [`ReadModel::put_status`] does; a model whose store takes
    /// several in one write does so.
    async fn put_statuses(&self, statuses: &[Self::Status]) -> Result<(), IndexError> {
        for status in statuses {
            self.put_status(status).await?;
        }
        Ok(())
    }
    async fn clear_all(&self) -> Result<(), IndexError>;
    /// Every status the model holds (all pages).
    async fn every_status(&self) -> Result<Vec<Self::Status>, IndexError>;
}

/// The statuses a projection stored last, kept in memory between its deliveries so that the
/// next events of a key are folded onto them without reading them back from the model (a read
/// and a decode per key, which were most of what following the log cost). Bounded by count,
/// the least recently stored dropped first.
///
/// A kept status is the fold of its stream up to its version, as the model's is, so it may only
/// fall behind the model's (another process projecting the same log), never disagree: events at
/// or below it are then passed over, and past a gap the stream is folded again, as with a status
/// read; the model takes no older version than it holds.
pub struct KeptStatuses<K, S> {
    kept: KeptMap<K, S>,
}

/// The statuses kept by default: about 10 MB of subscriptions.
pub const KEPT_STATUSES: usize = 10_000;

impl<K: Hash + Eq + Clone, S: Clone> Default for KeptStatuses<K, S> {
    fn default() -> Self {
        KeptStatuses::new(KEPT_STATUSES)
    }
}

impl<K: Hash + Eq + Clone, S: Clone> KeptStatuses<K, S> {
    /// Keeps at most `max` statuses.
    pub fn new(max: usize) -> Self {
        KeptStatuses { kept: KeptMap::new(max) }
    }

    /// How many statuses are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// `model`, its statuses read from what is kept when they are, and kept when stored.
    pub fn over<'a, M>(&'a self, model: &'a M) -> WithKept<'a, M>
    where
        M: ReadModel<Key = K, Status = S> + ?Sized,
    {
        WithKept { model, kept: self }
    }
}

impl<K, S> std::fmt::Debug for KeptStatuses<K, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptStatuses").finish_non_exhaustive()
    }
}

/// A read model through the statuses kept of it ([`KeptStatuses::over`]).
pub struct WithKept<'a, M: ReadModel + ?Sized> {
    model: &'a M,
    kept: &'a KeptStatuses<M::Key, M::Status>,
}

impl<M: ReadModel + ?Sized> std::fmt::Debug for WithKept<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithKept").finish_non_exhaustive()
    }
}

impl<M: ReadModel + ?Sized> WithKept<'_, M>
where
    M::Key: Hash + Eq,
{
    fn keep(&self, status: &M::Status) {
        self.kept.kept.keep(M::key_of(status), status.clone(), 1);
    }
}

#[async_trait]
impl<M: ReadModel + ?Sized> ReadModel for WithKept<'_, M>
where
    M::Key: Hash + Eq,
{
    type Key = M::Key;
    type Status = M::Status;

    fn key_of_stream(stream: &crate::id::StreamId) -> Option<Self::Key> {
        M::key_of_stream(stream)
    }
    fn key_of(status: &Self::Status) -> Self::Key {
        M::key_of(status)
    }
    fn version_of(status: &Self::Status) -> u64 {
        M::version_of(status)
    }
    fn apply(
        status: Option<Self::Status>,
        event: &RecordedEvent,
    ) -> Result<Option<Self::Status>, DecodeError> {
        M::apply(status, event)
    }

    async fn get_status(&self, key: &Self::Key) -> Result<Option<Self::Status>, IndexError> {
        if let Some(status) = self.kept.kept.get(key) {
            return Ok(Some(status));
        }
        let status = self.model.get_status(key).await?;
        if let Some(status) = &status {
            self.keep(status);
        }
        Ok(status)
    }
    async fn put_status(&self, status: &Self::Status) -> Result<(), IndexError> {
        self.model.put_status(status).await?;
        self.keep(status);
        Ok(())
    }
    async fn put_statuses(&self, statuses: &[Self::Status]) -> Result<(), IndexError> {
        self.model.put_statuses(statuses).await?;
        for status in statuses {
            self.keep(status);
        }
        Ok(())
    }
    async fn clear_all(&self) -> Result<(), IndexError> {
        self.kept.kept.clear();
        self.model.clear_all().await
    }
    async fn every_status(&self) -> Result<Vec<Self::Status>, IndexError> {
        self.model.every_status().await
    }
}

/// Fold one event of the log into a read model. Events at or below the stored version are
/// ignored (a repeated delivery); when the model has missed events of the stream (a gap), the
/// status is folded again from the stream itself, so the model never holds a status that skips
/// a fact.
pub async fn follow<M: ReadModel + ?Sized>(
    model: &M,
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<(), ProjectError> {
    follow_all(model, store, std::slice::from_ref(event)).await
}

/// Fold events of the log, in log order, into a read model as [`follow`] does one at a time,
/// reading each status once and storing what changed together at the end.
pub async fn follow_all<M: ReadModel + ?Sized>(
    model: &M,
    store: &dyn EventStore,
    events: &[RecordedEvent],
) -> Result<(), ProjectError> {
    // The statuses as folded so far, and the keys whose status changed, in first-change order.
    let mut folded: std::collections::BTreeMap<M::Key, Option<M::Status>> = Default::default();
    let mut changed: Vec<M::Key> = Vec::new();
    for event in events {
        let Some(key) = M::key_of_stream(&event.stream_id) else { continue };
        let current = match folded.get(&key) {
            Some(status) => status.clone(),
            None => model.get_status(&key).await?,
        };
        let stored = current.as_ref().map_or(0, M::version_of);
        if event.version <= stored {
            folded.insert(key, current);
            continue;
        }
        let next = if event.version == stored + 1 {
            M::apply(current, event)?
        } else {
            let events = store.read_stream(&event.stream_id, 0).await?;
            let mut status = None;
            for e in events.iter().take_while(|e| e.version <= event.version) {
                status = M::apply(status, e)?;
            }
            status
        };
        if next.is_some() && !changed.contains(&key) {
            changed.push(key.clone());
        }
        folded.insert(key, next);
    }
    let statuses: Vec<M::Status> =
        changed.iter().filter_map(|key| folded.get(key).cloned().flatten()).collect();
    if !statuses.is_empty() {
        model.put_statuses(&statuses).await?;
    }
    Ok(())
}

/// Rebuild a read model from the whole log: clear it, then fold every event in log order.
/// Returns the number of events read.
pub async fn rebuild_model<M: ReadModel + ?Sized>(
    model: &M,
    store: &dyn EventStore,
) -> Result<u64, ProjectError> {
    model.clear_all().await?;
    let mut after = 0;
    let mut read = 0;
    loop {
        let batch = store.read_all(after, 500).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for event in &batch {
            follow(model, store, event).await?;
            read += 1;
        }
    }
    Ok(read)
}

/// How a stored read model differs from a fresh fold of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDiff<K = ConversionId> {
    /// In the log, not in the model.
    pub missing: Vec<K>,
    /// In the model, not in the log.
    pub extra: Vec<K>,
    /// In both, with another status.
    pub different: Vec<K>,
}

impl<K> Default for IndexDiff<K> {
    fn default() -> Self {
        Self { missing: Vec::new(), extra: Vec::new(), different: Vec::new() }
    }
}

impl<K> IndexDiff<K> {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// Fold the whole log into `fresh` (an empty model in memory) and compare `stored` with it.
pub async fn compare<M, F>(
    stored: &M,
    fresh: &F,
    store: &dyn EventStore,
) -> Result<IndexDiff<M::Key>, ProjectError>
where
    M: ReadModel + ?Sized,
    F: ReadModel<Key = M::Key, Status = M::Status> + ?Sized,
{
    rebuild_model(fresh, store).await?;
    let by_key = |all: Vec<M::Status>| -> std::collections::BTreeMap<M::Key, M::Status> {
        all.into_iter().map(|s| (M::key_of(&s), s)).collect()
    };
    let expected = by_key(fresh.every_status().await?);
    let actual = by_key(stored.every_status().await?);
    let mut diff = IndexDiff::default();
    for (key, status) in &expected {
        match actual.get(key) {
            None => diff.missing.push(key.clone()),
            Some(held) if held != status => diff.different.push(key.clone()),
            Some(_) => {}
        }
    }
    diff.extra = actual.keys().filter(|k| !expected.contains_key(*k)).cloned().collect();
    Ok(diff)
}

/// The list of conversions as a [`ReadModel`].
#[derive(Clone, Copy)]
pub struct Conversions<'a>(pub &'a dyn ConversionIndex);

impl std::fmt::Debug for Conversions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conversions")
    }
}

#[async_trait]
impl ReadModel for Conversions<'_> {
    type Key = ConversionId;
    type Status = ConversionStatus;

    fn key_of_stream(stream: &crate::id::StreamId) -> Option<ConversionId> {
        stream.conversion_id()
    }
    fn key_of(status: &ConversionStatus) -> ConversionId {
        status.conversion_id.clone()
    }
    fn version_of(status: &ConversionStatus) -> u64 {
        status.version
    }
    fn apply(
        status: Option<ConversionStatus>,
        event: &RecordedEvent,
    ) -> Result<Option<ConversionStatus>, DecodeError> {
        ConversionStatus::apply(status, event)
    }
    async fn get_status(&self, key: &ConversionId) -> Result<Option<ConversionStatus>, IndexError> {
        self.0.get(key).await
    }
    async fn put_status(&self, status: &ConversionStatus) -> Result<(), IndexError> {
        self.0.put(status).await
    }
    async fn put_statuses(&self, statuses: &[ConversionStatus]) -> Result<(), IndexError> {
        self.0.put_all(statuses).await
    }
    async fn clear_all(&self) -> Result<(), IndexError> {
        self.0.clear().await
    }
    async fn every_status(&self) -> Result<Vec<ConversionStatus>, IndexError> {
        list_all(self.0).await
    }
}

/// Fold one event of the log into the list of conversions (see [`follow`]).
pub async fn project(
    index: &dyn ConversionIndex,
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<(), ProjectError> {
    follow(&Conversions(index), store, event).await
}

/// Fold a run of events of the log into the list of conversions, storing what changed at once.
pub async fn project_all(
    index: &dyn ConversionIndex,
    store: &dyn EventStore,
    events: &[RecordedEvent],
) -> Result<(), ProjectError> {
    follow_all(&Conversions(index), store, events).await
}

/// Rebuild the list of conversions from the whole log. Returns the number of events read.
pub async fn rebuild(index: &dyn ConversionIndex, store: &dyn EventStore) -> Result<u64, ProjectError> {
    rebuild_model(&Conversions(index), store).await
}

/// Every conversion the index holds, newest first (all pages).
pub async fn list_all(index: &dyn ConversionIndex) -> Result<Vec<ConversionStatus>, IndexError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = index.list(&ListQuery { limit: 100, cursor, ..ListQuery::default() }).await?;
        all.extend(page.conversions);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The list projection in memory: for checking a stored index against a fresh fold of the log,
/// and for tests. Same ordering and cursor rules as the stored indexes.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    rows: std::sync::Mutex<std::collections::BTreeMap<ConversionId, ConversionStatus>>,
}

impl MemoryIndex {
    pub fn new() -> Self {
        Self::default()
    }
}

fn sort_key(s: &ConversionStatus) -> (chrono::DateTime<chrono::Utc>, ConversionId) {
    (s.created_at, s.conversion_id.clone())
}

#[async_trait]
impl ConversionIndex for MemoryIndex {
    async fn get(&self, id: &ConversionId) -> Result<Option<ConversionStatus>, IndexError> {
        Ok(self.rows.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned())
    }

    async fn put(&self, status: &ConversionStatus) -> Result<(), IndexError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let newer = rows.get(&status.conversion_id).is_none_or(|s| status.version > s.version);
        if newer {
            rows.insert(status.conversion_id.clone(), status.clone());
        }
        Ok(())
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, IndexError> {
        let after = match &query.cursor {
            Some(c) => {
                let (at, id) = c.split_once('|').ok_or(IndexError::InvalidCursor)?;
                let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| IndexError::InvalidCursor)?;
                Some((
                    at.with_timezone(&chrono::Utc),
                    id.parse::<ConversionId>().map_err(|_| IndexError::InvalidCursor)?,
                ))
            }
            None => None,
        };
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut matching: Vec<&ConversionStatus> = rows
            .values()
            .filter(|s| query.feed_id.as_ref().is_none_or(|f| s.feed_id.as_ref() == Some(f)))
            .filter(|s| query.state.is_none_or(|st| s.state == st))
            .filter(|s| after.as_ref().is_none_or(|a| sort_key(s) < *a))
            .collect();
        matching.sort_by_key(|s| std::cmp::Reverse(sort_key(s)));
        let limit = query.limit.clamp(1, 100);
        let next_cursor = (matching.len() > limit).then(|| {
            let last = matching[limit - 1];
            format!("{}|{}", last.created_at.to_rfc3339(), last.conversion_id)
        });
        Ok(ListPage { conversions: matching.into_iter().take(limit).cloned().collect(), next_cursor })
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }
}

/// Fold the whole log into a fresh in-memory index and compare the list of conversions with it.
pub async fn check(index: &dyn ConversionIndex, store: &dyn EventStore) -> Result<IndexDiff, ProjectError> {
    let fresh = MemoryIndex::new();
    compare(&Conversions(index), &Conversions(&fresh), store).await
}

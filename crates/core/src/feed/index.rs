//! The list of subscriptions: a read model that follows the log and can be dropped and rebuilt
//! from it at any time (a SQLite table locally, a DynamoDB table on AWS), and the feeds due for
//! a poll, which the polling workflow reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::RecordedEvent;
use crate::event::DecodeError;
use crate::feed::status::{FeedState, FeedStatus};
use crate::id::{FeedId, StreamId};
use crate::index::{
    IndexDiff, IndexError, ProjectError, ReadModel, compare, follow, follow_all, rebuild_model,
};
use crate::store::EventStore;

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedQuery {
    pub state: Option<FeedState>,
    /// At most this many (1..=100).
    pub limit: usize,
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
}

/// One page of subscriptions, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    pub feeds: Vec<FeedStatus>,
    pub next_cursor: Option<String>,
}

/// The store of the list of subscriptions.
///
/// Every implementation passes the contract suite in `lector-testkit`: statuses stored and read
/// back, an older version never replacing a newer one, pages newest first without gaps or
/// repeats, and the due feeds (polled states only, due by now, soonest first).
#[async_trait]
pub trait FeedIndex: Send + Sync {
    async fn get(&self, id: &FeedId) -> Result<Option<FeedStatus>, IndexError>;

    /// Store `status` unless the index already holds the same or a later version of it.
    async fn put(&self, status: &FeedStatus) -> Result<(), IndexError>;

    /// Store each of `statuses` as [`FeedIndex::put`] does, in one write where the store
    /// allows it.
    async fn put_all(&self, statuses: &[FeedStatus]) -> Result<(), IndexError> {
        for status in statuses {
            self.put(status).await?;
        }
        Ok(())
    }

    async fn list(&self, query: &FeedQuery) -> Result<FeedPage, IndexError>;

    /// Up to `limit` subscriptions that are polled (active or failing) and due at `now`,
    /// soonest due first.
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<FeedStatus>, IndexError>;

    /// Drop everything (before a rebuild).
    async fn clear(&self) -> Result<(), IndexError>;
}

/// Every subscription the index holds, newest first (all pages).
pub async fn list_all_feeds(index: &dyn FeedIndex) -> Result<Vec<FeedStatus>, IndexError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = index.list(&FeedQuery { limit: 100, cursor, ..FeedQuery::default() }).await?;
        all.extend(page.feeds);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The list of subscriptions as a [`ReadModel`].
#[derive(Clone, Copy)]
pub struct Feeds<'a>(pub &'a dyn FeedIndex);

impl std::fmt::Debug for Feeds<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feeds")
    }
}

#[async_trait]
impl ReadModel for Feeds<'_> {
    type Key = FeedId;
    type Status = FeedStatus;

    fn key_of_stream(stream: &StreamId) -> Option<FeedId> {
        stream.feed_id()
    }
    fn key_of(status: &FeedStatus) -> FeedId {
        status.feed_id.clone()
    }
    fn version_of(status: &FeedStatus) -> u64 {
        status.version
    }
    fn apply(status: Option<FeedStatus>, event: &RecordedEvent) -> Result<Option<FeedStatus>, DecodeError> {
        FeedStatus::apply(status, event)
    }
    async fn get_status(&self, key: &FeedId) -> Result<Option<FeedStatus>, IndexError> {
        self.0.get(key).await
    }
    async fn put_status(&self, status: &FeedStatus) -> Result<(), IndexError> {
        self.0.put(status).await
    }
    async fn put_statuses(&self, statuses: &[FeedStatus]) -> Result<(), IndexError> {
        self.0.put_all(statuses).await
    }
    async fn clear_all(&self) -> Result<(), IndexError> {
        self.0.clear().await
    }
    async fn every_status(&self) -> Result<Vec<FeedStatus>, IndexError> {
        list_all_feeds(self.0).await
    }
}

/// Fold one event of the log into the list of subscriptions.
pub async fn project_feed(
    index: &dyn FeedIndex,
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<(), ProjectError> {
    follow(&Feeds(index), store, event).await
}

/// Fold a run of events of the log into the list of subscriptions, storing what changed at once.
pub async fn project_feeds(
    index: &dyn FeedIndex,
    store: &dyn EventStore,
    events: &[RecordedEvent],
) -> Result<(), ProjectError> {
    follow_all(&Feeds(index), store, events).await
}

/// Rebuild the list of subscriptions from the whole log. Returns the number of events read.
pub async fn rebuild_feeds(index: &dyn FeedIndex, store: &dyn EventStore) -> Result<u64, ProjectError> {
    rebuild_model(&Feeds(index), store).await
}

/// Fold the whole log into a fresh in-memory index and compare the list of subscriptions with
/// it.
pub async fn check_feeds(
    index: &dyn FeedIndex,
    store: &dyn EventStore,
) -> Result<IndexDiff<FeedId>, ProjectError> {
    let fresh = MemoryFeedIndex::default();
    compare(&Feeds(index), &Feeds(&fresh), store).await
}

/// The cursor of a page that ended at `status`: its creation time and id, opaque to callers.
pub fn feed_cursor(status: &FeedStatus) -> String {
    format!("{}|{}", status.created_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), status.feed_id)
}

/// A cursor made by [`feed_cursor`], read back.
pub fn parse_feed_cursor(cursor: &str) -> Result<(DateTime<Utc>, FeedId), IndexError> {
    let (at, id) = cursor.split_once('|').ok_or(IndexError::InvalidCursor)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| IndexError::InvalidCursor)?.with_timezone(&Utc);
    let id: FeedId = id.parse().map_err(|_| IndexError::InvalidCursor)?;
    Ok((at, id))
}

/// The list of subscriptions in memory: for checking a stored index against a fresh fold of
/// the log, and for tests. Same ordering, cursor and due rules as the stored indexes.
#[derive(Debug, Default)]
pub struct MemoryFeedIndex {
    rows: std::sync::Mutex<std::collections::BTreeMap<FeedId, FeedStatus>>,
}

fn newest_first(s: &FeedStatus) -> std::cmp::Reverse<(DateTime<Utc>, FeedId)> {
    std::cmp::Reverse((s.created_at, s.feed_id.clone()))
}

#[async_trait]
impl FeedIndex for MemoryFeedIndex {
    async fn get(&self, id: &FeedId) -> Result<Option<FeedStatus>, IndexError> {
        Ok(self.rows.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned())
    }

    async fn put(&self, status: &FeedStatus) -> Result<(), IndexError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.get(&status.feed_id).is_none_or(|s| status.version > s.version) {
            rows.insert(status.feed_id.clone(), status.clone());
        }
        Ok(())
    }

    async fn list(&self, query: &FeedQuery) -> Result<FeedPage, IndexError> {
        let after = query.cursor.as_deref().map(parse_feed_cursor).transpose()?;
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut matching: Vec<&FeedStatus> = rows
            .values()
            .filter(|s| query.state.is_none_or(|st| s.state == st))
            .filter(|s| after.as_ref().is_none_or(|a| (s.created_at, s.feed_id.clone()) < *a))
            .collect();
        matching.sort_by_key(|s| newest_first(s));
        let limit = query.limit.clamp(1, 100);
        let next_cursor = (matching.len() > limit).then(|| feed_cursor(matching[limit - 1]));
        Ok(FeedPage { feeds: matching.into_iter().take(limit).cloned().collect(), next_cursor })
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<FeedStatus>, IndexError> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let mut due: Vec<&FeedStatus> =
            rows.values().filter(|s| s.state.is_polled() && s.next_poll_at <= now).collect();
        due.sort_by_key(|s| (s.next_poll_at, s.feed_id.clone()));
        Ok(due.into_iter().take(limit).cloned().collect())
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }
}

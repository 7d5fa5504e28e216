//! The list projection: conversions by feed and state, newest first, for listing pages. Unlike
//! one conversion's status (always folded from its own stream), the list is a read model that
//! follows the log and can be dropped and rebuilt from it at any time.

use async_trait::async_trait;

use crate::envelope::RecordedEvent;
use crate::event::DecodeError;
use crate::id::{ConversionId, FeedId};
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

/// Fold one event of the log into the index. Events at or below the stored version are
/// ignored (a repeated delivery); when the index has missed events of the stream (a gap), the
/// status is folded again from the stream itself, so the index never holds a status that skips
/// a fact.
pub async fn project(
    index: &dyn ConversionIndex,
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<(), ProjectError> {
    let Some(id) = event.stream_id.conversion_id() else { return Ok(()) };
    let current = index.get(&id).await?;
    let stored = current.as_ref().map_or(0, |s| s.version);
    if event.version <= stored {
        return Ok(());
    }
    let next = if event.version == stored + 1 {
        ConversionStatus::apply(current, event)?
    } else {
        let events = store.read_stream(&event.stream_id, 0).await?;
        let upto: Vec<_> = events.into_iter().take_while(|e| e.version <= event.version).collect();
        ConversionStatus::fold(&upto)?
    };
    if let Some(status) = next {
        index.put(&status).await?;
    }
    Ok(())
}

/// Rebuild the index from the whole log: clear it, then fold every event in log order.
/// Returns the number of events read.
pub async fn rebuild(index: &dyn ConversionIndex, store: &dyn EventStore) -> Result<u64, ProjectError> {
    index.clear().await?;
    let mut after = 0;
    let mut read = 0;
    loop {
        let batch = store.read_all(after, 500).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for event in &batch {
            project(index, store, event).await?;
            read += 1;
        }
    }
    Ok(read)
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

/// How a stored index differs from a fresh fold of the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDiff {
    /// In the log, not in the index.
    pub missing: Vec<ConversionId>,
    /// In the index, not in the log.
    pub extra: Vec<ConversionId>,
    /// In both, with another status.
    pub different: Vec<ConversionId>,
}

impl IndexDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// Fold the whole log into a fresh in-memory index and compare it with `index`.
pub async fn check(index: &dyn ConversionIndex, store: &dyn EventStore) -> Result<IndexDiff, ProjectError> {
    let fresh = MemoryIndex::new();
    rebuild(&fresh, store).await?;
    let expected: std::collections::BTreeMap<_, _> =
        list_all(&fresh).await?.into_iter().map(|s| (s.conversion_id.clone(), s)).collect();
    let actual: std::collections::BTreeMap<_, _> =
        list_all(index).await?.into_iter().map(|s| (s.conversion_id.clone(), s)).collect();
    let mut diff = IndexDiff::default();
    for (id, status) in &expected {
        match actual.get(id) {
            None => diff.missing.push(id.clone()),
            Some(stored) if stored != status => diff.different.push(id.clone()),
            Some(_) => {}
        }
    }
    diff.extra = actual.keys().filter(|id| !expected.contains_key(*id)).cloned().collect();
    Ok(diff)
}

//! The list of subscriptions in SQLite, beside the log it is folded from.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use lector_core::FeedId;
use lector_core::feed::FeedStatus;
use lector_core::feed::index::{FeedIndex, FeedPage, FeedQuery, feed_cursor, parse_feed_cursor};
use lector_core::index::IndexError;
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError};

fn db(e: rusqlite::Error) -> IndexError {
    IndexError::from(DbError::from(e))
}

/// Times as stored: one fixed RFC 3339 form, so that text order is time order.
fn stored_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn decode(json: &str) -> Result<FeedStatus, IndexError> {
    serde_json::from_str(json)
        .map_err(|e| IndexError::Failed(format!("a stored subscription is damaged: {e}")))
}

/// The `feeds` table.
#[derive(Debug, Clone)]
pub struct SqliteFeedIndex {
    db: Db,
}

impl SqliteFeedIndex {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl FeedIndex for SqliteFeedIndex {
    async fn get(&self, id: &FeedId) -> Result<Option<FeedStatus>, IndexError> {
        let id = id.to_string();
        self.db
            .read(move |c| {
                let json: Option<String> = c
                    .prepare_cached("SELECT status FROM feeds WHERE feed_id = ?1")
                    .and_then(|mut st| st.query_row([id], |r| r.get(0)))
                    .optional()
                    .map_err(db)?;
                json.as_deref().map(decode).transpose()
            })
            .await
    }

    async fn put(&self, status: &FeedStatus) -> Result<(), IndexError> {
        self.put_all(std::slice::from_ref(status)).await
    }

    async fn put_all(&self, statuses: &[FeedStatus]) -> Result<(), IndexError> {
        let rows = statuses
            .iter()
            .map(|status| {
                let json = serde_json::to_string(status).map_err(|e| IndexError::Failed(e.to_string()))?;
                Ok((
                    status.feed_id.to_string(),
                    status.state.as_str(),
                    i64::from(status.state.is_polled()),
                    stored_time(status.created_at),
                    stored_time(status.next_poll_at),
                    status.version as i64,
                    json,
                ))
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        self.db
            .write(move |tx| {
                // `created_at` is the subscription's first event's and never changes: leaving it
                // out of the update leaves `feeds_by_time` untouched (a page written to the log
                // per feed and poll otherwise).
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO feeds (feed_id, state, polled, created_at, next_poll_at, version, status) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                         ON CONFLICT (feed_id) DO UPDATE SET state = excluded.state, polled = excluded.polled, \
                         next_poll_at = excluded.next_poll_at, \
                         version = excluded.version, status = excluded.status \
                         WHERE excluded.version > feeds.version",
                    )
                    .map_err(db)?;
                for (id, state, polled, created, next, version, json) in rows {
                    upsert.execute(params![id, state, polled, created, next, version, json]).map_err(db)?;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, query: &FeedQuery) -> Result<FeedPage, IndexError> {
        let limit = query.limit.clamp(1, 100);
        let after = query
            .cursor
            .as_deref()
            .map(|c| {
                let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| IndexError::InvalidCursor)?;
                let text = String::from_utf8(bytes).map_err(|_| IndexError::InvalidCursor)?;
                parse_feed_cursor(&text).map(|(at, id)| (stored_time(at), id.to_string()))
            })
            .transpose()?;
        let state = query.state.map(|s| s.as_str().to_owned());
        self.db
            .read(move |c| {
                let (after_at, after_id) = after.unwrap_or_else(|| ("\u{10FFFF}".into(), String::new()));
                let mut stmt = c
                    .prepare_cached(
                        "SELECT status FROM feeds WHERE (?1 IS NULL OR state = ?1) \
                         AND (created_at < ?2 OR (created_at = ?2 AND feed_id < ?3) OR ?3 = '') \
                         ORDER BY created_at DESC, feed_id DESC LIMIT ?4",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![state, after_at, after_id, (limit + 1) as i64], |r| {
                        r.get::<_, String>(0)
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                let more = rows.len() > limit;
                let feeds =
                    rows[..rows.len().min(limit)].iter().map(|j| decode(j)).collect::<Result<Vec<_>, _>>()?;
                let next_cursor =
                    if more { feeds.last().map(|s| URL_SAFE_NO_PAD.encode(feed_cursor(s))) } else { None };
                Ok(FeedPage { feeds, next_cursor })
            })
            .await
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<FeedStatus>, IndexError> {
        let now = stored_time(now);
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT status FROM feeds WHERE polled = 1 AND next_poll_at <= ?1 \
                         ORDER BY next_poll_at, feed_id LIMIT ?2",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![now, limit as i64], |r| r.get::<_, String>(0))
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                rows.iter().map(|j| decode(j)).collect()
            })
            .await
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.db.write(|tx| tx.execute("DELETE FROM feeds", []).map(|_| ()).map_err(db)).await
    }
}

//! The list projection in SQLite, beside the log it is folded from.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::SecondsFormat;
use lector_core::index::{ConversionIndex, IndexError, ListPage, ListQuery};
use lector_core::{ConversionId, ConversionStatus};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError};

impl From<DbError> for IndexError {
    fn from(e: DbError) -> Self {
        if e.is_busy() { IndexError::Unavailable(e.to_string()) } else { IndexError::Failed(e.to_string()) }
    }
}

fn db(e: rusqlite::Error) -> IndexError {
    IndexError::from(DbError::from(e))
}

/// The `conversions` table.
#[derive(Debug, Clone)]
pub struct SqliteConversionIndex {
    db: Db,
}

impl SqliteConversionIndex {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn decode(json: &str) -> Result<ConversionStatus, IndexError> {
    serde_json::from_str(json).map_err(|e| IndexError::Failed(format!("a stored status is damaged: {e}")))
}

/// A cursor is where the last page ended: its creation time and id, opaque to callers.
fn encode_cursor(created_at: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}|{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String), IndexError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| IndexError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| IndexError::InvalidCursor)?;
    let (at, id) = text.split_once('|').ok_or(IndexError::InvalidCursor)?;
    id.parse::<ConversionId>().map_err(|_| IndexError::InvalidCursor)?;
    chrono::DateTime::parse_from_rfc3339(at).map_err(|_| IndexError::InvalidCursor)?;
    Ok((at.to_owned(), id.to_owned()))
}

#[async_trait]
impl ConversionIndex for SqliteConversionIndex {
    async fn get(&self, id: &ConversionId) -> Result<Option<ConversionStatus>, IndexError> {
        let id = id.to_string();
        self.db
            .read(move |c| {
                let json: Option<String> = c
                    .prepare_cached("SELECT status FROM conversions WHERE conversion_id = ?1")
                    .and_then(|mut st| st.query_row([id], |r| r.get(0)))
                    .optional()
                    .map_err(db)?;
                json.as_deref().map(decode).transpose()
            })
            .await
    }

    async fn put(&self, status: &ConversionStatus) -> Result<(), IndexError> {
        self.put_all(std::slice::from_ref(status)).await
    }

    async fn put_all(&self, statuses: &[ConversionStatus]) -> Result<(), IndexError> {
        let rows = statuses
            .iter()
            .map(|status| {
                let json = serde_json::to_string(status).map_err(|e| IndexError::Failed(e.to_string()))?;
                Ok((
                    status.conversion_id.to_string(),
                    status.feed_id.as_ref().map(|f| f.to_string()),
                    status.state.as_str(),
                    status.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                    status.version as i64,
                    json,
                ))
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        self.db
            .write(move |tx| {
                // `feed_id` and `created_at` are the request's and never change: leaving them
                // out of the update leaves the two indexes on them untouched.
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO conversions (conversion_id, feed_id, state, created_at, version, status) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (conversion_id) DO UPDATE SET \
                         state = excluded.state, version = excluded.version, \
                         status = excluded.status \
                         WHERE excluded.version > conversions.version",
                    )
                    .map_err(db)?;
                for (id, feed, state, at, version, json) in rows {
                    upsert.execute(params![id, feed, state, at, version, json]).map_err(db)?;
                }
                Ok(())
            })
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, IndexError> {
        let limit = query.limit.clamp(1, 100);
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let feed = query.feed_id.as_ref().map(|f| f.to_string());
        let state = query.state.map(|s| s.as_str().to_owned());
        self.db
            .read(move |c| {
                let (after_at, after_id) = after.unwrap_or_else(|| ("\u{10FFFF}".into(), String::new()));
                let mut stmt = c
                    .prepare_cached(
                        "SELECT created_at, conversion_id, status FROM conversions \
                         WHERE (?1 IS NULL OR feed_id = ?1) AND (?2 IS NULL OR state = ?2) \
                         AND (created_at < ?3 OR (created_at = ?3 AND conversion_id < ?4) OR ?4 = '') \
                         ORDER BY created_at DESC, conversion_id DESC LIMIT ?5",
                    )
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![feed, state, after_at, after_id, (limit + 1) as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                    })
                    .map_err(db)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                let more = rows.len() > limit;
                let rows = &rows[..rows.len().min(limit)];
                let next_cursor =
                    if more { rows.last().map(|(at, id, _)| encode_cursor(at, id)) } else { None };
                let conversions =
                    rows.iter().map(|(_, _, json)| decode(json)).collect::<Result<Vec<_>, _>>()?;
                Ok(ListPage { conversions, next_cursor })
            })
            .await
    }

    async fn clear(&self) -> Result<(), IndexError> {
        self.db.write(|tx| tx.execute("DELETE FROM conversions", []).map(|_| ()).map_err(db)).await
    }
}

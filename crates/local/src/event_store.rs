//! The event log in SQLite: the `EventStore` port of the embedded default.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use lector_core::store::MAX_EVENTS_PER_APPEND;
use lector_core::{
    AppendOutcome, EventId, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::watch;

use crate::db::{Db, DbError};

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        if e.is_busy() { StoreError::Unavailable(e.to_string()) } else { StoreError::Corrupt(e.to_string()) }
    }
}

/// The SQLite event store. Appends take SQLite's write lock, so positions are handed out in
/// commit order and a reader following positions never misses an event that commits later.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    db: Db,
    committed: watch::Sender<u64>,
}

/// A query of whole events, `$rest` after `FROM events`.
///
/// The parameters that a WHERE clause compares with the first column of an index, or that a
/// LIMIT takes, are written `+?N`: the bundled SQLite is built with `SQLITE_ENABLE_STAT4`, and
/// with it a statement whose plan may depend on such a parameter's value is prepared again
/// each time a value is bound, which cost a poll cycle more of its CPU than the queries
/// themselves (the unary `+` keeps the value out of planning, and the plan is the same index
/// search). `statements_are_prepared_once` checks it.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, occurred_at, \
             correlation_id, causation_id, data FROM events ",
            $rest
        )
    };
}

const STREAM_AFTER: &str = select_events!("WHERE stream_id = +?1 AND version > ?2 ORDER BY version");
const STREAM_RANGE: &str =
    select_events!("WHERE stream_id = +?1 AND version > ?2 AND version <= ?3 ORDER BY version");
const LOG_AFTER: &str = select_events!("WHERE position > ?1 ORDER BY position LIMIT +?2");
const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = +?1";

impl SqliteEventStore {
    pub fn new(db: Db) -> Self {
        let (committed, _) = watch::channel(0);
        Self { db, committed }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Notified with the last position after every append made through this handle, so that an
    /// outbox can wake at once instead of polling.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// The highest position in the log (0 when empty).
    pub async fn head(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| {
                c.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get::<_, i64>(0))
                    .map(|p| p as u64)
                    .map_err(|e| StoreError::from(DbError::from(e)))
            })
            .await
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one event".into()));
        }
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::Invalid(format!(
                "{} events in one append; at most {MAX_EVENTS_PER_APPEND}",
                events.len()
            )));
        }
        let rows = events.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let stream = stream.clone();
        let outcome = self
            .db
            .write(move |tx| -> Result<(AppendOutcome, u64), StoreError> {
                let current = stream_version(tx, &stream)?;
                if current != expected.0 {
                    return already_appended(tx, &stream, expected.0, current, &events).map(|o| (o, 0));
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
                         occurred_at, correlation_id, causation_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(db)?;
                for (i, (e, row)) in events.iter().zip(&rows).enumerate() {
                    insert
                        .execute(params![
                            stream.as_str(),
                            (current + 1 + i as u64) as i64,
                            e.event_id.0.to_string(),
                            e.event_type,
                            e.schema_version,
                            row.occurred_at,
                            e.correlation_id,
                            e.causation_id,
                            row.data,
                        ])
                        .map_err(db)?;
                }
                let last_position = tx.last_insert_rowid() as u64;
                let n = events.len() as u64;
                Ok((AppendOutcome::Appended { first_version: current + 1, last_version: current + n }, last_position))
            })
            .await?;
        if let (AppendOutcome::Appended { .. }, position) = outcome {
            self.committed.send_if_modified(|last| {
                let moved = position > *last;
                *last = (*last).max(position);
                moved
            });
        }
        Ok(outcome.0)
    }

    async fn read_stream(&self, stream: &StreamId, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream = stream.clone();
        self.db.read(move |c| query(c, STREAM_AFTER, params![stream.as_str(), after as i64])).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.db.read(move |c| events_after(c, after, limit)).await
    }
}

/// What [`wanted_after`] read.
pub(crate) struct Wanted {
    /// Rows read (at most the limit).
    pub rows: usize,
    /// The position of the last row read.
    pub last: Option<u64>,
    /// The events wanted, decoded, in log order.
    pub events: Vec<RecordedEvent>,
}

/// The events after `after` (at most `limit` rows read) that `wants` takes by stream and type;
/// the others are passed over without decoding them.
pub(crate) fn wanted_after(
    c: &Connection,
    after: u64,
    limit: usize,
    wants: &dyn Fn(&StreamId, &str) -> bool,
) -> Result<Wanted, StoreError> {
    let mut stmt = c.prepare_cached(LOG_AFTER).map_err(db)?;
    let mut rows = stmt.query(params![after as i64, limit.min(i64::MAX as usize) as i64]).map_err(db)?;
    let mut wanted = Wanted { rows: 0, last: None, events: Vec::new() };
    while let Some(row) = rows.next().map_err(db)? {
        wanted.rows += 1;
        wanted.last = Some(row.get::<_, i64>(0).map_err(db)? as u64);
        let stream = StreamId::new(row.get::<_, String>(1).map_err(db)?);
        let event_type = row.get_ref(4).map_err(db)?.as_str().map_err(|e| db(e.into()))?;
        if wants(&stream, event_type) {
            wanted.events.push(read_row(row).map_err(db)??);
        }
    }
    Ok(wanted)
}

/// The events after `position`, at most `limit` of them, in log order.
pub(crate) fn events_after(
    c: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let limit = limit.min(i64::MAX as usize) as i64;
    query(c, LOG_AFTER, params![after as i64, limit])
}

struct EncodedRow {
    occurred_at: String,
    data: String,
}

fn encode(e: &NewEvent) -> Result<EncodedRow, StoreError> {
    Ok(EncodedRow {
        occurred_at: e.occurred_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        data: serde_json::to_string(&e.data)
            .map_err(|err| StoreError::Invalid(format!("event data: {err}")))?,
    })
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::from(DbError::from(e))
}

fn stream_version(c: &Connection, stream: &StreamId) -> Result<u64, StoreError> {
    c.prepare_cached(STREAM_VERSION)
        .and_then(|mut st| st.query_row([stream.as_str()], |r| r.get::<_, i64>(0)))
        .map(|v| v as u64)
        .map_err(db)
}

/// The stream is not at `expected`: either these very events are already at
/// `expected + 1..`, or this is a conflict.
fn already_appended(
    c: &Connection,
    stream: &StreamId,
    expected: u64,
    current: u64,
    events: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let last = expected + events.len() as u64;
    if current >= last {
        let stored = query(c, STREAM_RANGE, params![stream.as_str(), expected as i64, last as i64])?;
        if stored.len() == events.len() && stored.iter().zip(events).all(|(s, n)| s.is_same_as(n)) {
            return Ok(AppendOutcome::AlreadyAppended { last_version: last });
        }
    }
    Err(StoreError::Conflict { stream: stream.clone(), expected, actual: current })
}

fn query(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = c.prepare_cached(sql).map_err(db)?;
    let rows = stmt.query_map(params, read_row).map_err(db)?;
    rows.map(|r| r.map_err(db).and_then(|r| r)).collect()
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<RecordedEvent, StoreError>> {
    let position: i64 = row.get(0)?;
    let stream_id: String = row.get(1)?;
    let version: i64 = row.get(2)?;
    let event_id: String = row.get(3)?;
    let event_type: String = row.get(4)?;
    let schema_version: u32 = row.get(5)?;
    let occurred_at: String = row.get(6)?;
    let correlation_id: String = row.get(7)?;
    let causation_id: Option<String> = row.get(8)?;
    let data: String = row.get(9)?;
    Ok((|| {
        let corrupt = |what: &str, err: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("event at position {position}: {what}: {err}"))
        };
        Ok(RecordedEvent {
            event_id: EventId(event_id.parse().map_err(|e| corrupt("event id", &e))?),
            stream_id: StreamId::new(stream_id),
            version: version as u64,
            position: position as u64,
            event_type,
            schema_version,
            occurred_at: DateTime::parse_from_rfc3339(&occurred_at)
                .map_err(|e| corrupt("occurred_at", &e))?
                .with_timezone(&Utc),
            correlation_id,
            causation_id,
            data: serde_json::from_str(&data).map_err(|e| corrupt("data", &e))?,
        })
    })())
}

/// The events of the dead-letter table and the cursors live beside the log; this reads one
/// subscriber's cursor (0 when it never ran).
pub(crate) fn cursor(c: &Connection, subscriber: &str) -> rusqlite::Result<u64> {
    c.prepare_cached("SELECT position FROM outbox_cursors WHERE subscriber = ?1")?
        .query_row([subscriber], |r| r.get::<_, i64>(0))
        .optional()
        .map(|p| p.unwrap_or(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    fn event(stream: &str, n: u64) -> NewEvent {
        NewEvent {
            event_id: EventId::derive(&[stream, &n.to_string()]),
            event_type: "Happened".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_760_000_000, 0).unwrap(),
            correlation_id: stream.into(),
            causation_id: None,
            data: serde_json::json!({ "n": n }),
        }
    }

    /// How many times each statement was prepared again, on the connection `c`.
    fn reprepared(c: &Connection, statements: &[&str]) -> Vec<(String, i32)> {
        statements
            .iter()
            .map(|sql| {
                (sql.to_string(), c.prepare_cached(sql).unwrap().get_status(StatementStatus::RePrepare))
            })
            .collect()
    }

    #[tokio::test]
    async fn statements_are_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::new(Db::open(dir.path().join("log.sqlite")).unwrap());
        let stream = StreamId::new("feed-a");
        for n in 0..4 {
            store.append(&stream, ExpectedVersion(n), vec![event("feed-a", n)]).await.unwrap();
            // A repeated append is recognised (the range query), not appended twice.
            store.append(&stream, ExpectedVersion(n), vec![event("feed-a", n)]).await.unwrap();
            assert_eq!(store.read_stream(&stream, n).await.unwrap().len(), 1);
            assert_eq!(store.read_all(n, 10).await.unwrap().len(), 1);
        }
        let written = store
            .db()
            .write(|tx| Ok::<_, DbError>(reprepared(tx, &[STREAM_VERSION, STREAM_RANGE])))
            .await
            .unwrap();
        let read =
            store.db().read(|c| Ok::<_, DbError>(reprepared(c, &[STREAM_AFTER, LOG_AFTER]))).await.unwrap();
        for (sql, times) in written.into_iter().chain(read) {
            assert_eq!(times, 0, "prepared again on each run: {sql}");
        }
    }
}

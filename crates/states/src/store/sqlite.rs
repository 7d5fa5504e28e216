//! An execution store in a SQLite file (WAL mode).
//!
//! Commits are grouped without a writer thread: a committer queues its batch, lets the other
//! ready tasks run once, and then, if no one holds the connection, becomes the leader and
//! commits everything queued in one transaction (each batch in its own savepoint), until the
//! queue is empty; the others are told when their batch is on disk. A lone execution pays no
//! thread hand-off per transition, and many executions share transactions.
//!
//! `synchronous=NORMAL` in WAL mode makes a commit survive the process being killed at any
//! point; only a power loss can take back the last commits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    Batch, CreateOutcome, ExecutionRecord, ExecutionStatus, ExecutionStore, FrameRecord, ListFilter,
    StoreError,
};
use crate::history::HistoryEvent;

type Ack = oneshot::Sender<Result<(), StoreError>>;

struct Shared {
    queue: Mutex<Vec<(Batch, Ack)>>,
    conn: Mutex<Db>,
}

/// The connection, and the row ids of executions by ARN (events and frames are keyed by
/// the small integer rather than the long ARN).
struct Db {
    conn: Connection,
    seqs: HashMap<String, i64>,
}

impl Db {
    fn seq(&mut self, arn: &str) -> Result<i64, StoreError> {
        if let Some(s) = self.seqs.get(arn) {
            return Ok(*s);
        }
        let s =
            seq_of(&self.conn, arn)?.ok_or_else(|| StoreError::Corrupt(format!("no execution '{arn}'")))?;
        self.seqs.insert(arn.to_string(), s);
        Ok(s)
    }
}

fn seq_of(conn: &Connection, arn: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq FROM executions WHERE arn = ?1")?
        .query_row(params![arn], |r| r.get(0))
        .optional()?)
}

/// A SQLite-backed [`ExecutionStore`].
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    state_machine TEXT NOT NULL,
    state_machine_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT,
    start_date TEXT NOT NULL,
    stop_date TEXT,
    redrive_count INTEGER NOT NULL DEFAULT 0,
    redrive_date TEXT,
    definition TEXT NOT NULL
);
DROP INDEX IF EXISTS executions_by_name;
CREATE UNIQUE INDEX IF NOT EXISTS executions_by_standard_name ON executions(state_machine, name)
    WHERE arn NOT LIKE '%:express:%';
CREATE INDEX IF NOT EXISTS executions_by_status ON executions(status);
CREATE TABLE IF NOT EXISTS events (
    execution INTEGER NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frames (
    execution INTEGER NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution, path)
) WITHOUT ROWID;
";

/// The most batches committed in one transaction.
const GROUP_LIMIT: usize = 512;

impl SqliteStore {
    /// Opens (or creates) the store file.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        super::wal::checkpoint_beside(&mut conn, &path, CHECKPOINT_PAGES)?;
        let db = Db { conn, seqs: HashMap::new() };
        let shared = Arc::new(Shared { queue: Mutex::new(Vec::new()), conn: Mutex::new(db) });
        Ok(SqliteStore { shared, path })
    }

    /// The file the store writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the connection leaves SQLite consistent (open transactions
        // roll back when dropped), so a poisoned lock is still usable.
        self.shared.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // Queued commits go first, so a read sees every batch handed over before it.
        self.lead();
        let r = f(&mut self.conn().conn);
        // Batches queued while this held the connection are committed now.
        self.lead();
        Box::pin(futures::future::ready(r))
    }

    /// Commits queued batches while there are some and no one else is committing them.
    fn lead(&self) {
        loop {
            let Ok(mut conn) = self.shared.conn.try_lock() else {
                // Another committer holds the connection; it re-checks the queue after
                // letting go of it, so our batch is not left behind.
                return;
            };
            loop {
                let pending: Vec<(Batch, Ack)> = {
                    let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
                    let n = q.len().min(GROUP_LIMIT);
                    q.drain(..n).collect()
                };
                if pending.is_empty() {
                    break;
                }
                flush(&mut conn, pending);
            }
            drop(conn);
            let more = !self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if !more {
                return;
            }
        }
    }
}

/// When the executions file's log is checkpointed (see [`super::wal`]).
const CHECKPOINT_PAGES: super::wal::CheckpointPages =
    super::wal::CheckpointPages { every: 4000, at_most: 16000 };

fn flush(db: &mut Db, commits: Vec<(Batch, Ack)>) {
    if commits.is_empty() {
        return;
    }
    let seqs: Vec<Result<i64, StoreError>> = commits.iter().map(|(b, _)| db.seq(&b.execution_arn)).collect();
    // All batches in one transaction; if any fails, each batch again in its own, so that one
    // bad batch fails alone.
    let together = (|| -> Result<(), StoreError> {
        let tx = db.conn.transaction()?;
        for ((batch, _), seq) in commits.iter().zip(&seqs) {
            apply(&tx, seq.clone()?, batch)?;
        }
        tx.commit()?;
        Ok(())
    })();
    if together.is_ok() {
        for (_, ack) in commits {
            let _ = ack.send(Ok(()));
        }
        return;
    }
    for ((batch, ack), seq) in commits.into_iter().zip(seqs) {
        let r = (|| -> Result<(), StoreError> {
            let tx = db.conn.transaction()?;
            apply(&tx, seq?, &batch)?;
            tx.commit()?;
            Ok(())
        })();
        let _ = ack.send(r);
    }
}

fn ts(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp '{s}': {e}")))
}

fn apply(conn: &Connection, seq: i64, b: &Batch) -> Result<(), StoreError> {
    if !b.events.is_empty() {
        let mut st = conn.prepare_cached("INSERT INTO events (execution, id, body) VALUES (?1, ?2, ?3)")?;
        for e in &b.events {
            let body =
                serde_json::to_string(&e.to_history()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            st.execute(params![seq, e.id as i64, body])?;
        }
    }
    for root in &b.delete_frames_under {
        let mut st = conn.prepare_cached(
            "DELETE FROM frames WHERE execution = ?1 AND (?2 = '' OR path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/')",
        )?;
        st.execute(params![seq, root])?;
    }
    if !b.put_frames.is_empty() {
        let mut st =
            conn.prepare_cached("INSERT OR REPLACE INTO frames (execution, path, body) VALUES (?1, ?2, ?3)")?;
        for f in &b.put_frames {
            let body = serde_json::to_string(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            st.execute(params![seq, &*f.path, body])?;
        }
    }
    if let Some(u) = &b.update {
        if let Some(s) = u.status {
            conn.prepare_cached("UPDATE executions SET status = ?2 WHERE arn = ?1")?
                .execute(params![b.execution_arn, s.as_str()])?;
        }
        if let Some(o) = &u.output {
            conn.prepare_cached("UPDATE executions SET output = ?2 WHERE arn = ?1")?
                .execute(params![b.execution_arn, o])?;
        }
        if let Some(e) = &u.error {
            conn.prepare_cached("UPDATE executions SET error = ?2 WHERE arn = ?1")?
                .execute(params![b.execution_arn, e])?;
        }
        if let Some(c) = &u.cause {
            conn.prepare_cached("UPDATE executions SET cause = ?2 WHERE arn = ?1")?
                .execute(params![b.execution_arn, c])?;
        }
        if let Some(d) = &u.stop_date {
            conn.prepare_cached("UPDATE executions SET stop_date = ?2 WHERE arn = ?1")?
                .execute(params![b.execution_arn, d.as_ref().map(ts)])?;
        }
        if let Some((n, d)) = &u.redrive {
            conn.prepare_cached(
                "UPDATE executions SET redrive_count = ?2, redrive_date = ?3 WHERE arn = ?1",
            )?
            .execute(params![b.execution_arn, *n as i64, ts(d)])?;
        }
    }
    Ok(())
}

const RECORD_COLUMNS: &str = "arn, name, state_machine, state_machine_arn, status, input, output, error, cause, \
                              start_date, stop_date, redrive_count, redrive_date, definition";

fn record_from_row(row: &rusqlite::Row<'_>) -> Result<Result<ExecutionRecord, StoreError>, rusqlite::Error> {
    let status: String = row.get(4)?;
    let start: String = row.get(9)?;
    let stop: Option<String> = row.get(10)?;
    let redrive_date: Option<String> = row.get(12)?;
    let record = (|| {
        Ok(ExecutionRecord {
            execution_arn: row.get(0)?,
            name: row.get(1)?,
            state_machine_name: row.get(2)?,
            state_machine_arn: row.get(3)?,
            status: ExecutionStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown status '{status}'")))?,
            input: row.get(5)?,
            output: row.get(6)?,
            error: row.get(7)?,
            cause: row.get(8)?,
            start_date: parse_ts(&start)?,
            stop_date: stop.as_deref().map(parse_ts).transpose()?,
            redrive_count: row.get::<_, i64>(11)? as u32,
            redrive_date: redrive_date.as_deref().map(parse_ts).transpose()?,
            definition: row.get(13)?,
        })
    })();
    Ok(record.map_err(|e: StoreError| e))
}

impl From<StoreError> for rusqlite::Error {
    fn from(e: StoreError) -> Self {
        rusqlite::Error::ToSqlConversionFailure(Box::new(e))
    }
}

fn load(conn: &Connection, arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM executions WHERE arn = ?1");
    conn.prepare_cached(&sql)?.query_row(params![arn], record_from_row).optional()?.transpose()
}

impl ExecutionStore for SqliteStore {
    fn create(
        &self,
        record: ExecutionRecord,
        first: Batch,
    ) -> BoxFuture<'static, Result<CreateOutcome, StoreError>> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if !super::is_express_arn(&record.execution_arn) {
                let sql = format!(
                    "SELECT {RECORD_COLUMNS} FROM executions WHERE state_machine = ?1 AND name = ?2 \
                     AND arn NOT LIKE '%:express:%'"
                );
                let existing = tx
                    .prepare_cached(&sql)?
                    .query_row(params![record.state_machine_name, record.name], record_from_row)
                    .optional()?
                    .transpose()?;
                if let Some(e) = existing {
                    return Ok(CreateOutcome::Existing(Box::new(e)));
                }
            }
            tx.prepare_cached(
                "INSERT INTO executions (arn, name, state_machine, state_machine_arn, status, input, output, error, cause, \
                 start_date, stop_date, redrive_count, redrive_date, definition) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                record.execution_arn,
                record.name,
                record.state_machine_name,
                record.state_machine_arn,
                record.status.as_str(),
                record.input,
                record.output,
                record.error,
                record.cause,
                ts(&record.start_date),
                record.stop_date.as_ref().map(ts),
                record.redrive_count as i64,
                record.redrive_date.as_ref().map(ts),
                record.definition,
            ])?;
            let seq = tx.last_insert_rowid();
            apply(&tx, seq, &first)?;
            tx.commit()?;
            Ok(CreateOutcome::Created)
        })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'static, Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner()).push((batch, tx));
        let store = self.clone();
        Box::pin(async move {
            // Let the other ready executions queue their transitions first, so that one
            // transaction carries them all.
            tokio::task::yield_now().await;
            store.lead();
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn execution(&self, arn: &str) -> BoxFuture<'static, Result<Option<ExecutionRecord>, StoreError>> {
        let arn = arn.to_string();
        self.run(move |conn| load(conn, &arn))
    }

    fn list(&self, filter: ListFilter) -> BoxFuture<'static, Result<Vec<ExecutionRecord>, StoreError>> {
        self.run(move |conn| {
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM executions WHERE (?1 IS NULL OR state_machine = ?1) \
                 AND (?2 IS NULL OR status = ?2) ORDER BY start_date DESC, rowid DESC"
            );
            let mut st = conn.prepare_cached(&sql)?;
            let rows = st.query_map(
                params![filter.state_machine_name, filter.status.map(|s| s.as_str())],
                record_from_row,
            )?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r??);
            }
            Ok(out)
        })
    }

    fn history(&self, arn: &str) -> BoxFuture<'static, Result<Vec<HistoryEvent>, StoreError>> {
        let arn = arn.to_string();
        self.run(move |conn| {
            let Some(seq) = seq_of(conn, &arn)? else { return Ok(Vec::new()) };
            let mut st = conn.prepare_cached("SELECT body FROM events WHERE execution = ?1 ORDER BY id")?;
            let rows = st.query_map(params![seq], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                let body = r?;
                out.push(
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("event: {e}")))?,
                );
            }
            Ok(out)
        })
    }

    fn frames(&self, arn: &str) -> BoxFuture<'static, Result<Vec<FrameRecord>, StoreError>> {
        let arn = arn.to_string();
        self.run(move |conn| {
            let Some(seq) = seq_of(conn, &arn)? else { return Ok(Vec::new()) };
            let mut st = conn.prepare_cached("SELECT body FROM frames WHERE execution = ?1 ORDER BY path")?;
            let rows = st.query_map(params![seq], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                let body = r?;
                out.push(
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("frame: {e}")))?,
                );
            }
            Ok(out)
        })
    }

    fn last_event_id(&self, arn: &str) -> BoxFuture<'static, Result<u64, StoreError>> {
        let arn = arn.to_string();
        self.run(move |conn| {
            let Some(seq) = seq_of(conn, &arn)? else { return Ok(0) };
            let id: Option<i64> = conn
                .prepare_cached("SELECT MAX(id) FROM events WHERE execution = ?1")?
                .query_row(params![seq], |r| r.get(0))?;
            Ok(id.unwrap_or(0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sqlite_store_keeps_the_store_contract() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("states.sqlite")).expect("opens");
        super::super::contract::behaves(&store).await;
    }

    #[tokio::test]
    async fn what_was_committed_is_there_after_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("states.sqlite");
        {
            let store = SqliteStore::open(&path).expect("opens");
            super::super::contract::behaves(&store).await;
        }
        let store = SqliteStore::open(&path).expect("reopens");
        let all = store.list(ListFilter::default()).await.expect("lists");
        assert_eq!(all.len(), 2);
        let mode: String = store
            .run(|c| Ok(c.pragma_query_value(None, "journal_mode", |r| r.get(0))?))
            .await
            .expect("reads the journal mode");
        assert_eq!(mode, "wal");
    }
}

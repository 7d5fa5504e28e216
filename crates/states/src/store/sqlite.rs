//! An execution store in a SQLite file (WAL mode). One writer thread owns the connection;
//! batches that arrive together are committed in one transaction (group commit), each in its
//! own savepoint, and every caller is told once its batch is on disk.
//!
//! `synchronous=NORMAL` in WAL mode makes a commit survive the process being killed at any
//! point; only a power loss can take back the last commits.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    Batch, CreateOutcome, ExecutionRecord, ExecutionStatus, ExecutionStore, FrameRecord, ListFilter,
    StoreError,
};
use crate::history::HistoryEvent;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Msg {
    Commit(Batch, oneshot::Sender<Result<(), StoreError>>),
    Run(Job),
}

/// A SQLite-backed [`ExecutionStore`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
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
CREATE UNIQUE INDEX IF NOT EXISTS executions_by_name ON executions(state_machine, name);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions(status);
CREATE TABLE IF NOT EXISTS events (
    execution TEXT NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frames (
    execution TEXT NOT NULL,
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
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        thread::Builder::new()
            .name("lector-states-sqlite".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| StoreError::Sqlite(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore { tx, path })
    }

    /// The file the store writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        let sent = self.tx.send(Msg::Run(job));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while pending.len() < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(m) => pending.push(m),
                Err(_) => break,
            }
        }
        let mut commits: Vec<(Batch, oneshot::Sender<Result<(), StoreError>>)> = Vec::new();
        for msg in pending {
            match msg {
                Msg::Commit(b, ack) => commits.push((b, ack)),
                Msg::Run(job) => {
                    flush(&mut conn, std::mem::take(&mut commits));
                    job(&mut conn);
                }
            }
        }
        flush(&mut conn, commits);
    }
}

fn flush(conn: &mut Connection, commits: Vec<(Batch, oneshot::Sender<Result<(), StoreError>>)>) {
    if commits.is_empty() {
        return;
    }
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(commits.len());
    let outcome = (|| -> Result<(), StoreError> {
        let mut tx = conn.transaction()?;
        for (batch, _) in &commits {
            let mut sp = tx.savepoint()?;
            match apply(&sp, batch) {
                Ok(()) => {
                    sp.commit()?;
                    results.push(Ok(()));
                }
                Err(e) => {
                    sp.rollback()?;
                    drop(sp);
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(())
    })();
    for (i, (_, ack)) in commits.into_iter().enumerate() {
        let r = match &outcome {
            Ok(()) => results.get(i).cloned().unwrap_or(Ok(())),
            Err(e) => Err(e.clone()),
        };
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

fn apply(conn: &Connection, b: &Batch) -> Result<(), StoreError> {
    if !b.events.is_empty() {
        let mut st = conn.prepare_cached("INSERT INTO events (execution, id, body) VALUES (?1, ?2, ?3)")?;
        for e in &b.events {
            let body = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            st.execute(params![b.execution_arn, e.id as i64, body])?;
        }
    }
    for root in &b.delete_frames_under {
        let mut st = conn.prepare_cached(
            "DELETE FROM frames WHERE execution = ?1 AND (?2 = '' OR path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/')",
        )?;
        st.execute(params![b.execution_arn, root])?;
    }
    if !b.put_frames.is_empty() {
        let mut st =
            conn.prepare_cached("INSERT OR REPLACE INTO frames (execution, path, body) VALUES (?1, ?2, ?3)")?;
        for f in &b.put_frames {
            let body = serde_json::to_string(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            st.execute(params![b.execution_arn, f.path, body])?;
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
            let sql = format!("SELECT {RECORD_COLUMNS} FROM executions WHERE state_machine = ?1 AND name = ?2");
            let existing = tx
                .prepare_cached(&sql)?
                .query_row(params![record.state_machine_name, record.name], record_from_row)
                .optional()?
                .transpose()?;
            if let Some(e) = existing {
                return Ok(CreateOutcome::Existing(Box::new(e)));
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
            apply(&tx, &first)?;
            tx.commit()?;
            Ok(CreateOutcome::Created)
        })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'static, Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(Msg::Commit(batch, tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
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
            let mut st = conn.prepare_cached("SELECT body FROM events WHERE execution = ?1 ORDER BY id")?;
            let rows = st.query_map(params![arn], |r| r.get::<_, String>(0))?;
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
            let mut st = conn.prepare_cached("SELECT body FROM frames WHERE execution = ?1 ORDER BY path")?;
            let rows = st.query_map(params![arn], |r| r.get::<_, String>(0))?;
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
            let id: Option<i64> = conn
                .prepare_cached("SELECT MAX(id) FROM events WHERE execution = ?1")?
                .query_row(params![arn], |r| r.get(0))?;
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

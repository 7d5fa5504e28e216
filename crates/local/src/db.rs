//! The local SQLite database: one file under the data folder, WAL mode, one writer connection
//! and a few readers. Reads run on the calling thread; writes are committed in groups by a blocking
//! task (see [`Db::write`]); the log is checkpointed into the file by a blocking task of its own,
//! never by a commit (see [`lector_states::store::wal`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lector_states::store::wal::{CheckpointPages, checkpoint_beside};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

/// Readers kept open for reuse; WAL lets them read while the writer writes.
const MAX_IDLE_READERS: usize = 8;

/// The schema, in order. A migration is never edited once released; a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: the event log. `position` is the global order (commit order: SQLite has one writer at a
    // time and AUTOINCREMENT never reuses a number); `(stream_id, version)` is unique, which is
    // what makes a conflicting append fail instead of overwriting.
    "CREATE TABLE events (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        stream_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        schema_version INTEGER NOT NULL,
        occurred_at TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        causation_id TEXT,
        data TEXT NOT NULL,
        UNIQUE (stream_id, version)
    );
    CREATE TABLE outbox_cursors (
        subscriber TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    );
    CREATE TABLE outbox_dead_letters (
        subscriber TEXT NOT NULL,
        position INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        error TEXT NOT NULL,
        failed_at TEXT NOT NULL,
        PRIMARY KEY (subscriber, position)
    );",
    // 2: the list projection. `created_at` is stored in one fixed RFC 3339 form (UTC, nanoseconds)
    // so that text order is time order.
    "CREATE TABLE conversions (
        conversion_id TEXT PRIMARY KEY,
        feed_id TEXT,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX conversions_by_time ON conversions (created_at DESC, conversion_id DESC);
    CREATE INDEX conversions_by_feed ON conversions (feed_id, created_at DESC, conversion_id DESC);",
    // 3: the list of subscriptions. `polled` is 1 for the states that are polled, so the due
    // feeds are one range of `feeds_due`; times are stored as the list's are.
    "CREATE TABLE feeds (
        feed_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        polled INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        next_poll_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        status TEXT NOT NULL
    );
    CREATE INDEX feeds_by_time ON feeds (created_at DESC, feed_id DESC);
    CREATE INDEX feeds_due ON feeds (polled, next_poll_at, feed_id);",
];

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

impl DbError {
    /// The same error, for each write of a group that it failed.
    fn again(&self) -> DbError {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                DbError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            other => DbError::Join(other.to_string()),
        }
    }

    /// Whether the error is the database being busy or locked, which a retry can get past.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// A handle on the database file; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    writes: Mutex<Queue>,
}

/// When the log is checkpointed into the file (see [`lector_states::store::wal`]): 1,000 pages
/// written is SQLite's own default.
const CHECKPOINT_PAGES: CheckpointPages = CheckpointPages { every: 1000, at_most: 8000 };

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Told whether the group's commit failed, once it is over.
type Done = Box<dyn FnOnce(Option<&DbError>) + Send>;
/// A queued write: run in the group's transaction (or told why there is none).
type Job = Box<dyn FnOnce(Result<&Transaction<'_>, &DbError>) -> Done + Send>;

/// The writes waiting for the next group, and whether a blocking task is committing groups.
#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    leading: bool,
}

/// The most writes committed in one transaction.
const GROUP_LIMIT: usize = 256;

impl Inner {
    /// Commit queued writes, a group at a time, until none is left.
    fn commit_queued(&self) {
        loop {
            let jobs: Vec<Job> = {
                let mut queue = self.writes.lock().unwrap_or_else(|p| p.into_inner());
                if queue.jobs.is_empty() {
                    queue.leading = false;
                    return;
                }
                let n = queue.jobs.len().min(GROUP_LIMIT);
                queue.jobs.drain(..n).collect()
            };
            let mut conn = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (done, committed): (Vec<Done>, Option<DbError>) =
                match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                    Ok(tx) => {
                        let done = jobs.into_iter().map(|job| job(Ok(&tx))).collect();
                        (done, tx.commit().err().map(DbError::from))
                    }
                    Err(e) => {
                        let e = DbError::from(e);
                        (jobs.into_iter().map(|job| job(Err(&e))).collect(), Some(e))
                    }
                };
            drop(conn);
            for done in done {
                done(committed.as_ref());
            }
        }
    }
}

/// Run one write of a group in a savepoint: its changes are kept only if it returns `Ok`.
fn in_savepoint<T, E: From<DbError>>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut st| st.execute([])).map_err(DbError::from);
    run("SAVEPOINT write")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
        .unwrap_or_else(|_| Err(E::from(DbError::Join("a database write panicked".into()))));
    if outcome.is_err() {
        run("ROLLBACK TO write")?;
    }
    run("RELEASE write")?;
    outcome
}

impl Db {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Open {
                path: path.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut writer = connect(&path, false)?;
        migrate(&mut writer)?;
        checkpoint_beside(&mut writer, &path, CHECKPOINT_PAGES)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                writes: Mutex::new(Queue::default()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` in an immediate (write-locking) transaction on the writer connection; what it
    /// wrote is committed when it returns `Ok`, and this returns once it is committed.
    ///
    /// Writes are committed in groups: `f` is queued, and one blocking task runs every queued
    /// closure in one transaction, each in a savepoint of its own (an `Err` or a panic rolls
    /// back that closure's writes alone), then commits them together. Concurrent writers (the
    /// polls of a cycle, the outbox's projections and cursors) share one transaction and one
    /// hand-off to a blocking thread, in the order they were queued.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (send, receive) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx| {
            let outcome = match tx {
                Ok(tx) => in_savepoint(tx, f),
                Err(e) => Err(E::from(e.again())),
            };
            Box::new(move |committed| {
                let result = match (committed, outcome) {
                    (Some(e), Ok(_)) => Err(E::from(e.again())),
                    (_, outcome) => outcome,
                };
                let _ = send.send(result);
            })
        });
        let lead = {
            let mut queue = self.inner.writes.lock().unwrap_or_else(|p| p.into_inner());
            queue.jobs.push(job);
            !std::mem::replace(&mut queue.leading, true)
        };
        if lead {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.commit_queued());
        }
        receive.await.map_err(|_| E::from(DbError::Join("the database writer stopped".into())))?
    }

    /// Run `f` on a reader connection (a consistent snapshot for the length of a transaction
    /// that `f` may open), on the calling thread. A reader in WAL mode never waits for the
    /// writer, and the reads made here take a few indexed rows, tens of microseconds: less
    /// than handing them to a blocking thread and waking the caller again, which cost a poll
    /// cycle more CPU than its queries (BENCHMARKS.md, "Polling").
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = &self.inner;
        let idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => connect(&inner.path, true)?,
        };
        let result = f(&mut conn);
        let mut readers = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        result
    }
}

fn connect(path: &Path, read_only: bool) -> Result<Connection, DbError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|source| DbError::Open { path: path.to_path_buf(), source })?;
    // Another process (a CLI command beside `lector serve`) may hold the write lock briefly.
    conn.busy_timeout(Duration::from_secs(10))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with NORMAL survives a crash of the process (the case that matters here); only a
        // power loss can drop the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Each write of a group runs in a savepoint, whose journal of the pages it changed
        // would go to a temporary file past 64 KiB: a group of polls wrote it at every commit.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_twice_keeps_the_schema_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/lector.sqlite");
        let db = Db::open(&path).unwrap();
        db.write(|tx| tx.execute("INSERT INTO outbox_cursors VALUES ('x', 3)", []).map_err(DbError::from))
            .await
            .unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        let position: i64 = db
            .read(|c| {
                c.query_row("SELECT position FROM outbox_cursors", [], |r| r.get(0)).map_err(DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(position, 3);
    }

    /// The first column of every row `sql` selects.
    async fn column<T: rusqlite::types::FromSql + Send + 'static>(db: &Db, sql: &'static str) -> Vec<T> {
        db.read(move |c| {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<T>, _>>()?;
            Ok::<_, DbError>(rows)
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_together_and_a_failing_one_alone_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("lector.sqlite")).unwrap();
        let writes = (0..50i64).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    tx.execute(
                        "INSERT INTO outbox_cursors VALUES (?1, ?2)",
                        rusqlite::params![format!("s{i}"), i],
                    )?;
                    if i % 10 == 3 {
                        // Wrote, then failed: what it wrote must not stay.
                        return Err(DbError::Join(format!("write {i} refused")));
                    }
                    Ok(i)
                })
                .await
            })
        });
        let mut outcomes: Vec<Result<i64, DbError>> = Vec::new();
        for write in writes.collect::<Vec<_>>() {
            outcomes.push(write.await.unwrap());
        }
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Ok(v) => assert_eq!(*v, i as i64),
                Err(e) => assert!(i % 10 == 3 && e.to_string().contains("refused"), "{i}: {e}"),
            }
        }
        let stored: Vec<i64> = column(&db, "SELECT position FROM outbox_cursors ORDER BY position").await;
        let expected: Vec<i64> = (0..50).filter(|i| i % 10 != 3).collect();
        assert_eq!(stored, expected);
    }

    /// Commits leave the checkpoint to a task of their own, which copies the log into the file;
    /// under writes that never pause the log stays bounded all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_beside_the_commits_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lector.sqlite");
        let db = Db::open(&path).unwrap();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        // 96 writes of 512 KiB without a pause: 12,000 pages or so, 12 times the threshold.
        for i in 0..96i64 {
            db.write(move |tx| {
                tx.execute(
                    "INSERT INTO outbox_dead_letters VALUES ('s', ?1, 'e', hex(randomblob(262144)), 'now')",
                    rusqlite::params![i],
                )
                .map_err(DbError::from)
            })
            .await
            .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size(&path) < 40 << 20 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(size(&path) >= 40 << 20, "the file holds what was written: {} bytes", size(&path));
        let wal = size(&dir.path().join("lector.sqlite-wal"));
        // A few writes past the size at which a commit copies it (one busy beside it waits a commit).
        let bound = (CHECKPOINT_PAGES.at_most as u64 + 2000) * 4120;
        assert!(wal <= bound, "the log ({wal} bytes) started over rather than holding all 48 MiB");
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("lector.sqlite")).unwrap();
        let panicked = db
            .write(|tx| -> Result<(), DbError> {
                tx.execute("INSERT INTO outbox_cursors VALUES ('lost', 1)", [])?;
                panic!("a bug in a write");
            })
            .await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        db.write(|tx| tx.execute("INSERT INTO outbox_cursors VALUES ('kept', 2)", []).map_err(DbError::from))
            .await
            .unwrap();
        let names: Vec<String> = column(&db, "SELECT subscriber FROM outbox_cursors").await;
        assert_eq!(names, vec!["kept".to_owned()]);
    }
}

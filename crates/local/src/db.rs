//! The local SQLite database: one file under the data folder, WAL mode, one writer connection
//! and a few readers, used from async code through `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

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

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
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
        Ok(Self {
            inner: Arc::new(Inner { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` in one immediate (write-locking) transaction on the writer connection,
    /// committing when it returns `Ok`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
        .map_err(|e| E::from(DbError::Join(e.to_string())))?
    }

    /// Run `f` on a reader connection (a consistent snapshot for the length of a transaction
    /// that `f` may open).
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
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
        })
        .await
        .map_err(|e| E::from(DbError::Join(e.to_string())))?
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
}

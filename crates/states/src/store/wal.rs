//! Checkpoints of a SQLite write-ahead log made beside the commits rather than by them; used by
//! the engine's [`SqliteStore`](super::SqliteStore) and by Lector's event log database.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the log past its size: that
//! commit waits for the pages to be copied and the file synced (18 ms for the event log in the
//! poll cycle of BENCHMARKS.md, 150 ms for the executions file at 10,000 pages), and every write
//! queued behind it waits too; while readers keep the log from starting over, it runs again at
//! every commit. [`checkpoint_beside`] replaces it with a WAL hook that starts a passive
//! checkpoint on a blocking task, on a connection of its own, once enough pages were written
//! since the last one: it copies what no reader still needs without taking the write lock, and a
//! later commit that finds no reader in the log starts it over.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// When the log is checkpointed, in pages.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPages {
    /// Pages written since the last checkpoint past which one is started beside the commits.
    pub every: i32,
    /// The log's size past which a commit checkpoints it itself: under writes that never pause,
    /// a checkpoint beside them never copies the whole log, which would otherwise grow.
    pub at_most: i32,
}

/// Installs the hook on `writer`, the connection that commits to the database at `path`.
pub fn checkpoint_beside(
    writer: &mut Connection,
    path: &Path,
    pages: CheckpointPages,
) -> rusqlite::Result<()> {
    let shared = Arc::new(Shared {
        path: path.to_path_buf(),
        copied: AtomicI32::new(0),
        running: AtomicBool::new(false),
        conn: Mutex::new(None),
    });
    writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, in_log: std::ffi::c_int| {
        // Never an error: the commit is made, and a failed or busy checkpoint is left to the next.
        if in_log >= pages.at_most {
            // A checkpoint beside may be running (it holds its connection): this one waits for
            // it, or it would be refused as busy and the log would grow for as long as that one
            // takes (its sync of the file, on a busy machine, as long as a few thousand pages).
            let _beside = shared.conn.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok((_, copied)) = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE) {
                shared.copied.store(copied.max(0), Ordering::Release);
            }
            return Ok(());
        }
        let copied = shared.copied.load(Ordering::Acquire);
        // Fewer pages than were copied: the log started over since.
        let written = if in_log < copied { in_log } else { in_log - copied };
        if written < pages.every || shared.running.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let shared = shared.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || shared.checkpoint())),
            Err(_) => shared.checkpoint(),
        }
        Ok(())
    }))
}

struct Shared {
    path: PathBuf,
    /// The log's frames copied by the last checkpoint.
    copied: AtomicI32,
    /// Whether a checkpoint is running or about to.
    running: AtomicBool,
    /// The checkpoints' connection, opened at the first one.
    conn: Mutex<Option<Connection>>,
}

impl Shared {
    fn checkpoint(&self) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            *conn = Connection::open(&self.path)
                .map_err(|e| tracing::warn!(error = %e, path = %self.path.display(), "no WAL checkpoint"))
                .ok();
        }
        if let Some(c) = conn.as_ref() {
            match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i32>(2)) {
                Ok(copied) => self.copied.store(copied.max(0), Ordering::Release),
                // The log grows until the next one succeeds; nothing is lost.
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.path.display(), "the WAL checkpoint failed")
                }
            }
        }
        self.running.store(false, Ordering::Release);
    }
}

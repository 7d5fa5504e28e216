//! The local data folder: where the embedded default keeps its log, executions and objects.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lector_local::db::Db;
use lector_local::event_store::SqliteEventStore;
use lector_local::objects::FolderObjectStore;

/// The `--data` option every command that reads or writes local state takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The data folder (created when needed).
    #[arg(long = "data", env = "LECTOR_DATA", default_value = ".lector", value_name = "DIR")]
    pub dir: PathBuf,
}

/// The opened data folder.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
    pub db: Db,
    pub events: SqliteEventStore,
    pub objects: FolderObjectStore,
}

impl DataDir {
    pub const DATABASE: &'static str = "lector.sqlite";
    pub const EXECUTIONS: &'static str = "executions.sqlite";
    pub const OBJECTS: &'static str = "objects";

    /// Open the folder, creating it and its database when missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the data folder {}", root.display()))?;
        let db = Db::open(root.join(Self::DATABASE))
            .with_context(|| format!("opening the event log in {}", root.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            events: SqliteEventStore::new(db.clone()),
            db,
            objects: FolderObjectStore::new(root.join(Self::OBJECTS)),
        })
    }

    /// Open a folder that must already hold a log (for commands that only read).
    pub fn open_existing(root: &Path) -> anyhow::Result<Self> {
        if !root.join(Self::DATABASE).exists() {
            anyhow::bail!(
                "no Lector data in {} (run `lector serve` or `lector convert` first, or pass --data DIR)",
                root.display()
            );
        }
        Self::open(root)
    }

    pub fn executions_path(&self) -> PathBuf {
        self.root.join(Self::EXECUTIONS)
    }
}

/// A multi-threaded runtime for commands that do async work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

//! The event store contract on SQLite.

use std::sync::Arc;

use lector_core::EventStore;
use lector_local::db::Db;
use lector_local::event_store::SqliteEventStore;

async fn fresh_store() -> Arc<dyn EventStore> {
    // The folder must outlive the store; the test process ends soon after, and the OS's temp
    // cleaning takes the rest.
    let dir = tempfile::tempdir().expect("a temporary folder").keep();
    Arc::new(SqliteEventStore::new(Db::open(dir.join("lector.sqlite")).expect("the database opens")))
}

lector_testkit::event_store_contract!(fresh_store);

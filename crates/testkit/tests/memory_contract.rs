//! The in-memory double honours the same contract as the real stores.

use std::sync::Arc;

use lector_core::EventStore;
use lector_testkit::memory::MemoryEventStore;

async fn fresh_store() -> Arc<dyn EventStore> {
    Arc::new(MemoryEventStore::new())
}

lector_testkit::event_store_contract!(fresh_store);

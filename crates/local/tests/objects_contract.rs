//! The object store contract on the folder store.

use std::sync::Arc;

use lector_core::ports::ObjectStore;
use lector_local::objects::FolderObjectStore;

async fn fresh_store() -> Arc<dyn ObjectStore> {
    Arc::new(FolderObjectStore::new(tempfile::tempdir().expect("a temporary folder").keep()))
}

lector_testkit::object_store_contract!(fresh_store);

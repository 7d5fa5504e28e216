//! The in-memory index honours the same contract as the stored ones.

use std::sync::Arc;

use lector_core::index::{ConversionIndex, MemoryIndex};

async fn fresh_index() -> Arc<dyn ConversionIndex> {
    Arc::new(MemoryIndex::new())
}

lector_testkit::conversion_index_contract!(fresh_index);

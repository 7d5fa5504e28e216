//! The feed index contract on the in-memory index that `lector projections check` folds into.

use std::sync::Arc;

use lector_core::feed::index::{FeedIndex, MemoryFeedIndex};

async fn fresh_index() -> Arc<dyn FeedIndex> {
    Arc::new(MemoryFeedIndex::default())
}

lector_testkit::feed_index_contract!(fresh_index);

//! The feed index contract on SQLite.

use std::sync::Arc;

use lector_core::feed::index::FeedIndex;
use lector_local::db::Db;
use lector_local::feed_index::SqliteFeedIndex;

async fn fresh_index() -> Arc<dyn FeedIndex> {
    let dir = tempfile::tempdir().expect("a temporary folder").keep();
    Arc::new(SqliteFeedIndex::new(Db::open(dir.join("lector.sqlite")).expect("the database opens")))
}

lector_testkit::feed_index_contract!(fresh_index);

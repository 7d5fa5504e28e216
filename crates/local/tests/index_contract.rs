//! The conversion index contract on SQLite.

use std::sync::Arc;

use lector_core::index::ConversionIndex;
use lector_local::db::Db;
use lector_local::index::SqliteConversionIndex;

async fn fresh_index() -> Arc<dyn ConversionIndex> {
    let dir = tempfile::tempdir().expect("a temporary folder").keep();
    Arc::new(SqliteConversionIndex::new(Db::open(dir.join("lector.sqlite")).expect("the database opens")))
}

lector_testkit::conversion_index_contract!(fresh_index);

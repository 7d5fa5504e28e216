//! The conversion index contract on DynamoDB Local, each case on a fresh list table, plus what
//! only the DynamoDB layout has to get right.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use lector_aws::index::{self, DynamoConversionIndex};
use lector_core::ConversionState;
use lector_core::index::{ConversionIndex, ListQuery, list_all};
use lector_testkit::contract::index::status;
use lector_testkit::services::{dynamodb_config, unique_name};

async fn fresh_table() -> (Client, String) {
    let client = Client::new(&dynamodb_config().await);
    let table = unique_name("conversions");
    index::create_table(&client, &table).await.expect("the list table is created");
    (client, table)
}

async fn fresh_index() -> Arc<dyn ConversionIndex> {
    let (client, table) = fresh_table().await;
    Arc::new(DynamoConversionIndex::new(client, table))
}

lector_testkit::conversion_index_contract!(fresh_index);

#[tokio::test]
async fn a_status_moves_between_state_lists_as_it_changes() {
    let index = fresh_index().await;
    let requested = status(1, 0, Some("a.example"), ConversionState::Requested, 1);
    index.put(&requested).await.unwrap();
    let completed = status(1, 0, Some("a.example"), ConversionState::Completed, 9);
    index.put(&completed).await.unwrap();
    let by_state = |state| ListQuery { state: Some(state), limit: 10, ..ListQuery::default() };
    assert!(index.list(&by_state(ConversionState::Requested)).await.unwrap().conversions.is_empty());
    let done = index.list(&by_state(ConversionState::Completed)).await.unwrap().conversions;
    assert_eq!(done, [completed]);
}

#[tokio::test]
async fn a_filtered_page_reads_past_the_conversions_the_filter_drops() {
    // 30 conversions of one feed, one in ten completed: a page of three completed ones has to
    // read most of the feed's partition, page after page.
    let index = fresh_index().await;
    for n in 0..30 {
        let state = if n % 10 == 0 { ConversionState::Completed } else { ConversionState::Processing };
        index.put(&status(n, i64::from(n), Some("busy.example"), state, 3)).await.unwrap();
    }
    let feed = index.list(&ListQuery { limit: 1, ..ListQuery::default() }).await.unwrap().conversions[0]
        .feed_id
        .clone();
    let page = index
        .list(&ListQuery { feed_id: feed, state: Some(ConversionState::Completed), limit: 3, cursor: None })
        .await
        .unwrap();
    let titles: Vec<_> = page.conversions.iter().filter_map(|s| s.title.clone()).collect();
    assert_eq!(titles, ["Post 20", "Post 10", "Post 0"]);
    assert!(page.next_cursor.is_none(), "nothing more matches");
}

#[tokio::test]
async fn clearing_pages_through_more_than_one_batch() {
    let index = fresh_index().await;
    for n in 0..60 {
        index.put(&status(n, 0, None, ConversionState::Requested, 1)).await.unwrap();
    }
    assert_eq!(list_all(&*index).await.unwrap().len(), 60);
    index.clear().await.unwrap();
    assert!(list_all(&*index).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_table_is_a_named_failure() {
    let client = Client::new(&dynamodb_config().await);
    let missing = unique_name("missing");
    let index = DynamoConversionIndex::new(client, &missing);
    let err = index.list(&ListQuery { limit: 5, ..ListQuery::default() }).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "the table is named: {err}");
}

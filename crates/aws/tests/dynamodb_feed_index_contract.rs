//! The feed index contract on DynamoDB Local, each case on a fresh feed table, plus what only
//! the DynamoDB layout has to get right: key-only indexes read back through batches, the sparse
//! due index, clearing in batches, a missing table named.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use lector_aws::feed_index::{self, BY_DUE, DynamoFeedIndex};
use lector_core::feed::FeedState;
use lector_core::feed::index::{FeedIndex, FeedQuery, list_all_feeds};
use lector_testkit::contract::feed_index::feed;
use lector_testkit::services::{dynamodb_config, unique_name};

async fn fresh_table() -> (Client, String) {
    let client = Client::new(&dynamodb_config().await);
    let table = unique_name("feeds");
    feed_index::create_table(&client, &table).await.expect("the feed table is created");
    (client, table)
}

async fn fresh_index() -> Arc<dyn FeedIndex> {
    let (client, table) = fresh_table().await;
    Arc::new(DynamoFeedIndex::new(client, table))
}

lector_testkit::feed_index_contract!(fresh_index);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000 + seconds, 0).unwrap()
}

#[tokio::test]
async fn more_due_feeds_than_one_batch_get_reads_come_back_in_due_order() {
    // 250 due feeds: the due index gives their keys, three BatchGetItem calls their statuses,
    // which come back in any order and are put back in the index's.
    let index = fresh_index().await;
    for n in 0..250 {
        index.put(&feed(n, 0, i64::from(250 - n), FeedState::Active, 1)).await.unwrap();
    }
    let due = index.due(at(1_000), 240).await.unwrap();
    assert_eq!(due.len(), 240);
    assert!(due.windows(2).all(|w| w[0].next_poll_at < w[1].next_poll_at), "soonest first");
    assert_eq!(due[0].title.as_deref(), Some("Blog 249"));
}

#[tokio::test]
async fn only_polled_feeds_are_in_the_due_index() {
    let (client, table) = fresh_table().await;
    let index = DynamoFeedIndex::new(client.clone(), &table);
    let paused = feed(1, 0, 0, FeedState::Paused, 1);
    index.put(&feed(2, 0, 0, FeedState::Failing, 1)).await.unwrap();
    index.put(&paused).await.unwrap();
    let in_due_index = || async {
        let out = client
            .query()
            .table_name(&table)
            .index_name(BY_DUE)
            .key_condition_expression("polled = :p")
            .expression_attribute_values(":p", AttributeValue::S(feed_index::POLLED.into()))
            .send()
            .await
            .expect("the due index is queried");
        out.items().iter().filter_map(|i| i.get("feed_id")?.as_s().ok().cloned()).collect::<Vec<_>>()
    };
    assert_eq!(in_due_index().await.len(), 1, "the paused feed is not in the due index");
    // Resumed: in the due index again; and the index holds keys, not statuses.
    index.put(&feed(1, 0, 0, FeedState::Active, 2)).await.unwrap();
    let ids = in_due_index().await;
    assert!(ids.contains(&paused.feed_id.to_string()), "{ids:?}");
    let projected = client
        .query()
        .table_name(&table)
        .index_name(BY_DUE)
        .key_condition_expression("polled = :p")
        .expression_attribute_values(":p", AttributeValue::S(feed_index::POLLED.into()))
        .send()
        .await
        .unwrap();
    assert!(projected.items().iter().all(|i| !i.contains_key("status")), "keys only");
}

#[tokio::test]
async fn a_page_of_a_state_and_its_cursor_are_the_index_order() {
    let index = fresh_index().await;
    for n in 0..7 {
        index.put(&feed(n, i64::from(n), 0, FeedState::Failing, 1)).await.unwrap();
    }
    let first =
        index.list(&FeedQuery { state: Some(FeedState::Failing), limit: 3, cursor: None }).await.unwrap();
    let titles: Vec<_> = first.feeds.iter().filter_map(|f| f.title.clone()).collect();
    assert_eq!(titles, ["Blog 6", "Blog 5", "Blog 4"]);
    let cursor = first.next_cursor.expect("more follow");
    assert!(!cursor.contains('|'), "the cursor is opaque: {cursor}");
    let second = index
        .list(&FeedQuery { state: Some(FeedState::Failing), limit: 3, cursor: Some(cursor) })
        .await
        .unwrap();
    let titles: Vec<_> = second.feeds.iter().filter_map(|f| f.title.clone()).collect();
    assert_eq!(titles, ["Blog 3", "Blog 2", "Blog 1"]);
}

#[tokio::test]
async fn clearing_pages_through_more_than_one_batch() {
    let index = fresh_index().await;
    for n in 0..60 {
        index.put(&feed(n, 0, 0, FeedState::Active, 1)).await.unwrap();
    }
    assert_eq!(list_all_feeds(&*index).await.unwrap().len(), 60);
    index.clear().await.unwrap();
    assert!(list_all_feeds(&*index).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_table_is_a_named_failure() {
    let client = Client::new(&dynamodb_config().await);
    let missing = unique_name("missing");
    let index = DynamoFeedIndex::new(client, &missing);
    let err = index.due(at(0), 5).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "the table is named: {err}");
    let err = index.list(&FeedQuery { limit: 5, ..FeedQuery::default() }).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "the table is named: {err}");
}

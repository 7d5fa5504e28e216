//! The event store contract on DynamoDB Local, each case on a fresh table, plus the cases only
//! the DynamoDB layout has.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lector_aws::DynamoEventStore;
use lector_aws::event_store::{self, BUCKET_SIZE, recorded_from_image, recorded_from_item};
use lector_core::store::MAX_EVENTS_PER_APPEND;
use lector_core::{AppendOutcome, EventStore, ExpectedVersion, StoreError, StreamId};
use lector_testkit::contract::{event, write_concurrently};
use lector_testkit::services::{dynamodb_config, unique_name};
use serde_json::json;

async fn client() -> Client {
    Client::new(&dynamodb_config().await)
}

async fn fresh_table() -> (Client, String) {
    let client = client().await;
    let table = unique_name("events");
    event_store::create_table(&client, &table).await.expect("the table is created");
    (client, table)
}

async fn fresh_store() -> Arc<dyn EventStore> {
    let (client, table) = fresh_table().await;
    Arc::new(DynamoEventStore::new(client, table))
}

lector_testkit::event_store_contract!(fresh_store);

async fn raw_items(client: &Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client.scan().table_name(table).set_exclusive_start_key(start.take()).send().await.unwrap();
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return items,
        }
    }
}

#[tokio::test]
async fn a_full_append_at_a_later_version_checks_the_expected_version_outside_the_transaction() {
    let (client, table) = fresh_table().await;
    let store = DynamoEventStore::new(client, table);
    let s = StreamId::new("full");
    store.append(&s, ExpectedVersion(0), vec![event("full-0", json!(0))]).await.unwrap();
    let most = |tag: &str| -> Vec<_> {
        (0..MAX_EVENTS_PER_APPEND).map(|i| event(&format!("full-{tag}-{i}"), json!(i))).collect()
    };
    // 99 events + the check + the counter would be 101 items.
    let err = store.append(&s, ExpectedVersion(5), most("gap")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 5, actual: 1, .. }), "got {err}");
    let outcome = store.append(&s, ExpectedVersion(1), most("ok")).await.unwrap();
    assert_eq!(outcome, AppendOutcome::Appended { first_version: 2, last_version: 100 });
    let retried = store.append(&s, ExpectedVersion(1), most("ok")).await.unwrap();
    assert_eq!(retried, AppendOutcome::AlreadyAppended { last_version: 100 });
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), 100);
    assert_eq!(read.last().map(|e| e.position), Some(100));
}

#[tokio::test]
async fn positions_are_dense_across_streams_and_writers_sharing_a_table() {
    let (client, table) = fresh_table().await;
    // Two store values on one table, as two Lambdas would be: each learns the counter from
    // the other's writes.
    let a = DynamoEventStore::new(client.clone(), table.clone());
    let b = DynamoEventStore::new(client, table);
    for i in 0..5u64 {
        a.append(&StreamId::new("a"), ExpectedVersion(i), vec![event(&format!("a{i}"), json!(i))])
            .await
            .unwrap();
        b.append(&StreamId::new("b"), ExpectedVersion(i), vec![event(&format!("b{i}"), json!(i))])
            .await
            .unwrap();
    }
    let all = a.read_all(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    let streams: Vec<&str> = all.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"]);
    assert_eq!(b.read_all(7, 100).await.unwrap().len(), 3);
    assert!(b.read_all(10, 100).await.unwrap().is_empty());
    assert!(b.read_all(0, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn read_all_crosses_position_buckets() {
    let (client, table) = fresh_table().await;
    // Put the counter just below a bucket boundary, as a long-lived table would have it.
    client
        .put_item()
        .table_name(&table)
        .item("stream_id", AttributeValue::S("$position".into()))
        .item("version", AttributeValue::N("0".into()))
        .item("position", AttributeValue::N((BUCKET_SIZE - 3).to_string()))
        .send()
        .await
        .unwrap();
    let store = DynamoEventStore::new(client, table);
    let s = StreamId::new("edge");
    let events: Vec<_> = (0..6).map(|i| event(&format!("edge{i}"), json!(i))).collect();
    store.append(&s, ExpectedVersion(0), events).await.unwrap();
    let page = store.read_all(BUCKET_SIZE - 3, 100).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        (BUCKET_SIZE - 2..=BUCKET_SIZE + 3).collect::<Vec<_>>()
    );
    let tail = store.read_all(BUCKET_SIZE, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.position).collect::<Vec<_>>(), [BUCKET_SIZE + 1, BUCKET_SIZE + 2]);
}

#[tokio::test]
async fn an_event_over_the_item_limit_is_invalid_and_writes_nothing() {
    let (client, table) = fresh_table().await;
    let store = DynamoEventStore::new(client, table);
    let s = StreamId::new("huge");
    let huge = event("huge", json!({"pad": "x".repeat(500_000)}));
    let err = store.append(&s, ExpectedVersion(0), vec![huge]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "got {err}");
    assert!(store.read_stream(&s, 0).await.unwrap().is_empty());
    // The counter did not move either: the next event takes position 1.
    store.append(&s, ExpectedVersion(0), vec![event("small", json!(1))]).await.unwrap();
    assert_eq!(store.read_all(0, 10).await.unwrap()[0].position, 1);
}

#[tokio::test]
async fn reserved_stream_names_are_refused() {
    let (client, table) = fresh_table().await;
    let store = DynamoEventStore::new(client, table);
    let err = store.append(&StreamId::new("$position"), ExpectedVersion(0), vec![event("r", json!(1))]).await;
    assert!(matches!(err, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn a_missing_table_is_a_named_failure() {
    let store = DynamoEventStore::new(client().await, unique_name("missing"));
    let err = store.read_stream(&StreamId::new("x"), 0).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "the table is named: {err}");
    let err = store.append(&StreamId::new("x"), ExpectedVersion(0), vec![event("m", json!(1))]).await;
    assert!(err.is_err());
}

#[tokio::test]
async fn stored_items_read_back_through_the_stream_image_form() {
    let (client, table) = fresh_table().await;
    let store = DynamoEventStore::new(client.clone(), table.clone());
    let s = StreamId::new("conversion-0123456789abcdef0123");
    let e = event("image", json!({"text": "Grüße", "n": 12.5}));
    store.append(&s, ExpectedVersion(0), vec![e.clone()]).await.unwrap();
    let items = raw_items(&client, &table).await;
    assert_eq!(items.len(), 2, "the event and the counter");
    let mut decoded = Vec::new();
    for item in items {
        // The Lambda event carries the image as DynamoDB JSON; go through that form.
        let image: serde_dynamo::Item = serde_dynamo::Item::from(item.clone());
        let json = serde_json::to_string(&image).unwrap();
        let image: serde_dynamo::Item = serde_json::from_str(&json).unwrap();
        if let Some(recorded) = recorded_from_image(&image).unwrap() {
            assert_eq!(recorded, recorded_from_item(item).unwrap());
            decoded.push(recorded);
        }
    }
    assert_eq!(decoded.len(), 1);
    assert!(decoded[0].is_same_as(&e));
    assert_eq!(decoded[0], store.read_stream(&s, 0).await.unwrap()[0]);
}

/// Store values that share nothing but the table, as separate Lambdas do: their conflicts can
/// only be caught by DynamoDB's conditions.
async fn separate_stores(count: usize) -> Vec<Arc<DynamoEventStore>> {
    let (client, table) = fresh_table().await;
    (0..count).map(|_| Arc::new(DynamoEventStore::new(client.clone(), table.clone()))).collect()
}

#[tokio::test]
async fn writers_that_share_only_the_table_conflict_through_its_conditions() {
    let stores = separate_stores(2).await;
    let (a, b) = (&stores[0], &stores[1]);
    let s = StreamId::new("shared");
    let first = vec![event("a1", json!(1)), event("a2", json!(2))];
    a.append(&s, ExpectedVersion(0), first.clone()).await.unwrap();

    let err = b.append(&s, ExpectedVersion(0), vec![event("b1", json!("b"))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 0, actual: 2, .. }), "got {err}");
    let retried = b.append(&s, ExpectedVersion(0), first).await.unwrap();
    assert_eq!(retried, AppendOutcome::AlreadyAppended { last_version: 2 });
    b.append(&s, ExpectedVersion(2), vec![event("b3", json!(3))]).await.unwrap();

    // `a` last saw version 2; the table knows better.
    let err = a.append(&s, ExpectedVersion(2), vec![event("a3", json!("late"))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 2, actual: 3, .. }), "got {err}");
    let err = a.append(&s, ExpectedVersion(9), vec![event("a9", json!(9))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 9, actual: 3, .. }), "got {err}");
    let read = a.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), [json!(1), json!(2), json!(3)]);
    assert_eq!(read.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_that_share_only_the_table_lose_nothing() {
    const STORES: usize = 4;
    const EACH: u64 = 25;
    let stores = separate_stores(STORES).await;
    let s = StreamId::new("shared-hot");
    let writers = stores.iter().map(|store| store.clone() as Arc<dyn EventStore>).collect();
    write_concurrently(writers, s.clone(), EACH as usize).await;
    let read = stores[0].read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), STORES * EACH as usize);
    assert!(read.iter().enumerate().all(|(i, e)| e.version == i as u64 + 1 && e.position == i as u64 + 1));
    for w in 0..STORES {
        let ns: Vec<u64> = read
            .iter()
            .filter(|e| e.data["writer"] == json!(w))
            .map(|e| e.data["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..EACH).collect::<Vec<_>>(), "writer {w}: each event once, in order");
    }
}

//! Append throughput of the DynamoDB event store on DynamoDB Local, against the bare DynamoDB
//! calls it is made of, in the same process on the same server: a `PutItem` per event (no
//! condition, no order: the floor) and a two-item `TransactWriteItems` (the event and a counter,
//! without the store's conditions and bookkeeping).
//!
//! Run: `cargo run -p lector-aws --example dynamodb_append [events]`
//! (DynamoDB Local from `scripts/tools.sh`; it is started and stopped by the example.)

use std::time::Instant;

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use lector_aws::DynamoEventStore;
use lector_aws::event_store::create_table;
use lector_core::{EventStore, ExpectedVersion, StreamId};
use lector_testkit::contract::event;
use lector_testkit::services::{dynamodb_config, unique_name};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 =
        std::env::args().nth(1).map(|a| a.parse()).transpose().context("events: a number")?.unwrap_or(500);
    let client = Client::new(&dynamodb_config().await);
    let payload = json!({"attempt": 1, "index": 3, "audio_ref": "work/x/chunks/abc.mp3", "bytes": 48_000});

    // Warm the server's JIT and the connection pool first.
    let warm = unique_name("warm");
    create_table(&client, &warm).await?;
    let store = DynamoEventStore::new(client.clone(), &warm);
    for i in 0..100 {
        store
            .append(&StreamId::new("w"), ExpectedVersion(i), vec![event(&format!("w{i}"), payload.clone())])
            .await?;
    }

    let table = unique_name("bare-put");
    create_table(&client, &table).await?;
    let started = Instant::now();
    for i in 0..n {
        client
            .put_item()
            .table_name(&table)
            .item("stream_id", AttributeValue::S("s".into()))
            .item("version", AttributeValue::N((i + 1).to_string()))
            .item("data", AttributeValue::S(payload.to_string()))
            .send()
            .await?;
    }
    let put = started.elapsed();

    let table = unique_name("bare-tx");
    create_table(&client, &table).await?;
    let started = Instant::now();
    for i in 0..n {
        let put = Put::builder()
            .table_name(&table)
            .item("stream_id", AttributeValue::S("s".into()))
            .item("version", AttributeValue::N((i + 1).to_string()))
            .item("data", AttributeValue::S(payload.to_string()))
            .build()?;
        let counter = Update::builder()
            .table_name(&table)
            .key("stream_id", AttributeValue::S("$position".into()))
            .key("version", AttributeValue::N("0".into()))
            .update_expression("SET #p = :p")
            .expression_attribute_names("#p", "position")
            .expression_attribute_values(":p", AttributeValue::N((i + 1).to_string()))
            .build()?;
        client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(counter).build())
            .send()
            .await?;
    }
    let tx = started.elapsed();

    let table = unique_name("store");
    create_table(&client, &table).await?;
    let store = DynamoEventStore::new(client.clone(), &table);
    let s = StreamId::new("conversion-0123456789abcdef0123");
    let started = Instant::now();
    for i in 0..n {
        store.append(&s, ExpectedVersion(i), vec![event(&format!("e{i}"), payload.clone())]).await?;
    }
    let append = started.elapsed();
    let started = Instant::now();
    let read = store.read_stream(&s, 0).await?;
    let read_time = started.elapsed();
    anyhow::ensure!(read.len() as u64 == n, "read {} of {n} events", read.len());

    let per_s = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("{n} single-event appends, one writer, DynamoDB Local");
    println!("bare PutItem:                 {:8.1} /s (baseline)", per_s(put));
    println!(
        "bare TransactWriteItems (2):  {:8.1} /s  {:.2}x the baseline",
        per_s(tx),
        per_s(tx) / per_s(put)
    );
    println!(
        "DynamoEventStore::append:     {:8.1} /s  {:.2}x the baseline",
        per_s(append),
        per_s(append) / per_s(put)
    );
    println!(
        "read_stream of {n} events:   {:8.1} ms ({:.0} events/s)",
        read_time.as_secs_f64() * 1000.0,
        per_s(read_time)
    );
    Ok(())
}

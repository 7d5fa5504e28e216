//! `publish-events` end to end: events appended to DynamoDB Local, their items handed to the
//! handler as a DynamoDB Stream batch, published on moto's EventBridge, and read back from the
//! SQS queue a rule sends them to.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::types::AttributeValue;
use lector_aws::event_store::{self, DynamoEventStore};
use lector_aws::{EventBridgePublisher, publish};
use lector_core::event::ChunkSynthesized;
use lector_core::{
    ConversionEvent, ConversionId, EventEnvelope, EventId, EventMeta, EventStore, ExpectedVersion, NewEvent,
};
use lector_testkit::services::{dynamodb_config, moto_config, subscriber_queue, unique_name};
use serde_json::{Value, json};

struct Bus {
    name: String,
    publisher: EventBridgePublisher,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// A bus whose rule sends every `lector` event to a fresh queue.
async fn bus_with_queue() -> Bus {
    let config = moto_config().await;
    let eventbridge = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = unique_name("bus");
    eventbridge.create_event_bus().name(&name).send().await.expect("the bus is created");
    let (queue_url, _rule) = subscriber_queue(&eventbridge, &sqs, &name, r#"{"source": ["lector"]}"#).await;
    Bus { publisher: EventBridgePublisher::new(eventbridge, name.clone()), name, sqs, queue_url }
}

/// Every message on the queue until `quiet` passes without one, in arrival order.
async fn drain(bus: &Bus, quiet: Duration) -> Vec<Value> {
    let mut bodies = Vec::new();
    let mut idle_since = std::time::Instant::now();
    while idle_since.elapsed() < quiet {
        let out = bus
            .sqs
            .receive_message()
            .queue_url(&bus.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle_since = std::time::Instant::now();
        for m in messages {
            bodies.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an EventBridge event"));
            bus.sqs
                .delete_message()
                .queue_url(&bus.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

fn chunk_event(id: &ConversionId, index: u32) -> NewEvent {
    let event = ConversionEvent::ChunkSynthesized(ChunkSynthesized {
        attempt: 1,
        index,
        audio_ref: None,
        bytes: 1_000 + u64::from(index),
        duration_seconds: 1.5,
        units: 1,
        units_synthesized: 1,
        units_reused: 0,
        characters_synthesized: 0,
        characters_reused: 0,
    });
    let meta = EventMeta {
        occurred_at: chrono::DateTime::from_timestamp(1_750_000_000 + i64::from(index), 0).unwrap(),
        correlation_id: id.to_string(),
        causation_id: Some("exec-1".into()),
    };
    NewEvent::from_event(EventId::derive(&[id.as_str(), "chunk", &index.to_string()]), &event, &meta)
}

/// `count` events appended to a real table, and its items (events and the counter) in
/// position order, as the stream would carry them.
async fn appended_items(count: u32) -> (ConversionId, Vec<HashMap<String, AttributeValue>>) {
    let client = aws_sdk_dynamodb::Client::new(&dynamodb_config().await);
    let table = unique_name("published");
    event_store::create_table(&client, &table).await.unwrap();
    let store = DynamoEventStore::new(client.clone(), table.clone());
    let id: ConversionId = format!("{:020x}", rand_suffix()).parse().unwrap();
    for i in 0..count {
        store.append(&id.stream(), ExpectedVersion(u64::from(i)), vec![chunk_event(&id, i)]).await.unwrap();
    }
    let mut items = client.scan().table_name(&table).send().await.unwrap().items().to_vec();
    let position = |item: &HashMap<String, AttributeValue>| match item.get("version") {
        Some(AttributeValue::N(n)) => n.parse::<u64>().unwrap(),
        _ => 0,
    };
    items.sort_by_key(position);
    (id, items)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A DynamoDB Stream record in the Lambda event's JSON form.
fn record(name: &str, sequence: u64, image: Value) -> Value {
    json!({
        "eventID": format!("event-{sequence}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-01-01T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_750_000_000,
            "Keys": {"stream_id": image.get("stream_id").cloned().unwrap_or(json!({"S": "x"}))},
            "NewImage": image,
            "SequenceNumber": format!("{sequence:021}"),
            "SizeBytes": 300,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    serde_json::to_value(serde_dynamo::Item::from(item.clone())).unwrap()
}

fn batch(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB Stream event")
}

fn versions(bodies: &[Value]) -> Vec<u64> {
    bodies.iter().map(|b| b["detail"]["version"].as_u64().expect("a version")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inserted_event_reaches_the_bus_in_order() {
    let bus = bus_with_queue().await;
    let (id, items) = appended_items(12).await;
    // The counter's item changes with every append: an INSERT first, then MODIFYs.
    let mut records = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = if item.get("stream_id") == Some(&AttributeValue::S("$position".into())) {
            "MODIFY"
        } else {
            "INSERT"
        };
        records.push(record(name, 100 + i as u64, image(item)));
    }
    let response = publish::handle(&bus.publisher, batch(records)).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);

    let bodies = drain(&bus, Duration::from_secs(2)).await;
    assert_eq!(versions(&bodies), (1..=12).collect::<Vec<_>>(), "each event once, in log order");
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body["source"], "lector");
        assert_eq!(body["detail-type"], "ChunkSynthesized");
        let envelope: EventEnvelope =
            serde_json::from_value(body["detail"].clone()).expect("the published envelope");
        assert_eq!(envelope.stream_id, id.stream());
        assert_eq!(envelope.correlation_id, id.to_string());
        assert_eq!(envelope.position, i as u64 + 1);
        assert!(matches!(envelope.event, ConversionEvent::ChunkSynthesized(ref c) if c.index == i as u32));
    }
    let _ = bus.name;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_reported_and_nothing_after_it_is_taken_as_delivered() {
    let bus = bus_with_queue().await;
    let (_, items) = appended_items(4).await;
    let events: Vec<_> =
        items.iter().filter(|i| i.get("stream_id") != Some(&AttributeValue::S("$position".into()))).collect();
    let poison = json!({"stream_id": {"S": "conversion-damaged"}, "version": {"S": "not a number"}});
    let records = vec![
        record("INSERT", 1, image(events[0])),
        record("INSERT", 2, image(events[1])),
        record("INSERT", 3, poison.clone()),
        record("INSERT", 4, image(events[2])),
        record("INSERT", 5, image(events[3])),
    ];
    let response = publish::handle(&bus.publisher, batch(records)).await;
    let failures: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failures, [Some(format!("{:021}", 3))], "the poison record's sequence number");
    assert_eq!(versions(&drain(&bus, Duration::from_secs(2)).await), [1, 2], "what came before it went out");

    // Lambda retries from the poison record; it fails the same way until the mapping's bounded
    // retries send it to the dead-letter destination, and the stream moves on past it.
    let retry = vec![record("INSERT", 3, poison), record("INSERT", 4, image(events[2]))];
    let response = publish::handle(&bus.publisher, batch(retry)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(drain(&bus, Duration::from_secs(1)).await.is_empty());
    let after = vec![record("INSERT", 4, image(events[2])), record("INSERT", 5, image(events[3]))];
    let response = publish::handle(&bus.publisher, batch(after)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(versions(&drain(&bus, Duration::from_secs(2)).await), [3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_that_does_not_exist_fails_the_first_record_and_publishes_nothing() {
    let config = moto_config().await;
    let publisher =
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), unique_name("no-such-bus"));
    let (_, items) = appended_items(2).await;
    let records: Vec<_> = items
        .iter()
        .filter(|i| i.get("stream_id") != Some(&AttributeValue::S("$position".into())))
        .enumerate()
        .map(|(i, item)| record("INSERT", 10 + i as u64, image(item)))
        .collect();
    let response = publish::handle(&publisher, batch(records)).await;
    let failures: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failures, [Some(format!("{:021}", 10))]);
}

/// Rewrites the answers of the first `PutEvents` calls as if the service had refused one
/// entry: what a throttled or failing EventBridge does, which moto never does.
#[derive(Debug)]
struct RefuseSecondEntry {
    code: &'static str,
    times: std::sync::atomic::AtomicUsize,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for RefuseSecondEntry {
    fn name(&self) -> &'static str {
        "RefuseSecondEntry"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use std::sync::atomic::Ordering;
        if self.times.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.times.fetch_sub(1, Ordering::SeqCst);
        let answer = json!({
            "FailedEntryCount": 1,
            "Entries": [
                {"EventId": "first"},
                {"ErrorCode": self.code, "ErrorMessage": "refused by the test"},
                {"EventId": "third"}
            ]
        });
        *context.response_mut().body_mut() = aws_smithy_types::body::SdkBody::from(answer.to_string());
        Ok(())
    }
}

async fn publisher_refusing(
    code: &'static str,
    times: usize,
) -> (EventBridgePublisher, crate::capture::Capture) {
    let bus = bus_with_queue().await;
    let capture = crate::capture::Capture::default();
    let config = aws_sdk_eventbridge::config::Builder::from(&moto_config().await)
        .interceptor(capture.clone())
        .interceptor(RefuseSecondEntry { code, times: times.into() })
        .build();
    (EventBridgePublisher::new(aws_sdk_eventbridge::Client::from_conf(config), bus.name), capture)
}

async fn three_events() -> Vec<lector_core::RecordedEvent> {
    let (_, items) = appended_items(3).await;
    items
        .into_iter()
        .filter(|i| i.get("stream_id") != Some(&AttributeValue::S("$position".into())))
        .map(|i| event_store::recorded_from_item(i).unwrap())
        .collect()
}

fn sent_versions(request: &crate::capture::Captured) -> Vec<u64> {
    request.body["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e["Detail"].as_str().unwrap()).unwrap()["version"].as_u64().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn only_the_entries_that_failed_are_put_again() {
    use lector_core::ports::EventPublisher;
    let (publisher, capture) = publisher_refusing("ThrottlingException", 1).await;
    publisher.publish(&three_events().await).await.expect("published after the retry");
    let requests = capture.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(sent_versions(&requests[0]), [1, 2, 3]);
    assert_eq!(sent_versions(&requests[1]), [2], "only the refused entry");
    let entry = &requests[0].body["Entries"][0];
    assert_eq!(entry["Source"], "lector");
    assert_eq!(entry["DetailType"], "ChunkSynthesized");
    assert!(entry["EventBusName"].as_str().unwrap().starts_with("bus-"));
}

#[tokio::test]
async fn an_entry_refused_for_good_fails_at_once() {
    use lector_core::ports::{EventPublisher, PublishError};
    let (publisher, capture) = publisher_refusing("MalformedDetail", 1).await;
    let err = publisher.publish(&three_events().await).await.unwrap_err();
    let PublishError::Failed { failed, total, reason } = err;
    assert_eq!((failed, total), (1, 3));
    assert!(reason.contains("MalformedDetail"), "{reason}");
    assert_eq!(capture.requests().len(), 1, "not retried");
}

//! The handlers of `start-conversion`, `project-conversions` and `api` on real local parts:
//! DynamoDB Local for the event log and the list table, moto for Step Functions, S3, Polly.

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::Client as DynamoDb;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lector_aws::event_store::{self, DynamoEventStore};
use lector_aws::index::{self as list_table, DynamoConversionIndex};
use lector_aws::settings::{RuntimeSettings, SettingsError};
use lector_aws::{PollyVoice, S3ObjectStore, StepFunctions};
use lector_core::event::{ConversionRequested, ConversionStarted};
use lector_core::index::{ConversionIndex, ListQuery};
use lector_core::service::execute;
use lector_core::{
    Command, ConversionId, ConversionStatus, EventMeta, EventStore, RecordedEvent, VoiceEngine, VoiceId,
};
use lector_lambda::api::{ApiFunction, ApiPorts, NoEvents, NoObjects, POLLY_ENGINES};
use lector_lambda::metrics::{CONVERSIONS_STARTED, Captured, Metrics};
use lector_lambda::settings::{Settings, SystemClock};
use lector_testkit::services::{dynamodb_config, moto_config, s3_config, unique_name};
use serde_json::{Value, json};
use url::Url;

async fn dynamodb() -> DynamoDb {
    DynamoDb::new(&dynamodb_config().await)
}

async fn event_log(client: &DynamoDb) -> (DynamoEventStore, String) {
    let table = unique_name("events");
    event_store::create_table(client, &table).await.expect("the event table is created");
    (DynamoEventStore::new(client.clone(), &table), table)
}

async fn list(client: &DynamoDb) -> DynamoConversionIndex {
    let table = unique_name("conversions");
    list_table::create_table(client, &table).await.expect("the list table is created");
    DynamoConversionIndex::new(client.clone(), table)
}

fn meta(id: &ConversionId) -> EventMeta {
    EventMeta { occurred_at: chrono::Utc::now(), correlation_id: id.to_string(), causation_id: None }
}

/// Request conversion `n` (and start it when `started`), returning its id.
async fn request(store: &dyn EventStore, n: u32, started: bool) -> ConversionId {
    let post = Url::parse(&format!("https://blog.example/posts/{n}")).unwrap();
    let voice = VoiceId::new("Joanna");
    let id = ConversionId::derive(&post, &voice, VoiceEngine::Neural);
    let requested = ConversionRequested {
        conversion_id: id.clone(),
        post_url: post,
        title: Some(format!("Post {n}")),
        feed_url: None,
        feed_id: None,
        feed_title: None,
        content_ref: None,
        voice,
        engine: VoiceEngine::Neural,
        requested_by: "test".into(),
        post: None,
        content_hash: None,
        feed_language: None,
        pronunciations: Vec::new(),
    };
    execute(store, &id, Command::Request(requested), &meta(&id)).await.expect("requested");
    if started {
        let start = ConversionStarted { execution_id: format!("arn:x:{n}"), attempt: 1 };
        execute(store, &id, Command::Start(start), &meta(&id)).await.expect("started");
    }
    id
}

/// The table's items as a stream batch of INSERT records, in log order, with sequence numbers
/// 1, 2, 3, ...: what the DynamoDB Stream gives `project-conversions`.
async fn stream_batch(
    client: &DynamoDb,
    table: &str,
    poison_at: Option<usize>,
) -> (Event, Vec<RecordedEvent>) {
    let mut items = client.scan().table_name(table).send().await.unwrap().items().to_vec();
    // The store's position counter (stream `$position`) is in the stream too: first here.
    let position = |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        let counter = item.get("stream_id").and_then(|s| s.as_s().ok()).is_some_and(|s| s.starts_with('$'));
        let position =
            item.get("position").and_then(|p| p.as_n().ok()).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
        if counter { 0 } else { position }
    };
    items.sort_by_key(position);
    let mut events = Vec::new();
    let mut records = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let image: serde_dynamo::Item = serde_dynamo::Item::from(item.clone());
        let mut image = serde_json::to_value(&image).unwrap();
        if poison_at == Some(i) {
            image =
                json!({"stream_id": {"S": "conversion-0123456789abcdef0123"}, "version": {"S": "damaged"}});
        } else if let Ok(event) = event_store::recorded_from_item(item) {
            events.push(event);
        }
        records.push(json!({
            "eventID": format!("e{i}"),
            "eventName": "INSERT",
            "awsRegion": "us-east-1",
            "dynamodb": {"NewImage": image, "SequenceNumber": (i + 1).to_string(), "SizeBytes": 100}
        }));
    }
    (serde_json::from_value(json!({ "Records": records })).unwrap(), events)
}

/// The lists of a projector that sees conversions only.
fn lists(index: &DynamoConversionIndex) -> lector_lambda::project::Lists<'_> {
    const NO_FEEDS: lector_lambda::api::NoFeeds =
        lector_lambda::api::NoFeeds { function: "project-conversions" };
    lector_lambda::project::Lists { conversions: index, feeds: &NO_FEEDS }
}

fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
}

#[tokio::test]
async fn a_stream_batch_is_folded_into_the_list_table() {
    let client = dynamodb().await;
    let (store, table) = event_log(&client).await;
    let index = list(&client).await;
    let a = request(&store, 1, true).await;
    let b = request(&store, 2, false).await;
    let (batch, _) = stream_batch(&client, &table, None).await;
    let metrics = Metrics::with_sink("N", "project-conversions", Captured::default().sink());
    let response = lector_lambda::project::handle(lists(&index), &store, &metrics, batch).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    for id in [&a, &b] {
        let expected = ConversionStatus::fold(&store.read_stream(&id.stream(), 0).await.unwrap()).unwrap();
        assert_eq!(index.get(id).await.unwrap(), expected);
    }
    let page = index.list(&ListQuery { limit: 10, ..ListQuery::default() }).await.unwrap();
    assert_eq!(page.conversions.len(), 2);

    // The same batch again (a retried invocation) changes nothing.
    let (again, _) = stream_batch(&client, &table, None).await;
    let response = lector_lambda::project::handle(lists(&index), &store, &metrics, again).await;
    assert!(failures(&response).is_empty());
    assert_eq!(index.get(&a).await.unwrap().map(|s| s.version), Some(2));
}

#[tokio::test]
async fn a_poison_record_is_reported_and_nothing_after_it_is_projected() {
    let client = dynamodb().await;
    let (store, table) = event_log(&client).await;
    let index = list(&client).await;
    let a = request(&store, 3, false).await;
    let b = request(&store, 4, false).await;
    // Item 0 is the counter, 1 is a's request, 2 b's: b's record is damaged.
    let (batch, _) = stream_batch(&client, &table, Some(2)).await;
    let metrics = Metrics::with_sink("N", "project-conversions", Captured::default().sink());
    let response = lector_lambda::project::handle(lists(&index), &store, &metrics, batch).await;
    assert_eq!(failures(&response), ["3"]);
    assert!(index.get(&a).await.unwrap().is_some());
    assert!(index.get(&b).await.unwrap().is_none());
}

#[tokio::test]
async fn an_event_past_a_gap_is_folded_from_the_stream() {
    let client = dynamodb().await;
    let (store, table) = event_log(&client).await;
    let index = list(&client).await;
    let id = request(&store, 5, true).await;
    let (batch, events) = stream_batch(&client, &table, None).await;
    // Only the last record arrives (the earlier ones went to another invocation that failed).
    let mut only_last = batch;
    only_last.records.retain(|r| r.change.sequence_number.as_deref() == Some("3"));
    let metrics = Metrics::with_sink("N", "project-conversions", Captured::default().sink());
    let response = lector_lambda::project::handle(lists(&index), &store, &metrics, only_last).await;
    assert!(failures(&response).is_empty());
    assert_eq!(index.get(&id).await.unwrap(), ConversionStatus::fold(&events).unwrap());
}

fn bus_event(recorded: &RecordedEvent) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": recorded.event_type,
        "source": "lector",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": recorded,
    })
}

async fn state_machine() -> StepFunctions {
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    let definition =
        json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let created = client
        .create_state_machine()
        .name(unique_name("conversion"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/lector-workflow")
        .send()
        .await
        .expect("the state machine is created");
    StepFunctions::new(client, created.state_machine_arn())
}

#[tokio::test]
async fn a_requested_conversion_starts_its_execution_named_after_it() {
    let client = dynamodb().await;
    let (store, _) = event_log(&client).await;
    let id = request(&store, 6, true).await;
    let events = store.read_stream(&id.stream(), 0).await.unwrap();
    let sfn = state_machine().await;
    let captured = Captured::default();
    let metrics = Metrics::with_sink("N", "start-conversion", captured.sink());

    let answer = lector_lambda::start::handle(&sfn, &metrics, bus_event(&events[0])).await.unwrap();
    let execution = answer["execution"].as_str().expect("an execution").to_owned();
    assert!(execution.ends_with(&format!(":{}", id.execution_name(1))), "{execution}");
    let described = sfn.describe(&execution).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(described.input.as_deref().unwrap()).unwrap(),
        json!({"conversion_id": id.as_str(), "attempt": 1})
    );
    assert_eq!(captured.lines().iter().filter(|l| l.get(CONVERSIONS_STARTED).is_some()).count(), 1);

    // Another event type starts nothing.
    let answer = lector_lambda::start::handle(&sfn, &metrics, bus_event(&events[1])).await.unwrap();
    assert_eq!(answer, json!({"execution": null}));
}

#[tokio::test]
async fn a_bus_event_that_is_not_lectors_is_invalid_input() {
    let sfn = state_machine().await;
    let metrics = Metrics::with_sink("N", "start-conversion", Captured::default().sink());
    let err = lector_lambda::start::handle(&sfn, &metrics, json!({"detail-type": "X", "detail": {"a": 1}}))
        .await
        .unwrap_err();
    assert_eq!(err.0.name(), "Lector.InvalidInput");
    let err = lector_lambda::start::handle(&sfn, &metrics, json!({"hello": "world"})).await.unwrap_err();
    assert_eq!(err.0.name(), "Lector.InvalidInput");
}

/// Settings an operator changes while the API runs.
#[derive(Default)]
struct Changing(Mutex<RuntimeSettings>);

#[async_trait::async_trait]
impl Settings for Changing {
    async fn get(&self) -> Result<RuntimeSettings, SettingsError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

async fn ports() -> ApiPorts {
    let client = dynamodb().await;
    let (store, _) = event_log(&client).await;
    let index = list(&client).await;
    let s3 = aws_sdk_s3::Client::from_conf(s3_config().await);
    let bucket = unique_name("objects");
    s3.create_bucket().bucket(&bucket).send().await.expect("the bucket is created");
    ApiPorts {
        events: Arc::new(store),
        objects: Arc::new(S3ObjectStore::new(s3, bucket)),
        voice: Arc::new(PollyVoice::new(aws_sdk_polly::Client::new(&moto_config().await))),
        index: Arc::new(index),
        clock: Arc::new(SystemClock),
        feeds: Arc::new(lector_lambda::api::NoFeeds { function: "api" }),
        polls: Arc::new(lector_lambda::api::NoPolls { function: "api" }),
    }
}

async fn api_function(settings: Arc<dyn Settings>) -> ApiFunction {
    let metrics = Metrics::with_sink("N", "api", Captured::default().sink());
    ApiFunction::new(
        lector_api::conversions_router,
        ports().await,
        settings,
        None,
        POLLY_ENGINES.to_vec(),
        metrics,
    )
}

async fn call(api: &ApiFunction, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api.example")
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap();
    let response = api.handle(request).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_api_follows_the_settings_without_a_deploy() {
    let settings = Arc::new(Changing::default());
    let api = api_function(settings.clone()).await;
    let (status, body) = call(&api, "GET", "/voices", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["default_voice"], "Joanna");
    let engines: Vec<&str> = body["data"]["voices"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["engines"].as_array().unwrap().iter().filter_map(Value::as_str))
        .collect();
    assert!(!engines.is_empty() && !engines.contains(&"espeak"), "Polly's engines only: {engines:?}");

    settings.0.lock().unwrap().default_voice = VoiceId::new("Matthew");
    let (_, body) = call(&api, "GET", "/voices", None).await;
    assert_eq!(body["data"]["default_voice"], "Matthew");
}

#[tokio::test]
async fn a_conversion_submitted_through_the_api_is_in_the_log() {
    let api = api_function(Arc::new(Changing::default())).await;
    let (status, body) =
        call(&api, "POST", "/conversions", Some(json!({"url": "https://blog.example/posts/7"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["data"]["conversion_id"].as_str().expect("an id").to_owned();
    assert!(body["data"]["status_url"].as_str().unwrap().starts_with("https://api.example/"), "{body}");
    let (status, body) = call(&api, "GET", &format!("/conversions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["state"], "requested");
    let (status, body) = call(&api, "GET", "/conversions/0123456789abcdef0123", None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::NOT_FOUND, Some("notFound")));
}

#[tokio::test]
async fn the_preview_function_serves_the_preview_and_nothing_else() {
    let metrics = Metrics::with_sink("N", "api-preview", Captured::default().sink());
    let mut ports = ports().await;
    ports.objects = Arc::new(NoObjects { function: "api-preview" });
    ports.events = Arc::new(NoEvents { function: "api-preview" });
    let preview = ApiFunction::new(
        lector_api::preview_router,
        ports,
        Arc::new(Changing::default()),
        None,
        POLLY_ENGINES.to_vec(),
        metrics,
    );
    // The preview's own validation answers: the route reached its handler.
    let (status, body) =
        call(&preview, "POST", "/feeds/preview", Some(json!({"url": "not an address"}))).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::BAD_REQUEST, Some("badRequest")), "{body}");
    // The conversions group is another function's.
    let (status, body) = call(&preview, "GET", "/conversions/0123456789abcdef0123", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no such resource"), "{body}");
}

#[tokio::test]
async fn unreadable_settings_are_an_error_in_the_envelope() {
    struct Down;
    #[async_trait::async_trait]
    impl Settings for Down {
        async fn get(&self) -> Result<RuntimeSettings, SettingsError> {
            Err(SettingsError::Unavailable("connection refused".into()))
        }
    }
    let api = api_function(Arc::new(Down)).await;
    let (status, body) = call(&api, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().unwrap().contains("connection refused"), "{body}");
}

//! The polling functions on real local parts: `poll-feed` and `list-due-feeds` (through the same
//! `StepFunction` wrapper the Lambda binaries run), `request-conversions` on the bus events a
//! poll appended, `project-conversions` folding both lists, and the `api` function's
//! subscription routes on the feed table and the polling state machine. DynamoDB Local holds
//! the event log and the tables, moto the bucket and Step Functions, and a loopback server the
//! feed.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_sfn::types::StateMachineType;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use lector_aws::event_store::{self, DynamoEventStore};
use lector_aws::feed_index::{self, DynamoFeedIndex};
use lector_aws::index::{self as list_table, DynamoConversionIndex};
use lector_aws::polls::StepFunctionsPolls;
use lector_aws::settings::RuntimeSettings;
use lector_aws::{PollyVoice, S3ObjectStore};
use lector_core::feed::FeedStatus;
use lector_core::feed::event::{FeedSubscribed, PodcastOwner};
use lector_core::feed::index::FeedIndex;
use lector_core::feed::service::execute_feed;
use lector_core::feed::subscription::FeedCommand;
use lector_core::index::ConversionIndex;
use lector_core::ports::ObjectStore;
use lector_core::{ConversionId, EventMeta, EventStore, FeedId, RecordedEvent, VoiceEngine, VoiceId};
use lector_lambda::api::{ApiFunction, ApiPorts, POLLY_ENGINES};
use lector_lambda::metrics::{CONVERSIONS_REQUESTED, Captured, FEED_POLLS, FEEDS_DUE, Metrics, OUTCOME};
use lector_lambda::project::Lists;
use lector_lambda::settings::{Settings, SystemClock};
use lector_lambda::step::StepFunction;
use lector_lambda::voice::NoVoice;
use lector_pipeline::poll::{ListDueFeeds, PollFeed};
use lector_pipeline::steps::StepPorts;
use lector_testkit::http::{Reply, TestServer};
use lector_testkit::services::{dynamodb_config, moto_config, s3_config, unique_name};
use serde_json::{Value, json};
use url::Url;

const SAMPLE_FEED: &str = include_str!("../../../src/sample/feed.xml");

/// The AWS adapters of one test: the event log, the two lists and the bucket, each fresh.
struct Stack {
    dynamodb: DynamoDb,
    events: Arc<DynamoEventStore>,
    event_table: String,
    conversions: DynamoConversionIndex,
    feeds: DynamoFeedIndex,
    objects: S3ObjectStore,
}

impl Stack {
    async fn new() -> Self {
        let dynamodb = DynamoDb::new(&dynamodb_config().await);
        let event_table = unique_name("events");
        event_store::create_table(&dynamodb, &event_table).await.expect("the event table is created");
        let list = unique_name("conversions");
        list_table::create_table(&dynamodb, &list).await.expect("the list table is created");
        let feed_table = unique_name("feeds");
        feed_index::create_table(&dynamodb, &feed_table).await.expect("the feed table is created");
        let s3 = aws_sdk_s3::Client::from_conf(s3_config().await);
        let bucket = unique_name("objects");
        s3.create_bucket().bucket(&bucket).send().await.expect("the bucket is created");
        Self {
            events: Arc::new(DynamoEventStore::new(dynamodb.clone(), &event_table)),
            conversions: DynamoConversionIndex::new(dynamodb.clone(), list),
            feeds: DynamoFeedIndex::new(dynamodb.clone(), feed_table),
            objects: S3ObjectStore::new(s3, bucket),
            dynamodb,
            event_table,
        }
    }

    /// The ports a polling step's function is built with, as `run_step` builds them.
    fn step_ports(&self, function: &'static str) -> StepPorts {
        StepPorts {
            events: self.events.clone(),
            objects: Arc::new(self.objects.clone()),
            voice: Arc::new(NoVoice { function }),
            fetcher: None,
            clock: Arc::new(SystemClock),
            feeds: Some(Arc::new(self.feeds.clone())),
            websub: None,
            folded_feeds: Default::default(),
        }
    }

    /// Subscribe to the feed at `url`, converting its `backfill` newest posts.
    async fn subscribe(&self, url: &Url, backfill: u32) -> FeedId {
        let id = FeedId::derive(url);
        let subscribed = FeedSubscribed {
            feed_id: id.clone(),
            url: url.clone(),
            voice: VoiceId::new("Joanna"),
            engine: VoiceEngine::Neural,
            auto_convert: true,
            regenerate_on_edit: true,
            backfill,
            interval_minutes: 15,
            owner: None,
            podcast_guid: None,
            subscribed_by: "test".into(),
        };
        let meta = EventMeta { occurred_at: Utc::now(), correlation_id: id.to_string(), causation_id: None };
        execute_feed(&*self.events, &id, FeedCommand::Subscribe(subscribed), &meta)
            .await
            .expect("subscribed");
        id
    }

    /// Every event of the log, as `project-conversions` receives them: one stream batch of
    /// INSERT records in log order.
    async fn stream_batch(&self) -> Event {
        let events = self.events.read_all(0, 10_000).await.expect("the log is read");
        let items = self.dynamodb.scan().table_name(&self.event_table).send().await.unwrap().items().to_vec();
        let mut records = Vec::new();
        for event in &events {
            let item = items
                .iter()
                .find(|i| i.get("position").and_then(|p| p.as_n().ok()) == Some(&event.position.to_string()))
                .expect("every event has its item");
            let image = serde_json::to_value(serde_dynamo::Item::from(item.clone())).unwrap();
            records.push(json!({
                "eventID": format!("e{}", event.position),
                "eventName": "INSERT",
                "awsRegion": "us-east-1",
                "dynamodb": {"NewImage": image, "SequenceNumber": event.position.to_string(), "SizeBytes": 100}
            }));
        }
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }
}

/// Settings that let the steps fetch the loopback feed, with a podcast owner.
fn settings() -> RuntimeSettings {
    RuntimeSettings {
        allowed_hosts: vec!["127.0.0.1".into()],
        podcast_owner: Some(PodcastOwner {
            name: "Lector Radio".into(),
            email: "radio@lector.example".into(),
        }),
        ..RuntimeSettings::default()
    }
}

fn feed_server() -> (TestServer, Url) {
    let server = TestServer::start();
    server.route("/feed.xml", Reply::rss(SAMPLE_FEED).header("ETag", "\"v1\""));
    let url = Url::parse(&server.url("/feed.xml")).unwrap();
    (server, url)
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

#[tokio::test]
async fn a_due_feed_is_listed_polled_and_its_new_posts_become_conversions_once() {
    let stack = Stack::new().await;
    let (server, url) = feed_server();
    let id = stack.subscribe(&url, 3).await;
    // The projector puts the new subscription in the feed table, due at once.
    let metrics = Metrics::with_sink("N", "project-conversions", Captured::default().sink());
    let lists = Lists { conversions: &stack.conversions, feeds: &stack.feeds };
    let response =
        lector_lambda::project::handle(lists, &*stack.events, &metrics, stack.stream_batch().await).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // list-due-feeds: the feed is due.
    let captured = Captured::default();
    let list = StepFunction::<ListDueFeeds>::new(
        stack.step_ports("list-due-feeds"),
        None,
        Metrics::with_sink("N", "list-due-feeds", captured.sink()),
    );
    let due = list.handle(json!({"request": {}})).await.expect("the due feeds are listed");
    assert_eq!(due, json!({"feeds": [id.as_str()], "force": false}));
    assert!(captured.lines().iter().any(|l| l[FEEDS_DUE] == json!(1.0)));

    // poll-feed: fetched through the guarded fetcher the settings allow, three new posts
    // recorded, their text stored in the bucket.
    let captured = Captured::default();
    let poll = StepFunction::<PollFeed>::new(
        stack.step_ports("poll-feed"),
        Some(Arc::new(settings()) as Arc<dyn Settings>),
        Metrics::with_sink("N", "poll-feed", captured.sink()),
    );
    let polled =
        poll.handle(json!({"feed_id": id.as_str(), "force": false})).await.expect("the feed is polled");
    assert_eq!(polled["outcome"], "polled", "{polled}");
    assert_eq!(polled["new"], 3, "{polled}");
    assert_eq!(server.hits("/feed.xml"), 1);
    let outcomes: Vec<Value> =
        captured.lines().iter().filter(|l| l.get(FEED_POLLS).is_some()).map(|l| l[OUTCOME].clone()).collect();
    assert_eq!(outcomes, [json!("polled")]);
    let stored = stack.objects.list(&format!("feeds/{id}/posts/")).await.expect("the bucket is listed");
    assert_eq!(stored.len(), 3, "each post's text is stored once");

    // Not due any more: a second run finds nothing, and a poll of it is skipped.
    let response =
        lector_lambda::project::handle(lists, &*stack.events, &metrics, stack.stream_batch().await).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(list.handle(json!({"request": {}})).await.unwrap(), json!({"feeds": [], "force": false}));
    let again = poll.handle(json!({"feed_id": id.as_str(), "force": false})).await.unwrap();
    assert_eq!(again["outcome"], "skipped", "{again}");
    let stream = stack.events.read_stream(&id.stream(), 0).await.unwrap();
    let folded = FeedStatus::fold(&stream).unwrap().expect("subscribed");
    assert_eq!(stack.feeds.get(&id).await.unwrap(), Some(folded.clone()), "the feed table follows the log");
    assert_eq!(folded.posts_seen, 3);

    // request-conversions: each PostDiscovered on the bus requests its conversion, once.
    let captured = Captured::default();
    let metrics = Metrics::with_sink("N", "request-conversions", captured.sink());
    let ports = stack.step_ports("request-conversions");
    let discovered: Vec<&RecordedEvent> =
        stream.iter().filter(|e| e.event_type == "PostDiscovered").collect();
    assert_eq!(discovered.len(), 3);
    let mut requested = Vec::new();
    for event in &discovered {
        let answer =
            lector_lambda::request::handle(&ports, &metrics, bus_event(event)).await.expect("submitted");
        assert_eq!(answer["outcome"], "created", "{answer}");
        let conversion: ConversionId = answer["conversion_id"].as_str().unwrap().parse().unwrap();
        let log = stack.events.read_stream(&conversion.stream(), 0).await.unwrap();
        assert_eq!(log[0].event_type, "ConversionRequested");
        assert_eq!(log[0].causation_id.as_deref(), Some(event.event_id.to_string().as_str()));
        requested.push(conversion);
    }
    let again = lector_lambda::request::handle(&ports, &metrics, bus_event(discovered[0])).await.unwrap();
    assert_eq!(again["outcome"], "unchanged", "a repeated delivery changes nothing: {again}");
    let polled_event = stream.iter().find(|e| e.event_type == "FeedPolled").expect("the poll is recorded");
    assert_eq!(
        lector_lambda::request::handle(&ports, &metrics, bus_event(polled_event)).await.unwrap(),
        Value::Null
    );
    let counted: Vec<Value> = captured
        .lines()
        .iter()
        .filter(|l| l.get(CONVERSIONS_REQUESTED).is_some())
        .map(|l| l[OUTCOME].clone())
        .collect();
    assert_eq!(counted, [json!("created"), json!("created"), json!("created"), json!("unchanged")]);

    // The projector puts the conversions in the list table and leaves the feed table as it is.
    let response =
        lector_lambda::project::handle(lists, &*stack.events, &metrics, stack.stream_batch().await).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    for conversion in &requested {
        let listed = stack.conversions.get(conversion).await.unwrap().expect("listed");
        assert_eq!(listed.feed_id.as_ref(), Some(&id));
    }
    assert_eq!(stack.feeds.get(&id).await.unwrap(), Some(folded));
}

#[tokio::test]
async fn a_bus_event_that_is_not_lectors_is_invalid_input_for_request_conversions() {
    let stack = Stack::new().await;
    let ports = stack.step_ports("request-conversions");
    let metrics = Metrics::with_sink("N", "request-conversions", Captured::default().sink());
    let err = lector_lambda::request::handle(&ports, &metrics, json!({"hello": "world"})).await.unwrap_err();
    assert_eq!(err.0.name(), "Lector.InvalidInput");
    let err = lector_lambda::request::handle(
        &ports,
        &metrics,
        json!({"detail-type": "PostDiscovered", "detail": {"type": "FeedPolled"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.0.name(), "Lector.InvalidInput");
}

async fn polling_machine() -> (aws_sdk_sfn::Client, String) {
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    let definition =
        json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let created = client
        .create_state_machine()
        .name(unique_name("poll-feeds"))
        .r#type(StateMachineType::Express)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/lector-poll-feeds")
        .send()
        .await
        .expect("the polling state machine is created");
    (client, created.state_machine_arn().to_owned())
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

/// The feed ids each execution of the polling machine was started with, oldest first.
async fn started_polls(client: &aws_sdk_sfn::Client, machine: &str) -> Vec<Value> {
    let listed = client.list_executions().state_machine_arn(machine).send().await.expect("listed");
    let mut executions = listed.executions().to_vec();
    executions.sort_by_key(|e| (e.start_date().secs(), e.start_date().subsec_nanos()));
    let mut inputs = Vec::new();
    for execution in &executions {
        let described = client
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .expect("described");
        let input: Value = serde_json::from_str(described.input().unwrap_or("null")).unwrap();
        inputs.push(input["feed_ids"].clone());
    }
    inputs
}

#[tokio::test]
async fn the_api_subscribes_on_the_feed_table_and_starts_polls_on_the_polling_machine() {
    let stack = Stack::new().await;
    let (_server, url) = feed_server();
    let (sfn, machine) = polling_machine().await;
    let ports = ApiPorts {
        events: stack.events.clone(),
        objects: Arc::new(stack.objects.clone()),
        voice: Arc::new(PollyVoice::new(aws_sdk_polly::Client::new(&moto_config().await))),
        index: Arc::new(stack.conversions.clone()),
        clock: Arc::new(SystemClock),
        feeds: Arc::new(stack.feeds.clone()),
        polls: Arc::new(StepFunctionsPolls::new(sfn.clone(), &machine)),
    };
    let api = ApiFunction::new(
        lector_api::conversions_router,
        ports,
        Arc::new(settings()),
        None,
        POLLY_ENGINES.to_vec(),
        Metrics::with_sink("N", "api", Captured::default().sink()),
    );
    let (status, body) = call(
        &api,
        "POST",
        "/feeds",
        Some(json!({"url": url.as_str(), "voice": "Joanna", "engine": "neural"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["feed_id"].as_str().expect("a feed id").to_owned();
    // The owner comes from the runtime settings: the podcast feed has what Apple asks for.
    assert_eq!(body["data"]["apple_ready"], true, "{body}");
    assert_eq!(started_polls(&sfn, &machine).await, [json!([id])], "the first poll starts at once");

    // The list is the feed table, which the projector fills.
    let (_, body) = call(&api, "GET", "/feeds", None).await;
    assert_eq!(body["data"]["feeds"], json!([]), "{body}");
    let metrics = Metrics::with_sink("N", "project-conversions", Captured::default().sink());
    let lists = Lists { conversions: &stack.conversions, feeds: &stack.feeds };
    lector_lambda::project::handle(lists, &*stack.events, &metrics, stack.stream_batch().await).await;
    let (status, body) = call(&api, "GET", "/feeds", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Vec<&str> =
        body["data"]["feeds"].as_array().unwrap().iter().filter_map(|f| f["feed_id"].as_str()).collect();
    assert_eq!(listed, [id.as_str()]);

    let (status, body) = call(&api, "POST", &format!("/feeds/{id}/poll"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let execution = body["data"]["execution_id"].as_str().expect("the execution").to_owned();
    assert!(execution.starts_with(&machine.replacen(":stateMachine:", ":execution:", 1)), "{execution}");
    assert_eq!(started_polls(&sfn, &machine).await, [json!([id]), json!([id])]);
}

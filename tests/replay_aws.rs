//! `lector replay --aws`, `lector events replay --aws` and `lector projections ... --aws` end to
//! end: the real `lector` binary pointed by the AWS SDK's own environment variables at DynamoDB
//! Local (the event log and the list table) and moto server (Step Functions, EventBridge), as an
//! operator's shell would be pointed at a deployed stack.
//!
//! The failed conversions are what the deployed functions leave behind: a request, an
//! execution started on Step Functions that failed there, the failure in the stream and the
//! status in the list table. moto has no `RedriveExecution`, so the Step Functions traffic goes
//! through a recording proxy on loopback and the redrive is checked by the request it sends.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sfn::types::ExecutionStatus;
use common::Lector;
use lector_aws::StepFunctions;
use lector_aws::event_store::{self, DynamoEventStore};
use lector_aws::index::{self as list_table, DynamoConversionIndex};
use lector_aws::workflow::execution_arn;
use lector_core::event::{ConversionFailed, ConversionRequested, ConversionStarted};
use lector_core::index::ConversionIndex;
use lector_core::service::execute;
use lector_core::{Command, ConversionId, ConversionStatus, EventMeta, EventStore, VoiceEngine, VoiceId};
use lector_testkit::services::{
    REGION, dynamodb_config, dynamodb_local, moto, moto_config, moto_execute_state_machines,
    subscriber_queue, unique_name,
};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/lector-workflow";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// One request the proxy passed on: its `X-Amz-Target` and JSON body.
#[derive(Debug, Clone)]
struct Forwarded {
    target: Option<String>,
    body: Value,
}

/// A loopback HTTP proxy in front of `upstream` that records each request: one request per
/// connection, answered with `Connection: close`.
struct Recorder {
    port: u16,
    requests: Arc<Mutex<Vec<Forwarded>>>,
}

impl Recorder {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    if let Err(e) = forward(client, upstream, &log) {
                        eprintln!("recording proxy: {e}");
                    }
                });
            }
        });
        Self { port, requests }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self, target: &str) -> Vec<Value> {
        let all = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|r| r.target.as_deref() == Some(target)).map(|r| r.body.clone()).collect()
    }
}

fn header_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// `head` without its `Connection` header and with `Connection: close`.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

fn forward(mut client: TcpStream, upstream: u16, log: &Mutex<Vec<Forwarded>>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let head_len = loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(end) = header_end(&request) {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_len]).into_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while request.len() < head_len + length {
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = &request[head_len..];
    log.lock().unwrap_or_else(|p| p.into_inner()).push(Forwarded {
        target: header("x-amz-target"),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    });
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    server.write_all(closing(&head).as_bytes())?;
    server.write_all(body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    match header_end(&response) {
        Some(end) => {
            let head = String::from_utf8_lossy(&response[..end]).into_owned();
            client.write_all(closing(&head).as_bytes())?;
            client.write_all(&response[end..])?;
        }
        None => client.write_all(&response)?,
    }
    client.shutdown(Shutdown::Both)
}

/// What a deployed stack is for these tests: fresh tables on DynamoDB Local and a state machine
/// on moto whose executions fail as a conversion whose page is gone does.
struct Stack {
    events: Arc<dyn EventStore>,
    index: DynamoConversionIndex,
    workflow: StepFunctions,
    event_table: String,
    list_table: String,
    /// The list of subscriptions' table, which `projections --aws` checks beside the list.
    feed_table: String,
    /// Step Functions' endpoint for the binary: moto, or a recorder in front of it.
    sfn_endpoint: String,
}

impl Stack {
    async fn new() -> Self {
        moto_execute_state_machines();
        let dynamodb = aws_sdk_dynamodb::Client::new(&dynamodb_config().await);
        let event_table = unique_name("events");
        let list_table = unique_name("list");
        event_store::create_table(&dynamodb, &event_table).await.expect("the event table is created");
        list_table::create_table(&dynamodb, &list_table).await.expect("the list table is created");
        let feed_table = unique_name("feeds");
        lector_aws::feed_index::create_table(&dynamodb, &feed_table)
            .await
            .expect("the feed table is created");
        let sfn = aws_sdk_sfn::Client::new(&moto_config().await);
        let failing = json!({"StartAt": "FetchArticle", "States": {"FetchArticle": {
            "Type": "Fail", "Error": "Lector.NotFound", "Cause": "the page answered 404"}}});
        let machine = sfn
            .create_state_machine()
            .name(unique_name("conversion"))
            .definition(failing.to_string())
            .role_arn(ROLE)
            .send()
            .await
            .expect("the state machine is created");
        Self {
            events: Arc::new(DynamoEventStore::new(dynamodb.clone(), event_table.clone())),
            index: DynamoConversionIndex::new(dynamodb, list_table.clone()),
            workflow: StepFunctions::new(sfn, machine.state_machine_arn()),
            event_table,
            list_table,
            feed_table,
            sfn_endpoint: moto().endpoint.clone(),
        }
    }

    /// A conversion of `post` whose first execution failed with `error`, as the functions
    /// leave it: in the stream, in the list table, and failed on Step Functions.
    async fn failed_conversion(&self, post: &str, error: &str) -> (ConversionId, String) {
        let post_url: url::Url = post.parse().expect("a post URL");
        let voice = VoiceId::new("Joanna");
        let id = ConversionId::derive(&post_url, &voice, VoiceEngine::Neural);
        let meta = |cause: &str| EventMeta {
            occurred_at: chrono::Utc::now(),
            correlation_id: id.to_string(),
            causation_id: Some(cause.to_owned()),
        };
        let request = ConversionRequested {
            conversion_id: id.clone(),
            post_url,
            title: Some("A post".into()),
            feed_url: None,
            feed_id: None,
            feed_title: None,
            content_ref: None,
            voice,
            engine: VoiceEngine::Neural,
            requested_by: "reader".into(),
            post: None,
            content_hash: None,
            feed_language: None,
            pronunciations: Vec::new(),
        };
        execute(&*self.events, &id, Command::Request(request), &meta("api")).await.expect("requested");
        let input = json!({"conversion_id": id.as_str(), "attempt": 1}).to_string();
        let started = self.workflow.start(&id, 1, &input).await.expect("the execution starts");
        let arn = started.execution_arn().to_owned();
        let mut status = self.workflow.describe(&arn).await.expect("the execution").status;
        for _ in 0..100 {
            if status != ExecutionStatus::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = self.workflow.describe(&arn).await.expect("the execution").status;
        }
        assert_eq!(status, ExecutionStatus::Failed, "moto ran the failing state machine");
        let start = ConversionStarted { execution_id: arn.clone(), attempt: 1 };
        execute(&*self.events, &id, Command::Start(start), &meta(&arn)).await.expect("started");
        let failure = ConversionFailed {
            attempt: 1,
            state: "FetchArticle".into(),
            error: error.into(),
            cause: format!("GET {post} answered 404"),
        };
        execute(&*self.events, &id, Command::Fail(failure), &meta(&arn)).await.expect("failed");
        self.project(&id).await;
        (id, arn)
    }

    /// What the projection function does after each event.
    async fn project(&self, id: &ConversionId) {
        let stream = self.events.read_stream(&id.stream(), 0).await.expect("the stream");
        let status = ConversionStatus::fold(&stream).expect("it folds").expect("a status");
        self.index.put(&status).await.expect("the status is listed");
    }

    async fn types(&self, id: &ConversionId) -> Vec<String> {
        let stream = self.events.read_stream(&id.stream(), 0).await.expect("the stream");
        stream.iter().map(|e| e.event_type.clone()).collect()
    }

    async fn execution(&self, id: &ConversionId, attempt: u32) -> Option<lector_aws::workflow::Execution> {
        let arn = execution_arn(self.workflow.state_machine_arn(), &id.execution_name(attempt));
        self.workflow.describe(&arn).await.ok()
    }

    /// `lector ARGS` with the stack's settings in its environment, the AWS SDK's own
    /// variables pointing it at the emulators.
    fn run(&self, lector: &Lector, args: &[&str]) -> Output {
        let mut command = lector.command(args);
        aws_env(&mut command);
        command
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_local().endpoint)
            .env("AWS_ENDPOINT_URL_SFN", &self.sfn_endpoint)
            .env("LECTOR_EVENT_TABLE", &self.event_table)
            .env("LECTOR_INDEX_TABLE", &self.list_table)
            .env("LECTOR_FEED_TABLE", &self.feed_table)
            .env("LECTOR_STATE_MACHINE_ARN", self.workflow.state_machine_arn());
        command.output().expect("lector runs")
    }
}

/// The SDK's environment for the emulators, and nothing of this machine's own AWS setup.
fn aws_env(command: &mut std::process::Command) {
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", empty_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", empty_file())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("LECTOR_EVENT_TABLE")
        .env_remove("LECTOR_INDEX_TABLE")
        .env_remove("LECTOR_STATE_MACHINE_ARN")
        .env_remove("LECTOR_EVENT_ARCHIVE")
        .env_remove("LECTOR_EVENT_BUS");
}

/// An empty AWS config file: no profile of this machine applies, and the SDK has nothing to warn about.
fn empty_file() -> &'static std::path::Path {
    static FILE: std::sync::OnceLock<tempfile::NamedTempFile> = std::sync::OnceLock::new();
    FILE.get_or_init(|| tempfile::NamedTempFile::new().expect("an empty file")).path()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", explain(output)))
        })
        .collect()
}

fn explain(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn failed_conversions_on_aws_are_listed_and_restarted_with_the_next_attempts_name() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let (gone, gone_arn) =
        rt.block_on(stack.failed_conversion("https://blog.example/gone", "Lector.NotFound"));
    let (slow, _) = rt.block_on(stack.failed_conversion("https://blog.example/slow", "Lector.Transient"));
    let lector = Lector::new();

    // Listed, oldest failure first, with why and where each failed.
    let listed = stack.run(&lector, &["replay", "--aws", "--json"]);
    assert!(listed.status.success(), "{}", explain(&listed));
    let lines = json_lines(&listed);
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["conversion_id"].as_str()).collect();
    assert_eq!(ids, [gone.as_str(), slow.as_str()]);
    assert_eq!(lines[0]["error"], "Lector.NotFound");
    assert_eq!(lines[0]["failed_state"], "FetchArticle");
    assert_eq!(lines[0]["cause"], "GET https://blog.example/gone answered 404");
    assert_eq!(lines[0]["attempt"], 1);
    assert_eq!(lines[0]["execution_id"], gone_arn.as_str());
    assert_eq!(lines[0]["action"], "list");

    let only = json_lines(&stack.run(&lector, &["replay", "--aws", "--json", "--error", "Lector.Transient"]));
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["conversion_id"], slow.as_str());

    // A dry run changes nothing, in the log or on Step Functions.
    let before = rt.block_on(stack.types(&gone));
    let dry = stack.run(&lector, &["replay", "--aws", "--restart", "--id", gone.as_str()]);
    assert!(dry.status.success(), "{}", explain(&dry));
    assert!(stderr(&dry).contains("dry run"), "{}", explain(&dry));
    assert_eq!(rt.block_on(stack.types(&gone)), before);
    assert!(rt.block_on(stack.execution(&gone, 2)).is_none(), "a dry run starts nothing");

    // --restart --yes: recorded first, then attempt 2 starts under the name `<id>-2`.
    let restarted = stack.run(
        &lector,
        &[
            "replay",
            "--aws",
            "--restart",
            "--yes",
            "--id",
            gone.as_str(),
            "--reason",
            "page is back",
            "--by",
            "ops",
            "--json",
        ],
    );
    assert!(restarted.status.success(), "{}", explain(&restarted));
    let lines = json_lines(&restarted);
    assert_eq!(lines.len(), 1, "{}", explain(&restarted));
    assert_eq!(lines[0]["outcome"], "replayed");
    let second = execution_arn(stack.workflow.state_machine_arn(), &gone.execution_name(2));
    assert_eq!(lines[0]["execution_id"], second.as_str());
    let execution = rt.block_on(stack.execution(&gone, 2)).expect("attempt 2 runs on Step Functions");
    assert_eq!(execution.name, format!("{gone}-2"));
    let input: Value = serde_json::from_str(execution.input.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(input["conversion_id"], gone.as_str());
    assert_eq!(input["attempt"], 2);
    assert!(stderr(&restarted).contains("not waited for: add --wait-for"), "{}", explain(&restarted));

    let stream = rt.block_on(stack.events.read_stream(&gone.stream(), 0)).unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["ConversionRequested", "ConversionStarted", "ConversionFailed", "ConversionRetried"]);
    let retried = &stream[3].data;
    assert_eq!(retried["how"], "restart");
    assert_eq!(retried["by"], "ops");
    assert_eq!(retried["reason"], "page is back");
    assert_eq!(retried["attempt"], 2);
    // The other conversion was not named, so it is untouched.
    assert_eq!(rt.block_on(stack.types(&slow)).len(), 3);
}

#[test]
fn a_redrive_on_aws_sends_redrive_execution_and_a_refused_one_is_reported_with_restart_suggested() {
    let rt = runtime();
    let mut stack = rt.block_on(Stack::new());
    let recorder = Recorder::start(moto().port);
    stack.sfn_endpoint = recorder.endpoint();
    let (id, arn) = rt.block_on(stack.failed_conversion("https://blog.example/flaky", "Lector.Transient"));
    let lector = Lector::new();

    let redriven =
        stack.run(&lector, &["replay", "--aws", "--redrive", "--yes", "--id", id.as_str(), "--json"]);
    // moto has no RedriveExecution: the request is what AWS expects, and the refusal is reported.
    let sent = recorder.requests("AWSStepFunctions.RedriveExecution");
    assert!(!sent.is_empty(), "RedriveExecution was sent\n{}", explain(&redriven));
    let token = format!("redrive-1-{id}-1");
    for body in &sent {
        assert_eq!(body, &json!({"executionArn": arn, "clientToken": token}), "every try the same request");
    }
    assert!(!redriven.status.success(), "a refused redrive fails the command\n{}", explain(&redriven));
    let lines = json_lines(&redriven);
    assert_eq!(lines[0]["outcome"], "failed", "{}", explain(&redriven));
    assert!(lines[0]["why"].as_str().is_some_and(|w| w.contains("RedriveExecution")), "{lines:?}");
    assert!(lines[0]["suggestion"].as_str().is_some_and(|s| s.contains("--restart")), "{lines:?}");

    let table = stack.run(&lector, &["replay", "--aws", "--redrive", "--yes", "--id", id.as_str()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("use --restart"), "{}", explain(&table));

    let stream = rt.block_on(stack.events.read_stream(&id.stream(), 0)).unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types[..6],
        [
            "ConversionRequested",
            "ConversionStarted",
            "ConversionFailed",
            "ConversionRetried",
            "ConversionFailed",
            "ConversionRetried"
        ]
    );
    assert_eq!(stream[3].data["how"], "redrive");
    assert_eq!(stream[4].data["error"], "Lector.ReplayRefused");
    assert_eq!(stream[4].data["state"], "RedriveExecution");

    // The suggestion works: a restart starts the next attempt.
    rt.block_on(stack.project(&id));
    let restarted =
        stack.run(&lector, &["replay", "--aws", "--restart", "--yes", "--id", id.as_str(), "--json"]);
    assert!(restarted.status.success(), "{}", explain(&restarted));
    assert_eq!(json_lines(&restarted)[0]["outcome"], "replayed");
    assert!(!recorder.requests("AWSStepFunctions.StartExecution").is_empty());
    let execution = rt.block_on(stack.execution(&id, 2)).expect("attempt 2 runs");
    assert_eq!(execution.name, format!("{id}-2"));
}

#[test]
fn waiting_on_aws_is_bounded_by_wait_for() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let (id, _) = rt.block_on(stack.failed_conversion("https://blog.example/slow-again", "Lector.Transient"));
    let lector = Lector::new();
    // moto runs no step functions, so the restarted conversion never finishes.
    let started = std::time::Instant::now();
    let waited = stack
        .run(&lector, &["replay", "--aws", "--restart", "--yes", "--id", id.as_str(), "--wait-for", "2s"]);
    assert!(started.elapsed() < Duration::from_secs(30), "the wait is bounded");
    assert!(!waited.status.success(), "unfinished conversions fail the command\n{}", explain(&waited));
    assert!(stderr(&waited).contains("1 still running after 2s"), "{}", explain(&waited));
    assert!(String::from_utf8_lossy(&waited.stdout).contains(&format!("{id}  still running")));
}

#[test]
fn a_missing_setting_is_named_with_the_stack_output_that_holds_it() {
    let lector = Lector::new();
    let mut command = lector.command(&["replay", "--aws", "--restart"]);
    aws_env(&mut command);
    let out = command.env("LECTOR_EVENT_TABLE", "events").output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "LECTOR_INDEX_TABLE is not set (nor --list-table given): it is the stack's ListTableName output"
        ),
        "{err}"
    );
    assert!(err.contains("LECTOR_STATE_MACHINE_ARN is not set (nor --state-machine-arn given): it is the stack's StateMachineArn output"), "{err}");
    assert!(err.contains("sam list stack-outputs --stack-name lector"), "{err}");
    assert!(!err.contains("LECTOR_EVENT_TABLE is not set"), "{err}");

    let mut command = lector.command(&["events", "replay", "--aws", "--since", "1h"]);
    aws_env(&mut command);
    let err = stderr(&command.output().unwrap());
    assert!(
        err.contains(
            "LECTOR_EVENT_ARCHIVE is not set (nor --archive given): it is the stack's EventArchiveName output"
        ),
        "{err}"
    );
}

/// A bus with an archive of its `lector` events, and a subscriber's rule sending them to a queue.
struct Archived {
    eventbridge: aws_sdk_eventbridge::Client,
    bus: String,
    archive: String,
    rule: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Archived {
    async fn new() -> Self {
        let config = moto_config().await;
        let eventbridge = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let bus = unique_name("bus");
        let created = eventbridge.create_event_bus().name(&bus).send().await.expect("the bus is created");
        let archive = unique_name("archive");
        eventbridge
            .create_archive()
            .archive_name(&archive)
            .event_source_arn(created.event_bus_arn().expect("a bus ARN"))
            .event_pattern(r#"{"source": ["lector"]}"#)
            .send()
            .await
            .expect("the archive is created");
        let (queue_url, rule) = subscriber_queue(&eventbridge, &sqs, &bus, r#"{"source": ["lector"]}"#).await;
        Self { eventbridge, bus, archive, rule, sqs, queue_url }
    }

    async fn put(&self, detail_types: &[&str]) {
        let entries = detail_types.iter().map(|t| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source("lector")
                .detail_type(*t)
                .detail("{}")
                .build()
        });
        let out = self.eventbridge.put_events().set_entries(Some(entries.collect())).send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    }

    /// The messages on the subscriber's queue until none comes for half a second.
    async fn drain(&self) -> Vec<Value> {
        let mut bodies = Vec::new();
        let mut idle_since = std::time::Instant::now();
        while idle_since.elapsed() < Duration::from_millis(500) {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for message in out.messages() {
                bodies.push(serde_json::from_str(message.body().unwrap_or("null")).unwrap());
                let handle = message.receipt_handle().unwrap();
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
                idle_since = std::time::Instant::now();
            }
            if out.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        bodies
    }

    fn run(&self, lector: &Lector, args: &[&str]) -> Output {
        let mut command = lector.command(args);
        aws_env(&mut command);
        // The bus too, as an operator's shell holding the stack's outputs would.
        command
            .env("LECTOR_EVENT_ARCHIVE", &self.archive)
            .env("LECTOR_EVENT_BUS", &self.bus)
            .output()
            .expect("lector runs")
    }
}

#[test]
fn events_replay_on_aws_starts_one_archive_replay_per_window() {
    let rt = runtime();
    let archived = rt.block_on(Archived::new());
    rt.block_on(archived.put(&["ConversionRequested", "ConversionFailed"]));
    assert_eq!(rt.block_on(archived.drain()).len(), 2, "the subscriber saw each event once");
    let lector = Lector::new();
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let until = (chrono::Utc::now() + chrono::Duration::minutes(5)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let args = ["events", "replay", "--aws", "--since", since.as_str(), "--until", until.as_str(), "--wait"];

    let first = archived.run(&lector, &args);
    assert!(first.status.success(), "{}", explain(&first));
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(text.contains(&format!("archive {}", archived.archive)), "{text}");
    assert!(text.contains(&format!("back to bus {}, every rule", archived.bus)), "{text}");
    let started = text.lines().find(|l| l.starts_with("started replay ")).unwrap_or_else(|| panic!("{text}"));
    let name = started.split_whitespace().nth(2).expect("the replay's name").to_owned();
    assert!(name.starts_with(&archived.archive[..20]), "{name}");
    assert!(text.contains(&format!("{name} COMPLETED")), "--wait follows it to its end: {text}");

    let replayed = rt.block_on(archived.drain());
    let mut types: Vec<&str> = replayed.iter().filter_map(|e| e["detail-type"].as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, ["ConversionFailed", "ConversionRequested"]);
    assert!(replayed.iter().all(|e| e["replay-name"] == name.as_str()), "{replayed:?}");

    // The same command again finds that replay and sends nothing twice.
    let mut again_args = args[..7].to_vec();
    again_args.push("--json");
    let again = archived.run(&lector, &again_args);
    assert!(again.status.success(), "{}", explain(&again));
    let lines = json_lines(&again);
    assert_eq!(lines.len(), 1, "{}", explain(&again));
    assert_eq!(lines[0]["name"], name.as_str());
    assert_eq!(lines[0]["started_now"], false);
    assert_eq!(lines[0]["state"], "COMPLETED");
    assert!(rt.block_on(archived.drain()).is_empty(), "nothing is sent twice");

    // An archive of another bus than the one named is refused before anything is replayed.
    let other_bus =
        archived.run(&lector, &["events", "replay", "--aws", "--since", "1h", "--bus", "someone-elses-bus"]);
    assert!(!other_bus.status.success());
    assert!(
        stderr(&other_bus).contains(&format!("is of bus {}, not someone-elses-bus", archived.bus)),
        "{}",
        explain(&other_bus)
    );

    // Only a rule can narrow a replay: --type is refused with the way to do it.
    let typed =
        archived.run(&lector, &["events", "replay", "--aws", "--since", "1h", "--type", "ConversionFailed"]);
    assert!(!typed.status.success());
    assert!(
        stderr(&typed).contains("never by event type") && stderr(&typed).contains("--rule NAME"),
        "{}",
        explain(&typed)
    );
    let unknown =
        archived.run(&lector, &["events", "replay", "--aws", "--since", "1h", "--rule", "no-such-rule"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains(&format!("rule no-such-rule on bus {}", archived.bus)),
        "{}",
        explain(&unknown)
    );
    let to_rule = archived
        .run(&lector, &["events", "replay", "--aws", "--since", "1h", "--rule", archived.rule.as_str()]);
    assert!(to_rule.status.success(), "{}", explain(&to_rule));
    assert!(String::from_utf8_lossy(&to_rule.stdout).contains(&format!("rules {}", archived.rule)));
}

#[test]
fn the_list_table_on_aws_is_checked_against_the_log_and_rebuilt_only_with_yes() {
    let rt = runtime();
    let stack = rt.block_on(Stack::new());
    let (gone, _) = rt.block_on(stack.failed_conversion("https://blog.example/gone", "Lector.NotFound"));
    let (slow, _) = rt.block_on(stack.failed_conversion("https://blog.example/slow", "Lector.Transient"));
    let lector = Lector::new();
    let check = || stack.run(&lector, &["projections", "check", "--aws"]);
    let matches = check();
    assert!(matches.status.success(), "{}", explain(&matches));
    assert!(String::from_utf8_lossy(&matches.stdout).contains("the conversion list matches the log"));

    // The list drifts: one status lost, another edited behind the log's back, and one listed
    // that the log has never heard of.
    let mut edited = rt.block_on(stack.index.get(&gone)).expect("the list table").expect("gone is listed");
    edited.title = Some("Not what the log says".into());
    let mut stray = edited.clone();
    stray.conversion_id = ConversionId::derive(
        &"https://blog.example/never-requested".parse().expect("a URL"),
        &VoiceId::new("Joanna"),
        VoiceEngine::Neural,
    );
    rt.block_on(stack.index.clear()).expect("the list table is emptied");
    rt.block_on(stack.index.put(&edited)).expect("the edited status is put");
    rt.block_on(stack.index.put(&stray)).expect("the stray status is put");
    let drifted = check();
    assert_eq!(drifted.status.code(), Some(1), "{}", explain(&drifted));
    let said = String::from_utf8_lossy(&drifted.stdout).into_owned();
    assert!(said.contains(&format!("missing: {slow}")), "{said}");
    assert!(said.contains(&format!("different: {gone}")), "{said}");
    assert!(said.contains(&format!("not in the log: {}", stray.conversion_id)), "{said}");
    assert!(
        stderr(&drifted).contains("`lector projections rebuild --aws --yes` rebuilds it"),
        "{}",
        explain(&drifted)
    );

    // Without --yes the deployed list is left as it is, and what would happen is said.
    let dry = stack.run(&lector, &["projections", "rebuild", "--aws"]);
    assert!(dry.status.success(), "{}", explain(&dry));
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(plan.contains(&stack.list_table) && plan.contains(&stack.event_table), "{plan}");
    assert!(plan.contains("add --yes"), "{plan}");
    assert_eq!(check().status.code(), Some(1), "a dry run changed the list");

    let rebuilt = stack.run(&lector, &["projections", "rebuild", "--aws", "--yes"]);
    assert!(rebuilt.status.success(), "{}", explain(&rebuilt));
    // Each conversion: requested, started, failed.
    assert!(
        String::from_utf8_lossy(&rebuilt.stdout).contains("rebuilt the conversion list from 6 events"),
        "{}",
        explain(&rebuilt)
    );
    assert!(check().status.success(), "the rebuilt list still differs");
    let listed = rt.block_on(stack.index.get(&gone)).expect("the list table").expect("gone is listed again");
    assert_eq!(listed.title.as_deref(), Some("A post"));
    assert!(rt.block_on(stack.index.get(&slow)).expect("the list table").is_some());
    assert!(rt.block_on(stack.index.get(&stray.conversion_id)).expect("the list table").is_none());

    // --yes acts on a deployed stack only.
    let local = stack.run(&lector, &["projections", "rebuild", "--yes"]);
    assert!(!local.status.success());
    assert!(stderr(&local).contains("--aws"), "{}", explain(&local));

    // Without the tables' names nothing is read, and where to find them is said.
    let mut unnamed = lector.command(&["projections", "check", "--aws"]);
    aws_env(&mut unnamed);
    let unnamed = unnamed.output().expect("lector runs");
    assert!(!unnamed.status.success());
    for hint in ["LECTOR_EVENT_TABLE", "EventTableName", "LECTOR_INDEX_TABLE", "ListTableName"] {
        assert!(stderr(&unnamed).contains(hint), "{hint}: {}", explain(&unnamed));
    }
}

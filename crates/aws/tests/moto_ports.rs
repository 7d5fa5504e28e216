//! The ports the Lambda functions use on AWS, against moto: `Workflows` on Step Functions
//! (idempotent starts by execution name, describe, redrive's request) and the S3 store's
//! presigned addresses.

#[path = "moto/capture.rs"]
mod capture;
#[path = "moto/machines.rs"]
mod machines;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use capture::Capture;
use lector_aws::S3ObjectStore;
use lector_aws::workflow::execution_arn;
use lector_core::ObjectKey;
use lector_core::ports::{ExecutionStatus, ObjectStore, WorkflowError, Workflows};
use lector_testkit::services::{moto_execute_state_machines, s3_config, unique_name};
use machines::{conversion, failing, state_machine, waiting};
use serde_json::json;

async fn until_stopped(workflows: &dyn Workflows, arn: &str) -> ExecutionStatus {
    for _ in 0..100 {
        let status = workflows.describe(arn).await.unwrap().status;
        if status != ExecutionStatus::Running {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{arn} is still running after 10 s")
}

#[tokio::test]
async fn a_running_attempt_started_again_is_the_same_execution() {
    let sfn = state_machine(waiting(), None).await;
    let port: &dyn Workflows = &sfn;
    let id = conversion(1);
    let input = json!({"conversion_id": id.as_str(), "attempt": 1});
    let first = port.start(&id.execution_name(1), &input).await.unwrap();
    assert_eq!(first, execution_arn(sfn.state_machine_arn(), &id.execution_name(1)));
    let again = port.start(&id.execution_name(1), &input).await.unwrap();
    assert_eq!(again, first);
    let described = port.describe(&first).await.unwrap();
    assert_eq!(
        (described.name.as_str(), described.status),
        (id.execution_name(1).as_str(), ExecutionStatus::Running)
    );
    assert_eq!(described.redrive_count, 0);

    let other = json!({"conversion_id": id.as_str(), "attempt": 1, "voice": "Matthew"});
    assert!(
        matches!(port.start(&id.execution_name(1), &other).await, Err(WorkflowError::AlreadyExists(arn)) if arn == first)
    );
}

#[tokio::test]
async fn a_later_revision_runs_under_its_own_execution_name() {
    let sfn = state_machine(waiting(), None).await;
    let port: &dyn Workflows = &sfn;
    let id = conversion(7);
    let name = id.revision_execution_name(2, 3);
    let input = json!({"conversion_id": id.as_str(), "attempt": 3});
    let started = port.start(&name, &input).await.unwrap();
    assert_eq!(started, execution_arn(sfn.state_machine_arn(), &name));
    assert_eq!(port.describe(&started).await.unwrap().name, name);
    assert!(matches!(port.start("0123456789abcdef0123-r1-3", &input).await, Err(WorkflowError::Failed(_))));
}

#[tokio::test]
async fn a_finished_attempt_is_not_started_again() {
    moto_execute_state_machines();
    let sfn = state_machine(failing(), None).await;
    let port: &dyn Workflows = &sfn;
    let id = conversion(2);
    let input = json!({"conversion_id": id.as_str(), "attempt": 1});
    let arn = port.start(&id.execution_name(1), &input).await.unwrap();
    assert_eq!(until_stopped(port, &arn).await, ExecutionStatus::Failed);
    let info = port.describe(&arn).await.unwrap();
    assert_eq!(
        (info.error.as_deref(), info.cause.as_deref()),
        (Some("Lector.NotFound"), Some("the post is gone"))
    );
    assert!(info.stopped_at.is_some());
    assert!(matches!(port.start(&id.execution_name(1), &input).await, Err(WorkflowError::AlreadyExists(_))));
}

#[tokio::test]
async fn names_that_are_not_a_conversion_attempt_are_refused_before_any_call() {
    let capture = Capture::default();
    let sfn = state_machine(waiting(), Some(capture.clone())).await;
    let sent = capture.requests().len();
    let err = Workflows::start(&sfn, "hello", &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("'hello'"), "{err}");
    assert_eq!(capture.requests().len(), sent);
}

#[tokio::test]
async fn redrive_sends_a_token_of_the_execution_and_its_next_redrive() {
    moto_execute_state_machines();
    let capture = Capture::default();
    let sfn = state_machine(failing(), Some(capture.clone())).await;
    let port: &dyn Workflows = &sfn;
    let id = conversion(3);
    let arn = port
        .start(&id.execution_name(1), &json!({"conversion_id": id.as_str(), "attempt": 1}))
        .await
        .unwrap();
    until_stopped(port, &arn).await;
    // moto has no RedriveExecution: whatever it answers, the request is what AWS expects.
    assert!(port.redrive(&arn).await.is_err(), "moto cannot redrive");
    let request = capture.requests().into_iter().last().expect("a request was sent");
    assert_eq!(request.target.as_deref(), Some("AWSStepFunctions.RedriveExecution"));
    assert!(request.path.ends_with('/'), "the JSON protocol posts to the root: {}", request.path);
    let token = format!("redrive-1-{}", id.execution_name(1));
    assert_eq!(request.body, json!({"executionArn": arn, "clientToken": token}));
}

#[tokio::test]
async fn redriving_an_unknown_execution_is_not_found() {
    let sfn = state_machine(waiting(), None).await;
    let arn = execution_arn(sfn.state_machine_arn(), &conversion(4).execution_name(1));
    assert!(matches!(Workflows::redrive(&sfn, &arn).await, Err(WorkflowError::NotFound(_))));
}

/// `GET` an address on loopback with HTTP/1.0: status and body.
fn http_get(url: &url::Url) -> (u16, Vec<u8>) {
    let host = url.host_str().expect("a host");
    let port = url.port().expect("a port");
    let mut stream = TcpStream::connect((host, port)).expect("the endpoint answers");
    let path = &url[url::Position::BeforePath..];
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a header");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, response[split + 4..].to_vec())
}

#[tokio::test]
async fn a_presigned_address_downloads_the_object_without_credentials() {
    let client = aws_sdk_s3::Client::from_conf(s3_config().await);
    let bucket = unique_name("presign");
    client.create_bucket().bucket(&bucket).send().await.expect("the bucket is created");
    let store = S3ObjectStore::new(client, &bucket).with_prefix("prod/");
    let key = ObjectKey::new("audio/0123456789abcdef0123.mp3").unwrap();
    store.put(&key, Bytes::from_static(b"ID3 audio bytes"), "audio/mpeg").await.unwrap();
    let url = store.presigned_get(&key, Duration::from_secs(600)).await.unwrap().expect("S3 presigns");
    assert!(url.path().ends_with("/prod/audio/0123456789abcdef0123.mp3"), "{url}");
    let query: Vec<_> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert!(query.contains(&("X-Amz-Expires".into(), "600".into())), "{query:?}");
    assert!(query.iter().any(|(k, _)| k == "X-Amz-Signature"));
    let (status, body) = http_get(&url);
    assert_eq!(status, 200);
    assert_eq!(body, b"ID3 audio bytes");
}

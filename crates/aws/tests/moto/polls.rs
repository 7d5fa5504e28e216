//! Polls on demand against moto's Step Functions: each `poll_now` starts the polling state
//! machine (Express, as deployed) under a name of its own with `{"feed_ids": [...]}`.

use aws_sdk_sfn::types::StateMachineType;
use lector_aws::polls::{MAX_FEEDS_PER_START, StepFunctionsPolls};
use lector_core::FeedId;
use lector_core::ports::{FeedPolls, WorkflowError};
use lector_testkit::services::{moto_config, unique_name};
use serde_json::{Value, json};

use crate::capture::Capture;
use crate::machines::waiting;

const ROLE: &str = "arn:aws:iam::123456789012:role/lector-poll-feeds";

async fn polling_machine(capture: Capture) -> (aws_sdk_sfn::Client, StepFunctionsPolls) {
    let config = aws_sdk_sfn::config::Builder::from(&moto_config().await).interceptor(capture).build();
    let client = aws_sdk_sfn::Client::from_conf(config);
    let created = client
        .create_state_machine()
        .name(unique_name("poll-feeds"))
        .r#type(StateMachineType::Express)
        .definition(waiting().to_string())
        .role_arn(ROLE)
        .send()
        .await
        .expect("the polling state machine is created");
    (client.clone(), StepFunctionsPolls::new(client, created.state_machine_arn()))
}

fn feed(n: u8) -> FeedId {
    format!("{n:016x}").parse().expect("a feed id")
}

#[tokio::test]
async fn polling_now_starts_the_machine_with_the_feeds_under_a_new_name_each_time() {
    let capture = Capture::default();
    let (client, polls) = polling_machine(capture.clone()).await;
    let feeds = [feed(1), feed(2)];
    let first = polls.poll_now(&feeds).await.expect("a run is started");
    let second = polls.poll_now(&feeds[..1]).await.expect("another run is started");
    assert_ne!(first, second, "every start is a run of its own");

    let starts: Vec<Value> = capture
        .requests()
        .into_iter()
        .filter(|r| r.target.as_deref() == Some("AWSStepFunctions.StartExecution"))
        .map(|r| r.body)
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0]["stateMachineArn"], polls.state_machine_arn());
    let input: Value = serde_json::from_str(starts[0]["input"].as_str().expect("an input")).unwrap();
    assert_eq!(input, json!({"feed_ids": ["0000000000000001", "0000000000000002"]}));
    let input: Value = serde_json::from_str(starts[1]["input"].as_str().expect("an input")).unwrap();
    assert_eq!(input, json!({"feed_ids": ["0000000000000001"]}));
    let names: Vec<&str> = starts.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names.len(), 2);
    assert_ne!(names[0], names[1]);
    assert!(names.iter().all(|n| n.starts_with("now-") && n.len() <= 80), "{names:?}");
    assert!(first.ends_with(names[0]), "the answer is the started execution: {first}");

    // The service holds the run, with the input as sent.
    let described = client.describe_execution().execution_arn(&first).send().await.expect("it exists");
    let input: Value = serde_json::from_str(described.input().unwrap_or("null")).unwrap();
    assert_eq!(input["feed_ids"], json!(["0000000000000001", "0000000000000002"]));
}

#[tokio::test]
async fn nothing_or_too_much_to_poll_is_refused_before_anything_starts() {
    let capture = Capture::default();
    let (_, polls) = polling_machine(capture.clone()).await;
    let none = polls.poll_now(&[]).await.unwrap_err();
    assert!(matches!(none, WorkflowError::Failed(ref why) if why.contains("no feed")), "{none:?}");
    let many: Vec<FeedId> = (0..=MAX_FEEDS_PER_START).map(|n| format!("{n:016x}").parse().unwrap()).collect();
    let too_many = polls.poll_now(&many).await.unwrap_err();
    assert!(matches!(too_many, WorkflowError::Failed(ref why) if why.contains("at most")), "{too_many:?}");
    assert!(
        !capture.requests().iter().any(|r| r.target.as_deref() == Some("AWSStepFunctions.StartExecution")),
        "nothing was started"
    );
}

#[tokio::test]
async fn a_missing_state_machine_is_not_found() {
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    let arn = format!("arn:aws:states:us-east-1:123456789012:stateMachine:{}", unique_name("gone"));
    let polls = StepFunctionsPolls::new(client, &arn);
    let err = polls.poll_now(&[feed(1)]).await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("StartExecution"), "{err}");
}

//! The Step Functions adapter against moto: idempotent starts, describing, finding failed
//! executions, stopping; and the shape of `RedriveExecution`, which moto does not implement.

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::Utc;
use lector_aws::StepFunctions;
use lector_aws::workflow::{Started, TimeFilter, WorkflowError, execution_arn};
use lector_testkit::services::moto_execute_state_machines;
use serde_json::json;

use crate::capture::Capture;
use crate::machines::{conversion, failing, state_machine, waiting};

async fn until_stopped(workflow: &StepFunctions, arn: &str) -> lector_aws::workflow::Execution {
    for _ in 0..100 {
        let execution = workflow.describe(arn).await.unwrap();
        if execution.status != ExecutionStatus::Running {
            return execution;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{arn} is still running after 10 s")
}

#[tokio::test]
async fn a_conversion_attempt_starts_once() {
    let workflow = state_machine(waiting(), None).await;
    let id = conversion(1);
    let input = json!({"conversion_id": id.as_str(), "attempt": 1}).to_string();
    let first = workflow.start(&id, 1, &input).await.unwrap();
    let expected_arn = execution_arn(workflow.state_machine_arn(), &format!("{id}-1"));
    assert_eq!(first.execution_arn(), expected_arn);
    let again = workflow.start(&id, 1, &input).await.unwrap();
    assert_eq!(again.execution_arn(), expected_arn, "a duplicate event starts nothing new");

    let other = json!({"conversion_id": id.as_str(), "attempt": 1, "voice": "Matthew"}).to_string();
    match workflow.start(&id, 1, &other).await {
        Err(WorkflowError::NameTaken { name, execution_arn }) => {
            assert_eq!(name, format!("{id}-1"));
            assert_eq!(execution_arn, expected_arn);
        }
        other => panic!("expected NameTaken, got {other:?}"),
    }
    let second = workflow.start(&id, 2, &input).await.unwrap();
    assert!(matches!(second, Started::New { .. }));
    assert_ne!(second.execution_arn(), expected_arn);

    workflow.stop(&expected_arn, "Lector.Superseded", "restarted as attempt 2").await.unwrap();
    let stopped = workflow.describe(&expected_arn).await.unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(stopped.input.as_deref(), Some(input.as_str()));
}

#[tokio::test]
async fn failed_executions_are_found_within_the_time_window() {
    moto_execute_state_machines();
    let workflow = state_machine(failing(), None).await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    let mut arns = Vec::new();
    for n in 0..3 {
        let id = conversion(10 + n);
        let started =
            workflow.start(&id, 1, &json!({"conversion_id": id.as_str()}).to_string()).await.unwrap();
        arns.push(started.execution_arn().to_owned());
    }
    for arn in &arns {
        let done = until_stopped(&workflow, arn).await;
        assert_eq!(done.status, ExecutionStatus::Failed);
        assert_eq!(done.error.as_deref(), Some("Lector.NotFound"));
        assert_eq!(done.cause.as_deref(), Some("the post is gone"));
    }
    let failed = workflow.list_failed(TimeFilter { since: Some(before), until: None }).await.unwrap();
    let mut found: Vec<String> = failed.iter().map(|e| e.execution_arn.clone()).collect();
    found.sort();
    arns.sort();
    assert_eq!(found, arns);
    assert!(failed.windows(2).all(|w| w[0].started_at >= w[1].started_at), "newest first");
    let later = workflow
        .list_failed(TimeFilter { since: Some(Utc::now() + chrono::Duration::hours(1)), until: None });
    assert!(later.await.unwrap().is_empty());
    let earlier = workflow.list_failed(TimeFilter { since: None, until: Some(before) });
    assert!(earlier.await.unwrap().is_empty());
}

#[tokio::test]
async fn redrive_sends_the_execution_and_an_idempotency_token() {
    let capture = Capture::default();
    let workflow = state_machine(waiting(), Some(capture.clone())).await;
    let arn = execution_arn(workflow.state_machine_arn(), "0123456789abcdef0123-1");
    // moto has no RedriveExecution: whatever it answers, the request is what AWS expects.
    let result = workflow.redrive(&arn, "replay-by-ops-1").await;
    assert!(result.is_err(), "moto cannot redrive");
    let request = capture.requests().into_iter().last().expect("a request was sent");
    assert_eq!(request.target.as_deref(), Some("AWSStepFunctions.RedriveExecution"));
    assert_eq!(request.body, json!({"executionArn": arn, "clientToken": "replay-by-ops-1"}));
}

#[tokio::test]
async fn describing_an_unknown_execution_is_not_found() {
    let workflow = state_machine(waiting(), None).await;
    let arn = execution_arn(workflow.state_machine_arn(), "nope-1");
    assert!(matches!(workflow.describe(&arn).await, Err(WorkflowError::NotFound(_))));
}

//! Parity with AWS where a recorded case was missing: the cases of `tests/parity` (written from
//! AWS's documentation, see the README there) must all pass, and what a case file cannot
//! express is tested here: `lambda:invoke` definitions refused at validation, Express state
//! machines and `StartSyncExecution`, and the `.waitForTaskToken` pattern.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lector_states::conformance::{self, Outcome, RunOptions};
use lector_states::{
    Definition, DefinitionSubstitutions, Engine, EngineError, ExecutionStatus, MemoryStore, RealClock,
    SqliteStore, StateMachineType, TaskRegistry, VirtualClock,
};
use serde_json::{Value, json};

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").expect("valid").with_timezone(&Utc)
}

fn definition(v: Value) -> Result<Definition, lector_states::DefinitionError> {
    Definition::from_value(v, &DefinitionSubstitutions::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_parity_case_passes() -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/parity");
    let report = conformance::run_dir(&dir, &RunOptions::default()).await?;
    let failures: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Passed => None,
            other => Some(format!("{}: {other:?}", r.name)),
        })
        .collect();
    assert!(report.results.len() >= 40, "{} cases", report.results.len());
    assert!(failures.is_empty(), "{}\n{}", report.summary(), failures.join("\n"));
    Ok(())
}

fn invoke(parameters: Value) -> Value {
    json!({"StartAt": "Start", "States": {"Start": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": parameters, "End": true
    }}})
}

#[test]
fn lambda_invoke_parameters_are_checked_when_the_definition_is_validated() {
    let err = definition(invoke(json!({"FunctionName": "f", "Payload": {}, "TaskToken.$": "$$.Task.Token"})))
        .expect_err("TaskToken is not a parameter of Invoke");
    let text = err.to_string();
    assert!(text.contains("The field \"TaskToken\" is not supported by Step Functions"), "{text}");
    assert!(text.contains("/States/Start/Parameters"), "{text}");

    let err = definition(invoke(json!({"Payload.$": "$"}))).expect_err("FunctionName is required");
    assert!(err.to_string().contains("The field 'FunctionName' is required but was missing"), "{err}");

    let mut sync = invoke(json!({"FunctionName": "f"}));
    sync["States"]["Start"]["Resource"] = json!("arn:aws:states:::lambda:invoke.sync");
    let err = definition(sync).expect_err("the Lambda integration has no .sync pattern");
    assert!(
        err.to_string()
            .contains("The resource provided arn:aws:states:::lambda:invoke.sync is not recognized")
    );

    // Every parameter the integration takes is accepted, static or from a path.
    definition(invoke(json!({
        "FunctionName.$": "$.f", "Payload": {"a": 1}, "InvocationType": "Event", "Qualifier": "live",
        "LogType": "Tail", "ClientContext": "e30="
    })))
    .expect("the supported parameters");
}

fn engine(registry: TaskRegistry) -> Engine {
    Engine::new(Arc::new(MemoryStore::new()), Arc::new(VirtualClock::starting_at(epoch())), registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_state_machines_run_synchronously_and_refuse_what_aws_refuses() -> anyhow::Result<()> {
    let engine = engine(TaskRegistry::new());
    let pass = definition(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}))?;
    engine.register_state_machine_of_type("quick", pass.clone(), StateMachineType::Express)?;
    engine.register_state_machine("standard", pass)?;

    let done = engine.start_sync_execution("quick", Some("run-1"), json!({"a": 1})).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some("{\"a\":1}"));
    assert!(
        done.execution_arn.starts_with("arn:aws:states:us-east-1:123456789012:express:quick:run-1:"),
        "{}",
        done.execution_arn
    );
    assert!(done.billed_duration_ms >= 100 && done.billed_duration_ms % 100 == 0);
    // Names are not unique for Express executions: the id after the name tells them apart.
    let again = engine.start_sync_execution("quick", Some("run-1"), json!({"a": 1})).await?;
    assert_ne!(again.execution_arn, done.execution_arn);
    assert!(matches!(engine.redrive(&done.execution_arn).await, Err(EngineError::ExecutionNotRedrivable(_))));

    let refused = engine.start_sync_execution("standard", None, json!({})).await;
    assert!(matches!(refused, Err(EngineError::StateMachineTypeNotSupported(_))), "{refused:?}");

    let callback = definition(json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}}, "End": true
    }}}))?;
    let err = engine
        .register_state_machine_of_type("waits", callback, StateMachineType::Express)
        .expect_err("Express has no callback pattern");
    assert!(err.to_string().contains("Express state machine does not support '.waitForTaskToken'"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_executions_of_one_name_are_kept_apart_in_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("executions.sqlite"))?);
    let engine = Engine::new(store, Arc::new(VirtualClock::starting_at(epoch())), TaskRegistry::new());
    let pass = definition(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}))?;
    engine.register_state_machine_of_type("poll", pass.clone(), StateMachineType::Express)?;
    engine.register_state_machine("standard", pass)?;
    let first = engine.start_sync_execution("poll", Some("tick"), json!({"n": 1})).await?;
    let second = engine.start_sync_execution("poll", Some("tick"), json!({"n": 2})).await?;
    assert_ne!(first.execution_arn, second.execution_arn);
    assert_eq!(second.output.as_deref(), Some("{\"n\":2}"));
    // A Standard execution's name still claims it.
    let one = engine.start_execution("standard", Some("tick"), json!({})).await?;
    engine.wait(&one.execution_arn).await?;
    assert!(matches!(
        engine.start_execution("standard", Some("tick"), json!({"other": true})).await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_express_execution_times_out_after_five_minutes() -> anyhow::Result<()> {
    let engine = engine(TaskRegistry::new());
    let wait =
        definition(json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 301, "End": true}}}))?;
    engine.register_state_machine_of_type("slow", wait, StateMachineType::Express)?;
    let done = engine.start_sync_execution("slow", None, json!({})).await?;
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    Ok(())
}

/// A registry whose function hands the task token it receives to `tokens`.
fn token_registry() -> (TaskRegistry, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut registry = TaskRegistry::new();
    registry.register("approver", move |event: Value, ctx| {
        let tx = tx.clone();
        async move {
            assert_eq!(event["token"].as_str(), ctx.task_token.as_deref(), "the token is in $$.Task.Token");
            tx.send(event["token"].as_str().unwrap_or_default().to_string()).ok();
            Ok(json!({"queued": true}))
        }
    });
    (registry, rx)
}

fn callback_machine(heartbeat: Option<u64>) -> Value {
    let mut task = json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token", "input.$": "$"}},
        "TimeoutSeconds": 3600,
        "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejected", "Next": "Rejected"}],
        "End": true
    });
    if let Some(h) = heartbeat {
        task["HeartbeatSeconds"] = json!(h);
    }
    json!({"StartAt": "Approve", "States": {"Approve": task, "Rejected": {"Type": "Pass", "End": true}}})
}

/// Callbacks wait on real time: a virtual clock would jump straight to the task's timeout.
fn real_time_engine(registry: TaskRegistry) -> Engine {
    Engine::new(Arc::new(MemoryStore::new()), Arc::new(RealClock), registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_task_token_task_ends_when_its_token_comes_back() -> anyhow::Result<()> {
    let (registry, mut tokens) = token_registry();
    let engine = real_time_engine(registry);
    engine.register_state_machine("approval", definition(callback_machine(None))?)?;

    // Success: the task's result is what was sent back, not the function's answer.
    let started = engine.start_execution("approval", Some("yes"), json!({"order": 7})).await?;
    let token = tokens.recv().await.expect("the function got a token");
    assert!(engine.is_running(&started.execution_arn), "it waits for the token");
    engine.send_task_success(&token, json!({"approved": true}))?;
    let record = engine.wait(&started.execution_arn).await?;
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(record.output.as_deref().unwrap_or("null"))?,
        json!({"approved": true})
    );
    // The token is spent.
    assert!(matches!(engine.send_task_success(&token, json!({})), Err(EngineError::TaskDoesNotExist(_))));
    assert!(matches!(engine.send_task_heartbeat("not-a-token"), Err(EngineError::InvalidToken(_))));

    // Failure: Retry and Catch see the error sent back.
    let started = engine.start_execution("approval", Some("no"), json!({"order": 8})).await?;
    let token = tokens.recv().await.expect("the function got a token");
    engine.send_task_failure(&token, Some("Rejected"), Some("out of stock"))?;
    let record = engine.wait(&started.execution_arn).await?;
    assert_eq!(record.status, ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(record.output.as_deref().unwrap_or("null"))?;
    assert_eq!(output["rejected"], json!({"Error": "Rejected", "Cause": "out of stock"}));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_callback_task_alive_and_their_absence_times_it_out() -> anyhow::Result<()> {
    let (registry, mut tokens) = token_registry();
    let engine = real_time_engine(registry);
    engine.register_state_machine("approval", definition(callback_machine(Some(1)))?)?;

    let started = engine.start_execution("approval", Some("beats"), json!({})).await?;
    let token = tokens.recv().await.expect("the function got a token");
    let beating = std::time::Instant::now();
    while beating.elapsed() < Duration::from_millis(2_500) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        engine.send_task_heartbeat(&token)?;
    }
    assert!(engine.is_running(&started.execution_arn), "heartbeats kept it alive past its 1 s heartbeat");
    let record = tokio::time::timeout(Duration::from_secs(10), engine.wait(&started.execution_arn)).await??;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("States.HeartbeatTimeout"));
    Ok(())
}

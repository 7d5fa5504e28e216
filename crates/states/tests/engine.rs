//! The engine's API as the rest of the project uses it: a workflow shaped like Lector's
//! conversion (substituted Lambda ARNs, a Map over chunks with MaxConcurrency, Retry with
//! backoff, Catch into a failure-recording Task), execution names, history, redrive, stop,
//! resume after a restart, timeouts and clocks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use lector_states::HistoryEvent;
use lector_states::{
    Clock, Definition, DefinitionSubstitutions, Engine, EngineError, ExecutionStatus, MemoryStore, RealClock,
    SqliteStore, StateMachineType, TaskError, TaskRegistry, VirtualClock,
};
use serde_json::{Value, json};

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").expect("valid").with_timezone(&Utc)
}

fn virtual_clock() -> Arc<VirtualClock> {
    Arc::new(VirtualClock::starting_at(epoch()))
}

fn subs() -> DefinitionSubstitutions {
    let mut s = BTreeMap::new();
    for f in ["Prepare", "Synthesize", "Stitch", "RecordFailure"] {
        s.insert(
            format!("{f}FunctionArn"),
            format!("arn:aws:lambda:us-east-1:123456789012:function:lector-{f}"),
        );
    }
    s
}

/// A workflow with the shape of Lector's conversion state machine.
const CONVERSION: &str = r#"{
  "StartAt": "PrepareSpeech",
  "States": {
    "PrepareSpeech": {
      "Type": "Task",
      "Resource": "${PrepareFunctionArn}",
      "Parameters": {"conversion.$": "$.conversion", "execution.$": "$$.Execution.Id", "name.$": "$$.Execution.Name"},
      "Retry": [{"ErrorEquals": ["Lector.Transient", "States.Timeout"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 10, "JitterStrategy": "NONE"}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
      "ResultPath": "$.speech",
      "Next": "SynthesizeChunks"
    },
    "SynthesizeChunks": {
      "Type": "Map",
      "ItemsPath": "$.speech.chunks",
      "MaxConcurrency": 2,
      "ItemSelector": {"conversion.$": "$.conversion", "index.$": "$$.Map.Item.Index", "text.$": "$$.Map.Item.Value"},
      "ItemProcessor": {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "Synthesize",
        "States": {
          "Synthesize": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${SynthesizeFunctionArn}", "Payload.$": "$"},
            "ResultSelector": {"audio.$": "$.Payload.audio"},
            "Retry": [{"ErrorEquals": ["Lector.Transient"], "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2, "MaxDelaySeconds": 4, "JitterStrategy": "FULL"}],
            "End": true
          }
        }
      },
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
      "ResultPath": "$.chunks",
      "Next": "StitchAudio"
    },
    "StitchAudio": {
      "Type": "Task",
      "Resource": "${StitchFunctionArn}",
      "Parameters": {"conversion.$": "$.conversion", "chunks.$": "$.chunks[*].audio"},
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
      "End": true
    },
    "RecordFailure": {
      "Type": "Task",
      "Resource": "${RecordFailureFunctionArn}",
      "Parameters": {"conversion.$": "$.conversion", "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
      "Next": "Failed"
    },
    "Failed": {"Type": "Fail", "Error": "Lector.ConversionFailed", "Cause": "the conversion failed; see RecordFailure"}
  }
}"#;

#[derive(Default)]
struct Observed {
    prepare_calls: AtomicUsize,
    synth_calls: Mutex<Vec<(u64, u32)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    recorded_failures: Mutex<Vec<Value>>,
    prepare_context: Mutex<Vec<Value>>,
}

fn registry(obs: Arc<Observed>, transient_prepare_failures: usize, fail_chunk: Option<u64>) -> TaskRegistry {
    let mut r = TaskRegistry::new();
    let o = obs.clone();
    r.register("arn:aws:lambda:us-east-1:123456789012:function:lector-Prepare", move |input, ctx| {
        let o = o.clone();
        async move {
            let n = o.prepare_calls.fetch_add(1, Ordering::SeqCst);
            o.prepare_context.lock().expect("lock").push(json!({"input": input, "attempt": ctx.attempt()}));
            if n < transient_prepare_failures {
                return Err(TaskError::new("Lector.Transient", "the voice was throttled"));
            }
            Ok(json!({"chunks": ["one", "two", "three", "four", "five"]}))
        }
    });
    let o = obs.clone();
    r.register("lector-Synthesize", move |input: Value, ctx| {
        let o = o.clone();
        async move {
            let index = ctx.map_item_index.expect("a Map item index");
            assert_eq!(input["index"], json!(index), "ItemSelector's $$.Map.Item.Index matches the context");
            let now = o.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            o.max_in_flight.fetch_max(now, Ordering::SeqCst);
            ctx.sleep(Duration::from_secs(1)).await;
            tokio::task::yield_now().await;
            o.in_flight.fetch_sub(1, Ordering::SeqCst);
            o.synth_calls.lock().expect("lock").push((index, ctx.retry_count));
            if Some(index) == fail_chunk {
                return Err(TaskError::new("Lector.InvalidInput", format!("chunk {index} cannot be spoken")));
            }
            if index == 1 && ctx.retry_count == 0 {
                return Err(TaskError::new("Lector.Transient", "throttled once"));
            }
            Ok(json!({"audio": format!("chunk-{index}.mp3")}))
        }
    });
    r.register(
        "arn:aws:lambda:us-east-1:123456789012:function:lector-Stitch",
        |input: Value, _| async move { Ok(json!({"audio": "joined.mp3", "parts": input["chunks"]})) },
    );
    let o = obs;
    r.register("lector-RecordFailure", move |input, _| {
        let o = o.clone();
        async move {
            o.recorded_failures.lock().expect("lock").push(input.clone());
            Ok(json!({"recorded": true}))
        }
    });
    r
}

fn engine_with(
    obs: Arc<Observed>,
    transient: usize,
    fail_chunk: Option<u64>,
    clock: Arc<dyn Clock>,
) -> Engine {
    let engine = Engine::new(Arc::new(MemoryStore::new()), clock, registry(obs, transient, fail_chunk));
    let d = Definition::parse(CONVERSION, &subs()).expect("the workflow is valid");
    engine.register_state_machine("conversion", d).expect("registers");
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversion_workflow_retries_maps_and_stitches() -> anyhow::Result<()> {
    let obs = Arc::new(Observed::default());
    let clock = virtual_clock();
    let engine = engine_with(obs.clone(), 2, None, clock.clone());
    let started = engine.start_execution("conversion", Some("c-1"), json!({"conversion": "c-1"})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
    assert_eq!(
        output,
        json!({"audio": "joined.mp3", "parts": ["chunk-0.mp3", "chunk-1.mp3", "chunk-2.mp3", "chunk-3.mp3", "chunk-4.mp3"]})
    );

    // Two transient failures, then success: retried after 2 s and 2*3 = 6 s.
    assert_eq!(obs.prepare_calls.load(Ordering::SeqCst), 3);
    let ctx = obs.prepare_context.lock().expect("lock").clone();
    assert_eq!(ctx[0]["input"]["execution"], json!(started.execution_arn));
    assert_eq!(ctx[0]["input"]["name"], json!("c-1"));
    assert_eq!(
        ctx.iter().map(|c| c["attempt"].clone()).collect::<Vec<_>>(),
        vec![json!(1), json!(2), json!(3)]
    );
    assert!(clock.now() >= epoch() + chrono::Duration::seconds(8), "the retries waited on the virtual clock");

    // MaxConcurrency 2 is honoured; chunk 1 failed once and was retried.
    assert!(obs.max_in_flight.load(Ordering::SeqCst) <= 2);
    let calls = obs.synth_calls.lock().expect("lock").clone();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert!(calls.contains(&(1, 1)), "{calls:?}");

    let history = engine.history(&started.execution_arn).await?;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(&types[..3], &["ExecutionStarted", "TaskStateEntered", "LambdaFunctionScheduled"]);
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert_eq!(types.iter().filter(|t| **t == "MapIterationSucceeded").count(), 5);
    assert!(types.contains(&"MapStateStarted") && types.contains(&"TaskSucceeded"));
    let ids: Vec<u64> = history.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=history.len() as u64).collect::<Vec<_>>(), "event ids are 1..n");
    let started_event = serde_json::to_value(&history[0])?;
    assert_eq!(started_event["executionStartedEventDetails"]["input"], json!("{\"conversion\":\"c-1\"}"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_caught_recorded_and_fails_the_execution() -> anyhow::Result<()> {
    let obs = Arc::new(Observed::default());
    let engine = engine_with(obs.clone(), 0, Some(3), virtual_clock());
    let started = engine.start_execution("conversion", Some("c-2"), json!({"conversion": "c-2"})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Lector.ConversionFailed"));
    let recorded = obs.recorded_failures.lock().expect("lock").clone();
    assert_eq!(
        recorded,
        vec![
            json!({"conversion": "c-2", "error": "Lector.InvalidInput", "cause": "chunk 3 cannot be spoken"})
        ]
    );
    // A permanent error is not retried.
    let calls = obs.synth_calls.lock().expect("lock").clone();
    assert_eq!(calls.iter().filter(|(i, _)| *i == 3).count(), 1, "{calls:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_names_follow_standard_workflow_rules() -> anyhow::Result<()> {
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut r = TaskRegistry::new();
    let g = gate.clone();
    r.register("wait", move |v, _| {
        let g = g.clone();
        async move {
            g.notified().await;
            Ok(v)
        }
    });
    let engine = Engine::new(Arc::new(MemoryStore::new()), virtual_clock(), r);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"wait","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let first = engine.start_execution("sm", Some("same"), json!({"a": 1})).await?;
    assert!(first.created);
    let again = engine.start_execution("sm", Some("same"), json!({"a": 1})).await?;
    assert!(!again.created, "the running execution is returned");
    assert_eq!(again.execution_arn, first.execution_arn);
    let other_input = engine.start_execution("sm", Some("same"), json!({"a": 2})).await;
    assert!(matches!(other_input, Err(EngineError::ExecutionAlreadyExists(_))), "{other_input:?}");

    gate.notify_one();
    let done = engine.wait(&first.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let after = engine.start_execution("sm", Some("same"), json!({"a": 1})).await;
    assert!(
        matches!(after, Err(EngineError::ExecutionAlreadyExists(_))),
        "a finished name is taken: {after:?}"
    );

    for bad in ["", "has space", "a/b", &"x".repeat(81)] {
        let r = engine.start_execution("sm", Some(bad), json!({})).await;
        assert!(matches!(r, Err(EngineError::InvalidName(_))), "{bad:?}: {r:?}");
    }
    let missing = engine.start_execution("nope", None, json!({})).await;
    assert!(matches!(missing, Err(EngineError::StateMachineDoesNotExist(_))));

    let succeeded = engine.list_executions(Some("sm"), Some(ExecutionStatus::Succeeded)).await?;
    assert_eq!(succeeded.len(), 1);
    assert!(engine.list_executions(Some("sm"), Some(ExecutionStatus::Running)).await?.is_empty());
    Ok(())
}

/// A Map of five items where item 3 fails until `healed` is set.
fn redrive_engine(
    store: Arc<dyn lector_states::ExecutionStore>,
    healed: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<u64>>>,
) -> Engine {
    let mut r = TaskRegistry::new();
    r.register("work", move |v: Value, ctx| {
        let (healed, calls) = (healed.clone(), calls.clone());
        async move {
            let i = ctx.map_item_index.expect("an item index");
            calls.lock().expect("lock").push(i);
            if i == 3 && !healed.load(Ordering::SeqCst) {
                return Err(TaskError::new("Lector.NotFound", "item 3 is missing"));
            }
            Ok(json!({"done": v}))
        }
    });
    let engine = Engine::new(store, virtual_clock(), r);
    engine
        .register_state_machine_text(
            "items",
            r#"{"StartAt":"Each","States":{
                "Each":{"Type":"Map","MaxConcurrency":1,"ItemProcessor":{"StartAt":"Prep","States":{
                    "Prep":{"Type":"Pass","Next":"Work"},
                    "Work":{"Type":"Task","Resource":"work","End":true}}},
                 "Next":"After"},
                "After":{"Type":"Pass","End":true}}}"#,
            &DefinitionSubstitutions::new(),
        )
        .expect("valid");
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_resumes_from_the_failed_state_keeping_successful_work() -> anyhow::Result<()> {
    let healed = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let engine = redrive_engine(Arc::new(MemoryStore::new()), healed.clone(), calls.clone());
    let started = engine.start_execution("items", Some("r-1"), json!([0, 1, 2, 3, 4])).await?;
    let failed = engine.wait(&started.execution_arn).await?;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("Lector.NotFound"));
    let not_failed = engine.redrive("arn:aws:states:us-east-1:123456789012:execution:items:nope").await;
    assert!(matches!(not_failed, Err(EngineError::ExecutionDoesNotExist(_))));

    healed.store(true, Ordering::SeqCst);
    engine.redrive(&started.execution_arn).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.redrive_count, 1);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
    assert_eq!(output, json!([{"done": 0}, {"done": 1}, {"done": 2}, {"done": 3}, {"done": 4}]));
    let mut calls = calls.lock().expect("lock").clone();
    calls.sort();
    // Items 0, 1 and 2 succeeded before the failure and did not run again; 3 ran twice.
    assert_eq!(calls, vec![0, 1, 2, 3, 3, 4]);
    let history = engine.history(&started.execution_arn).await?;
    let redriven = history.iter().find(|e| e.event_type == "ExecutionRedriven").expect("a redrive event");
    assert_eq!(redriven.detail().map(|d| d["redriveCount"].clone()), Some(json!(1)));
    let again = engine.redrive(&started.execution_arn).await;
    assert!(matches!(again, Err(EngineError::ExecutionNotRedrivable(_))), "a succeeded execution: {again:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_execution_is_aborted_and_can_be_redriven() -> anyhow::Result<()> {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut r = TaskRegistry::new();
    let g = gate.clone();
    r.register("gated", move |v, _| {
        let g = g.clone();
        async move {
            let _permit = g.acquire().await.map_err(|e| TaskError::new("Gate.Closed", e.to_string()))?;
            Ok(v)
        }
    });
    let engine = Engine::new(Arc::new(MemoryStore::new()), virtual_clock(), r);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"gated","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let started = engine.start_execution("sm", Some("s-1"), json!({"k": 1})).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.stop(&started.execution_arn, Some("Operator.Stop"), Some("stopped by a test")).await?;
    let stopped = engine.wait(&started.execution_arn).await?;
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(stopped.error.as_deref(), Some("Operator.Stop"));
    gate.add_permits(1);
    engine.redrive(&started.execution_arn).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some("{\"k\":1}"));
    Ok(())
}

#[test]
fn running_executions_resume_after_a_restart_from_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("states.sqlite");
    let healed = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    // First process: item 3 never returns (its handler hangs until the runtime is dropped).
    let arn = {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let mut r = TaskRegistry::new();
            let c = calls.clone();
            r.register("work", move |v: Value, ctx| {
                let c = c.clone();
                async move {
                    let i = ctx.map_item_index.expect("an item index");
                    if i == 3 {
                        std::future::pending::<()>().await;
                    }
                    c.lock().expect("lock").push(i);
                    Ok(json!({"done": v}))
                }
            });
            let engine = Engine::new(Arc::new(SqliteStore::open(&path)?), virtual_clock(), r);
            engine.register_state_machine_text("items", ITEMS_MAP, &DefinitionSubstitutions::new())?;
            let started = engine.start_execution("items", Some("resume-1"), json!([0, 1, 2, 3, 4])).await?;
            calls_reach(&calls, 3).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            anyhow::Ok(started.execution_arn)
        })?
        // Dropping the runtime ends the engine mid-execution, as a crash would.
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        healed.store(true, Ordering::SeqCst);
        let engine = redrive_engine(Arc::new(SqliteStore::open(&path)?), healed.clone(), calls.clone());
        let before = engine.describe(&arn).await?;
        assert_eq!(before.status, ExecutionStatus::Running);
        let resumed = engine.resume().await?;
        assert_eq!(resumed, vec![arn.clone()]);
        let done = engine.wait(&arn).await?;
        assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
        let mut calls = calls.lock().expect("lock").clone();
        calls.sort();
        assert_eq!(calls, vec![0, 1, 2, 3, 4], "completed items did not run again");
        anyhow::Ok(())
    })
}

/// A Map of five items over the Task `work`, one at a time.
const ITEMS_MAP: &str = r#"{"StartAt":"Each","States":{"Each":{"Type":"Map","MaxConcurrency":1,
    "ItemProcessor":{"StartAt":"Work","States":{"Work":{"Type":"Task","Resource":"work","End":true}}},
    "End":true}}}"#;

/// Waits until `calls` holds `n` items.
async fn calls_reach(calls: &Mutex<Vec<u64>>, n: usize) {
    while calls.lock().expect("lock").len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `work` records each item it is called for and returns it; item `hang` never returns,
/// item `fail` fails.
fn items_registry(calls: Arc<Mutex<Vec<u64>>>, hang: Option<u64>, fail: Option<u64>) -> TaskRegistry {
    let mut r = TaskRegistry::new();
    r.register("work", move |v: Value, ctx| {
        let c = calls.clone();
        async move {
            let i = ctx.map_item_index.expect("an item index");
            c.lock().expect("lock").push(i);
            if Some(i) == hang {
                std::future::pending::<()>().await;
            }
            if Some(i) == fail {
                return Err(TaskError::new("Work.Failed", format!("item {i}")));
            }
            Ok(json!({"done": v}))
        }
    });
    r
}

fn express_engine(
    store: Arc<dyn lector_states::ExecutionStore>,
    registry: TaskRegistry,
) -> anyhow::Result<Engine> {
    // The real clock: on a virtual one, a handler that never returns lets time run on to the
    // Express execution's five-minute limit.
    let engine = Engine::new(store, Arc::new(RealClock), registry);
    let definition = Definition::parse(ITEMS_MAP, &DefinitionSubstitutions::new())?;
    engine.register_state_machine_of_type("items", definition, StateMachineType::Express)?;
    Ok(engine)
}

fn types(history: &[HistoryEvent]) -> Vec<&str> {
    history.iter().map(|e| e.event_type.as_str()).collect()
}

/// An Express execution is kept as AWS keeps one: nothing of its run is written until it
/// ends, a restart runs it again from its start, and a success keeps its record, its start and
/// its end, not the history between.
#[test]
fn an_express_execution_starts_over_after_a_restart_and_keeps_no_history_when_it_succeeds()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("states.sqlite");
    let calls = Arc::new(Mutex::new(Vec::new()));
    // First process: items 0-2 done, item 3 never returns; the process then ends.
    let arn = {
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let engine = express_engine(
                Arc::new(SqliteStore::open(&path)?),
                items_registry(calls.clone(), Some(3), None),
            )?;
            let started = engine.start_execution("items", Some("poll-1"), json!([0, 1, 2, 3, 4])).await?;
            calls_reach(&calls, 4).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            anyhow::Ok(started.execution_arn)
        })?
    };
    assert!(arn.contains(":express:items:poll-1:"), "{arn}");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open(&path)?);
        // Three iterations ended, and the file holds only what the start wrote.
        let history = lector_states::ExecutionStore::history(&*store, &arn).await?;
        assert_eq!(types(&history), ["ExecutionStarted", "MapStateEntered"]);
        let frames = lector_states::ExecutionStore::frames(&*store, &arn).await?;
        assert_eq!(frames.iter().map(|f| &*f.path).collect::<Vec<_>>(), [""]);

        let engine = express_engine(store, items_registry(calls.clone(), None, None))?;
        assert_eq!(engine.resume().await?, vec![arn.clone()]);
        let done = engine.wait(&arn).await?;
        assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
        // Run again from the start: every item, the first three a second time.
        assert_eq!(*calls.lock().expect("lock"), [0, 1, 2, 3, 0, 1, 2, 3, 4]);
        let history = engine.history(&arn).await?;
        let kinds = types(&history);
        assert_eq!(kinds[..2], ["ExecutionStarted", "MapStateEntered"]);
        assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
        assert!(!kinds.iter().any(|k| k.starts_with("MapIteration") || k.starts_with("Lambda")), "{kinds:?}");
        assert!(history.windows(2).all(|w| w[0].id < w[1].id), "ids in order: {kinds:?}");
        anyhow::Ok(())
    })
}

/// An Express execution that fails, or is stopped, keeps every event it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_express_execution_that_fails_or_is_stopped_keeps_its_whole_history() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("states.sqlite"))?);
    let calls = Arc::new(Mutex::new(Vec::new()));

    let engine = express_engine(store.clone(), items_registry(calls.clone(), None, Some(2)))?;
    let failed = engine.start_execution("items", Some("fails"), json!([0, 1, 2, 3])).await?;
    let done = engine.wait(&failed.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Failed, "{done:?}");
    assert_eq!(done.error.as_deref(), Some("Work.Failed"));
    let history = engine.history(&failed.execution_arn).await?;
    let kinds = types(&history);
    assert_eq!(kinds.iter().filter(|k| **k == "MapIterationSucceeded").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "LambdaFunctionFailed").count(), 1, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"ExecutionFailed"));
    assert!(history.windows(2).all(|w| w[0].id < w[1].id), "ids in order: {kinds:?}");

    let engine = express_engine(store, items_registry(calls.clone(), Some(1), None))?;
    let stopped = engine.start_execution("items", Some("stopped"), json!([0, 1, 2])).await?;
    calls_reach(&calls, 5).await;
    engine.stop(&stopped.execution_arn, Some("Operator.Stop"), None).await?;
    let history = engine.history(&stopped.execution_arn).await?;
    let kinds = types(&history);
    assert_eq!(kinds.iter().filter(|k| **k == "MapIterationSucceeded").count(), 1, "{kinds:?}");
    // The iteration in flight has written nothing yet, as a Standard execution's would not.
    assert_eq!(kinds.iter().filter(|k| **k == "LambdaFunctionStarted").count(), 1, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"ExecutionAborted"));
    assert!(history.windows(2).all(|w| w[0].id < w[1].id), "ids in order: {kinds:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_timeouts_and_machine_timeouts_run_on_the_virtual_clock() -> anyhow::Result<()> {
    let mut r = TaskRegistry::new();
    r.register("slow", |v, ctx| async move {
        ctx.sleep(Duration::from_secs(600)).await;
        Ok(v)
    });
    let clock = virtual_clock();
    let engine = Engine::new(Arc::new(MemoryStore::new()), clock.clone(), r);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"Year","States":{
            "Year":{"Type":"Wait","Seconds":31536000,"Next":"Slow"},
            "Slow":{"Type":"Task","Resource":"slow","TimeoutSeconds":5,
                    "Retry":[{"ErrorEquals":["States.Timeout"],"IntervalSeconds":1,"MaxAttempts":1}],
                    "Catch":[{"ErrorEquals":["States.Timeout"],"Next":"TimedOut"}],"End":true},
            "TimedOut":{"Type":"Pass","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let real = std::time::Instant::now();
    let started = engine.start_execution("sm", None, json!({})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert!(real.elapsed() < Duration::from_secs(5));
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some("{\"Error\":\"States.Timeout\"}"));
    // One year, then two 5 s timeouts and a 1 s retry interval.
    assert_eq!((clock.now() - epoch()).num_seconds(), 31_536_000 + 11);

    engine.register_state_machine_text(
        "limited",
        r#"{"TimeoutSeconds":60,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let started = engine.start_execution("limited", None, json!({})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    Ok(())
}

#[tokio::test]
async fn the_real_clock_really_waits() -> anyhow::Result<()> {
    let engine = Engine::new(Arc::new(MemoryStore::new()), Arc::new(RealClock), TaskRegistry::new());
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":1,"End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let real = std::time::Instant::now();
    let started = engine.start_execution("sm", None, json!({"x": 1})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert!(real.elapsed() >= Duration::from_millis(950), "{:?}", real.elapsed());
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    Ok(())
}

#[tokio::test]
async fn unknown_functions_and_jsonata_are_refused_with_clear_errors() -> anyhow::Result<()> {
    let engine = Engine::new(Arc::new(MemoryStore::new()), virtual_clock(), TaskRegistry::new());
    let jsonata = engine.register_state_machine_text(
        "j",
        r#"{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    );
    match jsonata {
        Err(EngineError::InvalidDefinition(e)) => {
            assert!(e.is_unsupported() && e.to_string().contains("JSONata"))
        }
        other => panic!("JSONata must be refused as unsupported: {other:?}"),
    }
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:missing","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let started = engine.start_execution("sm", None, json!({})).await?;
    let done = engine.wait(&started.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Lambda.ResourceNotFoundException"));
    assert!(done.cause.as_deref().unwrap_or("").contains("function:missing"), "{:?}", done.cause);
    let big = engine.start_execution("sm", None, json!({"s": "x".repeat(300 * 1024)})).await;
    assert!(matches!(big, Err(EngineError::InvalidExecutionInput(_))));
    Ok(())
}

/// A Map of two items whose handler blocks its thread until both have started: the handlers
/// must run on two threads at once, as two Lambda invocations run in two environments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handlers_of_a_maps_iterations_run_at_once_on_separate_threads() -> anyhow::Result<()> {
    let started = Arc::new(AtomicUsize::new(0));
    let mut registry = TaskRegistry::new();
    let counter = started.clone();
    registry.register("arn:aws:lambda:us-east-1:1:function:block", move |input: Value, _ctx| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            // Blocks this thread (no await): a second iteration can start only elsewhere.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while counter.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(json!({"item": input, "met": counter.load(Ordering::SeqCst) >= 2}))
        }
    });
    let engine = Engine::new(Arc::new(MemoryStore::new()), Arc::new(RealClock), registry);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","MaxConcurrency":2,"ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:block","End":true}}},"End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let run = engine.start_execution("sm", None, json!([1, 2])).await?;
    let done = engine.wait(&run.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{:?}", done.cause);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
    assert_eq!(output, json!([{"item": 1, "met": true}, {"item": 2, "met": true}]));
    Ok(())
}

#[tokio::test]
async fn a_handler_that_panics_fails_its_task_as_a_dead_lambda_and_can_be_caught() -> anyhow::Result<()> {
    let mut registry = TaskRegistry::new();
    registry.register("arn:aws:lambda:us-east-1:1:function:crash", |_input: Value, _ctx| async move {
        if true {
            panic!("index out of bounds");
        }
        Ok::<Value, TaskError>(json!({}))
    });
    let engine = Engine::new(Arc::new(MemoryStore::new()), Arc::new(RealClock), registry);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:crash","Catch":[{"ErrorEquals":["Runtime.ExitError"],"ResultPath":"$.error","Next":"Caught"}],"End":true},"Caught":{"Type":"Pass","End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let run = engine.start_execution("sm", None, json!({})).await?;
    let done = engine.wait(&run.execution_arn).await?;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{:?}", done.cause);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
    assert_eq!(output["error"]["Error"], "Runtime.ExitError");
    assert!(output["error"]["Cause"].as_str().unwrap_or("").contains("index out of bounds"), "{output}");
    Ok(())
}

/// A store whose commits of a Map iteration's end are held until the handler of the Map's
/// last item has run.
#[derive(Debug)]
struct EndsHeldUntilLast {
    store: MemoryStore,
    last_ran: tokio::sync::watch::Receiver<bool>,
}

impl lector_states::ExecutionStore for EndsHeldUntilLast {
    fn create(
        &self,
        record: lector_states::ExecutionRecord,
        first: lector_states::store::Batch,
    ) -> BoxFuture<'static, Result<lector_states::store::CreateOutcome, lector_states::StoreError>> {
        self.store.create(record, first)
    }
    fn commit(
        &self,
        batch: lector_states::store::Batch,
    ) -> BoxFuture<'static, Result<(), lector_states::StoreError>> {
        let an_end = batch.events.iter().any(|e| e.to_history().event_type == "MapIterationSucceeded");
        let (mut last_ran, store) = (self.last_ran.clone(), self.store.clone());
        Box::pin(async move {
            if an_end {
                let _ = last_ran.wait_for(|ran| *ran).await;
            }
            store.commit(batch).await
        })
    }
    fn execution(
        &self,
        arn: &str,
    ) -> BoxFuture<'static, Result<Option<lector_states::ExecutionRecord>, lector_states::StoreError>> {
        self.store.execution(arn)
    }
    fn list(
        &self,
        filter: lector_states::store::ListFilter,
    ) -> BoxFuture<'static, Result<Vec<lector_states::ExecutionRecord>, lector_states::StoreError>> {
        self.store.list(filter)
    }
    fn history(&self, arn: &str) -> BoxFuture<'static, Result<Vec<HistoryEvent>, lector_states::StoreError>> {
        self.store.history(arn)
    }
    fn frames(
        &self,
        arn: &str,
    ) -> BoxFuture<'static, Result<Vec<lector_states::store::FrameRecord>, lector_states::StoreError>> {
        self.store.frames(arn)
    }
    fn last_event_id(&self, arn: &str) -> BoxFuture<'static, Result<u64, lector_states::StoreError>> {
        self.store.last_event_id(arn)
    }
}

/// One iteration at a time, and no iteration's end can be committed before the last item's
/// handler has run: the next iteration must start while the one before is being written, and
/// every end must still be in the history before the Map's own.
#[tokio::test]
async fn a_maps_next_iteration_does_not_wait_for_the_commit_of_the_one_before() -> anyhow::Result<()> {
    let (ran, last_ran) = tokio::sync::watch::channel(false);
    let ran = Arc::new(ran);
    let mut registry = TaskRegistry::new();
    registry.register("arn:aws:lambda:us-east-1:1:function:item", move |input: Value, _ctx| {
        let ran = ran.clone();
        async move {
            if input == json!(4) {
                ran.send_replace(true);
            }
            Ok(json!({"item": input}))
        }
    });
    let store = Arc::new(EndsHeldUntilLast { store: MemoryStore::new(), last_ran });
    let engine = Engine::new(store, Arc::new(RealClock), registry);
    engine.register_state_machine_text(
        "sm",
        r#"{"StartAt":"M","States":{"M":{"Type":"Map","MaxConcurrency":1,"ItemProcessor":{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:item","End":true}}},"End":true}}}"#,
        &DefinitionSubstitutions::new(),
    )?;
    let run = engine.start_execution("sm", None, json!([1, 2, 3, 4])).await?;
    let done = tokio::time::timeout(Duration::from_secs(10), engine.wait(&run.execution_arn))
        .await
        .map_err(|_| anyhow::anyhow!("the Map waited for a commit held until its last item ran"))??;
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{:?}", done.cause);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
    assert_eq!(output, json!([{"item": 1}, {"item": 2}, {"item": 3}, {"item": 4}]));
    let history = engine.history(&run.execution_arn).await?;
    let position = |t: &str| history.iter().rposition(|e| e.event_type == t);
    assert_eq!(history.iter().filter(|e| e.event_type == "MapIterationSucceeded").count(), 4);
    assert!(position("MapIterationSucceeded") < position("MapStateSucceeded"), "ends before the Map's own");
    Ok(())
}

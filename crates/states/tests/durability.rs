//! Durability under a real crash: a child process (this test binary, re-run) is SIGKILLed in
//! the middle of a Map of Tasks; a new engine resumes the execution from the SQLite store.
//!
//! The guarantee proven: a Task whose success was recorded never runs again, and every item's
//! Task has its side effect exactly once. The kill point is deterministic: the store shows
//! exactly K recorded Task successes, and the other in-flight handlers are parked at a gate
//! before their side effect, so none of them has done it yet.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lector_states::{
    DefinitionSubstitutions, Engine, ExecutionStatus, SqliteStore, TaskRegistry, VirtualClock,
};
use serde_json::{Value, json};

const CHILD_ENV: &str = "LECTOR_STATES_DURABILITY_DIR";
const ITEMS: usize = 8;
/// Items whose Task completes in the child before the kill.
const COMPLETED_BEFORE_KILL: usize = 4;
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:chunks:conversion-1";

const DEFINITION: &str = r#"{
  "StartAt": "Synthesize",
  "States": {
    "Synthesize": {
      "Type": "Map",
      "MaxConcurrency": 3,
      "ItemSelector": {"index.$": "$$.Map.Item.Index", "text.$": "$$.Map.Item.Value"},
      "ItemProcessor": {
        "StartAt": "Speak",
        "States": {
          "Speak": {"Type": "Task", "Resource": "speak", "Next": "Done"},
          "Done": {"Type": "Pass", "End": true}
        }
      },
      "End": true
    }
  }
}"#;

/// The side effect: one line per Task run, appended to a file shared by both processes.
fn record_effect(dir: &Path, index: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("effects.log"))?;
    writeln!(f, "{index}")?;
    f.sync_all()
}

fn engine(dir: &Path, parked: bool) -> anyhow::Result<Engine> {
    let mut registry = TaskRegistry::new();
    let d = dir.to_path_buf();
    registry.register("speak", move |input: Value, _ctx| {
        let d = d.clone();
        async move {
            let index = input["index"].as_u64().unwrap_or(u64::MAX);
            if parked && index >= COMPLETED_BEFORE_KILL as u64 {
                // Park before the side effect and say so; the parent kills the process here.
                std::fs::write(d.join(format!("parked-{index}")), b"")
                    .map_err(|e| lector_states::TaskError::new("Test.Io", e.to_string()))?;
                std::future::pending::<()>().await;
            }
            record_effect(&d, index).map_err(|e| lector_states::TaskError::new("Test.Io", e.to_string()))?;
            Ok(json!({"audio": format!("chunk-{index}.mp3")}))
        }
    });
    let store = SqliteStore::open(dir.join("states.sqlite"))?;
    let engine = Engine::new(Arc::new(store), Arc::new(VirtualClock::default()), registry);
    engine.register_state_machine_text("chunks", DEFINITION, &DefinitionSubstitutions::new())?;
    Ok(engine)
}

fn recorded_task_successes(db: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM events WHERE execution = (SELECT seq FROM executions WHERE arn = ?1) AND body LIKE '%\"type\":\"LambdaFunctionSucceeded\"%'",
        [EXECUTION],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
    .unwrap_or(0)
}

fn parked(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("parked-"))
                .count()
        })
        .unwrap_or(0)
}

/// The child: starts the execution and runs until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the durability test runs this as the child process it kills (needs LECTOR_STATES_DURABILITY_DIR)"]
async fn child_runs_the_map_until_killed() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::var(CHILD_ENV)?);
    let engine = engine(&dir, true)?;
    let items: Vec<String> = (0..ITEMS).map(|i| format!("sentence {i}")).collect();
    let started = engine.start_execution("chunks", Some("conversion-1"), json!(items)).await?;
    assert_eq!(started.execution_arn, EXECUTION);
    // Parked handlers never return: this waits until the parent kills the process.
    engine.wait(&started.execution_arn).await?;
    anyhow::bail!("the execution finished although its handlers are parked")
}

/// Kills the child process if the test fails before doing so itself.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_engine_resumes_its_map_and_runs_each_task_once_per_item() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe()?)
            .args(["--exact", "child_runs_the_map_until_killed", "--ignored", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let db = dir.path().join("states.sqlite");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = recorded_task_successes(&db);
        // MaxConcurrency 3: after the K fast items, three handlers sit parked at the gate.
        if done == COMPLETED_BEFORE_KILL && parked(dir.path()) == 3 {
            break;
        }
        if let Some(status) = child.0.try_wait()? {
            anyhow::bail!("the child exited before the kill point: {status}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the child did not reach the kill point ({done} successes)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.0.kill()?; // SIGKILL: no cleanup, no flush.
    child.0.wait()?;
    let effects_before = std::fs::read_to_string(dir.path().join("effects.log"))?;
    assert_eq!(effects_before.lines().count(), COMPLETED_BEFORE_KILL);

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let engine = engine(dir.path(), false)?;
        let resumed = engine.resume().await?;
        assert_eq!(resumed, vec![EXECUTION.to_string()]);
        let done = engine.wait(EXECUTION).await?;
        assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
        let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
        let expected: Vec<Value> = (0..ITEMS).map(|i| json!({"audio": format!("chunk-{i}.mp3")})).collect();
        assert_eq!(output, Value::Array(expected));
        anyhow::Ok(())
    })?;

    let effects = std::fs::read_to_string(dir.path().join("effects.log"))?;
    let mut runs: Vec<u64> = effects.lines().map(|l| l.parse()).collect::<Result<_, _>>()?;
    runs.sort();
    assert_eq!(runs, (0..ITEMS as u64).collect::<Vec<_>>(), "each item's Task ran exactly once");
    Ok(())
}

//! State transitions per second of the engine, on the definitions in `benchmarks/states/`
//! (the same files `scripts/bench-states.sh` runs on aws-local-stepfunctions), and the
//! per-transition cost of durability: the same runs on the in-memory and the SQLite store.
//!
//! `cargo bench -p lector-states --bench transitions` prints a table and one `RESULT {json}`
//! line per scenario for the script.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lector_states::{
    DefinitionSubstitutions, Engine, ExecutionStatus, ExecutionStore, MemoryStore, SqliteStore, TaskRegistry,
    VirtualClock,
};
use serde_json::{Value, json};

fn definition(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks/states").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn engine(store: Arc<dyn ExecutionStore>) -> Engine {
    let mut registry = TaskRegistry::new();
    registry.register("arn:aws:lambda:us-east-1:123456789012:function:work", |v, _| async move { Ok(v) });
    let engine = Engine::new(store, Arc::new(VirtualClock::default()), registry);
    for (name, file) in
        [("loop", "loop.asl.json"), ("map", "map.asl.json"), ("map-task", "map-task.asl.json")]
    {
        engine
            .register_state_machine_text(name, &definition(file), &DefinitionSubstitutions::new())
            .expect("the benchmark definitions are valid");
    }
    engine
}

struct Scenario {
    name: &'static str,
    machine: &'static str,
    input: Value,
    /// States executed per execution (the Map state and one state per item, or the loop's).
    transitions: u64,
    executions: usize,
    sqlite: bool,
}

async fn run_once(s: &Scenario) -> Duration {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store: Arc<dyn ExecutionStore> = if s.sqlite {
        Arc::new(SqliteStore::open(dir.path().join("bench.sqlite")).expect("opens"))
    } else {
        Arc::new(MemoryStore::new())
    };
    let engine = engine(store);
    // The inputs are built before the clock starts, as the peer's are.
    let inputs: Vec<Value> = (0..s.executions).map(|_| s.input.clone()).collect();
    let start = Instant::now();
    let mut arns = Vec::with_capacity(s.executions);
    for input in inputs {
        arns.push(engine.start_execution(s.machine, None, input).await.expect("starts").execution_arn);
    }
    for arn in arns {
        let done = engine.wait(&arn).await.expect("waits");
        assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    }
    start.elapsed()
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let n_loop: u64 = std::env::var("BENCH_LOOP_N").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let n_items: usize = std::env::var("BENCH_ITEMS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let items: Vec<Value> =
        (0..n_items).map(|i| json!({"index": i, "text": format!("sentence {i}")})).collect();
    let scenarios = [
        Scenario {
            name: "loop/memory",
            machine: "loop",
            input: json!({"n": n_loop}),
            transitions: 2 * n_loop + 2,
            executions: 1,
            sqlite: false,
        },
        Scenario {
            name: "loop/sqlite",
            machine: "loop",
            input: json!({"n": n_loop}),
            transitions: 2 * n_loop + 2,
            executions: 1,
            sqlite: true,
        },
        Scenario {
            name: "map1000/memory",
            machine: "map",
            input: json!({"items": items}),
            transitions: n_items as u64 + 1,
            executions: 1,
            sqlite: false,
        },
        Scenario {
            name: "map1000/sqlite",
            machine: "map",
            input: json!({"items": items}),
            transitions: n_items as u64 + 1,
            executions: 1,
            sqlite: true,
        },
        Scenario {
            name: "map1000-task/memory",
            machine: "map-task",
            input: json!({"items": items}),
            transitions: n_items as u64 + 1,
            executions: 1,
            sqlite: false,
        },
        Scenario {
            name: "map1000-task/sqlite",
            machine: "map-task",
            input: json!({"items": items}),
            transitions: n_items as u64 + 1,
            executions: 1,
            sqlite: true,
        },
        Scenario {
            name: "200x-loop100/memory",
            machine: "loop",
            input: json!({"n": 100}),
            transitions: 202,
            executions: 200,
            sqlite: false,
        },
        Scenario {
            name: "200x-loop100/sqlite",
            machine: "loop",
            input: json!({"n": 100}),
            transitions: 202,
            executions: 200,
            sqlite: true,
        },
    ];
    println!(
        "{:<22} {:>12} {:>10} {:>14} {:>12}",
        "scenario", "transitions", "seconds", "transitions/s", "µs/transition"
    );
    let filter = std::env::var("BENCH_FILTER").ok();
    for s in scenarios.iter().filter(|s| filter.as_ref().is_none_or(|f| s.name.contains(f.as_str()))) {
        // A warm-up, then at least 11 runs and at least half a second of them: short
        // scenarios are repeated more, so that one slow run does not decide the median.
        let warm = rt.block_on(run_once(s));
        let runs = (Duration::from_millis(500).as_secs_f64() / warm.as_secs_f64().max(1e-6)).ceil() as usize;
        let runs = runs.clamp(11, 301) | 1;
        let mut times: Vec<Duration> = (0..runs).map(|_| rt.block_on(run_once(s))).collect();
        times.sort();
        let median = times[times.len() / 2];
        let total = s.transitions * s.executions as u64;
        let secs = median.as_secs_f64();
        let per_sec = total as f64 / secs;
        println!("{:<22} {:>12} {:>10.4} {:>14.0} {:>12.2}", s.name, total, secs, per_sec, 1e6 / per_sec);
        println!(
            "RESULT {}",
            json!({"engine": "lector-states", "scenario": s.name, "transitions": total, "seconds": secs, "transitions_per_second": per_sec})
        );
    }
}

//! Init time of built Lambda functions: each `<dir>/<name>/bootstrap` is spawned with a Runtime
//! API stub on loopback and the environment its template entry gives, and timed from spawn to its
//! first `GET /next` (the moment Lambda counts init as done). Rounds alternate the functions,
//! starting each round at another one, so that a busy neighbour on the machine slows every
//! function alike; medians are compared within the same rounds.
//!
//! ```text
//! cargo run -p lector-lambda --example lambda_init -- --dir <lambda dir> [--rounds 21]
//!     [--baseline hello-lambda] [--target 1.2]
//! ```
//!
//! Each function is compared with the hello-world function that builds the same SDK clients
//! with the same configuration (`<dir>/init-ladder/bootstrap` given `LECTOR_INIT_CLIENTS`, run
//! as `same-clients:<function>`): the ratio is Lector's own share of the init, and the target
//! applies to it. The plain hello-world function (`--baseline`, no SDK at all) is reported
//! beside it, with each function's absolute time. The same bootstrap is also run once per step
//! of [`STEPS`], as `init-ladder:<step>`, and reported apart: what each step of a function's init
//! adds over the plain hello-world function.
//!
//! `scripts/bench-lambdas.sh` builds the bootstraps and runs it. Exits non-zero when a function
//! does not reach `/next` (its output is shown), not when one is over the target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lector_aws::feed_index::FEED_TABLE_VAR;
use lector_aws::index::INDEX_TABLE_VAR;
use lector_aws::polls::POLL_STATE_MACHINE_VAR;
use lector_aws::settings::{BUCKET_VAR, BUS_VAR, SETTINGS_PATH_VAR, STATE_MACHINE_VAR, TABLE_VAR};
use lector_lambda::config::{METRICS_NAMESPACE_VAR, PUBLIC_URL_VAR};
use lector_lambda::init_ladder::{CLIENTS_VAR, STEP_VAR, STEPS, clients_of};
use lector_lambda::runtime_api::{Call, RuntimeApi, closed_endpoint, lambda_env};
use tokio::process::Command;

/// How long a function may take to reach `/next` before it counts as failed.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Args {
    dir: PathBuf,
    rounds: usize,
    baseline: String,
    target: f64,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args { dir: PathBuf::new(), rounds: 21, baseline: "hello-lambda".into(), target: 1.2 };
    let mut dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--rounds" => parsed.rounds = value()?.parse().context("--rounds is a number")?,
            "--baseline" => parsed.baseline = value()?,
            "--target" => parsed.target = value()?.parse().context("--target is a ratio")?,
            other => bail!(
                "unknown argument {other}; usage: --dir DIR [--rounds N] [--baseline NAME] [--target R]"
            ),
        }
    }
    parsed.dir = dir.context("--dir DIR (the folder of <name>/bootstrap) is required")?;
    if parsed.rounds < 15 {
        bail!("--rounds {} is too few for a median worth reading; give 15 or more", parsed.rounds);
    }
    Ok(parsed)
}

/// The bench function that stops its init after a chosen step, or builds chosen clients.
const LADDER: &str = "init-ladder";

/// The prefix of a function's hello-world with the same clients.
const SAME_CLIENTS: &str = "same-clients:";

/// One thing to time: a bootstrap, and the variables that tell it apart from another run of
/// the same bootstrap.
#[derive(Debug)]
struct Subject {
    bootstrap: PathBuf,
    env: Vec<(&'static str, String)>,
}

/// Every `<dir>/<name>/bootstrap`, by name; the ladder's once per step.
fn bootstraps(dir: &Path) -> anyhow::Result<BTreeMap<String, Subject>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let bootstrap = entry.path().join("bootstrap");
        if !bootstrap.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == LADDER {
            for step in STEPS {
                let env = vec![(STEP_VAR, step.name().to_owned())];
                found.insert(
                    format!("{LADDER}:{}", step.name()),
                    Subject { bootstrap: bootstrap.clone(), env },
                );
            }
        } else {
            found.insert(name, Subject { bootstrap, env: Vec::new() });
        }
    }
    // Each function's hello-world with the same clients, when the bench function is there.
    if let Some(ladder) = found.get(&format!("{LADDER}:{}", STEPS[0].name())).map(|s| s.bootstrap.clone()) {
        let functions: Vec<String> = found.keys().filter(|n| clients_of(n).is_some()).cloned().collect();
        for function in functions {
            let clients = clients_of(&function).unwrap_or_default();
            let list = clients.iter().map(|c| c.name()).collect::<Vec<_>>().join(",");
            let subject = Subject { bootstrap: ladder.clone(), env: vec![(CLIENTS_VAR, list)] };
            found.insert(format!("{SAME_CLIENTS}{function}"), subject);
        }
    }
    Ok(found)
}

/// The variables the template gives the functions, with values that name nothing real. Every
/// function gets all of them: one it does not read changes nothing.
fn function_env() -> Vec<(&'static str, &'static str)> {
    vec![
        (TABLE_VAR, "lector-bench-events"),
        (INDEX_TABLE_VAR, "lector-bench-conversions"),
        (BUCKET_VAR, "lector-bench-data"),
        (BUS_VAR, "lector-bench"),
        (SETTINGS_PATH_VAR, "/lector/lector-bench/"),
        (STATE_MACHINE_VAR, "arn:aws:states:us-east-1:123456789012:stateMachine:lector-bench"),
        (METRICS_NAMESPACE_VAR, "Lector/lector-bench"),
        (PUBLIC_URL_VAR, "https://listen.example/"),
        (FEED_TABLE_VAR, "lector-bench-feeds"),
        (POLL_STATE_MACHINE_VAR, "arn:aws:states:us-east-1:123456789012:stateMachine:lector-bench-poll"),
    ]
}

/// Every `LECTOR_*` variable template.yaml gives a function is in [`function_env`]: a function
/// missing one would stop before `/next` and the run would end half-way.
fn check_function_env() -> anyhow::Result<()> {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text =
        std::fs::read_to_string(&template).with_context(|| format!("reading {}", template.display()))?;
    let given: Vec<&str> = function_env().into_iter().map(|(k, _)| k).collect();
    let mut missing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k))
        .filter(|k| k.starts_with("LECTOR_") && !given.contains(k))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        bail!("template.yaml gives functions {missing:?}, which lambda_init's function_env does not");
    }
    Ok(())
}

/// Spawn → first `/next` of one bootstrap.
async fn init_time(name: &str, subject: &Subject, endpoint: &str) -> anyhow::Result<Duration> {
    let bootstrap = &subject.bootstrap;
    let task_root = bootstrap.parent().context("a bootstrap is inside its function's folder")?;
    let mut api = RuntimeApi::start(Vec::new()).await?;
    let mut command = Command::new(bootstrap);
    command
        .env_clear()
        // As Lambda sets it: host and port, no scheme.
        .envs(lambda_env(&api.address, name))
        .envs(function_env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_SESSION_TOKEN", "test")
        // As on Lambda: no HOME (so no ~/.aws to read, and the SDK, whose profile paths start
        // at ~, warns of nothing), and the task root as the working directory.
        .env("LAMBDA_TASK_ROOT", task_root)
        .current_dir(task_root)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TZ", ":UTC")
        .env("LANG", "en_US.UTF-8")
        .envs(subject.env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = command.spawn().with_context(|| format!("spawning {}", bootstrap.display()))?;
    let first = api.first_call(&mut child, PATIENCE).await.map_err(|why| anyhow::anyhow!("{name} {why}"))?;
    let outcome = match first {
        Some(Call::Next(at)) => Ok(at.duration_since(spawned)),
        Some(other) => Err(format!("{name} reported {other:?} instead of asking for an event")),
        None => Err(format!("{name} did not ask for an event within {PATIENCE:?}")),
    };
    child.start_kill()?;
    match outcome {
        Ok(elapsed) => {
            child.wait().await?;
            Ok(elapsed)
        }
        Err(why) => {
            let output = child.wait_with_output().await?;
            bail!(
                "{why}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        }
    }
}

/// The value at `q` (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    check_function_env()?;
    let functions = bootstraps(&args.dir)?;
    if !functions.contains_key(&args.baseline) {
        bail!(
            "no {}/{}/bootstrap to compare with; build crates/lambda/hello-lambda (scripts/bench-lambdas.sh does)",
            args.dir.display(),
            args.baseline
        );
    }
    let endpoint = closed_endpoint()?;
    let names: Vec<&String> = functions.keys().collect();

    // One round unmeasured: the page cache, not the function, would pay for the first spawn.
    for name in &names {
        init_time(name, &functions[*name], &endpoint).await?;
    }
    let mut samples: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 0..args.rounds {
        for i in 0..names.len() {
            let name = names[(round + i) % names.len()];
            let elapsed = init_time(name, &functions[name], &endpoint).await?;
            samples.entry(name).or_default().push(elapsed);
        }
    }
    for runs in samples.values_mut() {
        runs.sort();
    }

    let baseline = quantile(&samples[args.baseline.as_str()], 0.5);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "init (spawn → first GET /next), {} rounds alternating, {} on {cores} cores",
        args.rounds,
        std::env::consts::ARCH,
    );
    println!(
        "each function against the hello-world function building the same SDK clients (Lector's own \
         share, target ≤ {}×) and against {} (no SDK)",
        args.target, args.baseline
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>13} {:>7}  {:>9} {:>7}",
        "function", "median ms", "p25 ms", "p75 ms", "same-clients", "ratio", "verdict", "vs hello"
    );
    let mut over = Vec::new();
    let functions =
        samples.iter().filter(|(name, _)| !name.starts_with(LADDER) && !name.starts_with(SAME_CLIENTS));
    for (name, runs) in functions {
        let median = quantile(runs, 0.5);
        let vs_hello = median.as_secs_f64() / baseline.as_secs_f64();
        let same = samples.get(format!("{SAME_CLIENTS}{name}").as_str()).map(|r| quantile(r, 0.5));
        let (same_ms, ratio, verdict) = match same {
            _ if *name == args.baseline => ("—".to_owned(), "—".to_owned(), "baseline"),
            None => ("—".to_owned(), "—".to_owned(), "no clients known"),
            Some(same) => {
                let ratio = median.as_secs_f64() / same.as_secs_f64();
                let verdict = if ratio <= args.target {
                    "ok"
                } else {
                    over.push(*name);
                    "OVER"
                };
                (format!("{:.2}", ms(same)), format!("{ratio:.2}×"), verdict)
            }
        };
        println!(
            "{name:<22} {:>9.2} {:>9.2} {:>9.2} {same_ms:>13} {ratio:>7}  {verdict:>9} {vs_hello:>6.2}×",
            ms(median),
            ms(quantile(runs, 0.25)),
            ms(quantile(runs, 0.75)),
        );
    }
    let ladder: Vec<(&str, Duration)> = STEPS
        .iter()
        .filter_map(|step| {
            let runs = samples.get(format!("{LADDER}:{}", step.name()).as_str())?;
            Some((step.name(), quantile(runs, 0.5)))
        })
        .collect();
    if !ladder.is_empty() {
        println!();
        println!("{LADDER}: init stopped after each step (each includes the ones above it)");
        println!("{:<22} {:>9} {:>7} {:>9}", "through step", "median ms", "ratio", "step adds");
        let mut before = baseline;
        for (step, median) in ladder {
            let ratio = median.as_secs_f64() / baseline.as_secs_f64();
            let adds = (median.as_secs_f64() - before.as_secs_f64()) / baseline.as_secs_f64();
            println!("{step:<22} {:>9.2} {ratio:>6.2}× {adds:>+8.2}×", ms(median));
            before = median;
        }
    }
    if !over.is_empty() {
        println!("over the target: {}", over.join(", "));
    }
    Ok(())
}

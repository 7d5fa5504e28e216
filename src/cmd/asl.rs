//! `lector asl`: validate, run and test Amazon States Language state machines on the local
//! engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use lector_states::conformance::{self, Case, Outcome, RunOptions};
use lector_states::{
    Clock, Definition, DefinitionSubstitutions, Engine, EngineConfig, ExecutionStatus, MemoryStore,
    RealClock, Severity, TaskRegistry, VirtualClock,
};
use serde_json::Value;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a definition: state types, Next targets, reachability, terminal states, paths,
    /// retriers and catchers. Exits non-zero when it has errors.
    Validate(ValidateArgs),
    /// Run a definition (or a conformance case, with its recorded Lambda functions) and print
    /// its output, or its error and cause.
    Run(RunArgs),
    /// Run every conformance case of a folder and report each difference from AWS; ends with
    /// `N passed, M failed` (`, K skipped` for JSONata cases).
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The ASL file (`*.asl.json`).
    file: PathBuf,
    /// A definition substitution, `Name=value`, as SAM's DefinitionSubstitutions.
    #[arg(long = "substitution", short = 's', value_name = "NAME=VALUE")]
    substitutions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// An ASL file, or a conformance case (`.json` with `definition`, `input` and `lambdas`).
    file: PathBuf,
    /// The execution input, as JSON text or `@file`. Defaults to the case's input, else `{}`.
    #[arg(long)]
    input: Option<String>,
    /// The execution name.
    #[arg(long)]
    name: Option<String>,
    /// A definition substitution, `Name=value`.
    #[arg(long = "substitution", short = 's', value_name = "NAME=VALUE")]
    substitutions: Vec<String>,
    /// Wait in real time instead of on the virtual clock (on which waits pass instantly).
    #[arg(long)]
    real_clock: bool,
    /// Print the execution history (one JSON event per line) to stderr.
    #[arg(long)]
    history: bool,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The folder of cases.
    dir: PathBuf,
    /// Only cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Start the virtual clock at this instant (RFC 3339), the time the cases were captured;
    /// defaults to now.
    #[arg(long)]
    clock_start: Option<DateTime<Utc>>,
    /// Also list the cases that passed and the ones skipped.
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => validate(args),
        Command::Run(args) => runtime()?.block_on(run_file(args)),
        Command::Test(args) => runtime()?.block_on(test(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn substitutions(pairs: &[String]) -> anyhow::Result<DefinitionSubstitutions> {
    let mut subs = BTreeMap::new();
    for p in pairs {
        let (k, v) =
            p.split_once('=').with_context(|| format!("the substitution '{p}' is not NAME=VALUE"))?;
        subs.insert(k.to_string(), v.to_string());
    }
    Ok(subs)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let diags = lector_states::validate(&text, &substitutions(&args.substitutions)?);
    for d in &diags {
        eprintln!("{}: {d}", args.file.display());
    }
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    if errors > 0 {
        eprintln!("{}: {errors} error(s)", args.file.display());
        return Ok(ExitCode::FAILURE);
    }
    println!("{}: valid", args.file.display());
    Ok(ExitCode::SUCCESS)
}

async fn run_file(args: RunArgs) -> anyhow::Result<ExitCode> {
    let text = read(&args.file)?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", args.file.display()))?;
    let subs = substitutions(&args.substitutions)?;
    // A conformance case carries its definition, input and Lambda functions.
    let (definition_value, case_input, registry, config) = if value.get("definition").is_some() {
        let case: Case = serde_json::from_value(value)
            .with_context(|| format!("{} is not a conformance case", args.file.display()))?;
        let registry = conformance::registry_for(&case).map_err(anyhow::Error::msg)?;
        let config = conformance::engine_config(&case);
        (case.definition, Some(case.input), registry, config)
    } else {
        (value, None, TaskRegistry::new(), EngineConfig::default())
    };
    let definition = match Definition::from_value(definition_value, &subs) {
        Ok(d) => d,
        Err(e) => {
            for d in &e.diagnostics {
                eprintln!("{}: {d}", args.file.display());
            }
            bail!("{} is not a valid state machine", args.file.display());
        }
    };
    for w in definition.warnings() {
        eprintln!("{}: {w}", args.file.display());
    }
    let input: Value = match (&args.input, case_input) {
        (Some(s), _) => {
            let text = match s.strip_prefix('@') {
                Some(path) => read(Path::new(path))?,
                None => s.clone(),
            };
            serde_json::from_str(&text).context("--input is not JSON")?
        }
        (None, Some(i)) => i,
        (None, None) => Value::Object(Default::default()),
    };
    let clock: Arc<dyn Clock> =
        if args.real_clock { Arc::new(RealClock) } else { Arc::new(VirtualClock::default()) };
    let engine = Engine::with_config(Arc::new(MemoryStore::new()), clock, registry, config);
    let name =
        args.file.file_stem().and_then(|s| s.to_str()).unwrap_or("state-machine").replace(['.', ' '], "-");
    engine.register_state_machine(&name, definition)?;
    let started = engine.start_execution(&name, args.name.as_deref(), input).await?;
    let done = engine.wait(&started.execution_arn).await?;
    if args.history {
        for e in engine.history(&started.execution_arn).await? {
            eprintln!("{}", serde_json::to_string(&e)?);
        }
    }
    match done.status {
        ExecutionStatus::Succeeded => {
            let output: Value = serde_json::from_str(done.output.as_deref().unwrap_or("null"))?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(ExitCode::SUCCESS)
        }
        status => {
            eprintln!(
                "{status}: error {}, cause {}",
                done.error.as_deref().unwrap_or("(none)"),
                done.cause.as_deref().unwrap_or("(none)")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let opts = RunOptions { clock_start: args.clock_start, filter: args.filter, ..RunOptions::default() };
    let report = conformance::run_dir(&args.dir, &opts).await?;
    for r in &report.results {
        match &r.outcome {
            Outcome::Failed(diffs) => {
                println!("FAIL {}", r.name);
                for d in diffs {
                    println!("    {d}");
                }
            }
            Outcome::Passed if args.verbose => println!("ok   {}", r.name),
            Outcome::Skipped(why) if args.verbose => println!("skip {} ({why})", r.name),
            _ => {}
        }
    }
    println!("{}", report.summary());
    Ok(if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: ExitCode) -> String {
        format!("{c:?}")
    }

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn validate_exits_non_zero_on_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let good = dir.path().join("good.asl.json");
        std::fs::write(&good, r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#)?;
        let bad = dir.path().join("bad.asl.json");
        std::fs::write(&bad, r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}}"#)?;
        assert_eq!(
            code(validate(ValidateArgs { file: good, substitutions: vec![] })?),
            code(ExitCode::SUCCESS)
        );
        assert_eq!(
            code(validate(ValidateArgs { file: bad, substitutions: vec![] })?),
            code(ExitCode::FAILURE)
        );
        Ok(())
    }

    #[test]
    fn test_exits_non_zero_when_a_case_differs_from_aws() -> anyhow::Result<()> {
        let cases = repo().join("testdata/asl-conformance/cases");
        let dir = tempfile::tempdir()?;
        let name = "base__test_base__test_state_pass_result.json";
        std::fs::copy(cases.join(name), dir.path().join(name))?;
        let passing =
            TestArgs { dir: dir.path().to_path_buf(), filter: None, clock_start: None, verbose: false };
        assert_eq!(code(runtime()?.block_on(test(passing))?), code(ExitCode::SUCCESS));

        let mut case: Value = serde_json::from_str(&std::fs::read_to_string(cases.join(name))?)?;
        case["expected"]["output"] = serde_json::json!({"Arg1": "something else"});
        std::fs::write(dir.path().join("changed.json"), serde_json::to_string(&case)?)?;
        let failing =
            TestArgs { dir: dir.path().to_path_buf(), filter: None, clock_start: None, verbose: false };
        assert_eq!(code(runtime()?.block_on(test(failing))?), code(ExitCode::FAILURE));
        Ok(())
    }

    #[test]
    fn run_executes_a_case_with_its_recorded_lambdas() -> anyhow::Result<()> {
        let file = repo().join("testdata/asl-conformance/cases/error_handling__test_task_lambda__test_raise_custom_exception.json");
        let args = RunArgs {
            file,
            input: None,
            name: None,
            substitutions: vec![],
            real_clock: false,
            history: false,
        };
        assert_eq!(code(runtime()?.block_on(run_file(args))?), code(ExitCode::SUCCESS));
        let file = repo().join(
            "testdata/asl-conformance/cases/error_handling__test_task_lambda__test_raise_exception.json",
        );
        let args = RunArgs {
            file,
            input: None,
            name: None,
            substitutions: vec![],
            real_clock: false,
            history: false,
        };
        assert_eq!(code(runtime()?.block_on(run_file(args))?), code(ExitCode::FAILURE));
        Ok(())
    }
}

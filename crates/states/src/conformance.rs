//! The conformance runner: runs a folder of executions recorded on AWS (the format of
//! `testdata/asl-conformance/README.md`) on this engine with a virtual clock, and reports
//! every difference from what AWS answered.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::{Clock, VirtualClock};
use crate::definition::{Definition, DefinitionSubstitutions};
use crate::engine::{Engine, StateMachineType};
use crate::exec::EngineConfig;
use crate::intrinsic::json_eq;
use crate::store::{ExecutionStatus, MemoryStore};
use crate::task::{TaskContext, TaskError, TaskRegistry};

/// One recorded case.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// The case name (the file stem).
    pub name: String,
    /// The ASL document.
    pub definition: Value,
    /// The execution input.
    #[serde(default)]
    pub input: Value,
    /// What AWS answered.
    pub expected: Expected,
    /// How to compare.
    #[serde(default)]
    pub compare: Compare,
    /// Names for the context object.
    #[serde(default)]
    pub context: CaseContext,
    /// The Lambda functions the Task states call.
    #[serde(default)]
    pub lambdas: BTreeMap<String, Lambda>,
    /// What the case uses; `express_sync` runs it with `StartSyncExecution`.
    #[serde(default)]
    pub features: Vec<String>,
    /// `JSONPath` or `JSONata`.
    #[serde(default)]
    pub query_language: Option<String>,
}

/// The recorded outcome.
#[derive(Debug, Clone, Deserialize)]
pub struct Expected {
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The output when succeeded.
    #[serde(default)]
    pub output: Value,
    /// The error when failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The cause when failed (a JSON value when `cause_is_json`).
    #[serde(default)]
    pub cause: Value,
}

/// How a case is compared.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Compare {
    /// `exact` or `loose`.
    #[serde(default)]
    pub mode: String,
    /// The fields compared loosely (`output`, `cause`).
    #[serde(default)]
    pub loose_fields: Vec<String>,
    /// Tokens that stand for masked values.
    #[serde(default)]
    pub placeholders: Vec<String>,
    /// Parse the actual cause as JSON before comparing.
    #[serde(default)]
    pub cause_is_json: bool,
}

/// The names of the recorded execution.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaseContext {
    /// The account id.
    #[serde(default)]
    pub account: Option<String>,
    /// The region.
    #[serde(default)]
    pub region: Option<String>,
    /// The state machine name.
    #[serde(default)]
    pub state_machine_name: Option<String>,
    /// The execution name.
    #[serde(default)]
    pub execution_name: Option<String>,
    /// The role ARN.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// `STANDARD` (the default) or `EXPRESS`.
    #[serde(default)]
    pub state_machine_type: Option<String>,
}

/// A recorded Lambda function.
#[derive(Debug, Clone, Deserialize)]
pub struct Lambda {
    /// The function's ARN.
    pub arn: String,
    /// `identity`, `raise`, `constant`, `sleep` or `large_output`.
    pub kind: String,
    /// What it does, in words.
    #[serde(default)]
    pub behaviour: String,
}

/// How one case went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Same status, output, error and cause as AWS.
    Passed,
    /// Something differs; each entry says what.
    Failed(Vec<String>),
    /// Not run (JSONata cases).
    Skipped(String),
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// The query language of the case.
    pub query_language: String,
    /// How it went.
    pub outcome: Outcome,
}

/// The results of a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Per case, in file name order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome == Outcome::Passed).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count()
    }

    /// Cases skipped.
    pub fn skipped(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Skipped(_))).count()
    }

    /// `N passed, M failed` and, when some were skipped, `, K skipped`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.skipped() > 0 {
            s.push_str(&format!(", {} skipped", self.skipped()));
        }
        s
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the virtual clock starts (the instant the cases were captured, for cases whose
    /// input was computed from the wall clock); the current time when absent.
    pub clock_start: Option<DateTime<Utc>>,
    /// Only cases whose name contains this text.
    pub filter: Option<String>,
    /// Cases run at once.
    pub jobs: usize,
    /// Wall-clock limit per case.
    pub case_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock_start: None,
            filter: None,
            jobs: std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4),
            case_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a folder could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The folder or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A case file is not in the expected format.
    #[error("{path} is not a conformance case: {reason}")]
    BadCase {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Reads every `*.json` case of a folder, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, ConformanceError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| ConformanceError::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.map_err(|source| ConformanceError::Io { path: dir.to_path_buf(), source })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            paths.push(p);
        }
    }
    paths.sort();
    let mut cases = Vec::with_capacity(paths.len());
    for p in paths {
        let text =
            std::fs::read_to_string(&p).map_err(|source| ConformanceError::Io { path: p.clone(), source })?;
        let case: Case = serde_json::from_str(&text)
            .map_err(|e| ConformanceError::BadCase { path: p.clone(), reason: e.to_string() })?;
        cases.push(case);
    }
    Ok(cases)
}

/// Runs every case of a folder.
pub async fn run_dir(dir: &Path, opts: &RunOptions) -> Result<Report, ConformanceError> {
    let cases = load_dir(dir)?;
    Ok(run_cases(cases, opts).await)
}

/// Runs cases, `opts.jobs` at a time.
pub async fn run_cases(cases: Vec<Case>, opts: &RunOptions) -> Report {
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| opts.filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        .collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut handles = Vec::with_capacity(cases.len());
    for case in cases {
        let sem = sem.clone();
        let opts = opts.clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            run_case(&case, &opts).await
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(r) => results.push(r),
            Err(e) => results.push(CaseResult {
                name: "(unknown)".into(),
                query_language: "JSONPath".into(),
                outcome: Outcome::Failed(vec![format!("the case panicked: {e}")]),
            }),
        }
    }
    Report { results }
}

/// Runs one case.
pub async fn run_case(case: &Case, opts: &RunOptions) -> CaseResult {
    let ql = case.query_language.clone().unwrap_or_else(|| "JSONPath".into());
    let outcome = if ql == "JSONata" {
        Outcome::Skipped("unsupported: the JSONata query language".into())
    } else {
        match execute(case, opts).await {
            Ok(actual) => compare(case, &actual),
            Err(reason) => Outcome::Failed(vec![reason]),
        }
    };
    CaseResult { name: case.name.clone(), query_language: ql, outcome }
}

/// What the engine answered.
#[derive(Debug)]
struct Actual {
    status: ExecutionStatus,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
}

async fn execute(case: &Case, opts: &RunOptions) -> Result<Actual, String> {
    let definition = Definition::from_value(case.definition.clone(), &DefinitionSubstitutions::new())
        .map_err(|e| {
            if e.is_unsupported() { e.to_string() } else { format!("the definition was refused: {e}") }
        })?;
    let registry = registry_for(case)?;
    let clock: Arc<dyn Clock> = Arc::new(match opts.clock_start {
        Some(t) => VirtualClock::starting_at(t),
        None => VirtualClock::default(),
    });
    let engine = Engine::with_config(Arc::new(MemoryStore::new()), clock, registry, engine_config(case));
    let sm = case.context.state_machine_name.clone().unwrap_or_else(|| "conformance".into());
    let kind = match case.context.state_machine_type.as_deref() {
        None | Some("STANDARD") => StateMachineType::Standard,
        Some("EXPRESS") => StateMachineType::Express,
        Some(other) => return Err(format!("unsupported: the state machine type '{other}'")),
    };
    engine.register_state_machine_of_type(&sm, definition, kind).map_err(|e| e.to_string())?;
    if kind == StateMachineType::Express && case.features.iter().any(|f| f == "express_sync") {
        let run =
            engine.start_sync_execution(&sm, case.context.execution_name.as_deref(), case.input.clone());
        let answer = match tokio::time::timeout(opts.case_timeout, run).await {
            Ok(r) => r.map_err(|e| format!("the execution did not start: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "the execution did not finish within {:?} of real time",
                    opts.case_timeout
                ));
            }
        };
        return Ok(Actual {
            status: answer.status,
            output: answer
                .output
                .as_deref()
                .map(|o| serde_json::from_str(o).unwrap_or(Value::String(o.to_string()))),
            error: answer.error,
            cause: answer.cause,
        });
    }
    let started = engine
        .start_execution(&sm, case.context.execution_name.as_deref(), case.input.clone())
        .await
        .map_err(|e| format!("the execution did not start: {e}"))?;
    let arn = started.execution_arn;
    let record = match tokio::time::timeout(opts.case_timeout, engine.wait(&arn)).await {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => {
            let _ = engine.stop(&arn, Some("Conformance.Timeout"), None).await;
            return Err(format!("the execution did not finish within {:?} of real time", opts.case_timeout));
        }
    };
    Ok(Actual {
        status: record.status,
        output: record
            .output
            .as_deref()
            .map(|o| serde_json::from_str(o).unwrap_or(Value::String(o.to_string()))),
        error: record.error,
        cause: record.cause,
    })
}

/// The case's Lambda functions, as handlers of their recorded behaviour.
pub fn registry_for(case: &Case) -> Result<TaskRegistry, String> {
    let mut registry = TaskRegistry::new();
    for (name, lambda) in &case.lambdas {
        register_lambda(&mut registry, name, lambda)?;
    }
    Ok(registry)
}

/// The region, account and role of the recorded execution, so that ARNs match.
pub fn engine_config(case: &Case) -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        region: case.context.region.clone().unwrap_or(defaults.region),
        account: case.context.account.clone().unwrap_or(defaults.account),
        role_arn: case.context.role_arn.clone().unwrap_or(defaults.role_arn),
    }
}

/// `json.dumps` as Python writes it: `", "` and `": "` separators, non-ASCII escaped.
pub fn python_json(v: &Value) -> String {
    let mut s = String::new();
    write_py(v, &mut s);
    s
}

fn write_py(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{08}' => out.push_str("\\b"),
                    '\u{0c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py(&Value::String(k.clone()), out);
                out.push_str(": ");
                write_py(x, out);
            }
            out.push('}');
        }
    }
}

/// Text between the first `open` and the next `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

fn first_number(s: &str) -> Option<u64> {
    let digits: String =
        s.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Registers a Python Lambda function of the recorded behaviour.
fn register_lambda(registry: &mut TaskRegistry, name: &str, lambda: &Lambda) -> Result<(), String> {
    let b = lambda.behaviour.clone();
    match lambda.kind.as_str() {
        "identity" => {
            registry.register_raw(lambda.arn.clone(), |event: Value, _ctx: TaskContext| async move {
                Ok(python_json(&event))
            });
        }
        "constant" => {
            let payload = between(&b, "b'", "'").map(str::to_string).ok_or_else(|| {
                format!("unsupported: the constant of lambda '{name}' is not a bytes literal: {b}")
            })?;
            registry.register_raw(lambda.arn.clone(), move |_event: Value, _ctx: TaskContext| {
                let p = payload.clone();
                async move { Ok(p) }
            });
        }
        "sleep" => {
            let secs = first_number(&b).ok_or_else(|| format!("unsupported: no duration in '{b}'"))?;
            registry.register_raw(lambda.arn.clone(), move |event: Value, ctx: TaskContext| async move {
                ctx.sleep(Duration::from_secs(secs)).await;
                Ok(python_json(&event))
            });
        }
        "large_output" => {
            let kib = first_number(&b).ok_or_else(|| format!("unsupported: no size in '{b}'"))?;
            let ch = between(&b, "of '", "'").and_then(|s| s.chars().next()).unwrap_or('a');
            registry.register_raw(lambda.arn.clone(), move |_event: Value, _ctx: TaskContext| async move {
                Ok(std::iter::repeat_n(ch, (kib * 1024) as usize).collect::<String>())
            });
        }
        "raise" => {
            // "raises Python Exception(\"Some exception was raised.\")" or "raises CustomException() (...)".
            let after = b.split_once("raises ").map(|(_, r)| r).unwrap_or(&b);
            let after = after.strip_prefix("Python ").unwrap_or(after);
            let class: String =
                after.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
            if class.is_empty() {
                return Err(format!("unsupported: cannot tell which exception lambda '{name}' raises: {b}"));
            }
            let message = between(after, "(\"", "\")").unwrap_or("").to_string();
            registry.register_raw(lambda.arn.clone(), move |_event: Value, _ctx: TaskContext| {
                let (class, message) = (class.clone(), message.clone());
                async move {
                    let raise = if message.is_empty() {
                        format!("{class}()")
                    } else {
                        format!("{class}(\"{message}\")")
                    };
                    let mut cause = Map::new();
                    cause.insert("errorMessage".into(), Value::String(message.clone()));
                    cause.insert("errorType".into(), Value::String(class.clone()));
                    cause.insert("requestId".into(), Value::String(uuid::Uuid::new_v4().to_string()));
                    cause.insert(
                        "stackTrace".into(),
                        Value::Array(vec![Value::String(format!(
                            "  File \"/var/task/handler.py\", line 2, in handler\n    raise {raise}\n"
                        ))]),
                    );
                    Err(TaskError::new(class, python_json(&Value::Object(cause))))
                }
            });
        }
        other => return Err(format!("unsupported: the lambda kind '{other}' of '{name}'")),
    }
    Ok(())
}

fn compare(case: &Case, actual: &Actual) -> Outcome {
    let mut diffs = Vec::new();
    let e = &case.expected;
    if e.status != actual.status.as_str() {
        diffs.push(format!(
            "status: expected {}, got {}{}",
            e.status,
            actual.status,
            match (&actual.error, &actual.cause) {
                (None, None) => String::new(),
                (err, cause) => format!(
                    " (error {}, cause {})",
                    err.as_deref().unwrap_or("null"),
                    cause.as_deref().unwrap_or("null")
                ),
            }
        ));
        return Outcome::Failed(diffs);
    }
    let c = &case.compare;
    let loose = |field: &str| c.mode == "loose" && c.loose_fields.iter().any(|f| f == field);
    if e.status == "SUCCEEDED" {
        let got = actual.output.clone().unwrap_or(Value::Null);
        let m = Matcher {
            placeholders: if loose("output") { &c.placeholders } else { &[] },
            loose: loose("output"),
        };
        m.diff("output", &e.output, &got, &mut diffs);
    } else {
        if e.error != actual.error {
            diffs.push(format!(
                "error: expected {}, got {}",
                e.error.as_deref().unwrap_or("null"),
                actual.error.as_deref().unwrap_or("null")
            ));
        }
        let m = Matcher {
            placeholders: if loose("cause") { &c.placeholders } else { &[] },
            loose: loose("cause"),
        };
        let got = match &actual.cause {
            None => Value::Null,
            Some(s) if c.cause_is_json => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            Some(s) => Value::String(s.clone()),
        };
        m.diff("cause", &e.cause, &got, &mut diffs);
    }
    if diffs.is_empty() { Outcome::Passed } else { Outcome::Failed(diffs) }
}

struct Matcher<'a> {
    placeholders: &'a [String],
    loose: bool,
}

impl Matcher<'_> {
    fn diff(&self, at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
        if out.len() >= 10 {
            return;
        }
        match (expected, actual) {
            (Value::String(e), _) if self.placeholders.iter().any(|p| p == e) => {}
            (Value::String(e), Value::String(a)) => {
                if !self.str_matches(e, a) {
                    out.push(format!("{at}: expected {}, got {}", show(expected), show(actual)));
                }
            }
            (Value::Object(e), Value::Object(a)) => {
                if self.loose && is_lambda_error(e) && is_lambda_error(a) {
                    if !lambda_errors_match(e, a) {
                        out.push(format!(
                            "{at}: expected the Lambda error {}, got {}",
                            show(expected),
                            show(actual)
                        ));
                    }
                    return;
                }
                for (k, ev) in e {
                    match a.get(k) {
                        Some(av) => self.diff(&format!("{at}.{k}"), ev, av, out),
                        None => out.push(format!("{at}.{k}: missing (expected {})", show(ev))),
                    }
                }
                for k in a.keys() {
                    if !e.contains_key(k) {
                        out.push(format!("{at}.{k}: unexpected (got {})", show(&a[k])));
                    }
                }
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    out.push(format!("{at}: expected {} items, got {}: {}", e.len(), a.len(), show(actual)));
                    return;
                }
                for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                    self.diff(&format!("{at}[{i}]"), ev, av, out);
                }
            }
            _ => {
                if !json_eq(expected, actual) {
                    out.push(format!("{at}: expected {}, got {}", show(expected), show(actual)));
                }
            }
        }
    }

    fn str_matches(&self, expected: &str, actual: &str) -> bool {
        if expected == actual {
            return true;
        }
        if self.loose
            && let (Ok(Value::Object(e)), Ok(Value::Object(a))) =
                (serde_json::from_str::<Value>(expected), serde_json::from_str::<Value>(actual))
            && is_lambda_error(&e)
            && is_lambda_error(&a)
        {
            return lambda_errors_match(&e, &a);
        }
        let tokens: Vec<&String> =
            self.placeholders.iter().filter(|p| expected.contains(p.as_str())).collect();
        if tokens.is_empty() {
            return false;
        }
        // Each placeholder inside the expected text matches any run of characters.
        let mut parts: Vec<String> = vec![expected.to_string()];
        for t in tokens {
            parts = parts
                .iter()
                .flat_map(|p| p.split(t.as_str()).map(str::to_string).collect::<Vec<_>>())
                .collect();
        }
        let mut rest = actual;
        for (i, p) in parts.iter().enumerate() {
            if i == 0 {
                match rest.strip_prefix(p.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i + 1 == parts.len() {
                return rest.ends_with(p.as_str());
            } else {
                match rest.find(p.as_str()) {
                    Some(k) => rest = &rest[k + p.len()..],
                    None => return false,
                }
            }
        }
        rest.is_empty()
    }
}

fn is_lambda_error(m: &Map<String, Value>) -> bool {
    m.contains_key("errorType") && m.contains_key("errorMessage")
}

/// A Lambda error compared loosely: same type and message; request id and stack trace vary.
fn lambda_errors_match(e: &Map<String, Value>, a: &Map<String, Value>) -> bool {
    e.get("errorType") == a.get("errorType") && e.get("errorMessage") == a.get("errorMessage")
}

fn show(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.len() > 300 { format!("{}... ({} bytes)", &s[..s.floor_char_boundary(300)], s.len()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_json_matches_pythons_default_dumps() {
        assert_eq!(python_json(&json!({"body": "string body"})), "{\"body\": \"string body\"}");
        assert_eq!(
            python_json(&json!({"a": [1, 2.5, null, true], "é": "ü"})),
            "{\"a\": [1, 2.5, null, true], \"\\u00e9\": \"\\u00fc\"}"
        );
    }

    #[test]
    fn placeholders_match_masked_values() {
        let ph = vec!["<uuid:1>".to_string(), "date".to_string()];
        let m = Matcher { placeholders: &ph, loose: true };
        let mut out = Vec::new();
        m.diff(
            "output",
            &json!({"id": "<uuid:1>", "d": "date", "s": "req <uuid:1> ok"}),
            &json!({"id": [1], "d": "Tue", "s": "req 123 ok"}),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        m.diff("output", &json!({"s": "req <uuid:1> ok"}), &json!({"s": "req 123 no"}), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn numbers_compare_by_value_and_lambda_causes_loosely() {
        let m = Matcher { placeholders: &[], loose: true };
        let mut out = Vec::new();
        m.diff("o", &json!({"a": 1.0}), &json!({"a": 1}), &mut out);
        m.diff(
            "o",
            &json!("{\"errorMessage\": \"x\", \"errorType\": \"E\", \"requestId\": \"1\", \"stackTrace\": [\"a\"]}"),
            &json!("{\"errorMessage\": \"x\", \"errorType\": \"E\", \"requestId\": \"2\", \"stackTrace\": [\"b\"]}"),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        let strict = Matcher { placeholders: &[], loose: false };
        strict.diff("o", &json!("a"), &json!("b"), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn the_summary_line_names_skips_only_when_there_are_some() {
        let mut r = Report::default();
        r.results.push(CaseResult {
            name: "a".into(),
            query_language: "JSONPath".into(),
            outcome: Outcome::Passed,
        });
        assert_eq!(r.summary(), "1 passed, 0 failed");
        r.results.push(CaseResult {
            name: "b".into(),
            query_language: "JSONata".into(),
            outcome: Outcome::Skipped("x".into()),
        });
        assert_eq!(r.summary(), "1 passed, 0 failed, 1 skipped");
    }
}

//! State machine definitions: the ASL JSON parsed into typed states, `${Name}` definition
//! substitutions applied as SAM applies them, and every check `asl-validator` makes (and
//! more) reported as diagnostics with a location.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::choice::{self, Rule};
use crate::error::names;
use crate::intrinsic::{self, Call};
use crate::path::{JsonPath, Root};
use crate::task::{ResourceKind, resource_kind};
use crate::template::Template;

/// `${Name}` → value, as SAM's `DefinitionSubstitutions`.
pub type DefinitionSubstitutions = BTreeMap<String, String>;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The definition is refused.
    Error,
    /// The definition runs, but something is likely wrong.
    Warning,
}

/// One finding about a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where: a JSON-pointer-like path such as `/States/Fetch/Retry/0`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let loc = if self.location.is_empty() { "/" } else { &self.location };
        write!(f, "{sev} at {loc}: {}", self.message)
    }
}

/// A definition that could not be accepted, with every error found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionError {
    /// The diagnostics (errors first).
    pub diagnostics: Vec<Diagnostic>,
}

impl DefinitionError {
    fn single(location: &str, message: impl Into<String>) -> Self {
        DefinitionError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                location: location.to_string(),
                message: message.into(),
            }],
        }
    }

    /// True when the definition was refused only because it uses something this engine does
    /// not support (JSONata, ItemReader, ...), rather than for being wrong.
    pub fn is_unsupported(&self) -> bool {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .all(|d| d.message.starts_with("unsupported:"))
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        f.write_str(&errors.join("; "))
    }
}

/// A parsed, validated state machine definition.
#[derive(Debug, Clone)]
pub struct Definition {
    source: Arc<Value>,
    machine: Arc<Machine>,
    warnings: Vec<Diagnostic>,
}

impl Definition {
    /// Parses ASL JSON text, applying `${Name}` substitutions first.
    pub fn parse(text: &str, substitutions: &DefinitionSubstitutions) -> Result<Definition, DefinitionError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| DefinitionError::single("", format!("the definition is not JSON: {e}")))?;
        Definition::from_value(value, substitutions)
    }

    /// Parses an ASL JSON value, applying `${Name}` substitutions first.
    pub fn from_value(
        mut value: Value,
        substitutions: &DefinitionSubstitutions,
    ) -> Result<Definition, DefinitionError> {
        if !substitutions.is_empty() {
            substitute(&mut value, substitutions);
        }
        let mut cx = Cx::default();
        let machine = cx.machine(&value, "", true);
        unresolved_placeholders(&value, "", &mut cx);
        cx.diags.sort_by_key(|d| d.severity);
        match machine {
            Some(m) if !cx.has_errors() => {
                Ok(Definition { source: Arc::new(value), machine: Arc::new(m), warnings: cx.diags })
            }
            _ => Err(DefinitionError { diagnostics: cx.diags }),
        }
    }

    /// The definition JSON after substitution.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Warnings found while parsing.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub(crate) fn machine(&self) -> &Arc<Machine> {
        &self.machine
    }

    /// The Task resources the definition calls, in order of appearance.
    pub fn task_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.machine.collect_resources(&mut out);
        out
    }

    /// The names of every state, nested ones included.
    pub fn state_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.machine.collect_names(&mut out);
        out
    }
}

/// Checks a definition and returns every diagnostic (errors and warnings); empty means valid.
pub fn validate(text: &str, substitutions: &DefinitionSubstitutions) -> Vec<Diagnostic> {
    match Definition::parse(text, substitutions) {
        Ok(d) => d.warnings,
        Err(e) => e.diagnostics,
    }
}

/// Replaces `${Name}` in every string (keys included) of a JSON value.
pub fn substitute(v: &mut Value, subs: &DefinitionSubstitutions) {
    match v {
        Value::String(s) if s.contains("${") => *s = substitute_str(s, subs),
        Value::Array(items) => items.iter_mut().for_each(|x| substitute(x, subs)),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                substitute(&mut x, subs);
                let k = if k.contains("${") { substitute_str(&k, subs) } else { k };
                m.insert(k, x);
            }
        }
        _ => {}
    }
}

fn substitute_str(s: &str, subs: &DefinitionSubstitutions) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match subs.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("${");
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn unresolved_placeholders(v: &Value, loc: &str, cx: &mut Cx) {
    match v {
        Value::String(s) => {
            if let Some(start) = s.find("${")
                && let Some(end) = s[start..].find('}')
            {
                cx.warn(loc, format!("the substitution {} is not defined", &s[start..start + end + 1]));
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                unresolved_placeholders(x, &format!("{loc}/{i}"), cx);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                unresolved_placeholders(x, &format!("{loc}/{k}"), cx);
            }
        }
        _ => {}
    }
}

/// A state machine, a Parallel branch or a Map item processor.
#[derive(Debug)]
pub(crate) struct Machine {
    pub start_at: usize,
    pub states: Vec<State>,
    pub index: HashMap<String, usize>,
    pub timeout_seconds: Option<u64>,
}

impl Machine {
    pub fn state(&self, name: &str) -> Option<(usize, &State)> {
        self.index.get(name).map(|&i| (i, &self.states[i]))
    }

    fn collect_resources(&self, out: &mut Vec<String>) {
        for s in &self.states {
            match &s.kind {
                Kind::Task(t) if !out.iter().any(|r| **r == *t.resource) => out.push(t.resource.to_string()),
                Kind::Parallel { branches } => branches.iter().for_each(|b| b.collect_resources(out)),
                Kind::Map(m) => m.processor.collect_resources(out),
                _ => {}
            }
        }
    }

    fn collect_names(&self, out: &mut Vec<String>) {
        for s in &self.states {
            out.push(s.name.to_string());
            match &s.kind {
                Kind::Parallel { branches } => branches.iter().for_each(|b| b.collect_names(out)),
                Kind::Map(m) => m.processor.collect_names(out),
                _ => {}
            }
        }
    }
}

/// `InputPath`, `OutputPath` and `ResultPath`: absent (`$`), `null`, or a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IoPath {
    Root,
    Null,
    Path(JsonPath),
}

/// A number given literally or through a `...Path` field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NumSpec {
    Lit(f64),
    Path(JsonPath),
}

/// `Error`/`Cause` of a Fail state: a literal, a path or an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrSpec {
    Lit(String),
    Path(JsonPath),
    Call(Call),
}

#[derive(Debug)]
pub(crate) struct State {
    pub name: Arc<str>,
    pub kind: Kind,
    pub input_path: IoPath,
    pub output_path: IoPath,
    pub result_path: IoPath,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub assign: Option<Template>,
    pub next: Option<usize>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Pass { result: Option<Value> },
    Task(TaskSpec),
    Choice { rules: Vec<ChoiceBranch>, default: Option<usize> },
    Wait(WaitSpec),
    Succeed,
    Fail { error: Option<StrSpec>, cause: Option<StrSpec> },
    Parallel { branches: Vec<Arc<Machine>> },
    Map(Box<MapSpec>),
}

impl Kind {
    /// The prefix of this state's `...StateEntered`/`...StateExited` history events.
    pub fn event_prefix(&self) -> &'static str {
        match self {
            Kind::Pass { .. } => "Pass",
            Kind::Task(_) => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ChoiceBranch {
    pub rule: Rule,
    pub next: usize,
    pub assign: Option<Template>,
}

#[derive(Debug)]
pub(crate) struct TaskSpec {
    pub resource: Arc<str>,
    pub call: TaskCall,
    pub timeout: Option<NumSpec>,
    pub heartbeat: Option<NumSpec>,
}

/// How a Task's resource is called and how it shows in history events and error texts.
#[derive(Debug)]
pub(crate) struct TaskCall {
    pub kind: ResourceKind,
    /// The `.waitForTaskToken` pattern: the task ends when its token is sent back.
    pub callback: bool,
    pub resource_type: Arc<str>,
    pub resource_name: Arc<str>,
    /// The name in `States.DataLimitExceeded` causes.
    pub label: String,
}

impl TaskCall {
    fn describe(resource: &Arc<str>) -> TaskCall {
        let kind = resource_kind(resource);
        let callback = resource.ends_with(".waitForTaskToken");
        match &kind {
            ResourceKind::LambdaInvoke => TaskCall {
                kind,
                callback,
                resource_type: Arc::from("lambda"),
                resource_name: Arc::from(if callback { "invoke.waitForTaskToken" } else { "invoke" }),
                label: "lambda".into(),
            },
            ResourceKind::Service { service, action } => TaskCall {
                resource_type: Arc::from(service.as_str()),
                resource_name: Arc::from(action.as_str()),
                label: service.clone(),
                callback,
                kind,
            },
            ResourceKind::Function => TaskCall {
                kind,
                callback: false,
                resource_type: Arc::from("lambda"),
                resource_name: resource.clone(),
                label: resource.to_string(),
            },
        }
    }
}

#[derive(Debug)]
pub(crate) enum WaitSpec {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(String),
    TimestampPath(JsonPath),
}

#[derive(Debug)]
pub(crate) struct MapSpec {
    pub processor: Arc<Machine>,
    pub items_path: Option<JsonPath>,
    pub item_selector: Option<Template>,
    pub max_concurrency: Option<NumSpec>,
    pub tolerated_count: Option<NumSpec>,
    pub tolerated_percentage: Option<NumSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter_full: bool,
}

#[derive(Debug)]
pub(crate) struct Catcher {
    pub error_equals: Vec<String>,
    pub next: usize,
    pub result_path: IoPath,
    pub assign: Option<Template>,
}

/// The parameters the Lambda `invoke` integration passes on: the `Invoke` API's request
/// parameters that Step Functions supports (`LogType` is taken too, though the documentation
/// leaves it out).
const LAMBDA_INVOKE_PARAMETERS: &[&str] =
    &["ClientContext", "FunctionName", "InvocationType", "LogType", "Payload", "Qualifier"];

/// The action of a Lambda service integration resource (`invoke`, `invoke.waitForTaskToken`,
/// ...), or `None` for any other resource.
fn lambda_service_action(resource: &str) -> Option<&str> {
    let rest = resource
        .strip_prefix("arn:aws:states:::")
        .or_else(|| resource.strip_prefix("arn:").and_then(|r| r.split_once(":states:::")).map(|(_, r)| r))?;
    rest.strip_prefix("lambda:")
}

impl Definition {
    /// Why an Express state machine may not have this definition: a Task with the `.sync` or
    /// `.waitForTaskToken` pattern, which Express workflows do not support.
    pub fn express_refusal(&self) -> Option<DefinitionError> {
        fn find(machine: &Machine, loc: &str) -> Option<(String, &'static str)> {
            for s in &machine.states {
                let here = format!("{loc}/States/{}", s.name);
                match &s.kind {
                    Kind::Task(t) => {
                        let pattern = if t.resource.ends_with(".waitForTaskToken") {
                            Some(".waitForTaskToken")
                        } else if t.resource.ends_with(".sync") || t.resource.ends_with(".sync:2") {
                            Some(".sync")
                        } else {
                            None
                        };
                        if let Some(p) = pattern {
                            return Some((format!("{here}/Resource"), p));
                        }
                    }
                    Kind::Parallel { branches } => {
                        for (i, b) in branches.iter().enumerate() {
                            if let Some(found) = find(b, &format!("{here}/Branches/{i}")) {
                                return Some(found);
                            }
                        }
                    }
                    Kind::Map(m) => {
                        if let Some(found) = find(&m.processor, &format!("{here}/ItemProcessor")) {
                            return Some(found);
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        find(&self.machine, "").map(|(loc, pattern)| {
            DefinitionError::single(
                &loc,
                format!("Express state machine does not support '{pattern}' service integration"),
            )
        })
    }
}

/// True when `error` is matched by an `ErrorEquals` list.
pub(crate) fn error_matches(list: &[String], error: Option<&str>) -> bool {
    list.iter().any(|e| match e.as_str() {
        names::ALL => true,
        // A wildcard for the errors tasks raise themselves; not for `States.*` errors.
        names::TASK_FAILED => error.is_some_and(|n| !n.starts_with("States.")),
        other => error == Some(other),
    })
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

fn allowed_fields(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Pass" => &["InputPath", "OutputPath", "Parameters", "Result", "ResultPath", "Assign", "Next", "End"],
        "Task" => &[
            "Resource",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Assign",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Next",
            "End",
        ],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath", "Assign"],
        "Wait" => &[
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Assign",
            "Next",
            "End",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "Branches",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Assign",
            "Retry",
            "Catch",
            "Next",
            "End",
        ],
        "Map" => &[
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "InputPath",
            "OutputPath",
            "ResultSelector",
            "ResultPath",
            "Assign",
            "Retry",
            "Catch",
            "Next",
            "End",
        ],
        _ => return None,
    })
}

const JSONATA_FIELDS: &[&str] = &["Arguments", "Output", "Items", "Condition"];

#[derive(Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn err(&mut self, loc: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            location: loc.to_string(),
            message: msg.into(),
        });
    }

    fn warn(&mut self, loc: &str, msg: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            location: loc.to_string(),
            message: msg.into(),
        });
    }

    fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.severity == Severity::Error)
    }

    fn machine(&mut self, v: &Value, loc: &str, top: bool) -> Option<Machine> {
        let Value::Object(m) = v else {
            self.err(loc, "a state machine must be a JSON object");
            return None;
        };
        let allowed: &[&str] = if top {
            &["StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"]
        } else {
            &["StartAt", "States", "Comment", "ProcessorConfig", "QueryLanguage"]
        };
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(&format!("{loc}/{k}"), format!("the field '{k}' is not allowed here"));
            }
        }
        if let Some(q) = m.get("QueryLanguage") {
            match q.as_str() {
                Some("JSONPath") => {}
                Some("JSONata") => self.err(
                    &format!("{loc}/QueryLanguage"),
                    "unsupported: the JSONata query language (this engine runs JSONPath definitions)",
                ),
                _ => {
                    self.err(&format!("{loc}/QueryLanguage"), "QueryLanguage must be 'JSONPath' or 'JSONata'")
                }
            }
        }
        let timeout_seconds = match m.get("TimeoutSeconds") {
            None => None,
            Some(t) => match t.as_u64().filter(|t| *t > 0) {
                Some(t) => Some(t),
                None => {
                    self.err(&format!("{loc}/TimeoutSeconds"), "TimeoutSeconds must be a positive integer");
                    None
                }
            },
        };
        let start_name = match m.get("StartAt") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(&format!("{loc}/StartAt"), "StartAt must be a string");
                None
            }
            None => {
                self.err(loc, "the required field 'StartAt' is missing");
                None
            }
        };
        let states_obj = match m.get("States") {
            Some(Value::Object(s)) if !s.is_empty() => s,
            Some(Value::Object(_)) => {
                self.err(&format!("{loc}/States"), "States must hold at least one state");
                return None;
            }
            Some(_) => {
                self.err(&format!("{loc}/States"), "States must be an object of named states");
                return None;
            }
            None => {
                self.err(loc, "the required field 'States' is missing");
                return None;
            }
        };
        let index: HashMap<String, usize> =
            states_obj.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        let mut states = Vec::with_capacity(states_obj.len());
        let mut ok = true;
        for (name, sv) in states_obj {
            let sloc = format!("{loc}/States/{name}");
            if name.is_empty() || name.chars().count() > 80 {
                self.err(&sloc, "a state name must be 1 to 80 characters long");
            }
            match self.state(name, sv, &sloc, &index) {
                Some(s) => states.push(s),
                None => ok = false,
            }
        }
        let start_at = match start_name {
            Some(s) => match index.get(&s) {
                Some(&i) => Some(i),
                None => {
                    self.err(
                        &format!("{loc}/StartAt"),
                        format!("StartAt names the state '{s}', which does not exist"),
                    );
                    None
                }
            },
            None => None,
        };
        if !ok {
            return None;
        }
        let start_at = start_at?;
        let machine = Machine { start_at, states, index, timeout_seconds };
        self.check_graph(&machine, loc);
        Some(machine)
    }

    fn check_graph(&mut self, m: &Machine, loc: &str) {
        let mut seen = HashSet::new();
        let mut stack = vec![m.start_at];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            for n in successors(&m.states[i]) {
                stack.push(n);
            }
        }
        for (i, s) in m.states.iter().enumerate() {
            if !seen.contains(&i) {
                self.err(
                    &format!("{loc}/States/{}", s.name),
                    format!("the state '{}' is not reachable from StartAt", s.name),
                );
            }
        }
        // Some reachable state must end the machine.
        let terminal = seen.iter().any(|&i| {
            let s = &m.states[i];
            matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
                || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
        });
        if !terminal {
            self.err(
                loc,
                "no state ends the machine: a reachable state needs End, or a Succeed or Fail state",
            );
        }
    }

    fn state(&mut self, name: &str, v: &Value, loc: &str, index: &HashMap<String, usize>) -> Option<State> {
        let Value::Object(m) = v else {
            self.err(loc, "a state must be a JSON object");
            return None;
        };
        let ty = match m.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) => {
                self.err(&format!("{loc}/Type"), "Type must be a string");
                return None;
            }
            None => {
                self.err(loc, "the required field 'Type' is missing");
                return None;
            }
        };
        let Some(allowed) = allowed_fields(ty) else {
            self.err(
                &format!("{loc}/Type"),
                format!(
                    "'{ty}' is not a state type (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)"
                ),
            );
            return None;
        };
        let before = self.diags.len();
        match m.get("QueryLanguage").and_then(Value::as_str) {
            Some("JSONata") => self.err(
                &format!("{loc}/QueryLanguage"),
                "unsupported: the JSONata query language (this engine runs JSONPath definitions)",
            ),
            Some("JSONPath") | None => {}
            Some(_) => {
                self.err(&format!("{loc}/QueryLanguage"), "QueryLanguage must be 'JSONPath' or 'JSONata'")
            }
        }
        for k in m.keys() {
            if COMMON.contains(&k.as_str()) || allowed.contains(&k.as_str()) {
                continue;
            }
            if JSONATA_FIELDS.contains(&k.as_str()) {
                self.err(
                    &format!("{loc}/{k}"),
                    format!("unsupported: the field '{k}' belongs to the JSONata query language"),
                );
            } else {
                self.err(&format!("{loc}/{k}"), format!("the field '{k}' is not allowed in a {ty} state"));
            }
        }

        let input_path = self.io_path(m, "InputPath", loc, false);
        let output_path = self.io_path(m, "OutputPath", loc, false);
        let result_path = self.io_path(m, "ResultPath", loc, true);
        let parameters = self.template(m, "Parameters", loc);
        let result_selector = self.template(m, "ResultSelector", loc);
        let assign = self.assign(m.get("Assign"), &format!("{loc}/Assign"));

        let transitions = !matches!(ty, "Choice" | "Succeed" | "Fail");
        let next = if transitions { self.transition(m, loc, index) } else { None };

        let retry = if m.contains_key("Retry") {
            self.retriers(m.get("Retry"), &format!("{loc}/Retry"))
        } else {
            Vec::new()
        };
        let catch = if m.contains_key("Catch") {
            self.catchers(m.get("Catch"), &format!("{loc}/Catch"), index)
        } else {
            Vec::new()
        };

        let kind = match ty {
            "Pass" => Some(Kind::Pass { result: m.get("Result").cloned() }),
            "Task" => self.task(m, loc),
            "Choice" => self.choice(m, loc, index),
            "Wait" => self.wait(m, loc),
            "Succeed" => Some(Kind::Succeed),
            "Fail" => Some(Kind::Fail {
                error: self.str_spec(m, "Error", loc),
                cause: self.str_spec(m, "Cause", loc),
            }),
            "Parallel" => self.parallel(m, loc),
            "Map" => self.map(m, loc),
            _ => None,
        };
        if self.diags[before..].iter().any(|d| d.severity == Severity::Error) {
            return None;
        }
        Some(State {
            name: Arc::from(name),
            kind: kind?,
            input_path,
            output_path,
            result_path,
            parameters,
            result_selector,
            assign,
            next: next.flatten(),
            retry,
            catch,
        })
    }

    /// `Some(Some(i))` for Next, `Some(None)` for End, `None` after an error.
    fn transition(
        &mut self,
        m: &Map<String, Value>,
        loc: &str,
        index: &HashMap<String, usize>,
    ) -> Option<Option<usize>> {
        match (m.get("Next"), m.get("End")) {
            (Some(_), Some(Value::Bool(true))) => {
                self.err(loc, "a state cannot have both Next and End: true");
                None
            }
            (Some(Value::String(n)), _) => match index.get(n) {
                Some(&i) => Some(Some(i)),
                None => {
                    self.err(
                        &format!("{loc}/Next"),
                        format!("Next names the state '{n}', which does not exist"),
                    );
                    None
                }
            },
            (Some(_), _) => {
                self.err(&format!("{loc}/Next"), "Next must be a state name");
                None
            }
            (None, Some(Value::Bool(true))) => Some(None),
            (None, Some(Value::Bool(false))) | (None, None) => {
                self.err(loc, "the state needs Next or End: true");
                None
            }
            (None, Some(_)) => {
                self.err(&format!("{loc}/End"), "End must be a boolean");
                None
            }
        }
    }

    fn io_path(&mut self, m: &Map<String, Value>, field: &str, loc: &str, reference: bool) -> IoPath {
        match m.get(field) {
            None => IoPath::Root,
            Some(Value::Null) => IoPath::Null,
            Some(Value::String(s)) => {
                let parsed = if reference { JsonPath::parse_reference(s) } else { JsonPath::parse(s) };
                match parsed {
                    Ok(p) => {
                        if reference && *p.root() != Root::Input {
                            self.err(
                                &format!("{loc}/{field}"),
                                format!("{field} must be a path into the state input ('$...')"),
                            );
                        }
                        if p.is_root() && *p.root() == Root::Input { IoPath::Root } else { IoPath::Path(p) }
                    }
                    Err(e) => {
                        self.err(&format!("{loc}/{field}"), e.to_string());
                        IoPath::Root
                    }
                }
            }
            Some(_) => {
                self.err(&format!("{loc}/{field}"), format!("{field} must be a path string or null"));
                IoPath::Root
            }
        }
    }

    fn template(&mut self, m: &Map<String, Value>, field: &str, loc: &str) -> Option<Template> {
        let v = m.get(field)?;
        match Template::compile(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(&format!("{loc}/{field}"), e);
                None
            }
        }
    }

    fn assign(&mut self, v: Option<&Value>, loc: &str) -> Option<Template> {
        let v = v?;
        let Value::Object(m) = v else {
            self.err(loc, "Assign must be an object of variable names");
            return None;
        };
        for k in m.keys() {
            let name = k.strip_suffix(".$").unwrap_or(k);
            let valid = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !valid {
                self.err(&format!("{loc}/{k}"), format!("'{name}' is not a valid variable name"));
            }
        }
        match Template::compile(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(loc, e);
                None
            }
        }
    }

    fn error_equals(&mut self, v: Option<&Value>, loc: &str) -> Vec<String> {
        let Some(Value::Array(items)) = v else {
            self.err(loc, "ErrorEquals must be a non-empty array of error names");
            return Vec::new();
        };
        if items.is_empty() {
            self.err(loc, "ErrorEquals must be a non-empty array of error names");
        }
        let names: Vec<String> = items.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
        if names.len() != items.len() {
            self.err(loc, "ErrorEquals must hold only strings");
        }
        if names.iter().any(|n| n == names::ALL) && names.len() > 1 {
            self.err(loc, "States.ALL must appear alone in ErrorEquals");
        }
        names
    }

    fn retriers(&mut self, v: Option<&Value>, loc: &str) -> Vec<Retrier> {
        let Some(Value::Array(items)) = v else {
            self.err(loc, "Retry must be an array of retriers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in items.iter().enumerate() {
            let rloc = format!("{loc}/{i}");
            let Value::Object(m) = r else {
                self.err(&rloc, "a retrier must be an object");
                continue;
            };
            for k in m.keys() {
                if ![
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ]
                .contains(&k.as_str())
                {
                    self.err(&format!("{rloc}/{k}"), format!("the field '{k}' is not allowed in a retrier"));
                }
            }
            let error_equals = self.error_equals(m.get("ErrorEquals"), &format!("{rloc}/ErrorEquals"));
            if error_equals.iter().any(|n| n == names::ALL) && i + 1 != items.len() {
                self.err(&rloc, "a retrier with States.ALL must be the last one");
            }
            let interval_seconds = match m.get("IntervalSeconds") {
                None => 1.0,
                Some(v) => match v.as_u64().filter(|n| *n >= 1 && *n <= 99_999_999) {
                    Some(n) => n as f64,
                    None => {
                        self.err(
                            &format!("{rloc}/IntervalSeconds"),
                            "IntervalSeconds must be an integer from 1 to 99999999",
                        );
                        1.0
                    }
                },
            };
            let max_attempts = match m.get("MaxAttempts") {
                None => 3,
                Some(v) => match v.as_u64().filter(|n| *n <= 99_999_999) {
                    Some(n) => n as u32,
                    None => {
                        self.err(
                            &format!("{rloc}/MaxAttempts"),
                            "MaxAttempts must be an integer from 0 to 99999999",
                        );
                        3
                    }
                },
            };
            let backoff_rate = match m.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64().filter(|n| *n >= 1.0) {
                    Some(n) => n,
                    None => {
                        self.err(
                            &format!("{rloc}/BackoffRate"),
                            "BackoffRate must be a number of at least 1.0",
                        );
                        2.0
                    }
                },
            };
            let max_delay_seconds = match m.get("MaxDelaySeconds") {
                None => None,
                Some(v) => match v.as_u64().filter(|n| *n >= 1 && *n <= 31_622_400) {
                    Some(n) => Some(n as f64),
                    None => {
                        self.err(
                            &format!("{rloc}/MaxDelaySeconds"),
                            "MaxDelaySeconds must be an integer from 1 to 31622400",
                        );
                        None
                    }
                },
            };
            let jitter_full = match m.get("JitterStrategy") {
                None => false,
                Some(Value::String(s)) if s == "FULL" => true,
                Some(Value::String(s)) if s == "NONE" => false,
                Some(_) => {
                    self.err(&format!("{rloc}/JitterStrategy"), "JitterStrategy must be FULL or NONE");
                    false
                }
            };
            out.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                jitter_full,
            });
        }
        out
    }

    fn catchers(&mut self, v: Option<&Value>, loc: &str, index: &HashMap<String, usize>) -> Vec<Catcher> {
        let Some(Value::Array(items)) = v else {
            self.err(loc, "Catch must be an array of catchers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in items.iter().enumerate() {
            let cloc = format!("{loc}/{i}");
            let Value::Object(m) = c else {
                self.err(&cloc, "a catcher must be an object");
                continue;
            };
            for k in m.keys() {
                if !["ErrorEquals", "Next", "ResultPath", "Assign", "Comment"].contains(&k.as_str()) {
                    if k == "Output" {
                        self.err(
                            &format!("{cloc}/{k}"),
                            "unsupported: the field 'Output' belongs to the JSONata query language",
                        );
                    } else {
                        self.err(
                            &format!("{cloc}/{k}"),
                            format!("the field '{k}' is not allowed in a catcher"),
                        );
                    }
                }
            }
            let error_equals = self.error_equals(m.get("ErrorEquals"), &format!("{cloc}/ErrorEquals"));
            if error_equals.iter().any(|n| n == names::ALL) && i + 1 != items.len() {
                self.err(&cloc, "a catcher with States.ALL must be the last one");
            }
            let next = match m.get("Next") {
                Some(Value::String(n)) => match index.get(n) {
                    Some(&i) => i,
                    None => {
                        self.err(
                            &format!("{cloc}/Next"),
                            format!("Next names the state '{n}', which does not exist"),
                        );
                        continue;
                    }
                },
                _ => {
                    self.err(&cloc, "a catcher needs Next");
                    continue;
                }
            };
            let result_path = self.io_path(m, "ResultPath", &cloc, true);
            let assign = self.assign(m.get("Assign"), &format!("{cloc}/Assign"));
            out.push(Catcher { error_equals, next, result_path, assign });
        }
        out
    }

    fn num_spec(
        &mut self,
        m: &Map<String, Value>,
        field: &str,
        loc: &str,
        positive: bool,
    ) -> Option<NumSpec> {
        let path_field = format!("{field}Path");
        match (m.get(field), m.get(&path_field)) {
            (Some(_), Some(_)) => {
                self.err(loc, format!("only one of {field} and {path_field} may be given"));
                None
            }
            (Some(v), None) => match v.as_f64() {
                Some(n) if n >= 0.0 && (!positive || n > 0.0) => Some(NumSpec::Lit(n)),
                _ => {
                    self.err(
                        &format!("{loc}/{field}"),
                        format!(
                            "{field} must be a {} number",
                            if positive { "positive" } else { "non-negative" }
                        ),
                    );
                    None
                }
            },
            (None, Some(Value::String(p))) => match JsonPath::parse_reference(p) {
                Ok(p) => Some(NumSpec::Path(p)),
                Err(e) => {
                    self.err(&format!("{loc}/{path_field}"), e.to_string());
                    None
                }
            },
            (None, Some(_)) => {
                self.err(&format!("{loc}/{path_field}"), format!("{path_field} must be a path string"));
                None
            }
            (None, None) => None,
        }
    }

    fn task(&mut self, m: &Map<String, Value>, loc: &str) -> Option<Kind> {
        let resource = match m.get("Resource") {
            Some(Value::String(r)) if !r.is_empty() => r.clone(),
            Some(_) => {
                self.err(&format!("{loc}/Resource"), "Resource must be a non-empty string");
                return None;
            }
            None => {
                self.err(loc, "the required field 'Resource' is missing");
                return None;
            }
        };
        if resource.starts_with("arn:") && !resource.starts_with("arn:aws") {
            self.warn(&format!("{loc}/Resource"), format!("'{resource}' does not look like an AWS ARN"));
        }
        let timeout = self.num_spec(m, "TimeoutSeconds", loc, true);
        let heartbeat = self.num_spec(m, "HeartbeatSeconds", loc, true);
        if let (Some(NumSpec::Lit(t)), Some(NumSpec::Lit(h))) = (&timeout, &heartbeat)
            && h >= t
        {
            self.err(
                &format!("{loc}/HeartbeatSeconds"),
                "HeartbeatSeconds must be smaller than TimeoutSeconds",
            );
        }
        for (field, spec) in [("TimeoutSeconds", &timeout), ("HeartbeatSeconds", &heartbeat)] {
            if let Some(NumSpec::Lit(n)) = spec
                && (n.fract() != 0.0 || *n > 99_999_999.0)
            {
                self.err(&format!("{loc}/{field}"), format!("{field} must be an integer from 1 to 99999999"));
            }
        }
        if let Some(action) = lambda_service_action(&resource) {
            self.lambda_invoke(m, &resource, action, loc);
        }
        let resource: Arc<str> = Arc::from(resource);
        let call = TaskCall::describe(&resource);
        Some(Kind::Task(TaskSpec { resource, call, timeout, heartbeat }))
    }

    /// The Lambda service integration as AWS validates it: `invoke` with the request-response
    /// or `.waitForTaskToken` pattern only, `FunctionName` required, and no parameter the
    /// `Invoke` API of the integration does not take.
    fn lambda_invoke(&mut self, m: &Map<String, Value>, resource: &str, action: &str, loc: &str) {
        if !matches!(action, "invoke" | "invoke.waitForTaskToken") {
            self.err(
                &format!("{loc}/Resource"),
                format!(
                    "The resource provided {resource} is not recognized. The value is not a valid resource ARN, or the resource is not available in this region."
                ),
            );
            return;
        }
        let ploc = format!("{loc}/Parameters");
        let Some(Value::Object(params)) = m.get("Parameters") else {
            self.err(&ploc, "The field 'FunctionName' is required but was missing");
            return;
        };
        let mut function_name = false;
        for key in params.keys() {
            let field = key.strip_suffix(".$").unwrap_or(key);
            if field == "FunctionName" {
                function_name = true;
            }
            if !LAMBDA_INVOKE_PARAMETERS.contains(&field) {
                self.err(&ploc, format!("The field \"{field}\" is not supported by Step Functions"));
            }
        }
        if !function_name {
            self.err(&ploc, "The field 'FunctionName' is required but was missing");
        }
    }

    fn choice(&mut self, m: &Map<String, Value>, loc: &str, index: &HashMap<String, usize>) -> Option<Kind> {
        let Some(Value::Array(items)) = m.get("Choices") else {
            self.err(loc, "a Choice state needs a non-empty Choices array");
            return None;
        };
        if items.is_empty() {
            self.err(&format!("{loc}/Choices"), "Choices must hold at least one rule");
        }
        let mut rules = Vec::new();
        for (i, r) in items.iter().enumerate() {
            let rloc = format!("{loc}/Choices/{i}");
            let rule = match Rule::parse(r, true) {
                Ok(rule) => rule,
                Err(e) => {
                    self.err(&rloc, e);
                    continue;
                }
            };
            let next = match r.get("Next") {
                Some(Value::String(n)) => match index.get(n) {
                    Some(&i) => i,
                    None => {
                        self.err(
                            &format!("{rloc}/Next"),
                            format!("Next names the state '{n}', which does not exist"),
                        );
                        continue;
                    }
                },
                _ => {
                    self.err(&rloc, "a choice rule needs Next");
                    continue;
                }
            };
            let assign = self.assign(r.get("Assign"), &format!("{rloc}/Assign"));
            rules.push(ChoiceBranch { rule, next, assign });
        }
        let default = match m.get("Default") {
            None => None,
            Some(Value::String(n)) => match index.get(n) {
                Some(&i) => Some(i),
                None => {
                    self.err(
                        &format!("{loc}/Default"),
                        format!("Default names the state '{n}', which does not exist"),
                    );
                    None
                }
            },
            Some(_) => {
                self.err(&format!("{loc}/Default"), "Default must be a state name");
                None
            }
        };
        Some(Kind::Choice { rules, default })
    }

    fn wait(&mut self, m: &Map<String, Value>, loc: &str) -> Option<Kind> {
        let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if given.len() != 1 {
            self.err(loc, "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath");
            return None;
        }
        let floc = format!("{loc}/{}", given[0]);
        let v = &m[given[0]];
        match given[0] {
            "Seconds" => match v.as_u64().filter(|n| *n <= 99_999_999) {
                Some(n) => Some(Kind::Wait(WaitSpec::Seconds(n))),
                None => {
                    self.err(&floc, "Seconds must be an integer from 0 to 99999999");
                    None
                }
            },
            "Timestamp" => match v.as_str() {
                Some(s) if choice::parse_timestamp(s).is_some() => {
                    Some(Kind::Wait(WaitSpec::Timestamp(s.to_string())))
                }
                _ => {
                    self.err(&floc, "Timestamp must be an ISO-8601 extended offset date-time such as 2024-01-01T00:00:00Z");
                    None
                }
            },
            field => {
                let Some(p) = v.as_str() else {
                    self.err(&floc, format!("{field} must be a path string"));
                    return None;
                };
                match JsonPath::parse_reference(p) {
                    Ok(p) if field == "SecondsPath" => Some(Kind::Wait(WaitSpec::SecondsPath(p))),
                    Ok(p) => Some(Kind::Wait(WaitSpec::TimestampPath(p))),
                    Err(e) => {
                        self.err(&floc, e.to_string());
                        None
                    }
                }
            }
        }
    }

    fn str_spec(&mut self, m: &Map<String, Value>, field: &str, loc: &str) -> Option<StrSpec> {
        let path_field = format!("{field}Path");
        match (m.get(field), m.get(&path_field)) {
            (Some(_), Some(_)) => {
                self.err(loc, format!("only one of {field} and {path_field} may be given"));
                None
            }
            (Some(Value::String(s)), None) => Some(StrSpec::Lit(s.clone())),
            (Some(_), None) => {
                self.err(&format!("{loc}/{field}"), format!("{field} must be a string"));
                None
            }
            (None, Some(Value::String(p))) => {
                if intrinsic::looks_like_call(p) {
                    match Call::parse(p) {
                        Ok(c) => Some(StrSpec::Call(c)),
                        Err(e) => {
                            self.err(&format!("{loc}/{path_field}"), e);
                            None
                        }
                    }
                } else {
                    match JsonPath::parse(p) {
                        Ok(p) => Some(StrSpec::Path(p)),
                        Err(e) => {
                            self.err(&format!("{loc}/{path_field}"), e.to_string());
                            None
                        }
                    }
                }
            }
            (None, Some(_)) => {
                self.err(&format!("{loc}/{path_field}"), format!("{path_field} must be a path string"));
                None
            }
            (None, None) => None,
        }
    }

    fn parallel(&mut self, m: &Map<String, Value>, loc: &str) -> Option<Kind> {
        let Some(Value::Array(items)) = m.get("Branches") else {
            self.err(loc, "a Parallel state needs a non-empty Branches array");
            return None;
        };
        if items.is_empty() {
            self.err(&format!("{loc}/Branches"), "Branches must hold at least one branch");
            return None;
        }
        let mut branches = Vec::new();
        for (i, b) in items.iter().enumerate() {
            if let Some(machine) = self.machine(b, &format!("{loc}/Branches/{i}"), false) {
                branches.push(Arc::new(machine));
            }
        }
        if branches.len() != items.len() {
            return None;
        }
        Some(Kind::Parallel { branches })
    }

    fn map(&mut self, m: &Map<String, Value>, loc: &str) -> Option<Kind> {
        for k in ["ItemReader", "ItemBatcher", "ResultWriter"] {
            if m.contains_key(k) {
                self.err(
                    &format!("{loc}/{k}"),
                    format!(
                        "unsupported: the Distributed Map field '{k}' (items must come from the state input)"
                    ),
                );
            }
        }
        let (proc_field, proc) = match (m.get("ItemProcessor"), m.get("Iterator")) {
            (Some(_), Some(_)) => {
                self.err(loc, "only one of ItemProcessor and Iterator may be given");
                return None;
            }
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (None, None) => {
                self.err(loc, "a Map state needs ItemProcessor (or the older Iterator)");
                return None;
            }
        };
        if let Some(cfg) = proc.get("ProcessorConfig") {
            let cloc = format!("{loc}/{proc_field}/ProcessorConfig");
            match cfg.get("Mode").and_then(Value::as_str) {
                None | Some("INLINE") | Some("DISTRIBUTED") => {}
                Some(other) => self.err(&cloc, format!("Mode must be INLINE or DISTRIBUTED, not '{other}'")),
            }
            match cfg.get("ExecutionType").and_then(Value::as_str) {
                None | Some("STANDARD") | Some("EXPRESS") => {}
                Some(other) => {
                    self.err(&cloc, format!("ExecutionType must be STANDARD or EXPRESS, not '{other}'"))
                }
            }
        }
        let processor = self.machine(proc, &format!("{loc}/{proc_field}"), false);
        let items_path = match m.get("ItemsPath") {
            None => None,
            Some(Value::String(p)) => match JsonPath::parse(p) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err(&format!("{loc}/ItemsPath"), e.to_string());
                    None
                }
            },
            Some(_) => {
                self.err(&format!("{loc}/ItemsPath"), "ItemsPath must be a path string");
                None
            }
        };
        let item_selector = match (m.get("ItemSelector"), m.get("Parameters")) {
            (Some(_), Some(_)) => {
                self.err(loc, "only one of ItemSelector and Parameters may be given");
                None
            }
            (Some(_), None) => self.template(m, "ItemSelector", loc),
            (None, Some(_)) => self.template(m, "Parameters", loc),
            (None, None) => None,
        };
        let max_concurrency = self.num_spec(m, "MaxConcurrency", loc, false);
        let tolerated_count = self.num_spec(m, "ToleratedFailureCount", loc, false);
        let tolerated_percentage = self.num_spec(m, "ToleratedFailurePercentage", loc, false);
        if let Some(NumSpec::Lit(p)) = &tolerated_percentage
            && *p > 100.0
        {
            self.err(
                &format!("{loc}/ToleratedFailurePercentage"),
                "ToleratedFailurePercentage must be from 0 to 100",
            );
        }
        if let Some(label) = m.get("Label") {
            match label.as_str() {
                Some(l)
                    if !l.is_empty()
                        && l.chars().count() <= 40
                        && !l
                            .chars()
                            .any(|c| c.is_whitespace() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)) => {}
                _ => self.err(
                    &format!("{loc}/Label"),
                    "Label must be 1 to 40 characters without whitespace or special characters",
                ),
            }
        }
        Some(Kind::Map(Box::new(MapSpec {
            processor: Arc::new(processor?),
            items_path,
            item_selector,
            max_concurrency,
            tolerated_count,
            tolerated_percentage,
        })))
    }
}

fn successors(s: &State) -> Vec<usize> {
    let mut out: Vec<usize> = s.next.into_iter().collect();
    if let Kind::Choice { rules, default } = &s.kind {
        out.extend(rules.iter().map(|r| r.next));
        out.extend(default.iter().copied());
    }
    out.extend(s.catch.iter().map(|c| c.next));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Definition, DefinitionError> {
        Definition::from_value(v, &DefinitionSubstitutions::new())
    }

    fn messages(v: Value) -> Vec<String> {
        match parse(v) {
            Ok(d) => d.warnings().iter().map(|d| d.to_string()).collect(),
            Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_good_definition_parses() {
        let d = parse(json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "C"}], "Default": "D"},
                "C": {"Type": "Succeed"},
                "D": {"Type": "Fail", "Error": "E"}
            }
        }))
        .expect("valid");
        assert_eq!(d.state_names(), vec!["A", "B", "C", "D"]);
    }

    #[test]
    fn the_validator_finds_what_asl_validator_finds() {
        let m = messages(json!({
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "Nowhere"},
                "B": {"Type": "Pass", "End": true},
                "C": {"Type": "Sleep", "End": true},
                "D": {"Type": "Pass", "InputPath": "nope", "End": true}
            }
        }));
        let all = m.join("\n");
        assert!(all.contains("Next names the state 'Nowhere'"), "{all}");
        assert!(all.contains("'Sleep' is not a state type"), "{all}");
        assert!(all.contains("must start with '$'"), "{all}");
        let m = messages(json!({
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}, "C": {"Type": "Succeed"}}
        }));
        let all = m.join("\n");
        assert!(all.contains("'C' is not reachable"), "{all}");
        assert!(all.contains("no state ends the machine"), "{all}");
    }

    #[test]
    fn substitutions_are_applied_and_unknown_ones_reported() {
        let mut subs = DefinitionSubstitutions::new();
        subs.insert("FetchFunctionArn".into(), "arn:aws:lambda:us-east-1:1:function:fetch".into());
        let text = r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${FetchFunctionArn}","Next":"B"},
                       "B":{"Type":"Task","Resource":"${OtherArn}","End":true}}}"#;
        let d = Definition::parse(text, &subs).expect("valid");
        assert_eq!(d.task_resources(), vec!["arn:aws:lambda:us-east-1:1:function:fetch", "${OtherArn}"]);
        assert!(d.warnings().iter().any(|w| w.message.contains("${OtherArn}")));
    }

    #[test]
    fn jsonata_is_refused_as_unsupported() {
        let e = parse(json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}))
            .expect_err("refused");
        assert!(e.is_unsupported());
        assert!(e.to_string().contains("unsupported: the JSONata query language"));
    }

    #[test]
    fn retry_and_catch_rules() {
        let m = messages(json!({
            "StartAt": "A",
            "States": {"A": {"Type": "Task", "Resource": "x", "End": true,
                "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"], "BackoffRate": 0.5}],
                "Catch": [{"ErrorEquals": []}]}}
        }));
        let all = m.join("\n");
        assert!(all.contains("States.ALL must be the last one"), "{all}");
        assert!(all.contains("BackoffRate"), "{all}");
        assert!(all.contains("non-empty array"), "{all}");
    }

    #[test]
    fn error_names_match_as_aws_matches_them() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(error_matches(&list(&["States.ALL"]), Some("States.Runtime")));
        assert!(error_matches(&list(&["States.TaskFailed"]), Some("Lector.Transient")));
        assert!(!error_matches(&list(&["States.TaskFailed"]), Some("States.DataLimitExceeded")));
        assert!(!error_matches(&list(&["States.TaskFailed"]), Some("States.Timeout")));
        assert!(error_matches(&list(&["Lector.Transient", "States.Timeout"]), Some("States.Timeout")));
        assert!(!error_matches(&list(&["X"]), None));
    }
}

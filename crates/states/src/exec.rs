//! The interpreter: runs the frames of an execution (the root, Map iterations, Parallel
//! branches) state by state, applies input/output processing in AWS's order, Retry and Catch,
//! and writes every transition to the execution store before moving on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use crate::choice::parse_timestamp;
use crate::clock::Clock;
use crate::definition::{
    Definition, IoPath, Kind, Machine, MapSpec, NumSpec, State, StrSpec, TaskSpec, WaitSpec, error_matches,
};
use crate::error::{Failure, PAYLOAD_LIMIT_BYTES, at_state, names};
use crate::history::{self, NewEvent};
use crate::store::{Batch, ExecutionStore, ExecutionUpdate, FrameRecord, FrameStatus, StoreError};
use crate::task::{
    ResourceKind, TaskContext, TaskError, TaskOutput, TaskRegistry, parse_function_ref, resource_kind,
};
use crate::template::{EvalError, Scope, Template, TemplateError};

/// Settings of the engine that show in ARNs and error texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The region in ARNs (`us-east-1`).
    pub region: String,
    /// The account id in ARNs.
    pub account: String,
    /// The role ARN reported as `$$.Execution.RoleArn`.
    pub role_arn: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            role_arn: "arn:aws:iam::123456789012:role/lector-local-states".into(),
        }
    }
}

/// What the engine's executions share.
pub(crate) struct Runtime {
    pub store: Arc<dyn ExecutionStore>,
    pub clock: Arc<dyn Clock>,
    pub registry: TaskRegistry,
    pub config: EngineConfig,
}

/// One execution while it runs.
pub(crate) struct Exec {
    pub arn: String,
    pub name: String,
    pub sm_name: String,
    pub sm_arn: String,
    pub input: Arc<Value>,
    pub start_time: DateTime<Utc>,
    pub redrive_count: u32,
    pub redrive_time: Option<DateTime<Utc>>,
    pub definition: Definition,
    pub rt: Arc<Runtime>,
    pub next_event_id: Mutex<u64>,
    /// Frames loaded from the store for a resume or redrive, taken as the frames reach them.
    pub resume: Mutex<HashMap<String, FrameRecord>>,
}

/// Why a frame stopped without an output.
#[derive(Debug)]
pub(crate) enum Halt {
    /// A state failed and nothing caught it.
    Fail(Failure),
    /// The store could not record a transition; the execution stops where it is and resumes
    /// from the last recorded transition on the next start.
    Store(StoreError),
}

impl From<Failure> for Halt {
    fn from(f: Failure) -> Self {
        Halt::Fail(f)
    }
}

/// A thread of an execution: the root, a Map iteration or a Parallel branch.
pub(crate) struct Frame {
    pub path: String,
    pub machine: Arc<Machine>,
    pub state: usize,
    pub input: Value,
    pub vars: Arc<Map<String, Value>>,
    pub entered_event_id: u64,
    pub last_event_id: u64,
    pub entered_time: DateTime<Utc>,
    pub retries: Vec<u32>,
    /// The current state was entered before a restart (its entered event is recorded).
    pub resumed: bool,
    pub progress: Option<Value>,
    pub map_index: Option<u64>,
    /// Events not yet written; they go out with the frame's next write.
    pub pending: Vec<NewEvent>,
    /// Frame records to remove with the frame's next write (finished children).
    pub pending_deletes: Vec<String>,
}

impl Frame {
    pub fn record(&self, status: FrameStatus, result: Option<Value>) -> FrameRecord {
        FrameRecord {
            path: self.path.clone(),
            state: self.machine.states[self.state].name.clone(),
            input: self.input.clone(),
            vars: Value::Object((*self.vars).clone()),
            entered_event_id: self.entered_event_id,
            last_event_id: self.last_event_id,
            entered_time: self.entered_time,
            retries: self.retries.clone(),
            status,
            result,
            progress: self.progress.clone(),
        }
    }

    pub fn from_record(rec: &FrameRecord, machine: Arc<Machine>, map_index: Option<u64>) -> Option<Frame> {
        let (state, _) = machine.state(&rec.state)?;
        Some(Frame {
            path: rec.path.clone(),
            machine,
            state,
            input: rec.input.clone(),
            vars: Arc::new(rec.vars.as_object().cloned().unwrap_or_default()),
            entered_event_id: rec.entered_event_id,
            last_event_id: rec.last_event_id,
            entered_time: rec.entered_time,
            retries: rec.retries.clone(),
            resumed: true,
            progress: rec.progress.clone(),
            map_index,
            pending: Vec::new(),
            pending_deletes: Vec::new(),
        })
    }
}

/// A write of one frame: its pending events plus `events`, optionally its own record.
#[derive(Default)]
pub(crate) struct Write {
    pub events: Vec<NewEvent>,
    /// Index in the pending+events list of the event that entered the frame's current state.
    pub entered_at: Option<usize>,
    pub save: Option<(FrameStatus, Option<Value>)>,
    pub other_frames: Vec<FrameRecord>,
    pub delete_under: Vec<String>,
    pub update: Option<ExecutionUpdate>,
}

pub(crate) fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn to_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Where the children of a Map or Parallel state keep their records: `<parent>/<state>`.
fn children_root(parent: &str, state: &str) -> String {
    let mut s = String::with_capacity(parent.len() + state.len() + 1);
    s.push_str(parent);
    s.push('/');
    for c in state.chars() {
        match c {
            '%' => s.push_str("%25"),
            '/' => s.push_str("%2F"),
            c => s.push(c),
        }
    }
    s
}

fn child_path(parent: &str, state: &str, index: usize) -> String {
    format!("{}/{index}", children_root(parent, state))
}

impl Exec {
    /// Numbers the frame's pending events and `w.events`, and writes them with the frame.
    pub async fn write(&self, frame: &mut Frame, mut w: Write) -> Result<(), Halt> {
        let mut events = std::mem::take(&mut frame.pending);
        let mut delete_under = std::mem::take(&mut frame.pending_deletes);
        delete_under.append(&mut w.delete_under);
        let offset = events.len();
        events.append(&mut w.events);
        let commit = {
            let mut next = self.next_event_id.lock().unwrap_or_else(|e| e.into_inner());
            let first = *next;
            *next += events.len() as u64;
            let numbered = history::number(events, first, frame.last_event_id, self.rt.clock.now());
            if let Some(last) = numbered.last() {
                frame.last_event_id = last.id;
            }
            if let Some(i) = w.entered_at {
                frame.entered_event_id = first + (offset + i) as u64;
            }
            let mut put = w.other_frames;
            if let Some((status, result)) = w.save {
                put.push(frame.record(status, result));
            }
            let batch = Batch {
                execution_arn: self.arn.clone(),
                events: numbered,
                put_frames: put,
                delete_frames_under: delete_under,
                update: w.update,
            };
            self.rt.store.commit(batch)
        };
        commit.await.map_err(Halt::Store)
    }

    fn context_object(&self, frame: &Frame, state: &State, map_item: Option<(usize, &Value)>) -> Value {
        let mut exec = Map::new();
        exec.insert("Id".into(), Value::String(self.arn.clone()));
        exec.insert("Input".into(), (*self.input).clone());
        exec.insert("StartTime".into(), Value::String(iso(&self.start_time)));
        exec.insert("Name".into(), Value::String(self.name.clone()));
        exec.insert("RoleArn".into(), Value::String(self.rt.config.role_arn.clone()));
        exec.insert("RedriveCount".into(), Value::from(self.redrive_count));
        if let Some(t) = &self.redrive_time {
            exec.insert("RedriveTime".into(), Value::String(iso(t)));
        }
        let mut ctx = Map::new();
        ctx.insert("Execution".into(), Value::Object(exec));
        ctx.insert(
            "State".into(),
            json!({
                "EnteredTime": iso(&frame.entered_time),
                "Name": state.name,
                "RetryCount": frame.retries.iter().sum::<u32>(),
            }),
        );
        ctx.insert("StateMachine".into(), json!({"Id": self.sm_arn, "Name": self.sm_name}));
        if let Some((i, v)) = map_item {
            ctx.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
        }
        Value::Object(ctx)
    }
}

/// What a state decided.
enum Step {
    Next { next: usize, output: Value, assigned: Option<Map<String, Value>> },
    End { output: Value, assigned: Option<Map<String, Value>> },
}

/// Runs a frame to its end. The frame comes back so the caller can write its last events.
pub(crate) fn run_frame(
    exec: Arc<Exec>,
    mut frame: Frame,
) -> BoxFuture<'static, (Frame, Result<Value, Halt>)> {
    Box::pin(async move {
        loop {
            let machine = frame.machine.clone();
            let state = &machine.states[frame.state];
            let step = run_state(&exec, &mut frame, state).await;
            match step {
                Ok(Step::Next { next, output, assigned }) => {
                    apply_assigned(&mut frame, assigned);
                    let next_state = &machine.states[next];
                    let entered = history::state_entered(
                        next_state.kind.event_prefix(),
                        &next_state.name,
                        &to_json(&output),
                    );
                    frame.state = next;
                    frame.input = output;
                    frame.retries.clear();
                    frame.resumed = false;
                    frame.progress = None;
                    frame.entered_time = exec.rt.clock.now();
                    let w = Write {
                        events: vec![entered],
                        entered_at: Some(0),
                        save: Some((FrameStatus::Running, None)),
                        ..Write::default()
                    };
                    if let Err(h) = exec.write(&mut frame, w).await {
                        return (frame, Err(h));
                    }
                }
                Ok(Step::End { output, assigned }) => {
                    apply_assigned(&mut frame, assigned);
                    return (frame, Ok(output));
                }
                Err(h) => return (frame, Err(h)),
            }
        }
    })
}

fn apply_assigned(frame: &mut Frame, assigned: Option<Map<String, Value>>) {
    if let Some(a) = assigned
        && !a.is_empty()
    {
        let vars = Arc::make_mut(&mut frame.vars);
        for (k, v) in a {
            vars.insert(k, v);
        }
    }
}

/// Input and output processing of one state, with AWS's error texts.
struct Io<'a> {
    state: &'a State,
    entered: u64,
}

impl Io<'_> {
    fn runtime(&self, detail: impl AsRef<str>) -> Failure {
        Failure::runtime(&self.state.name, self.entered, detail)
    }

    fn select(&self, path: &IoPath, scope: &Scope<'_>, value: Value) -> Result<Value, Failure> {
        match path {
            IoPath::Root => Ok(value),
            IoPath::Null => Ok(Value::Object(Map::new())),
            IoPath::Path(p) => {
                let scope = scope.with_input(&value);
                scope.resolve(p).map_err(|e| match e {
                    EvalError::Path { path, message } => {
                        self.runtime(format!("Invalid path '{path}' : {message}"))
                    }
                    EvalError::UndefinedVariable(v) => self.runtime(format!(
                        "Invalid path '{}' : The variable '{v}' is not defined",
                        p.as_str()
                    )),
                    EvalError::Intrinsic(m) => self.runtime(m),
                })
            }
        }
    }

    fn template(&self, t: &Template, scope: &Scope<'_>) -> Result<Value, Failure> {
        t.eval(scope).map_err(|e| self.template_failure(e, scope))
    }

    fn template_failure(&self, e: TemplateError, scope: &Scope<'_>) -> Failure {
        match e.error {
            EvalError::Path { path, .. } => {
                let input = match crate::path::JsonPath::parse(&path) {
                    Ok(p) => scope.root_json(&p),
                    Err(_) => to_json(scope.input()),
                };
                self.runtime(format!(
                    "The JSONPath '{path}' specified for the field '{}' could not be found in the input '{input}'",
                    e.field
                ))
            }
            EvalError::UndefinedVariable(v) => {
                self.runtime(format!("The variable '{v}' used in the field '{}' is not defined", e.field))
            }
            EvalError::Intrinsic(m) => Failure::new(
                names::INTRINSIC_FAILURE,
                at_state(&self.state.name, self.entered, &format!("{m} (in the field '{}')", e.field)),
            ),
        }
    }

    fn result_path(&self, raw: &Value, result: Value) -> Result<Value, Failure> {
        match &self.state.result_path {
            IoPath::Root => Ok(result),
            IoPath::Null => Ok(raw.clone()),
            IoPath::Path(p) => {
                let mut out = raw.clone();
                p.set(&mut out, result).map_err(|_| {
                    Failure::new(
                        names::RESULT_PATH_MATCH_FAILURE,
                        at_state(
                            &self.state.name,
                            self.entered,
                            &format!(
                                "Unable to apply ResultPath \"{}\" to input \"{}\"",
                                p.as_str(),
                                to_json(raw)
                            ),
                        ),
                    )
                })?;
                Ok(out)
            }
        }
    }

    fn assign(&self, t: Option<&Template>, scope: &Scope<'_>) -> Result<Option<Map<String, Value>>, Failure> {
        let Some(t) = t else { return Ok(None) };
        match self.template(t, scope)? {
            Value::Object(m) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    fn check_size(&self, label: &str, json: &str) -> Result<(), Failure> {
        if json.len() > PAYLOAD_LIMIT_BYTES {
            return Err(data_limit(label));
        }
        Ok(())
    }
}

fn data_limit(label: &str) -> Failure {
    Failure::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{label}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}

fn exit_event(state: &State, output: &str, assigned: Option<&Map<String, Value>>) -> NewEvent {
    history::state_exited(state.kind.event_prefix(), &state.name, output, assigned.filter(|a| !a.is_empty()))
}

/// Runs one state, with its Retry and Catch.
async fn run_state(exec: &Arc<Exec>, frame: &mut Frame, state: &State) -> Result<Step, Halt> {
    let raw = frame.input.clone();
    loop {
        let attempt = match &state.kind {
            Kind::Pass { result } => run_pass(exec, frame, state, result.as_ref()),
            Kind::Choice { .. } => run_choice(exec, frame, state),
            Kind::Wait(w) => run_wait(exec, frame, state, w).await,
            Kind::Succeed => run_succeed(exec, frame, state),
            Kind::Fail { error, cause } => run_fail(exec, frame, state, error.as_ref(), cause.as_ref()),
            Kind::Task(t) => run_task(exec, frame, state, t).await,
            Kind::Map(m) => run_map(exec, frame, state, m).await,
            Kind::Parallel { branches } => run_parallel(exec, frame, state, branches).await,
        };
        let failure = match attempt {
            Ok(step) => return Ok(step),
            Err(Halt::Store(e)) => return Err(Halt::Store(e)),
            Err(Halt::Fail(f)) => f,
        };
        // Retry: the first retrier whose ErrorEquals matches decides.
        if let Some((i, r)) = state
            .retry
            .iter()
            .enumerate()
            .find(|(_, r)| error_matches(&r.error_equals, failure.error.as_deref()))
        {
            if frame.retries.len() < state.retry.len() {
                frame.retries.resize(state.retry.len(), 0);
            }
            let used = frame.retries[i];
            if used < r.max_attempts {
                let mut delay = r.interval_seconds * r.backoff_rate.powi(used as i32);
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max);
                }
                if r.jitter_full {
                    delay = rand::rng().random_range(0.0..=delay.max(0.0));
                }
                frame.retries[i] = used + 1;
                let save = Write { save: Some((FrameStatus::Running, None)), ..Write::default() };
                exec.write(frame, save).await?;
                exec.rt.clock.sleep(Duration::from_secs_f64(delay.clamp(0.0, 3.2e9))).await;
                frame.progress = None;
                frame.resumed = false;
                continue;
            }
        }
        // Catch: the first catcher whose ErrorEquals matches decides.
        if let Some(c) = state.catch.iter().find(|c| error_matches(&c.error_equals, failure.error.as_deref()))
        {
            let io = Io { state, entered: frame.entered_event_id };
            let error_output = failure.to_catch_output();
            let vars = frame.vars.clone();
            let build = || exec.context_object(frame, state, None);
            let scope = Scope::new(&error_output, &build, &vars);
            let assigned = io.assign(c.assign.as_ref(), &scope)?;
            let output = match &c.result_path {
                IoPath::Root => error_output.clone(),
                IoPath::Null => raw.clone(),
                IoPath::Path(p) => {
                    let mut out = raw.clone();
                    p.set(&mut out, error_output.clone()).map_err(|_| {
                        Failure::new(
                            names::RESULT_PATH_MATCH_FAILURE,
                            at_state(
                                &state.name,
                                frame.entered_event_id,
                                &format!(
                                    "Unable to apply ResultPath \"{}\" to input \"{}\"",
                                    p.as_str(),
                                    to_json(&raw)
                                ),
                            ),
                        )
                    })?;
                    out
                }
            };
            let json = to_json(&output);
            frame.pending.push(exit_event(state, &json, assigned.as_ref()));
            if matches!(state.kind, Kind::Map(_) | Kind::Parallel { .. }) {
                frame.pending_deletes.push(children_root(&frame.path, &state.name));
            }
            return Ok(Step::Next { next: c.next, output, assigned });
        }
        return Err(Halt::Fail(failure));
    }
}

/// Ends a state whose processing produced `output`: the exit event, then Next or End.
fn finish(
    frame: &mut Frame,
    state: &State,
    io: &Io<'_>,
    output: Value,
    assigned: Option<Map<String, Value>>,
) -> Result<Step, Halt> {
    let json = to_json(&output);
    io.check_size(&state.name, &json)?;
    frame.pending.push(exit_event(state, &json, assigned.as_ref()));
    Ok(match state.next {
        Some(next) => Step::Next { next, output, assigned },
        None => Step::End { output, assigned },
    })
}

fn run_pass(exec: &Exec, frame: &mut Frame, state: &State, result: Option<&Value>) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&frame.input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
    let scope = scope.with_input(&effective);
    let value = match (result, &state.parameters) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => io.template(p, &scope)?,
        (None, None) => effective.clone(),
    };
    let assigned = io.assign(state.assign.as_ref(), &scope.with_input(&value))?;
    let with_result = io.result_path(&frame.input, value)?;
    let output = io.select(&state.output_path, &scope, with_result)?;
    drop(scope);
    finish(frame, state, &io, output, assigned)
}

fn run_succeed(exec: &Exec, frame: &mut Frame, state: &State) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&frame.input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
    let output = io.select(&state.output_path, &scope, effective)?;
    drop(scope);
    let json = to_json(&output);
    frame.pending.push(exit_event(state, &json, None));
    Ok(Step::End { output, assigned: None })
}

fn run_fail(
    exec: &Exec,
    frame: &mut Frame,
    state: &State,
    error: Option<&StrSpec>,
    cause: Option<&StrSpec>,
) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&frame.input, &build, &vars);
    let eval = |spec: Option<&StrSpec>, field: &str| -> Result<Option<String>, Failure> {
        match spec {
            None => Ok(None),
            Some(StrSpec::Lit(s)) => Ok(Some(s.clone())),
            Some(StrSpec::Path(p)) => match scope.resolve(p) {
                Ok(Value::String(s)) => Ok(Some(s)),
                Ok(other) => Ok(Some(to_json(&other))),
                Err(_) => Err(io.runtime(format!(
                    "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{}'",
                    p.as_str(),
                    scope.root_json(p)
                ))),
            },
            Some(StrSpec::Call(c)) => match c.eval(&scope) {
                Ok(Value::String(s)) => Ok(Some(s)),
                Ok(other) => Ok(Some(to_json(&other))),
                Err(EvalError::Intrinsic(m)) => {
                    Err(Failure::new(names::INTRINSIC_FAILURE, at_state(&state.name, frame.entered_event_id, &m)))
                }
                Err(EvalError::Path { path, .. }) => Err(io.runtime(format!(
                    "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{}'",
                    to_json(scope.input())
                ))),
                Err(EvalError::UndefinedVariable(v)) => {
                    Err(io.runtime(format!("The variable '{v}' used in the field '{field}' is not defined")))
                }
            },
        }
    };
    let error = eval(error, "ErrorPath")?;
    let cause = eval(cause, "CausePath")?;
    Err(Halt::Fail(Failure { error, cause }))
}

fn run_choice(exec: &Exec, frame: &mut Frame, state: &State) -> Result<Step, Halt> {
    let Kind::Choice { rules, default } = &state.kind else { unreachable!("run_choice runs Choice states") };
    let io = Io { state, entered: frame.entered_event_id };
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&frame.input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
    let scope = scope.with_input(&effective);
    let mut chosen: Option<(usize, Option<&Template>)> = None;
    for b in rules {
        if b.rule.eval(&scope).map_err(|e| io.runtime(e.0))? {
            chosen = Some((b.next, b.assign.as_ref()));
            break;
        }
    }
    let (next, assign) = match (chosen, default) {
        (Some(c), _) => c,
        (None, Some(d)) => (*d, state.assign.as_ref()),
        (None, None) => {
            return Err(Halt::Fail(Failure::new(
                names::NO_CHOICE_MATCHED,
                at_state(&state.name, frame.entered_event_id, "No Matches!"),
            )));
        }
    };
    let assigned = io.assign(assign, &scope)?;
    let output = io.select(&state.output_path, &scope, effective.clone())?;
    drop(scope);
    let json = to_json(&output);
    io.check_size(&state.name, &json)?;
    frame.pending.push(exit_event(state, &json, assigned.as_ref()));
    Ok(Step::Next { next, output, assigned })
}

async fn run_wait(exec: &Exec, frame: &mut Frame, state: &State, w: &WaitSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let (effective, deadline, assigned) = {
        let vars = frame.vars.clone();
        let build = || exec.context_object(frame, state, None);
        let scope = Scope::new(&frame.input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
        let scope = scope.with_input(&effective);
        let deadline = match w {
            WaitSpec::Seconds(s) => frame.entered_time + chrono::Duration::seconds(*s as i64),
            WaitSpec::SecondsPath(p) => {
                let v = scope.resolve(p).map_err(|_| {
                    io.runtime(format!("The SecondsPath parameter does not reference an input value: {p}"))
                })?;
                let secs = match &v {
                    Value::Number(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                        n.as_i64().unwrap_or(i64::MAX)
                    }
                    _ => {
                        return Err(io
                            .runtime(format!(
                                "The SecondsPath parameter cannot be parsed as a long value: {p} == {}",
                                display_plain(&v)
                            ))
                            .into());
                    }
                };
                if secs < 0 {
                    return Err(io
                        .runtime(format!(
                            "The SecondsPath parameter references a negative value: {p} == {secs}"
                        ))
                        .into());
                }
                frame.entered_time + chrono::Duration::seconds(secs.min(i64::MAX / 1_000_000))
            }
            WaitSpec::Timestamp(t) => {
                parse_timestamp(t).map(|t| t.with_timezone(&Utc)).unwrap_or(frame.entered_time)
            }
            WaitSpec::TimestampPath(p) => {
                let v = scope.resolve(p).map_err(|_| {
                    io.runtime(format!("The TimestampPath parameter does not reference an input value: {p}"))
                })?;
                match v.as_str().and_then(parse_timestamp) {
                    Some(t) => t.with_timezone(&Utc),
                    None => {
                        return Err(io
                            .runtime(format!(
                                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                                display_plain(&v)
                            ))
                            .into());
                    }
                }
            }
        };
        let assigned = io.assign(state.assign.as_ref(), &scope)?;
        (effective, deadline, assigned)
    };
    let delay = (deadline - exec.rt.clock.now()).num_seconds();
    if delay > i32::MAX as i64 {
        return Err(io.runtime("Wait state delay is too long.").into());
    }
    exec.rt.clock.sleep_until(deadline).await;
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&effective, &build, &vars);
    let output = io.select(&state.output_path, &scope, effective.clone())?;
    drop(scope);
    finish(frame, state, &io, output, assigned)
}

/// A value as AWS prints it in a cause: strings bare, everything else as JSON.
fn display_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_json(other),
    }
}

/// Evaluates `TimeoutSeconds`/`MaxConcurrency`-style numbers.
fn num_value(spec: &NumSpec, scope: &Scope<'_>) -> Result<Option<f64>, String> {
    match spec {
        NumSpec::Lit(n) => Ok(Some(*n)),
        NumSpec::Path(p) => {
            let v = scope
                .resolve(p)
                .map_err(|_| format!("Invalid path '{p}': the path does not reference a value"))?;
            match &v {
                Value::Number(n) => Ok(n.as_f64()),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("the value {v} at '{p}' is not a number")),
                _ => Err(format!("the value {v} at '{p}' is not a number")),
            }
        }
    }
}

struct TaskCall {
    kind: ResourceKind,
    resource_type: String,
    resource_name: String,
    label: String,
}

fn describe_resource(resource: &str) -> TaskCall {
    let kind = resource_kind(resource);
    match &kind {
        ResourceKind::LambdaInvoke => TaskCall {
            kind,
            resource_type: "lambda".into(),
            resource_name: "invoke".into(),
            label: "lambda".into(),
        },
        ResourceKind::Service { service, action } => TaskCall {
            resource_type: service.clone(),
            resource_name: action.clone(),
            label: service.clone(),
            kind,
        },
        ResourceKind::Function => TaskCall {
            kind,
            resource_type: "lambda".into(),
            resource_name: resource.into(),
            label: resource.into(),
        },
    }
}

fn lambda_not_found(exec: &Exec, function: &str) -> Failure {
    let arn = match parse_function_ref(function) {
        Some(f) => format!(
            "arn:aws:lambda:{}:{}:function:{}:{}",
            f.region.unwrap_or_else(|| exec.rt.config.region.clone()),
            f.account.unwrap_or_else(|| exec.rt.config.account.clone()),
            f.name,
            f.qualifier.unwrap_or_else(|| "$LATEST".into())
        ),
        None => function.to_string(),
    };
    Failure::new(
        "Lambda.ResourceNotFoundException",
        format!(
            "Function not found: {arn} (Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: {}; Proxy: null)",
            uuid::Uuid::new_v4()
        ),
    )
}

fn lambda_invoke_response(payload: Value, bytes: usize, now: DateTime<Utc>) -> Value {
    let rid = uuid::Uuid::new_v4().to_string();
    let date = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let mut rng = rand::rng();
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0;Lineage=1:{:08x}:0",
        now.timestamp(),
        rng.random::<u128>() >> 32,
        rng.random::<u64>(),
        rng.random::<u32>()
    );
    let len = bytes.to_string();
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [rid],
                "Content-Length": [len],
                "Date": [date],
                "X-Amzn-Trace-Id": [trace],
                "Content-Type": ["application/json"]
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Length": len,
                "Content-Type": "application/json",
                "Date": date,
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": rid,
                "X-Amzn-Trace-Id": trace
            },
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": rid},
        "StatusCode": 200
    })
}

async fn run_task(exec: &Arc<Exec>, frame: &mut Frame, state: &State, t: &TaskSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let call = describe_resource(&t.resource);
    // Input processing.
    let (params, timeout, heartbeat) = {
        let vars = frame.vars.clone();
        let build = || exec.context_object(frame, state, None);
        let scope = Scope::new(&frame.input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
        let scope = scope.with_input(&effective);
        let params = match &state.parameters {
            Some(p) => io.template(p, &scope)?,
            None => effective.clone(),
        };
        let seconds = |spec: &Option<NumSpec>, field: &str| -> Result<Option<u64>, Failure> {
            match spec {
                None => Ok(None),
                Some(spec) => match num_value(spec, &scope) {
                    Ok(Some(n)) if n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
                    Ok(_) => Err(io.runtime(format!(
                        "The {field}Path parameter references a value that is not a positive integer"
                    ))),
                    Err(m) => Err(io.runtime(m)),
                },
            }
        };
        let timeout = seconds(&t.timeout, "TimeoutSeconds")?;
        let heartbeat = seconds(&t.heartbeat, "HeartbeatSeconds")?;
        (params, timeout, heartbeat)
    };

    // Which handler, with which event.
    let (handler, event, function_label) = match &call.kind {
        ResourceKind::Function => (exec.rt.registry.lookup(&t.resource), params.clone(), t.resource.clone()),
        ResourceKind::LambdaInvoke => {
            let Some(obj) = params.as_object() else {
                return Err(io
                    .runtime("The Parameters of a lambda:invoke task must be an object with FunctionName")
                    .into());
            };
            let Some(function) = obj.get("FunctionName").and_then(Value::as_str) else {
                return Err(io.runtime("The field 'FunctionName' is required by lambda:invoke").into());
            };
            // A string Payload is sent as the request body as it is, not as a JSON string.
            let payload = match obj.get("Payload") {
                None => Value::Object(Map::new()),
                Some(Value::String(body)) => match serde_json::from_str::<Value>(body) {
                    Ok(v) => v,
                    Err(e) => {
                        let cause = json!({
                            "errorMessage": format!("Unable to unmarshal input: {e}"),
                            "errorType": "Runtime.UnmarshalError",
                        });
                        return Err(Failure::new("Runtime.UnmarshalError", to_json(&cause)).into());
                    }
                },
                Some(other) => other.clone(),
            };
            (exec.rt.registry.lookup(function), payload, function.to_string())
        }
        ResourceKind::Service { .. } => {
            (exec.rt.registry.lookup(&t.resource), params.clone(), t.resource.clone())
        }
    };
    let is_lambda_arn = matches!(call.kind, ResourceKind::Function);
    if is_lambda_arn {
        frame.pending.push(history::lambda_scheduled(&t.resource, &to_json(&params), timeout));
    } else {
        frame.pending.push(history::task_scheduled(
            &call.resource_type,
            &call.resource_name,
            &exec.rt.config.region,
            &to_json(&params),
            timeout,
            heartbeat,
        ));
    }
    let fail = |frame: &mut Frame, f: Failure, timed_out: bool| -> Halt {
        let (e, c) = (f.error.as_deref(), f.cause.as_deref());
        frame.pending.push(match (is_lambda_arn, timed_out) {
            (true, false) => history::lambda_failed(e, c),
            (true, true) => history::lambda_timed_out(e, c),
            (false, false) => history::task_failed(&call.resource_type, &call.resource_name, e, c),
            (false, true) => history::task_timed_out(&call.resource_type, &call.resource_name, e, c),
        });
        Halt::Fail(f)
    };
    let Some(handler) = handler else {
        let f = match &call.kind {
            ResourceKind::Service { .. } => {
                io.runtime(format!("unsupported: no handler is registered for the resource '{}'", t.resource))
            }
            _ => lambda_not_found(exec, &function_label),
        };
        return Err(fail(frame, f, false));
    };
    frame.pending.push(if is_lambda_arn {
        history::lambda_started()
    } else {
        history::task_started(&call.resource_type, &call.resource_name)
    });

    let ctx = TaskContext {
        execution_arn: exec.arn.clone(),
        execution_name: exec.name.clone(),
        state_machine_name: exec.sm_name.clone(),
        state_name: state.name.clone(),
        resource: t.resource.clone(),
        map_item_index: frame.map_index,
        retry_count: frame.retries.iter().sum(),
        clock: exec.rt.clock.clone(),
    };
    let invocation = handler.invoke(event, ctx);
    let outcome: Result<Result<TaskOutput, TaskError>, ()> = match timeout {
        Some(secs) => {
            let sleep = exec.rt.clock.sleep(Duration::from_secs(secs));
            tokio::select! {
                r = invocation => Ok(r),
                _ = sleep => Err(()),
            }
        }
        None => Ok(invocation.await),
    };
    let output = match outcome {
        Err(()) => {
            return Err(fail(frame, Failure { error: Some(names::TIMEOUT.into()), cause: None }, true));
        }
        Ok(Err(e)) => return Err(fail(frame, Failure::new(e.error, e.cause), false)),
        Ok(Ok(out)) => out,
    };
    let (payload, bytes) = match output {
        TaskOutput::Json(v) => {
            let n = to_json(&v).len();
            (Ok(v), n)
        }
        TaskOutput::Raw(s) => {
            let n = s.len();
            (serde_json::from_str::<Value>(&s).map_err(|e| e.to_string()), n)
        }
    };
    if bytes > PAYLOAD_LIMIT_BYTES {
        return Err(fail(frame, data_limit(&call.label), false));
    }
    let payload = match payload {
        Ok(p) => p,
        Err(e) => {
            return Err(fail(
                frame,
                io.runtime(format!("The task returned a payload that is not JSON: {e}")),
                false,
            ));
        }
    };
    let result = match call.kind {
        ResourceKind::LambdaInvoke => lambda_invoke_response(payload, bytes, exec.rt.clock.now()),
        _ => payload,
    };
    let result_json = to_json(&result);
    frame.pending.push(if is_lambda_arn {
        history::lambda_succeeded(&result_json)
    } else {
        history::task_succeeded(&call.resource_type, &call.resource_name, &result_json)
    });
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&result, &build, &vars);
    let selected = match &state.result_selector {
        Some(s) => io.template(s, &scope)?,
        None => result.clone(),
    };
    let assigned = io.assign(state.assign.as_ref(), &scope.with_input(&selected))?;
    let with_result = io.result_path(&frame.input, selected)?;
    let output = io.select(&state.output_path, &scope, with_result)?;
    drop(scope);
    finish(frame, state, &io, output, assigned)
}

/// The outcome of one child frame (Map iteration or Parallel branch).
type ChildDone = (usize, Frame, Result<Value, Halt>);

fn spawn_child(
    set: &mut JoinSet<ChildDone>,
    exec: &Arc<Exec>,
    index: usize,
    frame: Frame,
    first: Option<Write>,
) {
    let exec = exec.clone();
    set.spawn(async move {
        let mut frame = frame;
        if let Some(w) = first
            && let Err(h) = exec.write(&mut frame, w).await
        {
            return (index, frame, Err(h));
        }
        let (frame, result) = run_frame(exec, frame).await;
        (index, frame, result)
    });
}

/// Child frames of a Map or Parallel state found in the store (resume or redrive).
fn take_children(exec: &Exec, parent_path: &str, state_name: &str) -> HashMap<usize, FrameRecord> {
    let mut prefix = children_root(parent_path, state_name);
    prefix.push('/');
    let mut resume = exec.resume.lock().unwrap_or_else(|e| e.into_inner());
    let keys: Vec<String> = resume
        .keys()
        .filter(|k| k.starts_with(&prefix) && k[prefix.len()..].chars().all(|c| c.is_ascii_digit()))
        .cloned()
        .collect();
    let mut out = HashMap::new();
    for k in keys {
        if let Some(rec) = resume.remove(&k)
            && let Ok(i) = k[prefix.len()..].parse::<usize>()
        {
            out.insert(i, rec);
        }
    }
    out
}

async fn run_map(exec: &Arc<Exec>, frame: &mut Frame, state: &State, m: &MapSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let (effective, items, max_concurrency, tolerated_count, tolerated_pct) = {
        let vars = frame.vars.clone();
        let build = || exec.context_object(frame, state, None);
        let scope = Scope::new(&frame.input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
        let scope = scope.with_input(&effective);
        let items = match &m.items_path {
            None => effective.clone(),
            Some(p) => scope.resolve(p).map_err(|e| match e {
                EvalError::Path { path, message } => io.runtime(format!("Invalid path '{path}' : {message}")),
                EvalError::UndefinedVariable(v) => {
                    io.runtime(format!("Invalid path '{p}' : The variable '{v}' is not defined"))
                }
                EvalError::Intrinsic(s) => io.runtime(s),
            })?,
        };
        let Value::Array(items) = items else {
            return Err(io
                .runtime(format!(
                    "Item selection at path '{}' did not return an array: {}",
                    m.items_path.as_ref().map(|p| p.as_str()).unwrap_or("$"),
                    to_json(&items)
                ))
                .into());
        };
        let num = |spec: &Option<NumSpec>| -> Result<Option<f64>, Failure> {
            match spec {
                None => Ok(None),
                Some(s) => num_value(s, &scope).map_err(|e| io.runtime(e)),
            }
        };
        let max_concurrency = num(&m.max_concurrency)?.unwrap_or(0.0);
        let tolerated_count = num(&m.tolerated_count)?;
        let tolerated_pct = num(&m.tolerated_percentage)?;
        (effective, items, max_concurrency, tolerated_count, tolerated_pct)
    };
    let n = items.len();
    let limit = if max_concurrency >= 1.0 { (max_concurrency as usize).min(n.max(1)) } else { n.max(1) };

    let started = frame.resumed && frame.progress.is_some();
    let mut existing = if started { take_children(exec, &frame.path, &state.name) } else { HashMap::new() };
    if !started {
        frame.progress = Some(json!({"started": true}));
        let delete_under = vec![children_root(&frame.path, &state.name)];
        frame.pending.push(history::map_state_started(n));
        exec.write(
            frame,
            Write { save: Some((FrameStatus::Running, None)), delete_under, ..Write::default() },
        )
        .await?;
    }

    let mut outputs: Vec<Option<Value>> = vec![None; n];
    let mut failures: Vec<(usize, Failure)> = Vec::new();
    let mut set: JoinSet<ChildDone> = JoinSet::new();
    let mut queue: Vec<usize> = Vec::new();
    for i in (0..n).rev() {
        match existing.remove(&i) {
            Some(rec) if rec.status == FrameStatus::Succeeded => outputs[i] = rec.result.clone(),
            Some(rec) if rec.status == FrameStatus::Failed => {
                let f: Failure = rec
                    .result
                    .as_ref()
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                    .unwrap_or(Failure { error: None, cause: None });
                failures.push((i, f));
            }
            Some(rec) => {
                // In flight when the process stopped: resume it first.
                if let Some(child) = Frame::from_record(&rec, m.processor.clone(), Some(i as u64)) {
                    spawn_child(&mut set, exec, i, child, None);
                } else {
                    queue.push(i);
                }
            }
            None => queue.push(i),
        }
    }

    let tolerance_exceeded = |failed: usize| -> bool {
        let by_count = tolerated_count.map(|c| failed as f64 > c);
        let by_pct = tolerated_pct.map(|p| n > 0 && (failed as f64 * 100.0 / n as f64) > p);
        match (by_count, by_pct) {
            (None, None) => failed > 0,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (Some(a), Some(b)) => a || b,
        }
    };
    let mut first_failure: Option<Failure> = None;
    if tolerance_exceeded(failures.len()) {
        first_failure = failures.first().map(|(_, f)| f.clone());
    }

    loop {
        if first_failure.is_some() {
            break;
        }
        while set.len() < limit
            && let Some(i) = queue.pop()
        {
            let item_input = match &m.item_selector {
                None => items[i].clone(),
                Some(sel) => {
                    let vars = frame.vars.clone();
                    let build = || exec.context_object(frame, state, Some((i, &items[i])));
                    let scope = Scope::new(&effective, &build, &vars);
                    io.template(sel, &scope)?
                }
            };
            let machine = m.processor.clone();
            let start = &machine.states[machine.start_at];
            let child = Frame {
                path: child_path(&frame.path, &state.name, i),
                machine: machine.clone(),
                state: machine.start_at,
                input: item_input.clone(),
                vars: frame.vars.clone(),
                entered_event_id: 0,
                last_event_id: frame.last_event_id,
                entered_time: exec.rt.clock.now(),
                retries: Vec::new(),
                resumed: false,
                progress: None,
                map_index: Some(i as u64),
                pending: Vec::new(),
                pending_deletes: Vec::new(),
            };
            let first = Write {
                events: vec![
                    history::map_iteration("Started", &state.name, i),
                    history::state_entered(start.kind.event_prefix(), &start.name, &to_json(&item_input)),
                ],
                entered_at: Some(1),
                save: Some((FrameStatus::Running, None)),
                ..Write::default()
            };
            spawn_child(&mut set, exec, i, child, Some(first));
        }
        let Some(joined) = set.join_next().await else { break };
        let (i, mut child, result) = match joined {
            Ok(done) => done,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match result {
            Ok(out) => {
                let w = Write {
                    events: vec![history::map_iteration("Succeeded", &state.name, i)],
                    save: Some((FrameStatus::Succeeded, Some(out.clone()))),
                    ..Write::default()
                };
                exec.write(&mut child, w).await?;
                outputs[i] = Some(out);
            }
            Err(Halt::Store(e)) => return Err(Halt::Store(e)),
            Err(Halt::Fail(f)) => {
                let w = Write {
                    events: vec![history::map_iteration("Failed", &state.name, i)],
                    save: Some((FrameStatus::Failed, Some(serde_json::to_value(&f).unwrap_or(Value::Null)))),
                    ..Write::default()
                };
                exec.write(&mut child, w).await?;
                failures.push((i, f.clone()));
                if tolerance_exceeded(failures.len()) {
                    first_failure = Some(f);
                }
            }
        }
    }

    if let Some(f) = first_failure {
        set.abort_all();
        let mut aborted = Vec::new();
        while let Some(j) = set.join_next().await {
            if let Ok((i, _, _)) = j {
                aborted.push(i);
            }
        }
        let mut events: Vec<NewEvent> = Vec::new();
        for i in aborted {
            events.push(history::map_iteration("Aborted", &state.name, i));
        }
        let f = if tolerated_count.is_some() || tolerated_pct.is_some() {
            Failure::new(
                names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                at_state(
                    &state.name,
                    frame.entered_event_id,
                    "The specified tolerated failure threshold was exceeded",
                ),
            )
        } else {
            f
        };
        frame.pending.extend(events);
        frame.pending.push(history::bare("MapStateFailed"));
        return Err(Halt::Fail(f));
    }

    frame.pending.push(history::bare("MapStateSucceeded"));
    let failed: HashMap<usize, Failure> = failures.into_iter().collect();
    let results: Vec<Value> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(v) => v,
            None => failed.get(&i).map(Failure::to_catch_output).unwrap_or(Value::Null),
        })
        .collect();
    let result = Value::Array(results);
    let step = finish_composite(exec, frame, state, &io, result)?;
    // The children are finished: their records go with the parent's next write.
    frame.pending_deletes.push(children_root(&frame.path, &state.name));
    Ok(step)
}

/// Parallel and Map states end the same way: ResultSelector, Assign, ResultPath, OutputPath.
fn finish_composite(
    exec: &Exec,
    frame: &mut Frame,
    state: &State,
    io: &Io<'_>,
    result: Value,
) -> Result<Step, Halt> {
    let vars = frame.vars.clone();
    let build = || exec.context_object(frame, state, None);
    let scope = Scope::new(&result, &build, &vars);
    let selected = match &state.result_selector {
        Some(s) => io.template(s, &scope)?,
        None => result.clone(),
    };
    let assigned = io.assign(state.assign.as_ref(), &scope.with_input(&selected))?;
    let with_result = io.result_path(&frame.input, selected)?;
    let output = io.select(&state.output_path, &scope, with_result)?;
    drop(scope);
    finish(frame, state, io, output, assigned)
}

async fn run_parallel(
    exec: &Arc<Exec>,
    frame: &mut Frame,
    state: &State,
    branches: &[Arc<Machine>],
) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let branch_input = {
        let vars = frame.vars.clone();
        let build = || exec.context_object(frame, state, None);
        let scope = Scope::new(&frame.input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, frame.input.clone())?;
        let scope = scope.with_input(&effective);
        match &state.parameters {
            Some(p) => io.template(p, &scope)?,
            None => effective.clone(),
        }
    };
    let n = branches.len();
    let started = frame.resumed && frame.progress.is_some();
    let mut existing = if started { take_children(exec, &frame.path, &state.name) } else { HashMap::new() };
    if !started {
        frame.progress = Some(json!({"started": true}));
        let delete_under = vec![children_root(&frame.path, &state.name)];
        frame.pending.push(history::bare("ParallelStateStarted"));
        exec.write(
            frame,
            Write { save: Some((FrameStatus::Running, None)), delete_under, ..Write::default() },
        )
        .await?;
    }
    let mut outputs: Vec<Option<Value>> = vec![None; n];
    let mut set: JoinSet<ChildDone> = JoinSet::new();
    let mut failure: Option<Failure> = None;
    for (i, machine) in branches.iter().enumerate() {
        match existing.remove(&i) {
            Some(rec) if rec.status == FrameStatus::Succeeded => outputs[i] = rec.result.clone(),
            Some(rec) if rec.status == FrameStatus::Failed => {
                failure = Some(
                    rec.result
                        .as_ref()
                        .and_then(|r| serde_json::from_value(r.clone()).ok())
                        .unwrap_or(Failure { error: None, cause: None }),
                );
            }
            Some(rec) if Frame::from_record(&rec, machine.clone(), frame.map_index).is_some() => {
                if let Some(child) = Frame::from_record(&rec, machine.clone(), frame.map_index) {
                    spawn_child(&mut set, exec, i, child, None);
                }
            }
            _ => {
                let start = &machine.states[machine.start_at];
                let child = Frame {
                    path: child_path(&frame.path, &state.name, i),
                    machine: machine.clone(),
                    state: machine.start_at,
                    input: branch_input.clone(),
                    vars: frame.vars.clone(),
                    entered_event_id: 0,
                    last_event_id: frame.last_event_id,
                    entered_time: exec.rt.clock.now(),
                    retries: Vec::new(),
                    resumed: false,
                    progress: None,
                    map_index: frame.map_index,
                    pending: Vec::new(),
                    pending_deletes: Vec::new(),
                };
                let first = Write {
                    events: vec![history::state_entered(
                        start.kind.event_prefix(),
                        &start.name,
                        &to_json(&branch_input),
                    )],
                    entered_at: Some(0),
                    save: Some((FrameStatus::Running, None)),
                    ..Write::default()
                };
                spawn_child(&mut set, exec, i, child, Some(first));
            }
        }
    }
    while failure.is_none() {
        let Some(joined) = set.join_next().await else { break };
        let (i, mut child, result) = match joined {
            Ok(done) => done,
            Err(e) if e.is_cancelled() => continue,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match result {
            Ok(out) => {
                let w = Write { save: Some((FrameStatus::Succeeded, Some(out.clone()))), ..Write::default() };
                exec.write(&mut child, w).await?;
                outputs[i] = Some(out);
            }
            Err(Halt::Store(e)) => return Err(Halt::Store(e)),
            Err(Halt::Fail(f)) => {
                let w = Write {
                    save: Some((FrameStatus::Failed, Some(serde_json::to_value(&f).unwrap_or(Value::Null)))),
                    ..Write::default()
                };
                exec.write(&mut child, w).await?;
                failure = Some(f);
            }
        }
    }
    if let Some(f) = failure {
        set.abort_all();
        while set.join_next().await.is_some() {}
        frame.pending.push(history::bare("ParallelStateFailed"));
        return Err(Halt::Fail(f));
    }
    frame.pending.push(history::bare("ParallelStateSucceeded"));
    let result = Value::Array(outputs.into_iter().map(|o| o.unwrap_or(Value::Null)).collect());
    let step = finish_composite(exec, frame, state, &io, result)?;
    frame.pending_deletes.push(children_root(&frame.path, &state.name));
    Ok(step)
}

//! The interpreter: runs the frames of an execution (the root, Map iterations, Parallel
//! branches) state by state, applies input/output processing in AWS's order, Retry and Catch,
//! and writes every transition to the execution store before moving on.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::choice::parse_timestamp;
use crate::clock::Clock;
use crate::definition::{
    Definition, IoPath, Kind, Machine, MapSpec, NumSpec, State, StrSpec, TaskSpec, WaitSpec, error_matches,
};
use crate::error::{Failure, PAYLOAD_LIMIT_BYTES, at_state, names};
use crate::history::{self, EventKind, Payload};
use crate::store::{
    Batch, ExecutionStatus, ExecutionStore, ExecutionUpdate, FrameRecord, FrameStatus, StoreError,
};
use crate::task::{ResourceKind, TaskContext, TaskError, TaskOutput, TaskRegistry, parse_function_ref};
use crate::template::{ContextPart, EvalError, Scope, Template, TemplateError};

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
    pub callbacks: Arc<Callbacks>,
    pub clock: Arc<dyn Clock>,
    pub registry: TaskRegistry,
    pub config: EngineConfig,
    pub region: Arc<str>,
    pub role_arn: Arc<str>,
}

/// One execution while it runs.
pub(crate) struct Exec {
    pub arn: Arc<str>,
    pub name: Arc<str>,
    pub sm_name: Arc<str>,
    pub sm_arn: Arc<str>,
    pub input: Arc<Value>,
    pub start_time: DateTime<Utc>,
    pub redrive_count: u32,
    pub redrive_time: Option<DateTime<Utc>>,
    /// An Express execution: no redrive, and a context object without its fields.
    pub express: bool,
    pub definition: Definition,
    pub rt: Arc<Runtime>,
    pub next_event_id: Mutex<u64>,
    /// Frames loaded from the store for a resume or redrive, taken as the frames reach them.
    pub resume: Mutex<HashMap<String, FrameRecord>>,
    /// An Express execution's events, held until it ends (see [`Exec::commit`]).
    pub held: Arc<Mutex<Vec<history::Event>>>,
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
    pub path: Arc<str>,
    pub machine: Arc<Machine>,
    pub state: usize,
    pub input: Arc<Value>,
    pub vars: Arc<Map<String, Value>>,
    pub entered_event_id: u64,
    pub last_event_id: u64,
    pub entered_time: DateTime<Utc>,
    pub retries: Vec<u32>,
    /// The current state was entered before a restart (its entered event is recorded).
    pub resumed: bool,
    pub progress: Option<Value>,
    pub map_index: Option<u64>,
    /// Events numbered when they happened but not yet written (a child's start).
    pub numbered: Vec<history::Event>,
    /// Events not yet written; they go out with the frame's next write.
    pub pending: Vec<EventKind>,
    /// Frame records to remove with the frame's next write (finished children).
    pub pending_deletes: Vec<String>,
}

impl Frame {
    pub fn record(&self, status: FrameStatus, result: Option<Arc<Value>>) -> FrameRecord {
        FrameRecord {
            path: self.path.clone(),
            state: self.machine.states[self.state].name.clone(),
            input: self.input.clone(),
            vars: self.vars.clone(),
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
            vars: rec.vars.clone(),
            entered_event_id: rec.entered_event_id,
            last_event_id: rec.last_event_id,
            entered_time: rec.entered_time,
            retries: rec.retries.clone(),
            resumed: true,
            progress: rec.progress.clone(),
            map_index,
            numbered: Vec::new(),
            pending: Vec::new(),
            pending_deletes: Vec::new(),
        })
    }

    fn child(
        &self,
        path: Arc<str>,
        machine: Arc<Machine>,
        input: Arc<Value>,
        map_index: Option<u64>,
        now: DateTime<Utc>,
    ) -> Frame {
        Frame {
            path,
            state: machine.start_at,
            machine,
            input,
            vars: self.vars.clone(),
            entered_event_id: 0,
            last_event_id: self.last_event_id,
            entered_time: now,
            retries: Vec::new(),
            resumed: false,
            progress: None,
            map_index,
            numbered: Vec::new(),
            pending: Vec::new(),
            pending_deletes: Vec::new(),
        }
    }
}

/// A write of one frame: its pending events plus `events`, optionally its own record.
#[derive(Default)]
pub(crate) struct Write {
    pub events: Vec<EventKind>,
    /// Index in `events` of the event that entered the frame's current state.
    pub entered_at: Option<usize>,
    pub save: Option<(FrameStatus, Option<Arc<Value>>)>,
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

fn text_payload(v: &Value) -> Payload {
    Payload::Text(Arc::from(to_json(v)))
}

/// An upper bound of a value's size as compact JSON, without writing it (numbers count as
/// their longest form).
fn json_size_bound(v: &Value) -> usize {
    fn string(s: &str) -> usize {
        2 + s
            .bytes()
            .map(|b| {
                if b < 0x20 {
                    6
                } else if b == b'"' || b == b'\\' {
                    2
                } else {
                    1
                }
            })
            .sum::<usize>()
    }
    match v {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 24,
        Value::String(s) => string(s),
        Value::Array(a) => 2 + a.len() + a.iter().map(json_size_bound).sum::<usize>(),
        Value::Object(m) => {
            2 + 2 * m.len() + m.iter().map(|(k, v)| string(k) + json_size_bound(v)).sum::<usize>()
        }
    }
}

/// True when the value is larger than the 256 KiB payload limit as JSON.
fn exceeds_limit(v: &Value) -> bool {
    json_size_bound(v) > PAYLOAD_LIMIT_BYTES && to_json(v).len() > PAYLOAD_LIMIT_BYTES
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

fn child_path(root: &str, index: usize) -> Arc<str> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(root.len() + 8);
    s.push_str(root);
    let _ = write!(s, "/{index}");
    Arc::from(s)
}

impl Exec {
    /// Numbers the frame's pending events and `w.events`, and writes them with the frame.
    pub async fn write(&self, frame: &mut Frame, w: Write) -> Result<(), Halt> {
        let mut events = std::mem::take(&mut frame.pending);
        let offset = events.len();
        events.extend(w.events);
        let mut delete_under = std::mem::take(&mut frame.pending_deletes);
        delete_under.extend(w.delete_under);
        let batch = {
            let mut next = self.next_event_id.lock().unwrap_or_else(|e| e.into_inner());
            let first = *next;
            *next += events.len() as u64;
            drop(next);
            let mut numbered = std::mem::take(&mut frame.numbered);
            numbered.extend(history::number(events, first, frame.last_event_id, self.rt.clock.now()));
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
            Batch {
                execution_arn: self.arn.clone(),
                events: numbered,
                put_frames: put,
                delete_frames_under: delete_under,
                update: w.update,
            }
        };
        self.commit(batch).await.map_err(Halt::Store)
    }

    /// Record a batch. A Standard execution's is committed before the execution goes on, so that
    /// it resumes from there after a restart.
    ///
    /// An Express execution is kept as AWS keeps one: it is not resumed from where it was (a
    /// restart runs it again from the start, as AWS runs an asynchronous Express execution at
    /// least once) and its history is not kept when it succeeds (AWS has no history of an
    /// Express execution, only its logs, and the deployed workflows log errors alone). So its
    /// events are held in memory and its threads' frames are not written; its end is committed
    /// with the events it held when it did not succeed, and with its last events alone when it
    /// did (its record, its start and its end).
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if !self.express {
            return self.rt.store.commit(batch).await;
        }
        let end = batch.update.as_ref().and_then(|u| u.status).filter(|s| *s != ExecutionStatus::Running);
        let held = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match end {
                None => {
                    held.extend(batch.events);
                    return Ok(());
                }
                Some(ExecutionStatus::Succeeded) => {
                    held.clear();
                    Vec::new()
                }
                Some(_) => std::mem::take(&mut *held),
            }
        };
        self.rt.store.commit(with_held(held, batch)).await
    }

    /// Numbers events now and keeps them in the frame for its next write: a child's start is
    /// written with its first transition (a child that never wrote anything simply starts
    /// again after a restart), but its ids and times are those of the moment it started.
    fn start_child(&self, child: &mut Frame, events: Vec<EventKind>, entered_at: usize) {
        let first = {
            let mut next = self.next_event_id.lock().unwrap_or_else(|e| e.into_inner());
            let first = *next;
            *next += events.len() as u64;
            first
        };
        let numbered = history::number(events, first, child.last_event_id, self.rt.clock.now());
        if let Some(last) = numbered.last() {
            child.last_event_id = last.id;
        }
        child.entered_event_id = first + entered_at as u64;
        child.numbered = numbered;
    }

    fn context_object(
        &self,
        frame: &Frame,
        state: &State,
        map_item: Option<(usize, &Value)>,
        part: ContextPart,
    ) -> Value {
        self.context_object_with(frame, state, map_item, None, part)
    }

    /// The context object `$$` as AWS shows it to a state: the execution (an Express execution
    /// has no redrive fields), the state machine, the state (with `RetryCount` only in the
    /// states that can retry), the task token of a `.waitForTaskToken` task and the Map item;
    /// or as much of it as `part` asks for.
    fn context_object_with(
        &self,
        frame: &Frame,
        state: &State,
        map_item: Option<(usize, &Value)>,
        task_token: Option<&str>,
        part: ContextPart,
    ) -> Value {
        if part == ContextPart::MapItem {
            return match map_item {
                Some((i, v)) => json!({"Map": {"Item": {"Index": i, "Value": v}}}),
                None => Value::Object(Map::new()),
            };
        }
        let mut exec = Map::new();
        exec.insert("Id".into(), Value::String(self.arn.to_string()));
        if part == ContextPart::Whole {
            exec.insert("Input".into(), (*self.input).clone());
        }
        exec.insert("StartTime".into(), Value::String(iso(&self.start_time)));
        exec.insert("Name".into(), Value::String(self.name.to_string()));
        exec.insert("RoleArn".into(), Value::String(self.rt.config.role_arn.clone()));
        if !self.express {
            exec.insert("RedriveCount".into(), Value::from(self.redrive_count));
            if let Some(t) = &self.redrive_time {
                exec.insert("RedriveTime".into(), Value::String(iso(t)));
            }
        }
        let mut st = Map::new();
        st.insert("Name".into(), Value::String(state.name.to_string()));
        st.insert("EnteredTime".into(), Value::String(iso(&frame.entered_time)));
        if matches!(state.kind, Kind::Task(_) | Kind::Map(_) | Kind::Parallel { .. }) {
            st.insert("RetryCount".into(), Value::from(frame.retries.iter().sum::<u32>()));
        }
        let mut ctx = Map::new();
        ctx.insert("Execution".into(), Value::Object(exec));
        ctx.insert("StateMachine".into(), json!({"Id": &*self.sm_arn, "Name": &*self.sm_name}));
        ctx.insert("State".into(), Value::Object(st));
        if let Some(token) = task_token {
            ctx.insert("Task".into(), json!({ "Token": token }));
        }
        if let Some((i, v)) = map_item {
            ctx.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
        }
        Value::Object(ctx)
    }
}

/// What a state decided. `json` is the output as JSON text, shared with the next state's
/// entered event.
enum Step {
    Next { next: usize, output: Arc<Value>, json: Payload, assigned: Option<Map<String, Value>> },
    End { output: Arc<Value>, assigned: Option<Map<String, Value>> },
}

/// Runs a frame to its end. The frame comes back so the caller can write its last events.
pub(crate) fn run_frame(
    exec: Arc<Exec>,
    mut frame: Frame,
) -> BoxFuture<'static, (Frame, Result<Arc<Value>, Halt>)> {
    Box::pin(async move {
        loop {
            let machine = frame.machine.clone();
            let state = &machine.states[frame.state];
            let step = run_state(&exec, &mut frame, state).await;
            match step {
                Ok(Step::Next { next, output, json, assigned }) => {
                    apply_assigned(&mut frame, assigned);
                    let next_state = &machine.states[next];
                    let entered = EventKind::StateEntered {
                        state_type: next_state.kind.event_prefix(),
                        name: next_state.name.clone(),
                        input: json.clone(),
                    };
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

    fn select<'v>(
        &self,
        path: &IoPath,
        scope: &Scope<'_>,
        value: Cow<'v, Value>,
    ) -> Result<Cow<'v, Value>, Failure> {
        match path {
            IoPath::Root => Ok(value),
            IoPath::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
            IoPath::Path(p) => {
                let scope = scope.with_input(&value);
                scope.resolve(p).map(Cow::Owned).map_err(|e| match e {
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

    fn result_path(&self, path: &IoPath, raw: &Value, result: Value) -> Result<Value, Failure> {
        match path {
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
}

fn data_limit(label: &str) -> Failure {
    Failure::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{label}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}

fn exit_event(state: &State, output: Payload, assigned: Option<&Map<String, Value>>) -> EventKind {
    EventKind::StateExited {
        state_type: state.kind.event_prefix(),
        name: state.name.clone(),
        output,
        assigned: assigned.filter(|a| !a.is_empty()).map(|a| Arc::new(a.clone())),
    }
}

/// Ends a state whose processing produced `output`: the size check, the exit event, then
/// Next or End.
fn finish(
    frame: &mut Frame,
    state: &State,
    output: Value,
    assigned: Option<Map<String, Value>>,
) -> Result<Step, Halt> {
    finish_with(frame, state, Arc::new(output), assigned, None)
}

/// [`finish`] with the output shared and, when the caller already has it, its JSON text.
fn finish_with(
    frame: &mut Frame,
    state: &State,
    output: Arc<Value>,
    assigned: Option<Map<String, Value>>,
    json: Option<Payload>,
) -> Result<Step, Halt> {
    if exceeds_limit(&output) {
        return Err(data_limit(&state.name).into());
    }
    let json = json.unwrap_or_else(|| Payload::Value(output.clone()));
    frame.pending.push(exit_event(state, json.clone(), assigned.as_ref()));
    Ok(match state.next {
        Some(next) => Step::Next { next, output, json, assigned },
        None => Step::End { output, assigned },
    })
}

/// Runs one state, with its Retry and Catch.
async fn run_state(exec: &Arc<Exec>, frame: &mut Frame, state: &State) -> Result<Step, Halt> {
    loop {
        let attempt = match &state.kind {
            Kind::Pass { result } => run_pass(exec, frame, state, result.as_ref()),
            Kind::Choice { .. } => run_choice(exec, frame, state),
            // The futures of the waiting and nesting states are boxed so that every frame's
            // future stays small (a Map allocates one per item).
            Kind::Wait(w) => Box::pin(run_wait(exec, frame, state, w)).await,
            Kind::Succeed => run_succeed(exec, frame, state),
            Kind::Fail { error, cause } => run_fail(exec, frame, state, error.as_ref(), cause.as_ref()),
            Kind::Task(t) => Box::pin(run_task(exec, frame, state, t)).await,
            Kind::Map(m) => Box::pin(run_map(exec, frame, state, m)).await,
            Kind::Parallel { branches } => Box::pin(run_parallel(exec, frame, state, branches)).await,
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
            let build = |part| exec.context_object(frame, state, None, part);
            let scope = Scope::new(&error_output, &build, &vars);
            let assigned = io.assign(c.assign.as_ref(), &scope)?;
            let output = io.result_path(&c.result_path, &frame.input, error_output.clone())?;
            drop(scope);
            let output = Arc::new(output);
            let json = Payload::Value(output.clone());
            frame.pending.push(exit_event(state, json.clone(), assigned.as_ref()));
            if matches!(state.kind, Kind::Map(_) | Kind::Parallel { .. }) {
                frame.pending_deletes.push(children_root(&frame.path, &state.name));
            }
            return Ok(Step::Next { next: c.next, output, json, assigned });
        }
        return Err(Halt::Fail(failure));
    }
}

fn run_pass(exec: &Exec, frame: &mut Frame, state: &State, result: Option<&Value>) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let input = frame.input.clone();
    let pass_through = result.is_none()
        && state.parameters.is_none()
        && state.assign.is_none()
        && state.input_path == IoPath::Root
        && state.result_path == IoPath::Root
        && state.output_path == IoPath::Root;
    if pass_through {
        return finish_with(frame, state, input, None, None);
    }
    let vars = frame.vars.clone();
    let build = |part| exec.context_object(frame, state, None, part);
    let scope = Scope::new(&input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
    let scope = scope.with_input(&effective);
    let value = match (result, &state.parameters) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => io.template(p, &scope)?,
        (None, None) => effective.as_ref().clone(),
    };
    let assigned = io.assign(state.assign.as_ref(), &scope.with_input(&value))?;
    let with_result = io.result_path(&state.result_path, &input, value)?;
    let output = io.select(&state.output_path, &scope, Cow::Owned(with_result))?.into_owned();
    drop(scope);
    finish(frame, state, output, assigned)
}

fn run_succeed(exec: &Exec, frame: &mut Frame, state: &State) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let input = frame.input.clone();
    if state.input_path == IoPath::Root && state.output_path == IoPath::Root {
        frame.pending.push(exit_event(state, Payload::Value(input.clone()), None));
        return Ok(Step::End { output: input, assigned: None });
    }
    let vars = frame.vars.clone();
    let build = |part| exec.context_object(frame, state, None, part);
    let scope = Scope::new(&input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
    let output = io.select(&state.output_path, &scope, effective)?.into_owned();
    drop(scope);
    let output = Arc::new(output);
    frame.pending.push(exit_event(state, Payload::Value(output.clone()), None));
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
    let build = |part| exec.context_object(frame, state, None, part);
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
    let input = frame.input.clone();
    let vars = frame.vars.clone();
    let build = |part| exec.context_object(frame, state, None, part);
    let scope = Scope::new(&input, &build, &vars);
    let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
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
    let unchanged = state.input_path == IoPath::Root && state.output_path == IoPath::Root;
    let output = if unchanged {
        // The output is the input: share it.
        drop(scope);
        input.clone()
    } else {
        let output = io.select(&state.output_path, &scope, Cow::Borrowed(&*effective))?.into_owned();
        drop(scope);
        if exceeds_limit(&output) {
            return Err(data_limit(&state.name).into());
        }
        Arc::new(output)
    };
    let json = Payload::Value(output.clone());
    frame.pending.push(exit_event(state, json.clone(), assigned.as_ref()));
    Ok(Step::Next { next, output, json, assigned })
}

async fn run_wait(exec: &Exec, frame: &mut Frame, state: &State, w: &WaitSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let input = frame.input.clone();
    let (effective, deadline, assigned) = {
        let vars = frame.vars.clone();
        let build = |part| exec.context_object(frame, state, None, part);
        let scope = Scope::new(&input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?.into_owned();
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
    let build = |part| exec.context_object(frame, state, None, part);
    let nothing = Value::Null;
    let scope = Scope::new(&nothing, &build, &vars);
    let output = io.select(&state.output_path, &scope, Cow::Owned(effective))?.into_owned();
    drop(scope);
    finish(frame, state, output, assigned)
}

/// A value as AWS prints it in a cause: strings bare, everything else as JSON.
fn display_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_json(other),
    }
}

/// The numbers of a Map state that may come from a path.
#[derive(Clone, Copy)]
enum MapNumber {
    MaxConcurrency,
    ToleratedCount,
    ToleratedPercentage,
}

/// A Map state's `MaxConcurrency`, `ToleratedFailureCount` or `ToleratedFailurePercentage`,
/// literal or from its `...Path`, checked as AWS checks it: a path's value may be a number or a
/// string holding an integer; anything else, or a value out of range, fails the state with
/// `States.Runtime` and AWS's own words (no state prefix).
fn map_number(
    which: MapNumber,
    spec: Option<&NumSpec>,
    scope: &Scope<'_>,
    io: &Io<'_>,
) -> Result<Option<f64>, Failure> {
    let (field, kind) = match which {
        MapNumber::MaxConcurrency => ("MaxConcurrencyPath", "integer"),
        MapNumber::ToleratedCount => ("ToleratedFailureCountPath", "integer"),
        MapNumber::ToleratedPercentage => ("ToleratedFailurePercentagePath", "float"),
    };
    let path = match spec {
        None => return Ok(None),
        Some(NumSpec::Lit(n)) => return Ok(Some(*n)),
        Some(NumSpec::Path(p)) => p,
    };
    let value = scope.resolve(path).map_err(|e| match e {
        EvalError::Path { path, message } => io.runtime(format!("Invalid path '{path}' : {message}")),
        EvalError::UndefinedVariable(v) => {
            io.runtime(format!("Invalid path '{}' : The variable '{v}' is not defined", path.as_str()))
        }
        EvalError::Intrinsic(m) => io.runtime(m),
    })?;
    let number = match &value {
        Value::Number(n) => match which {
            MapNumber::ToleratedPercentage => n.as_f64(),
            // Integers only: `1.5` concurrent iterations means nothing.
            _ => n.as_i64().map(|i| i as f64).or_else(|| n.as_u64().map(|u| u as f64)),
        },
        // A string that holds an integer counts as that integer.
        Value::String(t) => t.trim().parse::<i64>().ok().map(|i| i as f64),
        _ => None,
    };
    let Some(n) = number else {
        return Err(Failure::new(
            names::RUNTIME,
            format!(
                "The {field} field refers to value \"{}\" which is not a valid {kind}: {}",
                display_plain(&value),
                path.as_str()
            ),
        ));
    };
    let out_of_range = match which {
        MapNumber::MaxConcurrency if n < 0.0 => {
            Some(format!("Expected non-negative integer for MaxConcurrency, got '{n}' instead."))
        }
        MapNumber::ToleratedCount if n < 0.0 => Some("ToleratedFailureCount cannot be negative.".to_string()),
        MapNumber::ToleratedPercentage if !(0.0..=100.0).contains(&n) => {
            Some("ToleratedFailurePercentage must be between 0 and 100.".to_string())
        }
        _ => None,
    };
    match out_of_range {
        Some(cause) => Err(Failure::new(names::RUNTIME, cause)),
        None => Ok(Some(n)),
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

/// How a `lambda:invoke` call was made, as far as its response shows it.
struct InvokeShape {
    /// 200 (`RequestResponse`), 202 (`Event`) or 204 (`DryRun`).
    status: u16,
    /// The version that ran (`$LATEST`, or the numbered version the qualifier names);
    /// absent when nothing ran synchronously.
    executed_version: Option<String>,
    /// `LogType: Tail`: the last lines of the function's log, base64-encoded.
    log_result: Option<String>,
}

/// The Lambda `Invoke` response as the optimized integration returns it: the payload parsed,
/// with the SDK's HTTP metadata around it.
fn lambda_invoke_response(payload: Value, bytes: usize, now: DateTime<Utc>, shape: &InvokeShape) -> Value {
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
    let mut all = Map::new();
    let mut plain = Map::new();
    if let Some(log) = &shape.log_result {
        all.insert("X-Amz-Log-Result".into(), json!([log]));
    }
    if let Some(v) = &shape.executed_version {
        all.insert("X-Amz-Executed-Version".into(), json!([v]));
    }
    all.insert("x-amzn-Remapped-Content-Length".into(), json!(["0"]));
    all.insert("Connection".into(), json!(["keep-alive"]));
    all.insert("x-amzn-RequestId".into(), json!([rid]));
    all.insert("Content-Length".into(), json!([len]));
    all.insert("Date".into(), json!([date]));
    all.insert("X-Amzn-Trace-Id".into(), json!([trace]));
    all.insert("Content-Type".into(), json!(["application/json"]));
    plain.insert("Connection".into(), json!("keep-alive"));
    plain.insert("Content-Length".into(), json!(len));
    plain.insert("Content-Type".into(), json!("application/json"));
    plain.insert("Date".into(), json!(date));
    if let Some(v) = &shape.executed_version {
        plain.insert("X-Amz-Executed-Version".into(), json!(v));
    }
    if let Some(log) = &shape.log_result {
        plain.insert("X-Amz-Log-Result".into(), json!(log));
    }
    plain.insert("x-amzn-Remapped-Content-Length".into(), json!("0"));
    plain.insert("x-amzn-RequestId".into(), json!(rid));
    plain.insert("X-Amzn-Trace-Id".into(), json!(trace));
    let mut out = Map::new();
    if let Some(v) = &shape.executed_version {
        out.insert("ExecutedVersion".into(), json!(v));
    }
    if let Some(log) = &shape.log_result {
        out.insert("LogResult".into(), json!(log));
    }
    out.insert("Payload".into(), payload);
    out.insert(
        "SdkHttpMetadata".into(),
        json!({"AllHttpHeaders": all, "HttpHeaders": plain, "HttpStatusCode": shape.status}),
    );
    out.insert("SdkResponseMetadata".into(), json!({"RequestId": rid}));
    out.insert("StatusCode".into(), json!(shape.status));
    Value::Object(out)
}

/// The last lines of a function's log as `LogType: Tail` returns them (base64).
fn log_tail(function: &str, version: &str) -> String {
    use base64::Engine as _;
    let rid = uuid::Uuid::new_v4();
    let text = format!(
        "START RequestId: {rid} Version: {version}\nEND RequestId: {rid}\nREPORT RequestId: {rid}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 1 MB\t\n(ran locally as {function})\n"
    );
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The parameters of a `lambda:invoke` task, read as the `Invoke` API reads them.
struct InvokeCall {
    function: String,
    payload: Value,
    invocation_type: InvocationType,
    qualifier: Option<String>,
    log_tail: bool,
    client_context: Option<Arc<str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// A Lambda API error as the integration names it: `Lambda.<code>`, the message and the
/// request details.
fn lambda_api_error(code: &str, status: u16, message: &str) -> Failure {
    Failure::new(
        format!("Lambda.{code}"),
        format!(
            "{message} (Service: AWSLambda; Status Code: {status}; Error Code: {code}; Request ID: {}; Proxy: null)",
            uuid::Uuid::new_v4()
        ),
    )
}

fn read_invoke_call(params: &Value, io: &Io<'_>) -> Result<InvokeCall, Failure> {
    let Some(obj) = params.as_object() else {
        return Err(io.runtime("The Parameters of a lambda:invoke task must be an object with FunctionName"));
    };
    let Some(function) = obj.get("FunctionName").and_then(Value::as_str) else {
        return Err(io.runtime("The field 'FunctionName' is required by lambda:invoke"));
    };
    let text = |field: &str| -> Result<Option<String>, Failure> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(lambda_api_error(
                "InvalidParameterValueException",
                400,
                &format!("The value of {field} must be a string, not {}", to_json(other)),
            )),
        }
    };
    let invocation_type = match text("InvocationType")?.as_deref() {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Err(lambda_api_error(
                "InvalidParameterValueException",
                400,
                &format!(
                    "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
                ),
            ));
        }
    };
    let log_tail = match text("LogType")?.as_deref() {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(lambda_api_error(
                "InvalidParameterValueException",
                400,
                &format!(
                    "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
                ),
            ));
        }
    };
    let client_context = text("ClientContext")?;
    if let Some(cc) = &client_context {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(cc.as_bytes());
        if cc.len() > 3583 || decoded.ok().and_then(|d| serde_json::from_slice::<Value>(&d).ok()).is_none() {
            return Err(lambda_api_error(
                "InvalidRequestContentException",
                400,
                "Client context must be a valid Base64-encoded JSON object of at most 3583 bytes",
            ));
        }
    }
    // A string Payload is sent as the request body as it is, not as a JSON string; no Payload,
    // or null, sends nothing, which a function receives as an empty object.
    let payload = match obj.get("Payload") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(body)) => match serde_json::from_str::<Value>(body) {
            Ok(v) => v,
            Err(e) => {
                let cause = json!({
                    "errorMessage": format!("Unable to unmarshal input: {e}"),
                    "errorType": "Runtime.UnmarshalError",
                });
                return Err(Failure::new("Runtime.UnmarshalError", to_json(&cause)));
            }
        },
        Some(other) => other.clone(),
    };
    Ok(InvokeCall {
        function: function.to_string(),
        payload,
        invocation_type,
        qualifier: text("Qualifier")?,
        log_tail,
        client_context: client_context.map(Arc::from),
    })
}

impl InvokeCall {
    /// The function reference with the `Qualifier` applied (`name:qualifier`), as the
    /// not-found error names it.
    fn reference(&self) -> String {
        match (&self.qualifier, parse_function_ref(&self.function)) {
            (Some(q), Some(f)) if f.qualifier.is_none() => format!("{}:{q}", self.function),
            _ => self.function.clone(),
        }
    }

    /// The version that runs: a numbered version when the qualifier names one, else `$LATEST`
    /// (an alias resolves to the only code there is locally).
    fn executed_version(&self) -> String {
        let qualifier = self.qualifier.clone().or_else(|| parse_function_ref(&self.function)?.qualifier);
        match qualifier {
            Some(q) if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) => q,
            _ => "$LATEST".to_string(),
        }
    }
}

async fn run_task(exec: &Arc<Exec>, frame: &mut Frame, state: &State, t: &TaskSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let call = &t.call;
    let input = frame.input.clone();
    // A callback task's token exists before its Parameters are evaluated (`$$.Task.Token`),
    // and is waited on from then: a function may send it back before it even returns.
    let pending = call.callback.then(|| exec.rt.callbacks.open());
    let token = pending.as_ref().map(|p| p.token.clone());
    // Input processing.
    let (params, timeout, heartbeat) = {
        let vars = frame.vars.clone();
        let build = |part| exec.context_object_with(frame, state, None, token.as_deref(), part);
        let scope = Scope::new(&input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
        let scope = scope.with_input(&effective);
        let params = match &state.parameters {
            Some(p) => io.template(p, &scope)?,
            None => effective.as_ref().clone(),
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

    let params_json = text_payload(&params);
    // Which handler, with which event.
    let mut invoke: Option<InvokeCall> = None;
    let (handler, event, function_label) = match &call.kind {
        ResourceKind::Function | ResourceKind::Service { .. } => {
            (exec.rt.registry.lookup(&t.resource), params, t.resource.to_string())
        }
        ResourceKind::LambdaInvoke => {
            let c = read_invoke_call(&params, &io)?;
            let handler = exec.rt.registry.lookup(&c.function);
            let (event, label) = (c.payload.clone(), c.reference());
            invoke = Some(c);
            (handler, event, label)
        }
    };
    let is_lambda_arn = matches!(call.kind, ResourceKind::Function);
    frame.pending.push(if is_lambda_arn {
        EventKind::LambdaScheduled { resource: t.resource.clone(), input: params_json, timeout }
    } else {
        EventKind::TaskScheduled {
            resource_type: call.resource_type.clone(),
            resource: call.resource_name.clone(),
            region: exec.rt.region.clone(),
            parameters: params_json,
            timeout,
            heartbeat,
        }
    });
    let fail = |frame: &mut Frame, f: Failure, timed_out: bool| -> Halt {
        let (error, cause) = (f.error.clone(), f.cause.clone());
        let (resource_type, resource) = (call.resource_type.clone(), call.resource_name.clone());
        frame.pending.push(match (is_lambda_arn, timed_out) {
            (true, false) => EventKind::LambdaFailed { error, cause },
            (true, true) => EventKind::LambdaTimedOut { error, cause },
            (false, false) => EventKind::TaskFailed { resource_type, resource, error, cause },
            (false, true) => EventKind::TaskTimedOut { resource_type, resource, error, cause },
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
        EventKind::LambdaStarted
    } else {
        EventKind::TaskStarted {
            resource_type: call.resource_type.clone(),
            resource: call.resource_name.clone(),
        }
    });

    let ctx = TaskContext {
        execution_arn: exec.arn.clone(),
        execution_name: exec.name.clone(),
        state_machine_name: exec.sm_name.clone(),
        state_name: state.name.clone(),
        resource: t.resource.clone(),
        map_item_index: frame.map_index,
        retry_count: frame.retries.iter().sum(),
        client_context: invoke.as_ref().and_then(|c| c.client_context.clone()),
        task_token: token.clone(),
        clock: exec.rt.clock.clone(),
    };
    let invocation_type = invoke.as_ref().map_or(InvocationType::RequestResponse, |c| c.invocation_type);
    let clock = exec.rt.clock.clone();
    let run = async move {
        match invocation_type {
            InvocationType::Event => {
                // Queued and left to run: the task does not wait for the function.
                let invocation = handler.invoke(event, ctx);
                tokio::spawn(async move {
                    let _ = invocation.await;
                });
                return TaskEnd::Accepted;
            }
            InvocationType::DryRun => return TaskEnd::Accepted,
            InvocationType::RequestResponse => {}
        }
        let invocation = handler.invoke(event, ctx);
        // A virtual clock moves time on once the execution's own futures all wait; a handler
        // on a task of its own would not hold it back, so there the handler runs in place.
        let returned =
            if clock.is_virtual() { invocation.await } else { Invocation::start(invocation).await };
        match returned {
            Err(e) => TaskEnd::Failed(Failure::new(e.error, e.cause)),
            Ok(out) => match pending {
                None => TaskEnd::Output(out),
                Some(p) => p.wait(heartbeat.map(Duration::from_secs), &clock).await,
            },
        }
    };
    let end = match timeout {
        Some(secs) => {
            let sleep = exec.rt.clock.sleep(Duration::from_secs(secs));
            tokio::select! {
                r = run => r,
                _ = sleep => TaskEnd::TimedOut(names::TIMEOUT),
            }
        }
        None => run.await,
    };
    // The response as a value, the payload of the history event (the text the handler
    // returned, or the value itself, written as JSON only if the history is read or stored),
    // and its size.
    let (result, text, bytes): (Value, Option<String>, usize) = match end {
        TaskEnd::TimedOut(error) => {
            return Err(fail(frame, Failure { error: Some(error.into()), cause: None }, true));
        }
        TaskEnd::Failed(f) => return Err(fail(frame, f, false)),
        TaskEnd::Accepted => (Value::String(String::new()), None, 0),
        TaskEnd::Callback(v) => {
            if exceeds_limit(&v) {
                return Err(fail(frame, data_limit(&call.label), false));
            }
            (v, None, 0)
        }
        TaskEnd::Output(TaskOutput::Json(v)) => match call.kind {
            // lambda:invoke reports the response's size, so it is written out here.
            ResourceKind::LambdaInvoke => {
                let t = to_json(&v);
                let n = t.len();
                (v, None, n)
            }
            _ => {
                if exceeds_limit(&v) {
                    return Err(fail(frame, data_limit(&call.label), false));
                }
                (v, None, 0)
            }
        },
        TaskEnd::Output(TaskOutput::Raw(s)) => {
            let n = s.len();
            if n > PAYLOAD_LIMIT_BYTES {
                return Err(fail(frame, data_limit(&call.label), false));
            }
            match serde_json::from_str::<Value>(&s) {
                Ok(v) => (v, Some(s), n),
                Err(e) => {
                    return Err(fail(
                        frame,
                        io.runtime(format!("The task returned a payload that is not JSON: {e}")),
                        false,
                    ));
                }
            }
        }
    };
    if bytes > PAYLOAD_LIMIT_BYTES {
        return Err(fail(frame, data_limit(&call.label), false));
    }
    let (result, result_json): (Arc<Value>, Payload) = match (&invoke, text) {
        // A callback's result is what was sent back with the token, as it is.
        (Some(c), _) if !call.callback => {
            let shape = match c.invocation_type {
                InvocationType::RequestResponse => InvokeShape {
                    status: 200,
                    executed_version: Some(c.executed_version()),
                    log_result: c.log_tail.then(|| log_tail(&c.function, &c.executed_version())),
                },
                InvocationType::Event => {
                    InvokeShape { status: 202, executed_version: None, log_result: None }
                }
                InvocationType::DryRun => {
                    InvokeShape { status: 204, executed_version: None, log_result: None }
                }
            };
            let r = Arc::new(lambda_invoke_response(result, bytes, exec.rt.clock.now(), &shape));
            let j = Payload::Value(r.clone());
            (r, j)
        }
        (_, Some(t)) => (Arc::new(result), Payload::Text(Arc::from(t))),
        (_, None) => {
            let r = Arc::new(result);
            let j = Payload::Value(r.clone());
            (r, j)
        }
    };
    frame.pending.push(if is_lambda_arn {
        EventKind::LambdaSucceeded { output: result_json.clone() }
    } else {
        EventKind::TaskSucceeded {
            resource_type: call.resource_type.clone(),
            resource: call.resource_name.clone(),
            output: result_json.clone(),
        }
    });
    let unchanged = state.result_selector.is_none()
        && state.assign.is_none()
        && state.result_path == IoPath::Root
        && state.output_path == IoPath::Root;
    if unchanged {
        // The output is the task's result: share it.
        return finish_with(frame, state, result, None, Some(result_json));
    }
    drop(result_json);
    let result = Arc::unwrap_or_clone(result);
    let vars = frame.vars.clone();
    let build = |part| exec.context_object(frame, state, None, part);
    let selected = match &state.result_selector {
        Some(s) => io.template(s, &Scope::new(&result, &build, &vars))?,
        None => result,
    };
    let scope = Scope::new(&selected, &build, &vars);
    let assigned = io.assign(state.assign.as_ref(), &scope)?;
    drop(scope);
    let with_result = io.result_path(&state.result_path, &input, selected)?;
    let nothing = Value::Null;
    let scope = Scope::new(&nothing, &build, &vars);
    let output = io.select(&state.output_path, &scope, Cow::Owned(with_result))?.into_owned();
    drop(scope);
    finish(frame, state, output, assigned)
}

/// How a task's call ended.
enum TaskEnd {
    /// The handler answered.
    Output(TaskOutput),
    /// An `Event` or `DryRun` invocation: accepted, nothing to wait for.
    Accepted,
    /// A callback task's token was sent back with this output.
    Callback(Value),
    /// The handler failed, or the token was sent back as a failure.
    Failed(Failure),
    /// `States.Timeout` or `States.HeartbeatTimeout`.
    TimedOut(&'static str),
}

/// What a task token is sent back with.
pub(crate) type CallbackResult = Result<Value, Failure>;

/// The task tokens of the `.waitForTaskToken` tasks now waiting, and how to end or extend
/// each (`SendTaskSuccess`, `SendTaskFailure`, `SendTaskHeartbeat`).
#[derive(Default)]
pub(crate) struct Callbacks {
    waiting: Mutex<HashMap<Arc<str>, Waiting>>,
}

struct Waiting {
    done: Option<tokio::sync::oneshot::Sender<CallbackResult>>,
    beat: Arc<tokio::sync::Notify>,
}

/// The prefix of the task tokens this engine issues.
pub(crate) const TOKEN_PREFIX: &str = "lector-local-token-";

impl Callbacks {
    /// A new task token, waited on until the returned value is dropped.
    pub fn open(self: &Arc<Self>) -> PendingCallback {
        let token: Arc<str> = Arc::from(format!("{TOKEN_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let beat = Arc::new(tokio::sync::Notify::new());
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.insert(token.clone(), Waiting { done: Some(tx), beat: beat.clone() });
        PendingCallback { token, rx, beat, callbacks: self.clone() }
    }

    /// Ends the task waiting for `token`; false when no task waits for it.
    pub fn complete(&self, token: &str, result: CallbackResult) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get_mut(token).and_then(|w| w.done.take()) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }

    /// Restarts the heartbeat timeout of the task waiting for `token`; false when none waits.
    pub fn heartbeat(&self, token: &str) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get(token) {
            Some(w) if w.done.is_some() => {
                w.beat.notify_one();
                true
            }
            _ => false,
        }
    }
}

/// A task token being waited on; dropping it forgets the token.
pub(crate) struct PendingCallback {
    pub token: Arc<str>,
    rx: tokio::sync::oneshot::Receiver<CallbackResult>,
    beat: Arc<tokio::sync::Notify>,
    callbacks: Arc<Callbacks>,
}

impl PendingCallback {
    /// Waits for the token to be sent back; with a heartbeat, each heartbeat restarts the
    /// timer that otherwise ends the task with `States.HeartbeatTimeout`.
    async fn wait(mut self, heartbeat: Option<Duration>, clock: &Arc<dyn Clock>) -> TaskEnd {
        loop {
            let timer = async {
                match heartbeat {
                    Some(d) => clock.sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = &mut self.rx => {
                    return match r {
                        Ok(Ok(v)) => TaskEnd::Callback(v),
                        Ok(Err(f)) => TaskEnd::Failed(f),
                        // The registry is gone: the engine is shutting down.
                        Err(_) => TaskEnd::Failed(Failure::bare(names::RUNTIME)),
                    };
                }
                _ = self.beat.notified() => continue,
                _ = timer => return TaskEnd::TimedOut(names::HEARTBEAT_TIMEOUT),
            }
        }
    }
}

impl Drop for PendingCallback {
    fn drop(&mut self) {
        let mut waiting = self.callbacks.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.remove(&self.token);
    }
}

/// A handler's invocation, run as a task of its own as a Lambda invocation runs in an
/// environment of its own: the handlers of a Map's iterations then use every core, while the
/// iterations' transitions stay on the Map's task. Dropped (the state timed out, the Map
/// failed, the execution stopped), it is aborted. A handler that panics fails the task with
/// `Runtime.ExitError`, as a Lambda function whose process dies does. (Under a virtual clock
/// handlers run on the execution's task: see `run_task`.)
struct Invocation(tokio::task::JoinHandle<Result<TaskOutput, TaskError>>);

impl Invocation {
    fn start(invocation: BoxFuture<'static, Result<TaskOutput, TaskError>>) -> Invocation {
        Invocation(tokio::spawn(invocation))
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for Invocation {
    type Output = Result<TaskOutput, TaskError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                let why = match e.try_into_panic() {
                    Ok(panic) => panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into()),
                    Err(e) => e.to_string(),
                };
                Err(TaskError {
                    error: "Runtime.ExitError".into(),
                    cause: format!("the function's process ended: {why}"),
                })
            })
        })
    }
}

/// The outcome of one child frame (Map iteration or Parallel branch).
type ChildDone = (usize, Frame, Result<Arc<Value>, Halt>);

/// Children run as futures of their parent's task: no spawn, no cross-thread wake-up per
/// item; dropping the set (a failed Map, a stopped execution) cancels them.
type Children = FuturesUnordered<BoxFuture<'static, ChildDone>>;

fn child_future(exec: &Arc<Exec>, index: usize, frame: Frame) -> BoxFuture<'static, ChildDone> {
    let exec = exec.clone();
    Box::pin(async move {
        let (frame, result) = run_frame(exec, frame).await;
        (index, frame, result)
    })
}

/// `batch` with the `held` events before its own, in the order of their ids.
pub(crate) fn with_held(mut held: Vec<history::Event>, batch: Batch) -> Batch {
    if held.is_empty() {
        return batch;
    }
    held.extend(batch.events);
    held.sort_by_key(|e| e.id);
    Batch { events: held, ..batch }
}

/// Writes the last events of ended children (their frames saved with them), numbered in order
/// and committed together.
async fn write_ends(exec: Arc<Exec>, mut ends: Vec<(Frame, Write)>) -> Result<(), Halt> {
    let writes = ends.iter_mut().map(|(child, w)| exec.write(child, std::mem::take(w)));
    for written in futures::future::join_all(writes).await {
        written?;
    }
    Ok(())
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

fn stored_failure(rec: &FrameRecord) -> Failure {
    rec.result
        .as_ref()
        .and_then(|r| serde_json::from_value((**r).clone()).ok())
        .unwrap_or(Failure { error: None, cause: None })
}

async fn run_map(exec: &Arc<Exec>, frame: &mut Frame, state: &State, m: &MapSpec) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let input = frame.input.clone();
    let (effective, items, max_concurrency, tolerated_count, tolerated_pct) = {
        let vars = frame.vars.clone();
        let build = |part| exec.context_object(frame, state, None, part);
        let scope = Scope::new(&input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
        let scope = scope.with_input(&effective);
        let items = match &m.items_path {
            None => effective.as_ref().clone(),
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
        let max_concurrency =
            map_number(MapNumber::MaxConcurrency, m.max_concurrency.as_ref(), &scope, &io)?.unwrap_or(0.0);
        let tolerated_count = map_number(MapNumber::ToleratedCount, m.tolerated_count.as_ref(), &scope, &io)?;
        let tolerated_pct =
            map_number(MapNumber::ToleratedPercentage, m.tolerated_percentage.as_ref(), &scope, &io)?;
        (effective, items, max_concurrency, tolerated_count, tolerated_pct)
    };
    let n = items.len();
    let limit = if max_concurrency >= 1.0 { (max_concurrency as usize).min(n.max(1)) } else { n.max(1) };

    let started = frame.resumed && frame.progress.is_some();
    let mut existing = if started { take_children(exec, &frame.path, &state.name) } else { HashMap::new() };
    if !started {
        frame.progress = Some(json!({"started": true}));
        let delete_under = vec![children_root(&frame.path, &state.name)];
        frame.pending.push(EventKind::MapStateStarted { length: n });
        exec.write(
            frame,
            Write { save: Some((FrameStatus::Running, None)), delete_under, ..Write::default() },
        )
        .await?;
    }

    let mut outputs: Vec<Option<Arc<Value>>> = vec![None; n];
    let mut failures: Vec<(usize, Failure)> = Vec::new();
    let mut set = Children::new();
    let mut writing: FuturesUnordered<BoxFuture<'static, Result<(), Halt>>> = FuturesUnordered::new();
    let mut in_flight: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    let mut queue: Vec<usize> = Vec::new();
    for i in (0..n).rev() {
        match existing.remove(&i) {
            Some(rec) if rec.status == FrameStatus::Succeeded => outputs[i] = rec.result.clone(),
            Some(rec) if rec.status == FrameStatus::Failed => failures.push((i, stored_failure(&rec))),
            Some(rec) => match Frame::from_record(&rec, m.processor.clone(), Some(i as u64)) {
                // In flight when the process stopped: resume it first.
                Some(child) => {
                    in_flight.insert(i);
                    set.push(child_future(exec, i, child));
                }
                None => queue.push(i),
            },
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

    let processor = m.processor.clone();
    let start = &processor.states[processor.start_at];
    let root = children_root(&frame.path, &state.name);
    let mut items = items;
    loop {
        if first_failure.is_some() {
            break;
        }
        while set.len() < limit
            && let Some(i) = queue.pop()
        {
            let item_input = match &m.item_selector {
                // Each item is used once: take it rather than clone it.
                None => std::mem::take(&mut items[i]),
                Some(sel) => {
                    let vars = frame.vars.clone();
                    let build = |part| exec.context_object(frame, state, Some((i, &items[i])), part);
                    let scope = Scope::new(&effective, &build, &vars);
                    io.template(sel, &scope)?
                }
            };
            let item_input = Arc::new(item_input);
            let json = Payload::Value(item_input.clone());
            let child = frame.child(
                child_path(&root, i),
                processor.clone(),
                item_input,
                Some(i as u64),
                exec.rt.clock.now(),
            );
            let mut child = child;
            exec.start_child(
                &mut child,
                vec![
                    EventKind::MapIteration { outcome: "Started", name: state.name.clone(), index: i },
                    EventKind::StateEntered {
                        state_type: start.kind.event_prefix(),
                        name: start.name.clone(),
                        input: json,
                    },
                ],
                1,
            );
            in_flight.insert(i);
            set.push(child_future(exec, i, child));
        }
        // The ends of iterations are written while the next ones run: an iteration waits for
        // its handler, not for the commit of the one before it. (Should the process stop
        // before a write is committed, that iteration runs again, as one in flight does.)
        let first = tokio::select! {
            biased;
            Some(written) = writing.next(), if !writing.is_empty() => {
                written?;
                continue;
            }
            first = set.next() => first,
        };
        let Some(first) = first else { break };
        // The iterations that ended meanwhile are written with it, in one commit.
        let mut done = vec![first];
        while let Some(Some(more)) = set.next().now_or_never() {
            done.push(more);
        }
        let mut ends = Vec::with_capacity(done.len());
        for (i, child, result) in done {
            // Past a failure that fails the Map, the others are aborted as if still running.
            if first_failure.is_some() {
                break;
            }
            in_flight.remove(&i);
            let (outcome, status, saved) = match result {
                Ok(out) => {
                    outputs[i] = Some(out.clone());
                    ("Succeeded", FrameStatus::Succeeded, out)
                }
                Err(Halt::Store(e)) => return Err(Halt::Store(e)),
                Err(Halt::Fail(f)) => {
                    let saved = Arc::new(serde_json::to_value(&f).unwrap_or(Value::Null));
                    failures.push((i, f.clone()));
                    if tolerance_exceeded(failures.len()) {
                        first_failure = Some(f);
                    }
                    ("Failed", FrameStatus::Failed, saved)
                }
            };
            let w = Write {
                events: vec![EventKind::MapIteration { outcome, name: state.name.clone(), index: i }],
                save: Some((status, Some(saved))),
                ..Write::default()
            };
            ends.push((child, w));
        }
        writing.push(Box::pin(write_ends(exec.clone(), ends)));
    }
    // Every iteration's end is written before the Map's own.
    while let Some(written) = writing.next().await {
        written?;
    }

    if let Some(f) = first_failure {
        drop(set);
        for i in in_flight {
            frame.pending.push(EventKind::MapIteration {
                outcome: "Aborted",
                name: state.name.clone(),
                index: i,
            });
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
        frame.pending.push(EventKind::Bare("MapStateFailed"));
        return Err(Halt::Fail(f));
    }

    frame.pending.push(EventKind::Bare("MapStateSucceeded"));
    let failed: HashMap<usize, Failure> = failures.into_iter().collect();
    let results: Vec<Value> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(v) => Arc::unwrap_or_clone(v),
            None => failed.get(&i).map(Failure::to_catch_output).unwrap_or(Value::Null),
        })
        .collect();
    let step = finish_composite(exec, frame, state, &io, Value::Array(results))?;
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
    let input = frame.input.clone();
    let vars = frame.vars.clone();
    let build = |part| exec.context_object(frame, state, None, part);
    let selected = match &state.result_selector {
        Some(s) => io.template(s, &Scope::new(&result, &build, &vars))?,
        None => result,
    };
    let scope = Scope::new(&selected, &build, &vars);
    let assigned = io.assign(state.assign.as_ref(), &scope)?;
    drop(scope);
    let with_result = io.result_path(&state.result_path, &input, selected)?;
    let nothing = Value::Null;
    let scope = Scope::new(&nothing, &build, &vars);
    let output = io.select(&state.output_path, &scope, Cow::Owned(with_result))?.into_owned();
    drop(scope);
    finish(frame, state, output, assigned)
}

async fn run_parallel(
    exec: &Arc<Exec>,
    frame: &mut Frame,
    state: &State,
    branches: &[Arc<Machine>],
) -> Result<Step, Halt> {
    let io = Io { state, entered: frame.entered_event_id };
    let input = frame.input.clone();
    let branch_input = {
        let vars = frame.vars.clone();
        let build = |part| exec.context_object(frame, state, None, part);
        let scope = Scope::new(&input, &build, &vars);
        let effective = io.select(&state.input_path, &scope, Cow::Borrowed(&*input))?;
        let scope = scope.with_input(&effective);
        match &state.parameters {
            Some(p) => io.template(p, &scope)?,
            None => effective.as_ref().clone(),
        }
    };
    let branch_input = Arc::new(branch_input);
    let branch_json = Payload::Value(branch_input.clone());
    let n = branches.len();
    let started = frame.resumed && frame.progress.is_some();
    let mut existing = if started { take_children(exec, &frame.path, &state.name) } else { HashMap::new() };
    if !started {
        frame.progress = Some(json!({"started": true}));
        let delete_under = vec![children_root(&frame.path, &state.name)];
        frame.pending.push(EventKind::Bare("ParallelStateStarted"));
        exec.write(
            frame,
            Write { save: Some((FrameStatus::Running, None)), delete_under, ..Write::default() },
        )
        .await?;
    }
    let mut outputs: Vec<Option<Arc<Value>>> = vec![None; n];
    let mut set = Children::new();
    let mut failure: Option<Failure> = None;
    for (i, machine) in branches.iter().enumerate() {
        let resumed = match existing.remove(&i) {
            Some(rec) if rec.status == FrameStatus::Succeeded => {
                outputs[i] = rec.result.clone();
                continue;
            }
            Some(rec) if rec.status == FrameStatus::Failed => {
                failure = Some(stored_failure(&rec));
                continue;
            }
            Some(rec) => Frame::from_record(&rec, machine.clone(), frame.map_index),
            None => None,
        };
        match resumed {
            Some(child) => set.push(child_future(exec, i, child)),
            None => {
                let start = &machine.states[machine.start_at];
                let child = frame.child(
                    child_path(&children_root(&frame.path, &state.name), i),
                    machine.clone(),
                    branch_input.clone(),
                    frame.map_index,
                    exec.rt.clock.now(),
                );
                let mut child = child;
                exec.start_child(
                    &mut child,
                    vec![EventKind::StateEntered {
                        state_type: start.kind.event_prefix(),
                        name: start.name.clone(),
                        input: branch_json.clone(),
                    }],
                    0,
                );
                set.push(child_future(exec, i, child));
            }
        }
    }
    while failure.is_none() {
        let Some((i, mut child, result)) = set.next().await else { break };
        match result {
            Ok(out) => {
                let w = Write { save: Some((FrameStatus::Succeeded, Some(out.clone()))), ..Write::default() };
                exec.write(&mut child, w).await?;
                outputs[i] = Some(out);
            }
            Err(Halt::Store(e)) => return Err(Halt::Store(e)),
            Err(Halt::Fail(f)) => {
                let w = Write {
                    save: Some((
                        FrameStatus::Failed,
                        Some(Arc::new(serde_json::to_value(&f).unwrap_or(Value::Null))),
                    )),
                    ..Write::default()
                };
                exec.write(&mut child, w).await?;
                failure = Some(f);
            }
        }
    }
    if let Some(f) = failure {
        drop(set);
        frame.pending.push(EventKind::Bare("ParallelStateFailed"));
        return Err(Halt::Fail(f));
    }
    frame.pending.push(EventKind::Bare("ParallelStateSucceeded"));
    let result = Value::Array(
        outputs.into_iter().map(|o| o.map(Arc::unwrap_or_clone).unwrap_or(Value::Null)).collect(),
    );
    let step = finish_composite(exec, frame, state, &io, result)?;
    frame.pending_deletes.push(children_root(&frame.path, &state.name));
    Ok(step)
}

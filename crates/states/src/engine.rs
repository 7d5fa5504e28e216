//! The engine's API, shaped like the Step Functions API: register state machines, start,
//! describe, list, wait for, stop and redrive executions, and resume the executions a
//! stopped process left running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::definition::{Definition, DefinitionSubstitutions};
use crate::error::{EngineError, Failure, PAYLOAD_LIMIT_BYTES};
use crate::exec::{
    Callbacks, EngineConfig, Exec, Frame, Halt, Runtime, TOKEN_PREFIX, Write, run_frame, to_json,
};
use crate::history::{self, EventKind, HistoryEvent};
use crate::store::{
    Batch, CreateOutcome, ExecutionRecord, ExecutionStatus, ExecutionStore, ExecutionUpdate, FrameRecord,
    FrameStatus, ListFilter, is_express_arn,
};
use crate::task::TaskRegistry;

/// What `start_execution` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    /// The execution's ARN.
    pub execution_arn: String,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// False when an execution of the same name and input was already running and is
    /// returned instead of a new one.
    pub created: bool,
}

struct Registered {
    arn: String,
    definition: Definition,
    kind: StateMachineType,
}

/// The two types of state machine (`CreateStateMachine`'s `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateMachineType {
    /// Exactly-once, durable, up to a year, redrivable.
    #[default]
    Standard,
    /// Short (at most five minutes), started asynchronously or synchronously
    /// (`StartSyncExecution`); no redrive, and no `.sync` or `.waitForTaskToken` integrations.
    Express,
}

impl StateMachineType {
    /// `STANDARD` or `EXPRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateMachineType::Standard => "STANDARD",
            StateMachineType::Express => "EXPRESS",
        }
    }
}

/// How long an Express execution may run.
pub const EXPRESS_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(300);

/// What `start_sync_execution` answers (`StartSyncExecution`'s response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncExecution {
    /// `arn:aws:states:<region>:<account>:express:<state machine>:<name>:<id>`.
    pub execution_arn: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The execution's name.
    pub name: String,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// When it stopped.
    pub stop_date: DateTime<Utc>,
    /// `SUCCEEDED`, `FAILED` or `TIMED_OUT`.
    pub status: ExecutionStatus,
    /// The input, as JSON text.
    pub input: String,
    /// The output, as JSON text, when it succeeded.
    pub output: Option<String>,
    /// The error, when it failed or timed out.
    pub error: Option<String>,
    /// The cause, when it failed or timed out.
    pub cause: Option<String>,
    /// Billed duration in milliseconds (rounded up to 100 ms, as AWS bills Express).
    pub billed_duration_ms: u64,
}

struct Running {
    done: Arc<watch::Sender<bool>>,
    handle: Option<JoinHandle<()>>,
    /// The events an Express execution holds until it ends.
    held: Arc<Mutex<Vec<history::Event>>>,
}

struct Inner {
    rt: Arc<Runtime>,
    machines: RwLock<HashMap<String, Registered>>,
    running: Mutex<HashMap<String, Running>>,
}

/// The local Step Functions engine. Cheap to clone; clones share executions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.rt.store)
            .field("clock", &self.inner.rt.clock)
            .field("config", &self.inner.rt.config)
            .finish_non_exhaustive()
    }
}

/// Refuses a task token this engine could not have issued.
fn check_token(token: &str) -> Result<(), EngineError> {
    if token.starts_with(TOKEN_PREFIX) && token.len() <= 2048 {
        Ok(())
    } else {
        Err(EngineError::InvalidToken(format!("Invalid Token: '{token}'")))
    }
}

/// AWS's rule for state machine and execution names.
fn check_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len == 0 || len > 80 {
        return Err(format!("'{name}' must be 1 to 80 characters long"));
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || ('\u{7f}'..='\u{9f}').contains(c)
            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(*c)
    }) {
        return Err(format!("'{name}' contains the character {c:?}, which names may not hold"));
    }
    Ok(())
}

impl Engine {
    /// An engine over a store, a clock and the task handlers, with default ARNs.
    pub fn new(store: Arc<dyn ExecutionStore>, clock: Arc<dyn Clock>, registry: TaskRegistry) -> Engine {
        Engine::with_config(store, clock, registry, EngineConfig::default())
    }

    /// An engine with its region, account and role set.
    pub fn with_config(
        store: Arc<dyn ExecutionStore>,
        clock: Arc<dyn Clock>,
        registry: TaskRegistry,
        config: EngineConfig,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                rt: Arc::new(Runtime {
                    store,
                    callbacks: Arc::new(Callbacks::default()),
                    clock,
                    registry,
                    region: Arc::from(config.region.as_str()),
                    role_arn: Arc::from(config.role_arn.as_str()),
                    config,
                }),
                machines: RwLock::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.rt.clock
    }

    /// The ARN a state machine of this name has.
    pub fn state_machine_arn(&self, name: &str) -> String {
        let c = &self.inner.rt.config;
        format!("arn:aws:states:{}:{}:stateMachine:{name}", c.region, c.account)
    }

    /// Registers (or replaces) a Standard state machine. Executions already started keep the
    /// definition they started with.
    pub fn register_state_machine(&self, name: &str, definition: Definition) -> Result<String, EngineError> {
        self.register_state_machine_of_type(name, definition, StateMachineType::Standard)
    }

    /// Registers (or replaces) a state machine of the given type. An Express state machine is
    /// refused when a Task uses the `.sync` or `.waitForTaskToken` pattern, as AWS refuses it.
    pub fn register_state_machine_of_type(
        &self,
        name: &str,
        definition: Definition,
        kind: StateMachineType,
    ) -> Result<String, EngineError> {
        check_name(name).map_err(EngineError::InvalidName)?;
        if kind == StateMachineType::Express
            && let Some(e) = definition.express_refusal()
        {
            return Err(EngineError::InvalidDefinition(e));
        }
        let arn = self.state_machine_arn(name);
        let mut machines = self.inner.machines.write().unwrap_or_else(|e| e.into_inner());
        machines.insert(name.to_string(), Registered { arn: arn.clone(), definition, kind });
        Ok(arn)
    }

    /// Parses and registers a state machine from ASL text.
    pub fn register_state_machine_text(
        &self,
        name: &str,
        text: &str,
        substitutions: &DefinitionSubstitutions,
    ) -> Result<String, EngineError> {
        let d = Definition::parse(text, substitutions)?;
        self.register_state_machine(name, d)
    }

    /// Starts an execution. `name` defaults to a UUID. Starting the name of a running
    /// execution again with the same input returns that execution; any other reuse of a name
    /// is `ExecutionAlreadyExists`.
    pub async fn start_execution(
        &self,
        state_machine: &str,
        name: Option<&str>,
        input: Value,
    ) -> Result<StartedExecution, EngineError> {
        let (sm_arn, definition, kind) = {
            let machines = self.inner.machines.read().unwrap_or_else(|e| e.into_inner());
            let r = machines
                .get(state_machine)
                .ok_or_else(|| EngineError::StateMachineDoesNotExist(state_machine.to_string()))?;
            (r.arn.clone(), r.definition.clone(), r.kind)
        };
        let express = kind == StateMachineType::Express;
        let name = match name {
            Some(n) => n.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        check_name(&name).map_err(EngineError::InvalidName)?;
        let input_json = to_json(&input);
        let input = Arc::new(input);
        if input_json.len() > PAYLOAD_LIMIT_BYTES {
            return Err(EngineError::InvalidExecutionInput(format!(
                "the input is {} bytes, more than the 262144 bytes allowed",
                input_json.len()
            )));
        }
        let rt = &self.inner.rt;
        // An Express execution's ARN carries an id of its own: names need not be unique.
        let arn = if express {
            format!(
                "arn:aws:states:{}:{}:express:{state_machine}:{name}:{}",
                rt.config.region,
                rt.config.account,
                uuid::Uuid::new_v4()
            )
        } else {
            format!(
                "arn:aws:states:{}:{}:execution:{state_machine}:{name}",
                rt.config.region, rt.config.account
            )
        };
        let now = rt.clock.now();
        let machine = definition.machine().clone();
        let start = &machine.states[machine.start_at];
        let input_payload = history::Payload::Text(Arc::from(input_json.as_str()));
        let mut events = history::number(
            vec![EventKind::ExecutionStarted { input: input_payload.clone(), role_arn: rt.role_arn.clone() }],
            1,
            0,
            now,
        );
        events.extend(history::number(
            vec![EventKind::StateEntered {
                state_type: start.kind.event_prefix(),
                name: start.name.clone(),
                input: input_payload,
            }],
            2,
            0,
            now,
        ));
        let root = Frame {
            path: Arc::from(""),
            machine: machine.clone(),
            state: machine.start_at,
            input: input.clone(),
            vars: Arc::new(Map::new()),
            entered_event_id: 2,
            last_event_id: 2,
            entered_time: now,
            retries: Vec::new(),
            resumed: false,
            progress: None,
            map_index: None,
            numbered: Vec::new(),
            pending: Vec::new(),
            pending_deletes: Vec::new(),
        };
        let record = ExecutionRecord {
            execution_arn: arn.clone(),
            name: name.clone(),
            state_machine_name: state_machine.to_string(),
            state_machine_arn: sm_arn.clone(),
            status: ExecutionStatus::Running,
            input: input_json,
            output: None,
            error: None,
            cause: None,
            start_date: now,
            stop_date: None,
            redrive_count: 0,
            redrive_date: None,
            definition: to_json(definition.source()),
        };
        let first = Batch {
            execution_arn: Arc::from(arn.as_str()),
            events,
            put_frames: vec![root.record(FrameStatus::Running, None)],
            ..Batch::default()
        };
        match rt.store.create(record, first).await? {
            CreateOutcome::Created => {}
            CreateOutcome::Existing(existing) => {
                let same_input =
                    serde_json::from_str::<Value>(&existing.input).ok().as_ref() == Some(&*input);
                if existing.status == ExecutionStatus::Running && same_input {
                    return Ok(StartedExecution {
                        execution_arn: existing.execution_arn,
                        start_date: existing.start_date,
                        created: false,
                    });
                }
                return Err(EngineError::ExecutionAlreadyExists(existing.execution_arn));
            }
        }
        let exec = Arc::new(Exec {
            arn: Arc::from(arn.as_str()),
            name: Arc::from(name),
            sm_name: Arc::from(state_machine),
            sm_arn: Arc::from(sm_arn),
            input,
            start_time: now,
            redrive_count: 0,
            redrive_time: None,
            express,
            definition,
            rt: rt.clone(),
            next_event_id: Mutex::new(3),
            resume: Mutex::new(HashMap::new()),
            held: Arc::default(),
        });
        self.launch(exec, root);
        Ok(StartedExecution { execution_arn: arn, start_date: now, created: true })
    }

    fn launch(&self, exec: Arc<Exec>, root: Frame) {
        let arn = exec.arn.to_string();
        let (tx, _) = watch::channel(false);
        let done = Arc::new(tx);
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        let inner = self.inner.clone();
        let done2 = done.clone();
        let arn2 = arn.clone();
        let held = exec.held.clone();
        let handle = tokio::spawn(async move {
            drive(exec, root).await;
            let mut running = inner.running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&arn2);
            drop(running);
            done2.send_replace(true);
        });
        running.insert(arn, Running { done, handle: Some(handle), held });
    }

    /// An execution's record (`DescribeExecution`).
    pub async fn describe(&self, execution_arn: &str) -> Result<ExecutionRecord, EngineError> {
        self.inner
            .rt
            .store
            .execution(execution_arn)
            .await?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(execution_arn.to_string()))
    }

    /// An execution's history, oldest first (`GetExecutionHistory`).
    pub async fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, EngineError> {
        self.describe(execution_arn).await?;
        Ok(self.inner.rt.store.history(execution_arn).await?)
    }

    /// Executions, newest first, optionally of one state machine and one status.
    pub async fn list_executions(
        &self,
        state_machine: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionRecord>, EngineError> {
        let filter = ListFilter { state_machine_name: state_machine.map(str::to_string), status };
        Ok(self.inner.rt.store.list(filter).await?)
    }

    /// Waits until an execution started (or resumed) by this engine stops, then describes it.
    pub async fn wait(&self, execution_arn: &str) -> Result<ExecutionRecord, EngineError> {
        let rx = {
            let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
            running.get(execution_arn).map(|r| r.done.subscribe())
        };
        if let Some(mut rx) = rx {
            let _ = rx.wait_for(|done| *done).await;
        }
        self.describe(execution_arn).await
    }

    /// Starts an execution of an Express state machine and waits for it to stop
    /// (`StartSyncExecution`). A Standard state machine is refused, as AWS refuses it.
    pub async fn start_sync_execution(
        &self,
        state_machine: &str,
        name: Option<&str>,
        input: Value,
    ) -> Result<SyncExecution, EngineError> {
        let kind = {
            let machines = self.inner.machines.read().unwrap_or_else(|e| e.into_inner());
            machines
                .get(state_machine)
                .map(|r| r.kind)
                .ok_or_else(|| EngineError::StateMachineDoesNotExist(state_machine.to_string()))?
        };
        if kind != StateMachineType::Express {
            return Err(EngineError::StateMachineTypeNotSupported(format!(
                "'{state_machine}' is a {} state machine; StartSyncExecution runs only EXPRESS state machines",
                kind.as_str()
            )));
        }
        let started = self.start_execution(state_machine, name, input).await?;
        let record = self.wait(&started.execution_arn).await?;
        let stop_date = record.stop_date.unwrap_or_else(|| self.inner.rt.clock.now());
        let millis = (stop_date - record.start_date).num_milliseconds().max(0) as u64;
        Ok(SyncExecution {
            execution_arn: record.execution_arn,
            state_machine_arn: record.state_machine_arn,
            name: record.name,
            start_date: record.start_date,
            stop_date,
            status: record.status,
            input: record.input,
            output: record.output,
            error: record.error,
            cause: record.cause,
            billed_duration_ms: millis.div_ceil(100).max(1) * 100,
        })
    }

    /// Ends the `.waitForTaskToken` task waiting for `token` with `output` as its result
    /// (`SendTaskSuccess`).
    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), EngineError> {
        check_token(token)?;
        let size = to_json(&output).len();
        if size > PAYLOAD_LIMIT_BYTES {
            return Err(EngineError::InvalidOutput(format!(
                "the output is {size} bytes, more than the 262144 bytes allowed"
            )));
        }
        self.complete_task(token, Ok(output))
    }

    /// Fails the `.waitForTaskToken` task waiting for `token` (`SendTaskFailure`); `Retry` and
    /// `Catch` see `error`.
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), EngineError> {
        check_token(token)?;
        let failure = Failure { error: error.map(str::to_string), cause: cause.map(str::to_string) };
        self.complete_task(token, Err(failure))
    }

    /// Restarts the heartbeat timeout of the task waiting for `token` (`SendTaskHeartbeat`).
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        check_token(token)?;
        if self.inner.rt.callbacks.heartbeat(token) {
            Ok(())
        } else {
            Err(EngineError::TaskDoesNotExist("Task Timed Out or does not exist".into()))
        }
    }

    fn complete_task(&self, token: &str, result: crate::exec::CallbackResult) -> Result<(), EngineError> {
        if self.inner.rt.callbacks.complete(token, result) {
            Ok(())
        } else {
            Err(EngineError::TaskDoesNotExist("Task Timed Out or does not exist".into()))
        }
    }

    /// True while this engine is running the execution.
    pub fn is_running(&self, execution_arn: &str) -> bool {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).contains_key(execution_arn)
    }

    /// Stops a running execution (`StopExecution`); it ends ABORTED and can be redriven.
    pub async fn stop(
        &self,
        execution_arn: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<(), EngineError> {
        let record = self.describe(execution_arn).await?;
        let entry = self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).remove(execution_arn);
        let (done, held) = match entry {
            Some(mut r) => {
                if let Some(h) = r.handle.take() {
                    h.abort();
                    let _ = h.await;
                }
                let held = std::mem::take(&mut *r.held.lock().unwrap_or_else(|e| e.into_inner()));
                (Some(r.done), held)
            }
            None => (None, Vec::new()),
        };
        if record.status == ExecutionStatus::Running {
            let store = &self.inner.rt.store;
            let stored = store.last_event_id(execution_arn).await?;
            let last = held.iter().map(|e| e.id).fold(stored, u64::max);
            let now = self.inner.rt.clock.now();
            let aborted = EventKind::ExecutionAborted {
                error: error.map(str::to_string),
                cause: cause.map(str::to_string),
            };
            let events = history::number(vec![aborted], last + 1, last, now);
            let batch = Batch {
                execution_arn: Arc::from(execution_arn),
                events,
                update: Some(ExecutionUpdate {
                    status: Some(ExecutionStatus::Aborted),
                    error: Some(error.map(str::to_string)),
                    cause: Some(cause.map(str::to_string)),
                    stop_date: Some(Some(now)),
                    ..ExecutionUpdate::default()
                }),
                ..Batch::default()
            };
            store.commit(crate::exec::with_held(held, batch)).await?;
        }
        if let Some(d) = done {
            d.send_replace(true);
        }
        Ok(())
    }

    /// Resumes a FAILED, ABORTED or TIMED_OUT execution from the states that did not
    /// succeed (`RedriveExecution`): finished Map iterations and Parallel branches keep their
    /// results, the failed ones run again from the state that failed. Returns the redrive date.
    pub async fn redrive(&self, execution_arn: &str) -> Result<DateTime<Utc>, EngineError> {
        let record = self.describe(execution_arn).await?;
        if is_express_arn(execution_arn) {
            return Err(EngineError::ExecutionNotRedrivable(
                "Express executions cannot be redriven; start a new execution".into(),
            ));
        }
        match record.status {
            ExecutionStatus::Failed | ExecutionStatus::Aborted | ExecutionStatus::TimedOut => {}
            s => {
                return Err(EngineError::ExecutionNotRedrivable(format!(
                    "the execution is {s}; only FAILED, ABORTED and TIMED_OUT executions can be redriven"
                )));
            }
        }
        if self.is_running(execution_arn) {
            return Err(EngineError::ExecutionNotRedrivable("the execution is running".into()));
        }
        let store = &self.inner.rt.store;
        let frames = store.frames(execution_arn).await?;
        if !frames.iter().any(|f| f.path.is_empty()) {
            return Err(EngineError::ExecutionNotRedrivable(
                "nothing is left to run in this execution".into(),
            ));
        }
        let count = record.redrive_count + 1;
        let now = self.inner.rt.clock.now();
        let last = store.last_event_id(execution_arn).await?;
        let reset: Vec<FrameRecord> = frames
            .iter()
            .filter(|f| f.status == FrameStatus::Failed)
            .map(|f| FrameRecord {
                status: FrameStatus::Running,
                result: None,
                retries: Vec::new(),
                ..f.clone()
            })
            .collect();
        let events =
            history::number(vec![EventKind::ExecutionRedriven { redrive_count: count }], last + 1, last, now);
        store
            .commit(Batch {
                execution_arn: Arc::from(execution_arn),
                events,
                put_frames: reset.clone(),
                delete_frames_under: Vec::new(),
                update: Some(ExecutionUpdate {
                    status: Some(ExecutionStatus::Running),
                    error: Some(None),
                    cause: Some(None),
                    stop_date: Some(None),
                    redrive: Some((count, now)),
                    ..ExecutionUpdate::default()
                }),
            })
            .await?;
        let mut frames: HashMap<String, FrameRecord> =
            frames.into_iter().map(|f| (f.path.to_string(), f)).collect();
        for f in reset {
            frames.insert(f.path.to_string(), f);
        }
        let record = ExecutionRecord { redrive_count: count, redrive_date: Some(now), ..record };
        self.relaunch(&record, frames, last + 2)?;
        Ok(now)
    }

    /// Resumes every RUNNING execution in the store that this engine is not running: the
    /// executions a killed process left behind. Completed Tasks are not run again; Tasks that
    /// were in flight run again. Returns the ARNs resumed.
    pub async fn resume(&self) -> Result<Vec<String>, EngineError> {
        let store = &self.inner.rt.store;
        let running = store
            .list(ListFilter { status: Some(ExecutionStatus::Running), ..ListFilter::default() })
            .await?;
        let mut resumed = Vec::new();
        for record in running {
            if self.is_running(&record.execution_arn) {
                continue;
            }
            let frames = store.frames(&record.execution_arn).await?;
            let last = store.last_event_id(&record.execution_arn).await?;
            let frames: HashMap<String, FrameRecord> =
                frames.into_iter().map(|f| (f.path.to_string(), f)).collect();
            match self.relaunch(&record, frames, last + 1) {
                Ok(()) => resumed.push(record.execution_arn.clone()),
                Err(e) => {
                    tracing::error!(execution = %record.execution_arn, error = %e, "cannot resume the execution")
                }
            }
        }
        Ok(resumed)
    }

    fn relaunch(
        &self,
        record: &ExecutionRecord,
        mut frames: HashMap<String, FrameRecord>,
        next_event_id: u64,
    ) -> Result<(), EngineError> {
        let definition = Definition::parse(&record.definition, &DefinitionSubstitutions::new())?;
        let machine = definition.machine().clone();
        let root_rec = frames.remove("").ok_or_else(|| {
            EngineError::ExecutionNotRedrivable("the execution has no recorded position".into())
        })?;
        let root = Frame::from_record(&root_rec, machine, None).ok_or_else(|| {
            EngineError::ExecutionNotRedrivable(format!(
                "the recorded state '{}' is not in the definition",
                root_rec.state
            ))
        })?;
        let input: Value = serde_json::from_str(&record.input).unwrap_or(Value::Null);
        let exec = Arc::new(Exec {
            arn: Arc::from(record.execution_arn.as_str()),
            name: Arc::from(record.name.as_str()),
            sm_name: Arc::from(record.state_machine_name.as_str()),
            sm_arn: Arc::from(record.state_machine_arn.as_str()),
            input: Arc::new(input),
            start_time: record.start_date,
            redrive_count: record.redrive_count,
            redrive_time: record.redrive_date,
            express: is_express_arn(&record.execution_arn),
            definition,
            rt: self.inner.rt.clone(),
            next_event_id: Mutex::new(next_event_id),
            resume: Mutex::new(frames),
            held: Arc::default(),
        });
        self.launch(exec, root);
        Ok(())
    }
}

/// Runs an execution's root frame and records how it ended.
async fn drive(exec: Arc<Exec>, root: Frame) {
    let mut timeout = exec.definition.machine().timeout_seconds;
    if exec.express {
        let limit = EXPRESS_MAX_DURATION.as_secs();
        timeout = Some(timeout.map_or(limit, |t| t.min(limit)));
    }
    let run = run_frame(exec.clone(), root);
    let arn = exec.arn.to_string();
    let outcome = match timeout {
        Some(secs) => {
            let deadline = exec.start_time + chrono::Duration::seconds(secs as i64);
            let sleep = exec.rt.clock.sleep_until(deadline);
            tokio::select! {
                r = run => Some(r),
                _ = sleep => None,
            }
        }
        None => Some(run.await),
    };
    let result = match outcome {
        None => finish_timed_out(&exec).await,
        Some((mut frame, Ok(output))) => {
            let json = to_json(&output);
            let now = exec.rt.clock.now();
            let w = Write {
                events: vec![EventKind::ExecutionSucceeded {
                    output: history::Payload::Text(Arc::from(json.as_str())),
                }],
                delete_under: vec![String::new()],
                update: Some(ExecutionUpdate {
                    status: Some(ExecutionStatus::Succeeded),
                    output: Some(json),
                    stop_date: Some(Some(now)),
                    ..ExecutionUpdate::default()
                }),
                ..Write::default()
            };
            exec.write(&mut frame, w).await
        }
        Some((mut frame, Err(Halt::Fail(f)))) => fail_execution(&exec, &mut frame, f).await,
        Some((_, Err(Halt::Store(e)))) => Err(Halt::Store(e)),
    };
    if let Err(Halt::Store(e)) = result {
        tracing::error!(
            execution = %arn,
            error = %e,
            "the execution store failed; the execution stays RUNNING and resumes from its last recorded transition"
        );
    }
}

async fn fail_execution(exec: &Exec, frame: &mut Frame, f: Failure) -> Result<(), Halt> {
    let now = exec.rt.clock.now();
    let w = Write {
        events: vec![EventKind::ExecutionFailed { error: f.error.clone(), cause: f.cause.clone() }],
        save: Some((FrameStatus::Failed, Some(Arc::new(serde_json::to_value(&f).unwrap_or(Value::Null))))),
        update: Some(ExecutionUpdate {
            status: Some(ExecutionStatus::Failed),
            error: Some(f.error.clone()),
            cause: Some(f.cause.clone()),
            stop_date: Some(Some(now)),
            ..ExecutionUpdate::default()
        }),
        ..Write::default()
    };
    exec.write(frame, w).await
}

async fn finish_timed_out(exec: &Exec) -> Result<(), Halt> {
    let now = exec.rt.clock.now();
    let commit = {
        let mut next = exec.next_event_id.lock().unwrap_or_else(|e| e.into_inner());
        let id = *next;
        *next += 1;
        let events = history::number(vec![EventKind::ExecutionTimedOut], id, id - 1, now);
        exec.commit(Batch {
            execution_arn: exec.arn.clone(),
            events,
            update: Some(ExecutionUpdate {
                status: Some(ExecutionStatus::TimedOut),
                error: Some(Some("States.Timeout".into())),
                cause: Some(Some("The execution ran longer than the state machine's TimeoutSeconds.".into())),
                stop_date: Some(Some(now)),
                ..ExecutionUpdate::default()
            }),
            ..Batch::default()
        })
    };
    commit.await.map_err(Halt::Store)
}

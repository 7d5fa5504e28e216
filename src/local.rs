//! The embedded default, assembled: the SQLite log and its outbox, the object folder, the
//! espeak-ng voice, and the local engine running `statemachines/conversion.asl.json` with the
//! workflow's steps registered as its Task handlers. `lector serve`, `lector convert` and
//! `lector replay` all start this.
//!
//! As on AWS, nothing calls the workflow directly: the API appends `ConversionRequested`, the
//! outbox delivers it to the bus rule that starts the execution.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use lector_core::feed::index::Feeds;
use lector_core::index::{Conversions, KeptStatuses, ProjectError, follow, follow_all};
use lector_core::ports::{
    Clock, ExecutionInfo, ExecutionStatus, FeedPolls, ObjectStore, Voice, WorkflowError, Workflows,
};
use lector_core::{EventStore, RecordedEvent, StepError, StreamId};
use lector_local::clock::SystemClock;
use lector_local::event_store::SqliteEventStore;
use lector_local::feed_index::SqliteFeedIndex;
use lector_local::index::SqliteConversionIndex;
use lector_local::outbox::{DeliveryError, Outbox, OutboxHandle, OutboxOptions, Subscriber};
use lector_pipeline::fetch::{AllowList, FetchPolicy, Fetcher};
use lector_pipeline::poll::{ListDueFeeds, PollFeed, PollRequest, request_conversions};
use lector_pipeline::steps::{
    FetchArticle, PrepareSpeech, RecordFailure, Step, StepPorts, StitchAudio, SynthesizeChunk, invoke,
    start_requested,
};
use lector_states::{
    Definition, DefinitionSubstitutions, Engine, EngineConfig, EngineError, RealClock, StateMachineType,
    TaskError, TaskRegistry,
};
use serde_json::Value;

use crate::data::DataDir;

/// The state machine file, compiled in: the binary runs the very file that is deployed.
pub const CONVERSION_ASL: &str = include_str!("../statemachines/conversion.asl.json");

/// The state machine's name, locally and in the SAM template.
pub const STATE_MACHINE: &str = "conversion";

/// The polling workflow's file and name.
pub const POLL_FEEDS_ASL: &str = include_str!("../statemachines/poll-feeds.asl.json");
pub const POLL_STATE_MACHINE: &str = "poll-feeds";

/// The account and region the local engine puts in its ARNs.
const LOCAL_REGION: &str = "local";
const LOCAL_ACCOUNT: &str = "000000000000";

/// The ARN a step's function has locally; the state machine's substitutions point at it.
pub fn local_function_arn(function: &str) -> String {
    format!("arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:lector-{function}")
}

/// `DefinitionSubstitutions` for the local engine: every `${...FunctionArn}` of the state
/// machine, as the SAM template has them on AWS.
pub fn local_substitutions() -> DefinitionSubstitutions {
    lector_pipeline::steps::STEPS
        .iter()
        .chain(lector_pipeline::poll::POLL_STEPS.iter())
        .map(|(_, function, substitution)| ((*substitution).to_owned(), local_function_arn(function)))
        .collect()
}

/// How the local system is put together.
#[derive(Clone)]
pub struct LocalOptions {
    /// Hosts that may be fetched although private or loopback (tests allow 127.0.0.1).
    pub allow_hosts: AllowList,
    /// The voice; espeak-ng unless a test gives another.
    pub voice: Arc<dyn Voice>,
    /// Whether to resume executions left running by a previous process.
    pub resume: bool,
    pub outbox: OutboxOptions,
    /// Where WebSub hubs push feeds to, when this machine can be reached by them.
    pub websub: Option<lector_pipeline::websub::WebSubConfig>,
}

impl std::fmt::Debug for LocalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalOptions")
            .field("allow_hosts", &self.allow_hosts)
            .field("resume", &self.resume)
            .finish()
    }
}

impl LocalOptions {
    pub fn new(allow_hosts: AllowList) -> Self {
        Self {
            allow_hosts,
            voice: Arc::new(lector_local::espeak::EspeakVoice::new()),
            resume: true,
            outbox: OutboxOptions::default(),
            websub: None,
        }
    }
}

/// The running local system.
pub struct LocalSystem {
    pub data: DataDir,
    pub engine: Engine,
    pub ports: StepPorts,
    /// The fetcher of the steps and the API, guarded by the options' allowed hosts.
    pub fetcher: Arc<Fetcher>,
    pub workflows: Arc<LocalWorkflows>,
    pub index: Arc<SqliteConversionIndex>,
    /// The list of subscriptions, followed from the log.
    pub feeds: Arc<SqliteFeedIndex>,
    /// Polls of subscribed feeds, on the polling workflow.
    pub polls: Arc<LocalPolls>,
    rule: Arc<WorkflowRule>,
    subscribers: Vec<Arc<dyn Subscriber>>,
    outbox_options: OutboxOptions,
    outbox: Option<OutboxHandle>,
}

impl std::fmt::Debug for LocalSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSystem").field("data", &self.data.root).finish_non_exhaustive()
    }
}

impl LocalSystem {
    /// Open the data folder, start the engine (resuming what was running) and the outbox.
    pub async fn start(dir: &Path, options: LocalOptions) -> anyhow::Result<Self> {
        let data = DataDir::open(dir)?;
        let fetcher = Arc::new(
            Fetcher::new(FetchPolicy { allow: options.allow_hosts.clone(), ..FetchPolicy::default() })
                .context("building the HTTP client")?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let feeds = Arc::new(SqliteFeedIndex::new(data.db.clone()));
        let ports = StepPorts {
            events: Arc::new(data.events.clone()),
            objects: Arc::new(data.objects.clone()),
            voice: options.voice.clone(),
            fetcher: Some(fetcher.clone()),
            clock,
            feeds: Some(feeds.clone()),
            websub: options.websub.clone().map(Arc::new),
            folded_feeds: Default::default(),
        };
        let store = lector_states::SqliteStore::open(data.executions_path())
            .with_context(|| format!("opening the executions in {}", data.executions_path().display()))?;
        let config = EngineConfig {
            region: LOCAL_REGION.into(),
            account: LOCAL_ACCOUNT.into(),
            role_arn: format!("arn:aws:iam::{LOCAL_ACCOUNT}:role/lector-states"),
        };
        let engine = Engine::with_config(Arc::new(store), Arc::new(RealClock), registry(&ports), config);
        engine
            .register_state_machine_text(STATE_MACHINE, CONVERSION_ASL, &local_substitutions())
            .context("loading statemachines/conversion.asl.json")?;
        // An Express workflow, as it is deployed (template.yaml).
        let polling = Definition::parse(POLL_FEEDS_ASL, &local_substitutions())
            .context("loading statemachines/poll-feeds.asl.json")?;
        engine
            .register_state_machine_of_type(POLL_STATE_MACHINE, polling, StateMachineType::Express)
            .context("loading statemachines/poll-feeds.asl.json")?;
        if options.resume {
            let resumed = engine.resume().await.context("resuming running executions")?;
            if !resumed.is_empty() {
                tracing::info!(count = resumed.len(), "resumed running executions");
            }
        }
        let workflows = Arc::new(LocalWorkflows { engine: engine.clone() });
        let index = Arc::new(SqliteConversionIndex::new(data.db.clone()));
        let rule = Arc::new(WorkflowRule { workflows: workflows.clone(), started: Default::default() });
        let subscribers: Vec<Arc<dyn Subscriber>> = vec![
            rule.clone(),
            Arc::new(ListProjector {
                index: index.clone(),
                events: data.events.clone(),
                kept: Default::default(),
            }),
            Arc::new(FeedProjector {
                index: feeds.clone(),
                events: data.events.clone(),
                kept: Default::default(),
            }),
            Arc::new(ConversionRequester { ports: ports.clone() }),
        ];
        let polls = Arc::new(LocalPolls { engine: engine.clone(), clock: ports.clock.clone() });
        let outbox = Some(Self::outbox(&data, &subscribers, options.outbox).start());
        Ok(Self {
            data,
            engine,
            ports,
            fetcher,
            workflows,
            index,
            feeds,
            polls,
            rule,
            subscribers,
            outbox_options: options.outbox,
            outbox,
        })
    }

    fn outbox(data: &DataDir, subscribers: &[Arc<dyn Subscriber>], options: OutboxOptions) -> Outbox {
        let mut outbox = Outbox::new(data.events.clone(), options);
        for subscriber in subscribers {
            outbox.subscribe(subscriber.clone());
        }
        outbox
    }

    /// Deliver again, to the bus's subscribers, the events of the given types (all when empty)
    /// that occurred since `since`, then wait for any execution that this started. Returns the
    /// number of deliveries and the executions started.
    pub async fn replay_events(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        types: &[String],
    ) -> anyhow::Result<(usize, Vec<String>)> {
        let delivered =
            Self::outbox(&self.data, &self.subscribers, self.outbox_options).replay(since, types).await?;
        let started = std::mem::take(&mut *self.rule.started.lock().unwrap_or_else(|p| p.into_inner()));
        for execution in &started {
            self.engine.wait(execution).await.with_context(|| format!("waiting for {execution}"))?;
        }
        Ok((delivered, started))
    }

    pub fn events(&self) -> &dyn EventStore {
        &*self.ports.events
    }

    pub fn objects(&self) -> &dyn ObjectStore {
        &*self.ports.objects
    }

    /// Poll the subscribed feeds as they fall due: every `every`, when the list of subscriptions
    /// has a feed due, one run of the polling workflow. Due times come from the log (through
    /// the list), so a restart neither skips nor repeats a poll.
    pub fn start_poller(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let (feeds, polls, clock) = (self.feeds.clone(), self.polls.clone(), self.ports.clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match lector_core::feed::index::FeedIndex::due(&*feeds, clock.now(), 1).await {
                    Ok(due) if due.is_empty() => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the list of subscriptions cannot be read; polling later");
                        continue;
                    }
                }
                if let Err(e) = polls.run(&PollRequest::default()).await {
                    tracing::warn!(error = %e, "a polling run failed");
                }
            }
        })
    }

    /// Stop delivering events; executions in flight are left to resume on the next start.
    pub async fn shutdown(mut self) {
        if let Some(outbox) = self.outbox.take() {
            outbox.shutdown().await;
        }
    }
}

/// The Task handlers: each step under its local function ARN.
fn registry(ports: &StepPorts) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    register(&mut registry, ports, FetchArticle);
    register(&mut registry, ports, PrepareSpeech);
    register(&mut registry, ports, SynthesizeChunk);
    register(&mut registry, ports, StitchAudio);
    register(&mut registry, ports, RecordFailure);
    register(&mut registry, ports, ListDueFeeds);
    register(&mut registry, ports, PollFeed);
    registry
}

fn register<S: Step + Copy>(registry: &mut TaskRegistry, ports: &StepPorts, step: S) {
    let ports = ports.clone();
    registry.register(local_function_arn(S::FUNCTION), move |input: Value, _ctx| {
        let ports = ports.clone();
        async move { invoke(&step, &ports, input).await.map_err(task_error) }
    });
}

/// A step's error as the engine sees a Lambda function's: the stable name and the cause.
fn task_error(e: StepError) -> TaskError {
    TaskError::new(e.name(), e.cause)
}

/// The `Workflows` port over the local engine.
#[derive(Debug, Clone)]
pub struct LocalWorkflows {
    engine: Engine,
}

fn workflow_error(e: EngineError) -> WorkflowError {
    match e {
        EngineError::ExecutionAlreadyExists(name) => WorkflowError::AlreadyExists(name),
        EngineError::ExecutionDoesNotExist(arn) => WorkflowError::NotFound(arn),
        EngineError::ExecutionNotRedrivable(why) => WorkflowError::NotRedrivable(why),
        EngineError::Store(e) => WorkflowError::Unavailable(e.to_string()),
        other => WorkflowError::Failed(other.to_string()),
    }
}

#[async_trait]
impl Workflows for LocalWorkflows {
    async fn start(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        self.engine
            .start_execution(STATE_MACHINE, Some(name), input.clone())
            .await
            .map(|started| started.execution_arn)
            .map_err(workflow_error)
    }

    async fn redrive(&self, execution_id: &str) -> Result<(), WorkflowError> {
        self.engine.redrive(execution_id).await.map(|_| ()).map_err(workflow_error)
    }

    async fn describe(&self, execution_id: &str) -> Result<ExecutionInfo, WorkflowError> {
        let record = self.engine.describe(execution_id).await.map_err(workflow_error)?;
        Ok(ExecutionInfo {
            id: record.execution_arn,
            name: record.name,
            status: match record.status {
                lector_states::ExecutionStatus::Running => ExecutionStatus::Running,
                lector_states::ExecutionStatus::Succeeded => ExecutionStatus::Succeeded,
                lector_states::ExecutionStatus::Failed => ExecutionStatus::Failed,
                lector_states::ExecutionStatus::TimedOut => ExecutionStatus::TimedOut,
                lector_states::ExecutionStatus::Aborted => ExecutionStatus::Aborted,
            },
            started_at: record.start_date,
            stopped_at: record.stop_date,
            error: record.error,
            cause: record.cause,
            redrive_count: record.redrive_count,
        })
    }
}

/// The bus rule `ConversionRequested` → start the conversion workflow, as the EventBridge rule
/// does on AWS.
struct WorkflowRule {
    workflows: Arc<LocalWorkflows>,
    /// The executions this rule started, for a replay to wait on.
    started: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Subscriber for WorkflowRule {
    fn name(&self) -> &str {
        "start-conversion-workflow"
    }

    fn wants(&self, _stream: &StreamId, event_type: &str) -> bool {
        lector_pipeline::steps::STARTING_EVENTS.contains(&event_type)
    }

    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        match start_requested(&*self.workflows, event).await {
            Ok(Some(execution)) => {
                self.started.lock().unwrap_or_else(|p| p.into_inner()).push(execution);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) if e.kind.is_transient() => Err(DeliveryError::Transient(e.to_string())),
            Err(e) => Err(DeliveryError::Permanent(e.to_string())),
        }
    }
}

/// Keeps the list projection up to date with the log, as the projector Lambda does on AWS.
#[derive(Debug)]
pub struct ListProjector {
    pub index: Arc<SqliteConversionIndex>,
    pub events: SqliteEventStore,
    /// The statuses it stored last, folded onto without reading them back.
    pub kept: KeptStatuses<lector_core::ConversionId, lector_core::status::ConversionStatus>,
}

/// The outbox subscriber name of the list projection.
pub const LIST_PROJECTOR: &str = "conversion-list-projection";

#[async_trait]
impl Subscriber for ListProjector {
    fn name(&self) -> &str {
        LIST_PROJECTOR
    }

    fn wants(&self, stream: &StreamId, _event_type: &str) -> bool {
        stream.conversion_id().is_some()
    }

    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        projected(follow(&self.kept.over(&Conversions(&*self.index)), &self.events, event).await)
    }

    fn takes_batches(&self) -> bool {
        true
    }

    async fn deliver_all(&self, events: &[RecordedEvent]) -> Result<(), DeliveryError> {
        projected(follow_all(&self.kept.over(&Conversions(&*self.index)), &self.events, events).await)
    }
}

/// Keeps the list of subscriptions up to date with the log, as the projector Lambda does on AWS.
#[derive(Debug)]
pub struct FeedProjector {
    pub index: Arc<SqliteFeedIndex>,
    pub events: SqliteEventStore,
    /// The subscriptions it stored last, folded onto without reading them back.
    pub kept: KeptStatuses<lector_core::FeedId, lector_core::feed::FeedStatus>,
}

/// The outbox subscriber name of the list of subscriptions.
pub const FEED_PROJECTOR: &str = "feed-list-projection";

#[async_trait]
impl Subscriber for FeedProjector {
    fn name(&self) -> &str {
        FEED_PROJECTOR
    }

    fn wants(&self, stream: &StreamId, _event_type: &str) -> bool {
        stream.feed_id().is_some()
    }

    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        projected(follow(&self.kept.over(&Feeds(&*self.index)), &self.events, event).await)
    }

    fn takes_batches(&self) -> bool {
        true
    }

    async fn deliver_all(&self, events: &[RecordedEvent]) -> Result<(), DeliveryError> {
        projected(follow_all(&self.kept.over(&Feeds(&*self.index)), &self.events, events).await)
    }
}

/// A projection's outcome as a delivery's: an event that does not decode never will.
fn projected(outcome: Result<(), ProjectError>) -> Result<(), DeliveryError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(ProjectError::Decode(e)) => Err(DeliveryError::Permanent(e.to_string())),
        Err(e) => Err(DeliveryError::Transient(e.to_string())),
    }
}

/// The bus rule `PostDiscovered`/`PostChanged` → a conversion or a revision, as the
/// `request-conversions` function does on AWS.
struct ConversionRequester {
    ports: StepPorts,
}

#[async_trait]
impl Subscriber for ConversionRequester {
    fn name(&self) -> &str {
        "request-conversions"
    }

    fn wants(&self, _stream: &StreamId, event_type: &str) -> bool {
        lector_pipeline::poll::CONVERTING_EVENTS.contains(&event_type)
    }

    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        match request_conversions(&self.ports, event).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind.is_transient() => Err(DeliveryError::Transient(e.to_string())),
            Err(e) => Err(DeliveryError::Permanent(e.to_string())),
        }
    }
}

/// Polls on the local engine: the polling workflow started for some feeds, or for the due ones.
#[derive(Clone)]
pub struct LocalPolls {
    engine: Engine,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalPolls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalPolls")
    }
}

impl LocalPolls {
    /// Start one run of the polling workflow; returns its execution.
    pub async fn start(&self, request: &PollRequest) -> Result<String, WorkflowError> {
        let input = serde_json::to_value(request).map_err(|e| WorkflowError::Failed(e.to_string()))?;
        // A name per run: runs are never repeated, each polls what is due when it starts.
        let name = format!("poll-{}", self.clock.now().format("%Y%m%dT%H%M%S%.6fZ"));
        self.engine
            .start_execution(POLL_STATE_MACHINE, Some(&name), input)
            .await
            .map(|started| started.execution_arn)
            .map_err(workflow_error)
    }

    /// Start a run and wait for it to end.
    pub async fn run(&self, request: &PollRequest) -> anyhow::Result<()> {
        let execution = self.start(request).await?;
        self.engine.wait(&execution).await.with_context(|| format!("waiting for {execution}"))?;
        Ok(())
    }
}

#[async_trait]
impl FeedPolls for LocalPolls {
    async fn poll_now(&self, feeds: &[lector_core::FeedId]) -> Result<String, WorkflowError> {
        self.start(&PollRequest { feed_ids: Some(feeds.to_vec()), limit: None }).await
    }
}

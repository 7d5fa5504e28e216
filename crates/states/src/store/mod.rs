//! Execution stores: where executions, their history and their in-flight positions ("frames")
//! are kept, written at every transition. [`MemoryStore`] for tests and throw-away runs,
//! [`SqliteStore`] for durability across restarts.

mod memory;
mod sqlite;
pub mod wal;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::history::{Event, HistoryEvent};

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

/// An execution's status, named as the Step Functions API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Still running (or waiting to be resumed after a restart).
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Ran past the state machine's `TimeoutSeconds`.
    TimedOut,
    /// Stopped by `stop`.
    Aborted,
}

impl ExecutionStatus {
    /// The API name (`RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<ExecutionStatus> {
        Some(match s {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            _ => return None,
        })
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an execution ARN is an Express execution's (`...:express:<machine>:<name>:<id>`):
/// Express executions do not claim their name, so one name may start many of them.
pub fn is_express_arn(arn: &str) -> bool {
    arn.split(':').nth(5) == Some("express")
}

/// An execution as `DescribeExecution` shows it, plus the definition it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// `arn:aws:states:<region>:<account>:execution:<machine>:<name>`.
    pub execution_arn: String,
    /// The execution name, unique per state machine.
    pub name: String,
    /// The state machine's name.
    pub state_machine_name: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// The status.
    pub status: ExecutionStatus,
    /// The input, as JSON text.
    pub input: String,
    /// The output, as JSON text, once succeeded.
    pub output: Option<String>,
    /// The error name, once failed.
    pub error: Option<String>,
    /// The cause, once failed.
    pub cause: Option<String>,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// When it stopped.
    pub stop_date: Option<DateTime<Utc>>,
    /// How many times it was redriven.
    pub redrive_count: u32,
    /// When it was last redriven.
    pub redrive_date: Option<DateTime<Utc>>,
    /// The definition (after substitutions) the execution runs, so that it resumes and
    /// redrives with the definition it started with.
    pub definition: String,
}

/// Where one thread of an execution stands: the root, a Map iteration or a Parallel branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameRecord {
    /// `""` for the root; `/<state>/<index>` per nesting level below it.
    pub path: Arc<str>,
    /// The state the frame is in.
    pub state: Arc<str>,
    /// The state's raw input (before `InputPath`).
    pub input: Arc<Value>,
    /// The variables in scope.
    pub vars: Arc<Map<String, Value>>,
    /// The id of the event that entered the state.
    pub entered_event_id: u64,
    /// The id of the frame's last event.
    pub last_event_id: u64,
    /// When the state was entered.
    pub entered_time: DateTime<Utc>,
    /// Attempts used per retrier of the current state.
    pub retries: Vec<u32>,
    /// Running, succeeded or failed.
    pub status: FrameStatus,
    /// The output (succeeded) or `{"Error", "Cause"}` (failed).
    pub result: Option<Arc<Value>>,
    /// State-specific progress (a Map or Parallel state that has started its children).
    pub progress: Option<Value>,
}

/// The status of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FrameStatus {
    /// In a state.
    Running,
    /// Finished; `result` holds its output.
    Succeeded,
    /// Failed; `result` holds the failure.
    Failed,
}

/// Changes to an execution's record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionUpdate {
    /// The new status.
    pub status: Option<ExecutionStatus>,
    /// The output (JSON text).
    pub output: Option<String>,
    /// The error name.
    pub error: Option<Option<String>>,
    /// The cause.
    pub cause: Option<Option<String>>,
    /// The stop date (`Some(None)` clears it).
    pub stop_date: Option<Option<DateTime<Utc>>>,
    /// The redrive count and date.
    pub redrive: Option<(u32, DateTime<Utc>)>,
}

/// One atomic write: events appended, frames written or removed, the record updated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The execution written to.
    pub execution_arn: Arc<str>,
    /// Events to append.
    pub events: Vec<Event>,
    /// Frames to insert or replace.
    pub put_frames: Vec<FrameRecord>,
    /// Frames to remove with everything below them (`""` removes all frames).
    pub delete_frames_under: Vec<String>,
    /// Changes to the execution record.
    pub update: Option<ExecutionUpdate>,
}

/// What `create` found.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The execution was created.
    Created,
    /// An execution of that name already exists for the state machine.
    Existing(Box<ExecutionRecord>),
}

/// A filter for `list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this state machine.
    pub state_machine_name: Option<String>,
    /// Only this status.
    pub status: Option<ExecutionStatus>,
}

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// A stored row does not decode.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store's writer has stopped.
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e.to_string())
    }
}

/// Persistence of executions. Writes are atomic batches; a batch's future resolves once it is
/// durable, and batches of one caller are applied in the order they were handed over.
pub trait ExecutionStore: Send + Sync + fmt::Debug + 'static {
    /// Creates an execution with its first batch, unless one of that name exists.
    fn create(
        &self,
        record: ExecutionRecord,
        first: Batch,
    ) -> BoxFuture<'static, Result<CreateOutcome, StoreError>>;
    /// Applies a batch atomically. The batch is taken over before this returns.
    fn commit(&self, batch: Batch) -> BoxFuture<'static, Result<(), StoreError>>;
    /// One execution.
    fn execution(&self, arn: &str) -> BoxFuture<'static, Result<Option<ExecutionRecord>, StoreError>>;
    /// Executions, newest first.
    fn list(&self, filter: ListFilter) -> BoxFuture<'static, Result<Vec<ExecutionRecord>, StoreError>>;
    /// An execution's history, oldest first.
    fn history(&self, arn: &str) -> BoxFuture<'static, Result<Vec<HistoryEvent>, StoreError>>;
    /// An execution's frames.
    fn frames(&self, arn: &str) -> BoxFuture<'static, Result<Vec<FrameRecord>, StoreError>>;
    /// The id of an execution's last event (0 when none).
    fn last_event_id(&self, arn: &str) -> BoxFuture<'static, Result<u64, StoreError>>;
}

pub(crate) fn is_under(path: &str, root: &str) -> bool {
    root.is_empty() || path == root || (path.starts_with(root) && path[root.len()..].starts_with('/'))
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every store must show, run against each implementation.

    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn record(name: &str) -> ExecutionRecord {
        ExecutionRecord {
            execution_arn: format!("arn:aws:states:us-east-1:1:execution:sm:{name}"),
            name: name.to_string(),
            state_machine_name: "sm".into(),
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:sm".into(),
            status: ExecutionStatus::Running,
            input: "{}".into(),
            output: None,
            error: None,
            cause: None,
            start_date: Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid"),
            stop_date: None,
            redrive_count: 0,
            redrive_date: None,
            definition: "{}".into(),
        }
    }

    fn event(id: u64, t: &'static str) -> Event {
        Event {
            id,
            previous_event_id: id - 1,
            timestamp: Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid"),
            kind: crate::history::EventKind::Bare(t),
        }
    }

    fn frame(path: &str, state: &str) -> FrameRecord {
        FrameRecord {
            path: Arc::from(path),
            state: Arc::from(state),
            input: Arc::new(json!({"k": path})),
            vars: Arc::new(Map::new()),
            entered_event_id: 1,
            last_event_id: 1,
            entered_time: Utc.timestamp_opt(1_700_000_000, 0).single().expect("valid"),
            retries: vec![],
            status: FrameStatus::Running,
            result: None,
            progress: None,
        }
    }

    pub(crate) async fn behaves(store: &dyn ExecutionStore) {
        let r = record("one");
        let arn = r.execution_arn.clone();
        let first = Batch {
            execution_arn: Arc::from(arn.as_str()),
            events: vec![event(1, "ExecutionStarted")],
            put_frames: vec![frame("", "A")],
            ..Batch::default()
        };
        assert_eq!(store.create(r.clone(), first.clone()).await, Ok(CreateOutcome::Created));
        match store.create(r.clone(), first).await {
            Ok(CreateOutcome::Existing(existing)) => assert_eq!(existing.execution_arn, arn),
            other => panic!("a second create of the same name must find the first: {other:?}"),
        }

        store
            .commit(Batch {
                execution_arn: Arc::from(arn.as_str()),
                events: vec![event(2, "MapStateEntered"), event(3, "MapStateStarted")],
                put_frames: vec![
                    frame("", "Map"),
                    frame("/Map#0", "X"),
                    frame("/Map#1", "X"),
                    frame("/Map#10", "X"),
                ],
                ..Batch::default()
            })
            .await
            .expect("commits");
        assert_eq!(store.last_event_id(&arn).await, Ok(3));
        let frames = store.frames(&arn).await.expect("reads");
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().any(|f| f.path.is_empty() && &*f.state == "Map"));

        store
            .commit(Batch {
                execution_arn: Arc::from(arn.as_str()),
                delete_frames_under: vec!["/Map#1".into()],
                ..Batch::default()
            })
            .await
            .expect("commits");
        let paths: Vec<String> =
            store.frames(&arn).await.expect("reads").into_iter().map(|f| f.path.to_string()).collect();
        assert!(paths.contains(&"/Map#10".to_string()), "deleting /Map#1 must keep /Map#10: {paths:?}");
        assert!(!paths.contains(&"/Map#1".to_string()));

        store
            .commit(Batch {
                execution_arn: Arc::from(arn.as_str()),
                events: vec![event(4, "ExecutionSucceeded")],
                delete_frames_under: vec!["".into()],
                update: Some(ExecutionUpdate {
                    status: Some(ExecutionStatus::Succeeded),
                    output: Some("{\"ok\":true}".into()),
                    stop_date: Some(Some(Utc.timestamp_opt(1_700_000_001, 0).single().expect("valid"))),
                    ..ExecutionUpdate::default()
                }),
                ..Batch::default()
            })
            .await
            .expect("commits");
        let got = store.execution(&arn).await.expect("reads").expect("exists");
        assert_eq!(got.status, ExecutionStatus::Succeeded);
        assert_eq!(got.output.as_deref(), Some("{\"ok\":true}"));
        assert!(store.frames(&arn).await.expect("reads").is_empty());
        let h = store.history(&arn).await.expect("reads");
        assert_eq!(h.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(h[1].event_type, "MapStateEntered");

        let r2 = record("two");
        store
            .create(
                r2.clone(),
                Batch { execution_arn: Arc::from(r2.execution_arn.as_str()), ..Batch::default() },
            )
            .await
            .expect("creates");
        let running = store
            .list(ListFilter { status: Some(ExecutionStatus::Running), ..ListFilter::default() })
            .await
            .expect("lists");
        assert_eq!(running.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["two"]);
        let all = store
            .list(ListFilter { state_machine_name: Some("sm".into()), ..ListFilter::default() })
            .await
            .expect("lists");
        assert_eq!(all.len(), 2);
        assert_eq!(store.execution("arn:none").await, Ok(None));
    }
}

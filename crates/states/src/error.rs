//! The errors of the engine: the `{Error, Cause}` pairs states fail with, and the errors of
//! the engine's API.

use serde::{Deserialize, Serialize};

/// Predefined error names of the States language.
pub mod names {
    /// Matches every error name.
    pub const ALL: &str = "States.ALL";
    /// A task ran longer than its `TimeoutSeconds`.
    pub const TIMEOUT: &str = "States.Timeout";
    /// A task sent no heartbeat within `HeartbeatSeconds`.
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// Matches every error a task raised itself (names not starting with `States.`).
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// A payload grew past 256 KiB.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A path, a value or a state could not be processed.
    pub const RUNTIME: &str = "States.Runtime";
    /// `ResultPath` could not be applied to the input.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// A path in `Parameters` selected nothing.
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    /// An intrinsic function failed.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// A Choice state matched no rule and has no `Default`.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// A Map state's failed iterations passed its tolerated failure threshold.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A branch of a Parallel state failed.
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    /// The query language of the definition is not supported by this engine.
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
}

/// The payload size limit of Step Functions: 256 KiB of UTF-8.
pub const PAYLOAD_LIMIT_BYTES: usize = 256 * 1024;

/// A failure as states, tasks and executions carry it: an error name and a cause, either of
/// which may be absent (a `Fail` state may name neither).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The error name `Retry` and `Catch` match on.
    pub error: Option<String>,
    /// The human-readable cause.
    pub cause: Option<String>,
}

impl Failure {
    /// A failure with both an error name and a cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Failure {
        Failure { error: Some(error.into()), cause: Some(cause.into()) }
    }

    /// A failure with an error name and no cause.
    pub fn bare(error: impl Into<String>) -> Failure {
        Failure { error: Some(error.into()), cause: None }
    }

    /// `States.Runtime` with AWS's prefix naming the state and the event that entered it.
    pub fn runtime(state: &str, entered_event_id: u64, detail: impl AsRef<str>) -> Failure {
        Failure::new(names::RUNTIME, at_state(state, entered_event_id, detail.as_ref()))
    }

    /// The error name, or the empty string.
    pub fn error_name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// The caught error as a `Catch` passes it on: `{"Error": ..., "Cause": ...}`.
    pub fn to_catch_output(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(e) = &self.error {
            m.insert("Error".into(), serde_json::Value::String(e.clone()));
        }
        if let Some(c) = &self.cause {
            m.insert("Cause".into(), serde_json::Value::String(c.clone()));
        }
        serde_json::Value::Object(m)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, &self.cause) {
            (Some(e), Some(c)) => write!(f, "{e}: {c}"),
            (Some(e), None) => write!(f, "{e}"),
            (None, Some(c)) => write!(f, "{c}"),
            (None, None) => write!(f, "(no error name, no cause)"),
        }
    }
}

/// AWS's prefix for runtime errors: which state, entered at which history event.
pub fn at_state(state: &str, entered_event_id: u64, detail: &str) -> String {
    format!(
        "An error occurred while executing the state '{state}' (entered at the event id #{entered_event_id}). {detail}"
    )
}

/// An error of the engine's API, named as the Step Functions API names its errors.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The definition does not parse or does not validate.
    #[error("invalid definition: {0}")]
    InvalidDefinition(#[from] crate::definition::DefinitionError),
    /// No state machine of that name is registered.
    #[error("StateMachineDoesNotExist: state machine '{0}' does not exist")]
    StateMachineDoesNotExist(String),
    /// No execution with that ARN exists.
    #[error("ExecutionDoesNotExist: execution '{0}' does not exist")]
    ExecutionDoesNotExist(String),
    /// The name is taken by an execution that is finished, or running with another input.
    #[error("ExecutionAlreadyExists: execution '{0}' already exists")]
    ExecutionAlreadyExists(String),
    /// The execution name breaks AWS's rules (1–80 characters, no whitespace or wildcards).
    #[error("InvalidName: {0}")]
    InvalidName(String),
    /// The input is not JSON, or is larger than 256 KiB.
    #[error("InvalidExecutionInput: {0}")]
    InvalidExecutionInput(String),
    /// The execution cannot be redriven (still running, succeeded, or nothing to redrive).
    #[error("ExecutionNotRedrivable: {0}")]
    ExecutionNotRedrivable(String),
    /// The call needs a state machine of the other type (`StartSyncExecution` on a Standard
    /// state machine).
    #[error("StateMachineTypeNotSupported: {0}")]
    StateMachineTypeNotSupported(String),
    /// No task is waiting for this task token (`SendTaskSuccess` and its siblings).
    #[error("TaskDoesNotExist: {0}")]
    TaskDoesNotExist(String),
    /// The output sent with a task token is too large or not JSON.
    #[error("InvalidOutput: {0}")]
    InvalidOutput(String),
    /// The task token is not one this engine issues.
    #[error("InvalidToken: {0}")]
    InvalidToken(String),
    /// The execution store failed.
    #[error("execution store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The engine is shutting down.
    #[error("the engine is shut down")]
    Shutdown,
}

//! Execution history events in the shapes of the Step Functions `GetExecutionHistory` API:
//! `{id, previousEventId, timestamp, type, <type>EventDetails}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// 1, 2, 3... within the execution.
    pub id: u64,
    /// The event this one follows from (0 for none).
    pub previous_event_id: u64,
    /// When it happened, on the engine's clock.
    pub timestamp: DateTime<Utc>,
    /// `ExecutionStarted`, `TaskStateEntered`, `MapIterationSucceeded`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    /// The `<type>EventDetails` member, if the type has one.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object, whatever its key.
    pub fn detail(&self) -> Option<&Value> {
        self.details.values().next()
    }
}

/// An event not yet numbered: its type and its details member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub event_type: String,
    pub details: Option<(&'static str, Value)>,
}

impl NewEvent {
    fn new(event_type: impl Into<String>, key: &'static str, details: Value) -> NewEvent {
        NewEvent { event_type: event_type.into(), details: Some((key, details)) }
    }

    fn bare(event_type: impl Into<String>) -> NewEvent {
        NewEvent { event_type: event_type.into(), details: None }
    }
}

/// A payload as history events carry it: the JSON text and `{"truncated": false}`.
fn payload_details(text: &str) -> (String, Value) {
    (text.to_string(), json!({"truncated": false}))
}

fn with_error(mut m: Map<String, Value>, error: Option<&str>, cause: Option<&str>) -> Value {
    if let Some(e) = error {
        m.insert("error".into(), Value::String(e.to_string()));
    }
    if let Some(c) = cause {
        m.insert("cause".into(), Value::String(c.to_string()));
    }
    Value::Object(m)
}

pub(crate) fn execution_started(input: &str, role_arn: &str) -> NewEvent {
    let (input, details) = payload_details(input);
    NewEvent::new(
        "ExecutionStarted",
        "executionStartedEventDetails",
        json!({"input": input, "inputDetails": details, "roleArn": role_arn}),
    )
}

pub(crate) fn execution_succeeded(output: &str) -> NewEvent {
    let (output, details) = payload_details(output);
    NewEvent::new(
        "ExecutionSucceeded",
        "executionSucceededEventDetails",
        json!({"output": output, "outputDetails": details}),
    )
}

pub(crate) fn execution_failed(error: Option<&str>, cause: Option<&str>) -> NewEvent {
    NewEvent::new("ExecutionFailed", "executionFailedEventDetails", with_error(Map::new(), error, cause))
}

pub(crate) fn execution_aborted(error: Option<&str>, cause: Option<&str>) -> NewEvent {
    NewEvent::new("ExecutionAborted", "executionAbortedEventDetails", with_error(Map::new(), error, cause))
}

pub(crate) fn execution_timed_out() -> NewEvent {
    NewEvent::new(
        "ExecutionTimedOut",
        "executionTimedOutEventDetails",
        json!({"error": "States.Timeout", "cause": "The execution ran longer than the state machine's TimeoutSeconds."}),
    )
}

pub(crate) fn execution_redriven(redrive_count: u32) -> NewEvent {
    NewEvent::new(
        "ExecutionRedriven",
        "executionRedrivenEventDetails",
        json!({"redriveCount": redrive_count}),
    )
}

pub(crate) fn state_entered(prefix: &str, name: &str, input: &str) -> NewEvent {
    let (input, details) = payload_details(input);
    NewEvent::new(
        format!("{prefix}StateEntered"),
        "stateEnteredEventDetails",
        json!({"name": name, "input": input, "inputDetails": details}),
    )
}

pub(crate) fn state_exited(
    prefix: &str,
    name: &str,
    output: &str,
    assigned: Option<&Map<String, Value>>,
) -> NewEvent {
    let (output, details) = payload_details(output);
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.to_string()));
    m.insert("output".into(), Value::String(output));
    m.insert("outputDetails".into(), details);
    if let Some(vars) = assigned {
        let as_strings: Map<String, Value> = vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(serde_json::to_string(v).unwrap_or_default())))
            .collect();
        m.insert("assignedVariables".into(), Value::Object(as_strings));
        m.insert("assignedVariablesDetails".into(), json!({"truncated": false}));
    }
    NewEvent::new(format!("{prefix}StateExited"), "stateExitedEventDetails", Value::Object(m))
}

pub(crate) fn lambda_scheduled(resource: &str, input: &str, timeout: Option<u64>) -> NewEvent {
    let (input, details) = payload_details(input);
    let mut m = Map::new();
    m.insert("resource".into(), Value::String(resource.to_string()));
    m.insert("input".into(), Value::String(input));
    m.insert("inputDetails".into(), details);
    if let Some(t) = timeout {
        m.insert("timeoutInSeconds".into(), Value::from(t));
    }
    NewEvent::new("LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails", Value::Object(m))
}

pub(crate) fn lambda_started() -> NewEvent {
    NewEvent::bare("LambdaFunctionStarted")
}

pub(crate) fn lambda_succeeded(output: &str) -> NewEvent {
    let (output, details) = payload_details(output);
    NewEvent::new(
        "LambdaFunctionSucceeded",
        "lambdaFunctionSucceededEventDetails",
        json!({"output": output, "outputDetails": details}),
    )
}

pub(crate) fn lambda_failed(error: Option<&str>, cause: Option<&str>) -> NewEvent {
    NewEvent::new(
        "LambdaFunctionFailed",
        "lambdaFunctionFailedEventDetails",
        with_error(Map::new(), error, cause),
    )
}

pub(crate) fn lambda_timed_out(error: Option<&str>, cause: Option<&str>) -> NewEvent {
    NewEvent::new(
        "LambdaFunctionTimedOut",
        "lambdaFunctionTimedOutEventDetails",
        with_error(Map::new(), error, cause),
    )
}

fn resource_map(resource_type: &str, resource: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("resourceType".into(), Value::String(resource_type.to_string()));
    m.insert("resource".into(), Value::String(resource.to_string()));
    m
}

pub(crate) fn task_scheduled(
    resource_type: &str,
    resource: &str,
    region: &str,
    parameters: &str,
    timeout: Option<u64>,
    heartbeat: Option<u64>,
) -> NewEvent {
    let mut m = resource_map(resource_type, resource);
    m.insert("region".into(), Value::String(region.to_string()));
    m.insert("parameters".into(), Value::String(parameters.to_string()));
    if let Some(t) = timeout {
        m.insert("timeoutInSeconds".into(), Value::from(t));
    }
    if let Some(h) = heartbeat {
        m.insert("heartbeatInSeconds".into(), Value::from(h));
    }
    NewEvent::new("TaskScheduled", "taskScheduledEventDetails", Value::Object(m))
}

pub(crate) fn task_started(resource_type: &str, resource: &str) -> NewEvent {
    NewEvent::new(
        "TaskStarted",
        "taskStartedEventDetails",
        Value::Object(resource_map(resource_type, resource)),
    )
}

pub(crate) fn task_succeeded(resource_type: &str, resource: &str, output: &str) -> NewEvent {
    let (output, details) = payload_details(output);
    let mut m = resource_map(resource_type, resource);
    m.insert("output".into(), Value::String(output));
    m.insert("outputDetails".into(), details);
    NewEvent::new("TaskSucceeded", "taskSucceededEventDetails", Value::Object(m))
}

pub(crate) fn task_failed(
    resource_type: &str,
    resource: &str,
    error: Option<&str>,
    cause: Option<&str>,
) -> NewEvent {
    NewEvent::new(
        "TaskFailed",
        "taskFailedEventDetails",
        with_error(resource_map(resource_type, resource), error, cause),
    )
}

pub(crate) fn task_timed_out(
    resource_type: &str,
    resource: &str,
    error: Option<&str>,
    cause: Option<&str>,
) -> NewEvent {
    NewEvent::new(
        "TaskTimedOut",
        "taskTimedOutEventDetails",
        with_error(resource_map(resource_type, resource), error, cause),
    )
}

pub(crate) fn map_state_started(length: usize) -> NewEvent {
    NewEvent::new("MapStateStarted", "mapStateStartedEventDetails", json!({"length": length}))
}

pub(crate) fn map_iteration(kind: &str, name: &str, index: usize) -> NewEvent {
    let key: &'static str = match kind {
        "Started" => "mapIterationStartedEventDetails",
        "Succeeded" => "mapIterationSucceededEventDetails",
        "Failed" => "mapIterationFailedEventDetails",
        _ => "mapIterationAbortedEventDetails",
    };
    NewEvent::new(format!("MapIteration{kind}"), key, json!({"name": name, "index": index}))
}

pub(crate) fn bare(event_type: &str) -> NewEvent {
    NewEvent::bare(event_type)
}

pub(crate) fn number(
    events: Vec<NewEvent>,
    first_id: u64,
    mut previous: u64,
    now: DateTime<Utc>,
) -> Vec<HistoryEvent> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let id = first_id + i as u64;
            let mut details = Map::new();
            if let Some((k, v)) = e.details {
                details.insert(k.to_string(), v);
            }
            let ev = HistoryEvent {
                id,
                previous_event_id: previous,
                timestamp: now,
                event_type: e.event_type,
                details,
            };
            previous = id;
            ev
        })
        .collect()
}

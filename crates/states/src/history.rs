//! Execution history events in the shapes of the Step Functions `GetExecutionHistory` API:
//! `{id, previousEventId, timestamp, type, <type>EventDetails}`.
//!
//! The engine records typed [`Event`]s, whose payloads are JSON text shared between the events
//! that carry them (a state's output is the next state's input); they take the AWS shape,
//! [`HistoryEvent`], when read or stored as JSON.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One history event as the API shows it.
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

/// A payload an event carries: JSON text, or a value shared with the state that produced it
/// and written as JSON only when the history is read or stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Text already serialized (a Lambda response, the execution input).
    Text(Arc<str>),
    /// A value, serialized on demand.
    Value(Arc<Value>),
}

impl Payload {
    /// The payload as JSON text.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Payload::Text(t) => std::borrow::Cow::Borrowed(t),
            Payload::Value(v) => {
                std::borrow::Cow::Owned(serde_json::to_string(&**v).unwrap_or_else(|_| "null".into()))
            }
        }
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(Arc::from(s))
    }
}

/// What happened, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `ExecutionStarted`.
    ExecutionStarted {
        /// The input.
        input: Payload,
        /// The role.
        role_arn: Arc<str>,
    },
    /// `ExecutionSucceeded`.
    ExecutionSucceeded {
        /// The output.
        output: Payload,
    },
    /// `ExecutionFailed`.
    ExecutionFailed {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `ExecutionAborted`.
    ExecutionAborted {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `ExecutionTimedOut`.
    ExecutionTimedOut,
    /// `ExecutionRedriven`.
    ExecutionRedriven {
        /// The redrive count after this redrive.
        redrive_count: u32,
    },
    /// `<Type>StateEntered`.
    StateEntered {
        /// `Pass`, `Task`, ...
        state_type: &'static str,
        /// The state name.
        name: Arc<str>,
        /// The state input.
        input: Payload,
    },
    /// `<Type>StateExited`.
    StateExited {
        /// `Pass`, `Task`, ...
        state_type: &'static str,
        /// The state name.
        name: Arc<str>,
        /// The state output.
        output: Payload,
        /// The variables the state assigned.
        assigned: Option<Arc<Map<String, Value>>>,
    },
    /// `LambdaFunctionScheduled`.
    LambdaScheduled {
        /// The function ARN.
        resource: Arc<str>,
        /// The event sent.
        input: Payload,
        /// `TimeoutSeconds`.
        timeout: Option<u64>,
    },
    /// `LambdaFunctionStarted`.
    LambdaStarted,
    /// `LambdaFunctionSucceeded`.
    LambdaSucceeded {
        /// The response.
        output: Payload,
    },
    /// `LambdaFunctionFailed`.
    LambdaFailed {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `LambdaFunctionTimedOut`.
    LambdaTimedOut {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `TaskScheduled`.
    TaskScheduled {
        /// `lambda`, `sqs`, ...
        resource_type: Arc<str>,
        /// `invoke`, `sendMessage`, ...
        resource: Arc<str>,
        /// The region.
        region: Arc<str>,
        /// The parameters sent.
        parameters: Payload,
        /// `TimeoutSeconds`.
        timeout: Option<u64>,
        /// `HeartbeatSeconds`.
        heartbeat: Option<u64>,
    },
    /// `TaskStarted`.
    TaskStarted {
        /// `lambda`, ...
        resource_type: Arc<str>,
        /// `invoke`, ...
        resource: Arc<str>,
    },
    /// `TaskSucceeded`.
    TaskSucceeded {
        /// `lambda`, ...
        resource_type: Arc<str>,
        /// `invoke`, ...
        resource: Arc<str>,
        /// The result.
        output: Payload,
    },
    /// `TaskFailed`.
    TaskFailed {
        /// `lambda`, ...
        resource_type: Arc<str>,
        /// `invoke`, ...
        resource: Arc<str>,
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `TaskTimedOut`.
    TaskTimedOut {
        /// `lambda`, ...
        resource_type: Arc<str>,
        /// `invoke`, ...
        resource: Arc<str>,
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// `MapStateStarted`.
    MapStateStarted {
        /// How many items.
        length: usize,
    },
    /// `MapIterationStarted`, `...Succeeded`, `...Failed`, `...Aborted`.
    MapIteration {
        /// `Started`, `Succeeded`, `Failed` or `Aborted`.
        outcome: &'static str,
        /// The Map state's name.
        name: Arc<str>,
        /// The item index.
        index: usize,
    },
    /// An event with no details (`MapStateSucceeded`, `ParallelStateStarted`, ...).
    Bare(&'static str),
}

/// A numbered event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1, 2, 3... within the execution.
    pub id: u64,
    /// The event this one follows from.
    pub previous_event_id: u64,
    /// When.
    pub timestamp: DateTime<Utc>,
    /// What.
    pub kind: EventKind,
}

fn payload_member(m: &mut Map<String, Value>, field: &str, payload: &Payload) {
    m.insert(field.to_string(), Value::String(payload.to_text().into_owned()));
    m.insert(format!("{field}Details"), serde_json::json!({"truncated": false}));
}

fn error_member(m: &mut Map<String, Value>, error: &Option<String>, cause: &Option<String>) {
    if let Some(e) = error {
        m.insert("error".into(), Value::String(e.clone()));
    }
    if let Some(c) = cause {
        m.insert("cause".into(), Value::String(c.clone()));
    }
}

fn resource_member(m: &mut Map<String, Value>, resource_type: &str, resource: &str) {
    m.insert("resourceType".into(), Value::String(resource_type.to_string()));
    m.insert("resource".into(), Value::String(resource.to_string()));
}

impl EventKind {
    /// The API's event type.
    pub fn event_type(&self) -> String {
        match self {
            EventKind::ExecutionStarted { .. } => "ExecutionStarted".into(),
            EventKind::ExecutionSucceeded { .. } => "ExecutionSucceeded".into(),
            EventKind::ExecutionFailed { .. } => "ExecutionFailed".into(),
            EventKind::ExecutionAborted { .. } => "ExecutionAborted".into(),
            EventKind::ExecutionTimedOut => "ExecutionTimedOut".into(),
            EventKind::ExecutionRedriven { .. } => "ExecutionRedriven".into(),
            EventKind::StateEntered { state_type, .. } => format!("{state_type}StateEntered"),
            EventKind::StateExited { state_type, .. } => format!("{state_type}StateExited"),
            EventKind::LambdaScheduled { .. } => "LambdaFunctionScheduled".into(),
            EventKind::LambdaStarted => "LambdaFunctionStarted".into(),
            EventKind::LambdaSucceeded { .. } => "LambdaFunctionSucceeded".into(),
            EventKind::LambdaFailed { .. } => "LambdaFunctionFailed".into(),
            EventKind::LambdaTimedOut { .. } => "LambdaFunctionTimedOut".into(),
            EventKind::TaskScheduled { .. } => "TaskScheduled".into(),
            EventKind::TaskStarted { .. } => "TaskStarted".into(),
            EventKind::TaskSucceeded { .. } => "TaskSucceeded".into(),
            EventKind::TaskFailed { .. } => "TaskFailed".into(),
            EventKind::TaskTimedOut { .. } => "TaskTimedOut".into(),
            EventKind::MapStateStarted { .. } => "MapStateStarted".into(),
            EventKind::MapIteration { outcome, .. } => format!("MapIteration{outcome}"),
            EventKind::Bare(t) => (*t).to_string(),
        }
    }

    /// The `<type>EventDetails` key and value, if the type has details.
    fn details(&self) -> Option<(&'static str, Value)> {
        let mut m = Map::new();
        let key = match self {
            EventKind::ExecutionStarted { input, role_arn } => {
                payload_member(&mut m, "input", input);
                m.insert("roleArn".into(), Value::String(role_arn.to_string()));
                "executionStartedEventDetails"
            }
            EventKind::ExecutionSucceeded { output } => {
                payload_member(&mut m, "output", output);
                "executionSucceededEventDetails"
            }
            EventKind::ExecutionFailed { error, cause } => {
                error_member(&mut m, error, cause);
                "executionFailedEventDetails"
            }
            EventKind::ExecutionAborted { error, cause } => {
                error_member(&mut m, error, cause);
                "executionAbortedEventDetails"
            }
            EventKind::ExecutionTimedOut => {
                error_member(
                    &mut m,
                    &Some("States.Timeout".into()),
                    &Some("The execution ran longer than the state machine's TimeoutSeconds.".into()),
                );
                "executionTimedOutEventDetails"
            }
            EventKind::ExecutionRedriven { redrive_count } => {
                m.insert("redriveCount".into(), Value::from(*redrive_count));
                "executionRedrivenEventDetails"
            }
            EventKind::StateEntered { name, input, .. } => {
                m.insert("name".into(), Value::String(name.to_string()));
                payload_member(&mut m, "input", input);
                "stateEnteredEventDetails"
            }
            EventKind::StateExited { name, output, assigned, .. } => {
                m.insert("name".into(), Value::String(name.to_string()));
                payload_member(&mut m, "output", output);
                if let Some(vars) = assigned {
                    let as_text: Map<String, Value> = vars
                        .iter()
                        .map(|(k, v)| {
                            (k.clone(), Value::String(serde_json::to_string(v).unwrap_or_default()))
                        })
                        .collect();
                    m.insert("assignedVariables".into(), Value::Object(as_text));
                    m.insert("assignedVariablesDetails".into(), serde_json::json!({"truncated": false}));
                }
                "stateExitedEventDetails"
            }
            EventKind::LambdaScheduled { resource, input, timeout } => {
                m.insert("resource".into(), Value::String(resource.to_string()));
                payload_member(&mut m, "input", input);
                if let Some(t) = timeout {
                    m.insert("timeoutInSeconds".into(), Value::from(*t));
                }
                "lambdaFunctionScheduledEventDetails"
            }
            EventKind::LambdaStarted => return None,
            EventKind::LambdaSucceeded { output } => {
                payload_member(&mut m, "output", output);
                "lambdaFunctionSucceededEventDetails"
            }
            EventKind::LambdaFailed { error, cause } => {
                error_member(&mut m, error, cause);
                "lambdaFunctionFailedEventDetails"
            }
            EventKind::LambdaTimedOut { error, cause } => {
                error_member(&mut m, error, cause);
                "lambdaFunctionTimedOutEventDetails"
            }
            EventKind::TaskScheduled { resource_type, resource, region, parameters, timeout, heartbeat } => {
                resource_member(&mut m, resource_type, resource);
                m.insert("region".into(), Value::String(region.to_string()));
                m.insert("parameters".into(), Value::String(parameters.to_text().into_owned()));
                if let Some(t) = timeout {
                    m.insert("timeoutInSeconds".into(), Value::from(*t));
                }
                if let Some(h) = heartbeat {
                    m.insert("heartbeatInSeconds".into(), Value::from(*h));
                }
                "taskScheduledEventDetails"
            }
            EventKind::TaskStarted { resource_type, resource } => {
                resource_member(&mut m, resource_type, resource);
                "taskStartedEventDetails"
            }
            EventKind::TaskSucceeded { resource_type, resource, output } => {
                resource_member(&mut m, resource_type, resource);
                payload_member(&mut m, "output", output);
                "taskSucceededEventDetails"
            }
            EventKind::TaskFailed { resource_type, resource, error, cause } => {
                resource_member(&mut m, resource_type, resource);
                error_member(&mut m, error, cause);
                "taskFailedEventDetails"
            }
            EventKind::TaskTimedOut { resource_type, resource, error, cause } => {
                resource_member(&mut m, resource_type, resource);
                error_member(&mut m, error, cause);
                "taskTimedOutEventDetails"
            }
            EventKind::MapStateStarted { length } => {
                m.insert("length".into(), Value::from(*length));
                "mapStateStartedEventDetails"
            }
            EventKind::MapIteration { outcome, name, index } => {
                m.insert("name".into(), Value::String(name.to_string()));
                m.insert("index".into(), Value::from(*index));
                match *outcome {
                    "Started" => "mapIterationStartedEventDetails",
                    "Succeeded" => "mapIterationSucceededEventDetails",
                    "Failed" => "mapIterationFailedEventDetails",
                    _ => "mapIterationAbortedEventDetails",
                }
            }
            EventKind::Bare(_) => return None,
        };
        Some((key, Value::Object(m)))
    }
}

impl Event {
    /// The event in the API's shape.
    pub fn to_history(&self) -> HistoryEvent {
        let mut details = Map::new();
        if let Some((k, v)) = self.kind.details() {
            details.insert(k.to_string(), v);
        }
        HistoryEvent {
            id: self.id,
            previous_event_id: self.previous_event_id,
            timestamp: self.timestamp,
            event_type: self.kind.event_type(),
            details,
        }
    }
}

/// Numbers events `first_id, first_id + 1, ...`, each following the one before it.
pub(crate) fn number(
    kinds: Vec<EventKind>,
    first_id: u64,
    mut previous: u64,
    now: DateTime<Utc>,
) -> Vec<Event> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let id = first_id + i as u64;
            let ev = Event { id, previous_event_id: previous, timestamp: now, kind };
            previous = id;
            ev
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_take_the_api_shape() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let events = number(
            vec![
                EventKind::StateEntered {
                    state_type: "Task",
                    name: "Fetch".into(),
                    input: "{\"a\":1}".into(),
                },
                EventKind::TaskFailed {
                    resource_type: "lambda".into(),
                    resource: "invoke".into(),
                    error: Some("Lector.Transient".into()),
                    cause: None,
                },
                EventKind::Bare("MapStateSucceeded"),
            ],
            5,
            4,
            now,
        );
        let h: Vec<Value> =
            events.iter().map(|e| serde_json::to_value(e.to_history()).expect("serializes")).collect();
        assert_eq!(h[0]["type"], json!("TaskStateEntered"));
        assert_eq!(h[0]["id"], json!(5));
        assert_eq!(h[0]["previousEventId"], json!(4));
        assert_eq!(
            h[0]["stateEnteredEventDetails"],
            json!({"name": "Fetch", "input": "{\"a\":1}", "inputDetails": {"truncated": false}})
        );
        assert_eq!(
            h[1]["taskFailedEventDetails"],
            json!({"resourceType": "lambda", "resource": "invoke", "error": "Lector.Transient"})
        );
        assert_eq!(h[1]["previousEventId"], json!(5));
        assert_eq!(
            h[2],
            json!({"id": 7, "previousEventId": 6, "timestamp": "1970-01-01T00:00:00Z", "type": "MapStateSucceeded"})
        );
    }
}

//! The conversion workflow on Step Functions: start an execution once per conversion attempt,
//! describe it, find the failed ones, redrive or stop them.

use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::operation::redrive_execution::RedriveExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, Utc};
use lector_core::ConversionId;

use crate::backoff::Backoff;
use crate::sdk::Failure;

const RETRY: Backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(3), attempts: 5 };

/// Why a workflow call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Throttled, timed out, or a 5xx: retry with backoff.
    #[error("Step Functions unavailable: {0}")]
    Unavailable(String),
    /// An execution of that name exists with another input: the attempt was started for
    /// something else. Start the next attempt instead.
    #[error("execution {name} already exists with another input")]
    NameTaken { name: String, execution_arn: String },
    /// No such execution or state machine.
    #[error("not found: {0}")]
    NotFound(String),
    /// The execution cannot be redriven (not failed, too old, redriven too often, or its
    /// state machine changed): restart it as a new attempt.
    #[error("execution cannot be redriven: {0}")]
    NotRedrivable(String),
    /// Anything else the service refused; retrying will not help.
    #[error("Step Functions refused the call: {0}")]
    Refused(String),
}

impl WorkflowError {
    pub fn is_transient(&self) -> bool {
        matches!(self, WorkflowError::Unavailable(_))
    }
}

/// One `StartExecution` request: an execution of `state_machine_arn` named `name`, given `input`.
pub(crate) async fn start_execution(
    client: &Client,
    state_machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<
    aws_sdk_sfn::operation::start_execution::StartExecutionOutput,
    SdkError<StartExecutionError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
> {
    client.start_execution().state_machine_arn(state_machine_arn).name(name).input(input).send().await
}

pub(crate) fn error<E>(
    op: &str,
    err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> WorkflowError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = Failure::of(err);
    let reason = format!("{op}: {}", failure.message);
    match failure.code.as_deref() {
        _ if failure.transient => WorkflowError::Unavailable(reason),
        Some("ExecutionDoesNotExist" | "StateMachineDoesNotExist" | "ResourceNotFound") => {
            WorkflowError::NotFound(reason)
        }
        Some("ExecutionNotRedrivable") => WorkflowError::NotRedrivable(reason),
        _ => WorkflowError::Refused(reason),
    }
}

/// An execution as `describe` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub execution_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub redrive_count: i32,
}

/// A failed execution as `list_failed` finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSummary {
    pub execution_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub redrive_count: i32,
}

/// What `start` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new execution.
    New { execution_arn: String },
    /// The same attempt had been started with the same input (it may have finished since): a duplicate event, nothing new.
    AlreadyStarted { execution_arn: String },
}

impl Started {
    pub fn execution_arn(&self) -> &str {
        match self {
            Started::New { execution_arn } | Started::AlreadyStarted { execution_arn } => execution_arn,
        }
    }
}

/// The time window of `list_failed`, on the executions' start dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl TimeFilter {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// The statuses `list_failed` reports: the ones a redrive can resume.
pub const FAILED_STATUSES: [ExecutionStatus; 2] = [ExecutionStatus::Failed, ExecutionStatus::TimedOut];

/// The execution name of a conversion's attempt: the same event starts nothing twice.
pub fn execution_name(id: &ConversionId, attempt: u32) -> String {
    format!("{id}-{attempt}")
}

/// The ARN of the execution named `name` of `state_machine_arn`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!("{}:{name}", state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
}

fn time(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// The Step Functions client adapter for one state machine.
#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self { client, state_machine_arn: state_machine_arn.into() }
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    /// Start the conversion's `attempt` (of its first revision) with `input` (JSON). Starting
    /// it again with the same input is a success that starts nothing.
    pub async fn start(
        &self,
        id: &ConversionId,
        attempt: u32,
        input: &str,
    ) -> Result<Started, WorkflowError> {
        self.start_revision(id, 1, attempt, input).await
    }

    /// Start `attempt` of the conversion's `revision` with `input` (JSON), under the name
    /// [`ConversionId::revision_execution_name`] makes. Starting it again with the same input
    /// is a success that starts nothing.
    #[tracing::instrument(skip(self, input), fields(conversion_id = %id))]
    pub async fn start_revision(
        &self,
        id: &ConversionId,
        revision: u32,
        attempt: u32,
        input: &str,
    ) -> Result<Started, WorkflowError> {
        let name = id.revision_execution_name(revision, attempt);
        let started = RETRY
            .retry(
                || async {
                    match start_execution(&self.client, &self.state_machine_arn, &name, input).await {
                        Ok(out) => Ok(Some(out.execution_arn().to_owned())),
                        Err(SdkError::ServiceError(ctx))
                            if matches!(ctx.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
                        {
                            Ok(None)
                        }
                        Err(e) => Err(error("StartExecution", &e)),
                    }
                },
                WorkflowError::is_transient,
            )
            .await?;
        match started {
            Some(execution_arn) => Ok(Started::New { execution_arn }),
            None => self.already_started(&name, input).await,
        }
    }

    async fn already_started(&self, name: &str, input: &str) -> Result<Started, WorkflowError> {
        let arn = execution_arn(&self.state_machine_arn, name);
        let existing = self.describe(&arn).await?;
        let same = match (existing.input.as_deref(), input) {
            (Some(a), b) if a == b => true,
            // Step Functions may give back the same JSON formatted differently.
            (Some(a), b) => {
                let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
                matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
            }
            (None, _) => false,
        };
        if same {
            Ok(Started::AlreadyStarted { execution_arn: arn })
        } else {
            Err(WorkflowError::NameTaken { name: name.to_owned(), execution_arn: arn })
        }
    }

    pub async fn describe(&self, execution_arn: &str) -> Result<Execution, WorkflowError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| error("DescribeExecution", &e))?;
        Ok(Execution {
            execution_arn: out.execution_arn().to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            status: out.status().clone(),
            started_at: time(out.start_date()),
            stopped_at: out.stop_date().map(time),
            input: out.input().map(str::to_owned),
            output: out.output().map(str::to_owned),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
            redrive_count: out.redrive_count().unwrap_or(0),
        })
    }

    /// Failed and timed-out executions started within `window`, newest first, following every
    /// page. Pages come newest first, so paging stops at the first execution older than
    /// `window.since`.
    pub async fn list_failed(&self, window: TimeFilter) -> Result<Vec<ExecutionSummary>, WorkflowError> {
        let mut found = Vec::new();
        for status in FAILED_STATUSES {
            let mut token: Option<String> = None;
            'pages: loop {
                let out = self
                    .client
                    .list_executions()
                    .state_machine_arn(&self.state_machine_arn)
                    .status_filter(status.clone())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| error("ListExecutions", &e))?;
                for item in out.executions() {
                    let started_at = time(item.start_date());
                    if window.since.is_some_and(|s| started_at < s) {
                        break 'pages;
                    }
                    if window.contains(started_at) {
                        found.push(ExecutionSummary {
                            execution_arn: item.execution_arn().to_owned(),
                            name: item.name().to_owned(),
                            status: item.status().clone(),
                            started_at,
                            stopped_at: item.stop_date().map(time),
                            redrive_count: item.redrive_count().unwrap_or(0),
                        });
                    }
                }
                match out.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        found.sort_by_key(|e| std::cmp::Reverse(e.started_at));
        Ok(found)
    }

    /// Resume a failed execution from the state that failed. `client_token` makes a retried
    /// redrive of the same request a no-op (the same operator action gives the same token).
    pub async fn redrive(
        &self,
        execution_arn: &str,
        client_token: &str,
    ) -> Result<DateTime<Utc>, WorkflowError> {
        let out = self
            .client
            .redrive_execution()
            .execution_arn(execution_arn)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(ctx)
                    if matches!(ctx.err(), RedriveExecutionError::ExecutionNotRedrivable(_)) =>
                {
                    WorkflowError::NotRedrivable(format!("{execution_arn}: {}", Failure::of(&e).message))
                }
                _ => error("RedriveExecution", &e),
            })?;
        Ok(time(out.redrive_date()))
    }

    /// Stop a running execution, saying why.
    pub async fn stop(
        &self,
        execution_arn: &str,
        error_name: &str,
        cause: &str,
    ) -> Result<(), WorkflowError> {
        self.client
            .stop_execution()
            .execution_arn(execution_arn)
            .error(error_name)
            .cause(cause)
            .send()
            .await
            .map_err(|e| error("StopExecution", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_follow_the_state_machine_and_the_attempt() {
        let id: ConversionId = "0123456789abcdef0123".parse().unwrap();
        assert_eq!(execution_name(&id, 2), "0123456789abcdef0123-2");
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:123456789012:stateMachine:conversion", "x-1"),
            "arn:aws:states:us-east-1:123456789012:execution:conversion:x-1"
        );
    }

    #[test]
    fn time_filters_are_inclusive() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let window = TimeFilter { since: Some(t(10)), until: Some(t(20)) };
        assert!(window.contains(t(10)) && window.contains(t(20)));
        assert!(!window.contains(t(9)) && !window.contains(t(21)));
        assert!(TimeFilter::default().contains(t(0)));
    }
}

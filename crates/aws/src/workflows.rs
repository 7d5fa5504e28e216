//! The `Workflows` port of `lector-core` on Step Functions: what `start-conversion` and the
//! operators' tools call, with the same meaning as the local engine's.
//!
//! - `start` takes the execution name [`lector_core::ConversionId::revision_execution_name`]
//!   makes: `<conversion id>-<attempt>` for the first revision, `<conversion id>-r<revision>-
//!   <attempt>` for later ones; a repeated start of a running attempt
//!   with the same input answers with that execution, any other reuse of the name is
//!   [`WorkflowError::AlreadyExists`] (Step Functions and the local engine agree on this);
//! - `redrive` resumes a failed execution with a client token made from the execution and its
//!   redrive count, so a request retried after a lost answer redrives once;
//! - `describe` maps the execution's status onto the port's.

use async_trait::async_trait;
use lector_core::ConversionId;
use lector_core::ports::{ExecutionInfo, ExecutionStatus, WorkflowError, Workflows};
use serde_json::Value;

use crate::workflow::{self, Started, StepFunctions};

/// Client tokens are at most 64 characters.
const MAX_TOKEN: usize = 64;

pub(crate) fn port_error(e: workflow::WorkflowError) -> WorkflowError {
    match e {
        workflow::WorkflowError::Unavailable(reason) => WorkflowError::Unavailable(reason),
        workflow::WorkflowError::NameTaken { execution_arn, .. } => {
            WorkflowError::AlreadyExists(execution_arn)
        }
        workflow::WorkflowError::NotFound(reason) => WorkflowError::NotFound(reason),
        workflow::WorkflowError::NotRedrivable(reason) => WorkflowError::NotRedrivable(reason),
        workflow::WorkflowError::Refused(reason) => WorkflowError::Failed(reason),
    }
}

/// What an execution name stands for: a conversion, its revision (1 for the first) and the
/// attempt (attempts count on across revisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionName {
    pub id: ConversionId,
    pub revision: u32,
    pub attempt: u32,
}

/// The conversion, revision and attempt an execution name stands for: `<id>-<attempt>` for
/// the first revision, `<id>-r<revision>-<attempt>` for revision 2 and later. Only the names
/// Lector makes are accepted (no `r1`, no leading zeros, no attempt 0).
pub fn parse_execution_name(name: &str) -> Result<ExecutionName, WorkflowError> {
    let bad = || {
        WorkflowError::Failed(format!(
            "execution name '{name}' is not '<conversion id>-<attempt>' or \
             '<conversion id>-r<revision>-<attempt>'; Lector names every execution so"
        ))
    };
    let (rest, attempt) = name.rsplit_once('-').ok_or_else(bad)?;
    let attempt: u32 = attempt.parse().map_err(|_| bad())?;
    let (id, revision) = match rest.rsplit_once('-') {
        Some((id, revision)) if revision.starts_with('r') => {
            (id, revision[1..].parse::<u32>().map_err(|_| bad())?)
        }
        _ => (rest, 1),
    };
    let id: ConversionId = id.parse().map_err(|_| bad())?;
    if attempt == 0 || revision == 0 || id.revision_execution_name(revision, attempt) != name {
        return Err(bad());
    }
    Ok(ExecutionName { id, revision, attempt })
}

fn status(s: &aws_sdk_sfn::types::ExecutionStatus) -> Result<ExecutionStatus, WorkflowError> {
    use aws_sdk_sfn::types::ExecutionStatus as Sfn;
    Ok(match s {
        Sfn::Running => ExecutionStatus::Running,
        Sfn::Succeeded => ExecutionStatus::Succeeded,
        Sfn::Failed => ExecutionStatus::Failed,
        Sfn::TimedOut => ExecutionStatus::TimedOut,
        Sfn::Aborted => ExecutionStatus::Aborted,
        Sfn::PendingRedrive => ExecutionStatus::PendingRedrive,
        other => return Err(WorkflowError::Failed(format!("unknown execution status {}", other.as_str()))),
    })
}

/// The client token of the next redrive of `execution_arn`, which has been redriven
/// `redrive_count` times: the same until that redrive happened.
pub fn redrive_token(execution_arn: &str, redrive_count: i32) -> String {
    let name = execution_arn.rsplit(':').next().unwrap_or(execution_arn);
    let prefix = format!("redrive-{}-", redrive_count + 1);
    let room = MAX_TOKEN - prefix.len();
    // Execution names are at most 80 characters; their end (the attempt) is what differs.
    let tail = &name[name.len().saturating_sub(room)..];
    format!("{prefix}{tail}")
}

#[async_trait]
impl Workflows for StepFunctions {
    async fn start(&self, name: &str, input: &Value) -> Result<String, WorkflowError> {
        let ExecutionName { id, revision, attempt } = parse_execution_name(name)?;
        let started = StepFunctions::start_revision(self, &id, revision, attempt, &input.to_string())
            .await
            .map_err(port_error)?;
        match started {
            Started::New { execution_arn } => Ok(execution_arn),
            Started::AlreadyStarted { execution_arn } => {
                let existing = StepFunctions::describe(self, &execution_arn).await.map_err(port_error)?;
                if existing.status == aws_sdk_sfn::types::ExecutionStatus::Running {
                    Ok(execution_arn)
                } else {
                    // Finished: starting it again would not run it, and a redrive is an
                    // operator's decision.
                    Err(WorkflowError::AlreadyExists(execution_arn))
                }
            }
        }
    }

    async fn redrive(&self, execution_id: &str) -> Result<(), WorkflowError> {
        let execution = StepFunctions::describe(self, execution_id).await.map_err(port_error)?;
        let token = redrive_token(execution_id, execution.redrive_count);
        StepFunctions::redrive(self, execution_id, &token).await.map_err(port_error)?;
        Ok(())
    }

    async fn describe(&self, execution_id: &str) -> Result<ExecutionInfo, WorkflowError> {
        let execution = StepFunctions::describe(self, execution_id).await.map_err(port_error)?;
        Ok(ExecutionInfo {
            status: status(&execution.status)?,
            id: execution.execution_arn,
            name: execution.name,
            started_at: execution.started_at,
            stopped_at: execution.stopped_at,
            error: execution.error,
            cause: execution.cause,
            redrive_count: execution.redrive_count.max(0) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_are_conversion_revision_and_attempt() {
        let id: ConversionId = "0123456789abcdef0123".parse().unwrap();
        let name = |revision, attempt| ExecutionName { id: id.clone(), revision, attempt };
        assert_eq!(parse_execution_name(&id.execution_name(3)).unwrap(), name(1, 3));
        assert_eq!(parse_execution_name(&id.revision_execution_name(1, 2)).unwrap(), name(1, 2));
        assert_eq!(parse_execution_name(&id.revision_execution_name(2, 4)).unwrap(), name(2, 4));
        assert_eq!(parse_execution_name("0123456789abcdef0123-r12-15").unwrap(), name(12, 15));
        for bad in [
            "",
            "x-1",
            "0123456789abcdef0123",
            "0123456789abcdef0123-0",
            "0123456789abcdef0123-01",
            "0123456789abcdef0123-r1-2",
            "0123456789abcdef0123-r0-2",
            "0123456789abcdef0123-r02-2",
            "0123456789abcdef0123-r2-0",
            "0123456789abcdef0123-r-2",
            "0123456789abcdef0123-rx-2",
            "0123456789abcdef0123-2-2",
        ] {
            assert!(parse_execution_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn redrive_tokens_change_with_each_redrive_and_fit() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:lector-conversion:0123456789abcdef0123-2";
        assert_eq!(redrive_token(arn, 0), "redrive-1-0123456789abcdef0123-2");
        assert_ne!(redrive_token(arn, 0), redrive_token(arn, 1));
        let long = format!("arn:aws:states:r:1:execution:m:{}", "n".repeat(80));
        assert_eq!(redrive_token(&long, 9).len(), 64);
    }
}

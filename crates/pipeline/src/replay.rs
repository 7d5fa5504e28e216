//! Replaying failed conversions, for operators: find them with why they failed, then redrive
//! (resume the failed execution from the state that failed) or restart (a new attempt from the
//! start). Every replay first appends `ConversionRetried` (how, by whom, why), so the stream
//! tells the whole story and other teams see it on the bus. Written against the ports, so the
//! same code replays on the local engine and on Step Functions.

use chrono::{DateTime, Duration, Utc};
use lector_core::conversion::{Command, DomainError};
use lector_core::event::{ConversionFailed, RetryMethod};
use lector_core::index::{ConversionIndex, IndexError, ListQuery};
use lector_core::ports::{Clock, ExecutionStatus, WorkflowError, Workflows};
use lector_core::service::{ExecuteError, execute};
use lector_core::{ConversionId, ConversionState, ConversionStatus, EventMeta, EventStore, FeedId};
use serde::Serialize;

use crate::steps::ConversionRef;

/// Step Functions keeps a failed execution redrivable for 14 days.
pub const REDRIVE_WINDOW_DAYS: i64 = 14;

/// Which failed conversions to look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only these (any state is looked at, so the reason for not replaying can be told).
    pub ids: Vec<ConversionId>,
    /// Failed at or after.
    pub since: Option<DateTime<Utc>>,
    /// Failed before.
    pub until: Option<DateTime<Utc>>,
    /// With this error name (`Lector.Transient`).
    pub error: Option<String>,
    pub feed: Option<FeedId>,
}

/// A conversion that may be replayed, as its own stream tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub conversion_id: ConversionId,
    pub title: Option<String>,
    pub state: ConversionState,
    pub failed_state: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub attempt: u32,
    pub redrives: u32,
    pub failed_at: Option<DateTime<Utc>>,
    pub execution_id: Option<String>,
}

impl From<&ConversionStatus> for Candidate {
    fn from(s: &ConversionStatus) -> Self {
        Self {
            conversion_id: s.conversion_id.clone(),
            title: s.title.clone(),
            state: s.state,
            failed_state: s.error.as_ref().map(|e| e.state.clone()),
            error: s.error.as_ref().map(|e| e.error.clone()),
            cause: s.error.as_ref().map(|e| e.cause.clone()),
            attempt: s.attempt,
            redrives: s.redrives,
            failed_at: s.error.as_ref().map(|e| e.at),
            execution_id: s.execution_id.clone(),
        }
    }
}

/// Why finding candidates failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Execute(#[from] ExecuteError),
}

async fn status_of(
    events: &dyn EventStore,
    id: &ConversionId,
) -> Result<Option<ConversionStatus>, ReplayError> {
    let stream = events.read_stream(&id.stream(), 0).await.map_err(ExecuteError::from)?;
    Ok(ConversionStatus::fold(&stream).map_err(ExecuteError::from)?)
}

/// The failed conversions the filter selects, oldest failure first. The list projection finds
/// them; each is then folded from its own stream, so what is shown is never stale.
pub async fn find_failed(
    index: &dyn ConversionIndex,
    events: &dyn EventStore,
    filter: &ReplayFilter,
) -> Result<Vec<Candidate>, ReplayError> {
    let mut statuses = Vec::new();
    if filter.ids.is_empty() {
        let mut cursor = None;
        loop {
            let query = ListQuery {
                feed_id: filter.feed.clone(),
                state: Some(ConversionState::Failed),
                limit: 100,
                cursor,
            };
            let page = index.list(&query).await?;
            for listed in page.conversions {
                if let Some(status) = status_of(events, &listed.conversion_id).await? {
                    statuses.push(status);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    } else {
        for id in &filter.ids {
            if let Some(status) = status_of(events, id).await? {
                statuses.push(status);
            }
        }
    }
    let mut found: Vec<Candidate> = statuses
        .iter()
        // Named conversions are kept whatever their state, so the answer can say why one is not
        // replayed; otherwise only failed ones (the list may lag behind the streams).
        .filter(|s| !filter.ids.is_empty() || s.state == ConversionState::Failed)
        .filter(|s| filter.feed.as_ref().is_none_or(|f| s.feed_id.as_ref() == Some(f)))
        .filter(|s| {
            let at = s.error.as_ref().map(|e| e.at);
            let at = at.unwrap_or(s.updated_at);
            filter.since.is_none_or(|since| at >= since) && filter.until.is_none_or(|until| at < until)
        })
        .filter(|s| {
            filter.error.as_ref().is_none_or(|name| s.error.as_ref().is_some_and(|e| e.error == *name))
        })
        .map(Candidate::from)
        .collect();
    found.sort_by_key(|c| (c.failed_at, c.conversion_id.clone()));
    Ok(found)
}

/// What a replay did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The execution was redriven or a new one started.
    Replayed { execution_id: String },
    /// Nothing was done (not failed, nothing to redrive, too old): `why` says what to do.
    Skipped { why: String },
    /// The replay was recorded but the workflow service refused it; the conversion is marked
    /// failed again with the reason.
    Failed { why: String },
}

/// Who replays, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub by: String,
    pub reason: Option<String>,
}

/// Replay one conversion with `how`.
pub async fn replay(
    events: &dyn EventStore,
    workflows: &dyn Workflows,
    clock: &dyn Clock,
    candidate: &Candidate,
    how: RetryMethod,
    operator: &Operator,
) -> Result<Outcome, ExecuteError> {
    let id = &candidate.conversion_id;
    if candidate.state != ConversionState::Failed {
        return Ok(Outcome::Skipped {
            why: format!("the conversion is {}, not failed", candidate.state.as_str()),
        });
    }
    let execution = match (how, &candidate.execution_id) {
        (RetryMethod::Redrive, None) => {
            return Ok(Outcome::Skipped {
                why: "no execution ran it, so there is none to redrive; use --restart".into(),
            });
        }
        (RetryMethod::Redrive, Some(execution)) => {
            match redrivable(workflows, execution, clock.now()).await {
                Ok(()) => Some(execution.clone()),
                Err(why) => return Ok(Outcome::Skipped { why }),
            }
        }
        (RetryMethod::Restart, _) => None,
    };
    let meta = EventMeta {
        occurred_at: clock.now(),
        correlation_id: id.to_string(),
        causation_id: Some(format!("replay by {}", operator.by)),
    };
    let retried = match execute(
        events,
        id,
        Command::Retry { how, by: operator.by.clone(), reason: operator.reason.clone() },
        &meta,
    )
    .await
    {
        Ok(done) => done,
        // Replayed by someone else since it was listed.
        Err(ExecuteError::Domain(DomainError::NotFailed { phase })) => {
            return Ok(Outcome::Skipped { why: format!("no longer failed ({phase:?})") });
        }
        Err(e) => return Err(e),
    };
    let (attempt, revision) = (retried.state.attempt, retried.state.revision);
    let acted = match execution {
        Some(execution) => workflows.redrive(&execution).await.map(|()| execution),
        None => {
            let name = id.revision_execution_name(revision, attempt);
            workflows.start(&name, &ConversionRef::workflow_input(id, attempt)).await
        }
    };
    match acted {
        Ok(execution_id) => Ok(Outcome::Replayed { execution_id }),
        Err(e) => {
            // The log says a replay happened; say too that it did not take, so the conversion
            // is failed again (and can be replayed once more) rather than stuck as running.
            let failure = ConversionFailed {
                attempt,
                state: match how {
                    RetryMethod::Redrive => "RedriveExecution".into(),
                    RetryMethod::Restart => "StartExecution".into(),
                },
                error: "Lector.ReplayRefused".into(),
                cause: e.to_string(),
            };
            execute(events, id, Command::Fail(failure), &meta).await?;
            Ok(Outcome::Failed { why: e.to_string() })
        }
    }
}

/// Whether the execution can be redriven now, or why not.
async fn redrivable(workflows: &dyn Workflows, execution: &str, now: DateTime<Utc>) -> Result<(), String> {
    let info = workflows.describe(execution).await.map_err(|e| match e {
        WorkflowError::NotFound(_) => "its execution no longer exists; use --restart".to_owned(),
        other => format!("cannot look at its execution: {other}"),
    })?;
    match info.status {
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {}
        other => return Err(format!("its execution is {other:?}, not failed")),
    }
    let stopped = info.stopped_at.unwrap_or(info.started_at);
    if now - stopped > Duration::days(REDRIVE_WINDOW_DAYS) {
        return Err(format!("its execution stopped more than {REDRIVE_WINDOW_DAYS} days ago; use --restart"));
    }
    Ok(())
}

//! Polls on demand on Step Functions: the `FeedPolls` port of `lector-core` starts the polling
//! state machine (`statemachines/poll-feeds.asl.json`, an Express workflow on AWS) for the
//! feeds a user asked to poll now, as the schedule starts it for the due ones.
//!
//! Each start has a name of its own (the time and a random part): runs are never repeated,
//! each polls what it is asked when it starts, and a poll that finds nothing new records
//! nothing new, so a second start for the same feed costs a fetch and nothing more.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use chrono::{DateTime, Utc};
use lector_core::FeedId;
use lector_core::ports::{FeedPolls, WorkflowError};
use rand::Rng;
use serde_json::json;

use crate::backoff::Backoff;
use crate::workflow;
use crate::workflows::port_error;

/// The polling state machine's ARN, in the functions' environment.
pub const POLL_STATE_MACHINE_VAR: &str = "LECTOR_POLL_STATE_MACHINE_ARN";

const RETRY: Backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2), attempts: 4 };

/// The most feeds one start names; the polling workflow's `Map` takes them a few at a time.
pub const MAX_FEEDS_PER_START: usize = 1_000;

/// A start's name: `now-<time to the microsecond>-<8 random hex digits>` (Step Functions
/// allows 80 characters of `[A-Za-z0-9_-]`).
pub fn execution_name(at: DateTime<Utc>) -> String {
    let random: u32 = rand::rng().random();
    format!("now-{}-{random:08x}", at.format("%Y%m%dT%H%M%S%6fZ"))
}

/// [`FeedPolls`] on the polling state machine.
#[derive(Debug, Clone)]
pub struct StepFunctionsPolls {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsPolls {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self { client, state_machine_arn: state_machine_arn.into() }
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

#[async_trait]
impl FeedPolls for StepFunctionsPolls {
    /// Start one run of the polling workflow for `feeds`, `{"feed_ids": [...]}`; returns the
    /// execution's ARN.
    async fn poll_now(&self, feeds: &[FeedId]) -> Result<String, WorkflowError> {
        if feeds.is_empty() {
            return Err(WorkflowError::Failed("no feed to poll".into()));
        }
        if feeds.len() > MAX_FEEDS_PER_START {
            return Err(WorkflowError::Failed(format!(
                "{} feeds asked for at once; at most {MAX_FEEDS_PER_START}",
                feeds.len()
            )));
        }
        let input = json!({ "feed_ids": feeds }).to_string();
        // A new name for each try: a start whose answer was lost may have started, and a
        // second run of the same feeds only fetches them again.
        RETRY
            .retry(
                || async {
                    let name = execution_name(Utc::now());
                    workflow::start_execution(&self.client, &self.state_machine_arn, &name, &input)
                        .await
                        .map(|out| out.execution_arn().to_owned())
                        .map_err(|e| workflow::error("StartExecution", &e))
                },
                workflow::WorkflowError::is_transient,
            )
            .await
            .map_err(port_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_names_are_valid_and_differ() {
        let at = DateTime::from_timestamp(1_764_000_000, 123_456_000).unwrap();
        let name = execution_name(at);
        assert!(name.starts_with("now-20251124T160000123456Z-"), "{name}");
        assert!(name.len() <= 80);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{name}");
        assert_ne!(execution_name(at), execution_name(at));
    }
}

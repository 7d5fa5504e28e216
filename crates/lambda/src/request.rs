//! `request-conversions`: the target of the bus rule on `PostDiscovered` and `PostChanged`.
//! Each event a poll of a subscribed feed appended is handed to
//! `lector_pipeline::poll::request_conversions` (the local outbox's rule calls the same
//! function), which submits the post: a new conversion, or the next revision of the converted
//! one, with the event as its causation.
//!
//! A submission is idempotent (a post, voice and engine make one conversion id, and the same
//! text makes no new revision), so a repeated delivery changes nothing. A failure is the
//! function's error: Lambda retries the asynchronous invocation, then sends the event to the
//! on-failure queue, whose depth is alarmed; EventBridge sends what it cannot deliver there too.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use lector_aws::{DynamoEventStore, S3ObjectStore};
use lector_core::{ErrorKind, RecordedEvent, StepError};
use lector_pipeline::poll::request_conversions;
use lector_pipeline::steps::StepPorts;
use lector_pipeline::submit::Outcome;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::config::{Env, StepConfig, function_name};
use crate::diagnostic::StepFailure;
use crate::metrics::Metrics;
use crate::settings::SystemClock;
use crate::voice::NoVoice;

/// The function's name (`functions/request-conversions`).
pub const FUNCTION: &str = "request-conversions";

/// The parts of an EventBridge event the function reads; `detail` is the envelope the
/// `publish-events` function put on the bus.
#[derive(Debug, Deserialize)]
struct BusEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Revised { .. } => "revised",
        Outcome::Unchanged => "unchanged",
    }
}

/// Submit the post a bus event found. Answers with the conversion and what the submission did,
/// or `null` when the event asks for nothing (another type, or a post the subscription does not
/// convert).
pub async fn handle(ports: &StepPorts, metrics: &Metrics, event: Value) -> Result<Value, StepFailure> {
    metrics.cold_start();
    let invalid = |what: &str, e: serde_json::Error| {
        StepFailure(StepError::new(ErrorKind::InvalidInput, format!("{what} is not a Lector bus event: {e}")))
    };
    let bus: BusEvent = serde_json::from_value(event).map_err(|e| invalid("the event", e))?;
    let recorded: RecordedEvent = serde_json::from_value(bus.detail).map_err(|e| invalid("the detail", e))?;
    if recorded.event_type != bus.detail_type {
        return Err(StepFailure(StepError::new(
            ErrorKind::InvalidInput,
            format!(
                "detail-type {} does not match the event's type {}",
                bus.detail_type, recorded.event_type
            ),
        )));
    }
    let span =
        tracing::info_span!("request", feed_id = %recorded.correlation_id, event_id = %recorded.event_id);
    async {
        match request_conversions(ports, &recorded).await {
            Ok(Some(submitted)) => {
                let outcome = outcome_name(submitted.outcome);
                metrics.conversion_requested(outcome);
                tracing::info!(conversion_id = %submitted.conversion_id, outcome, "post submitted");
                Ok(json!({ "conversion_id": submitted.conversion_id, "outcome": outcome }))
            }
            Ok(None) => {
                tracing::info!(event_type = %recorded.event_type, "nothing to convert");
                Ok(Value::Null)
            }
            Err(e) => {
                tracing::error!(error = e.name(), cause = %e.cause, "the post was not submitted");
                Err(StepFailure(e))
            }
        }
    }
    .instrument(span)
    .await
}

/// Run `request-conversions` as this Lambda function: the event log and the bucket (a post's
/// text as the feed carried it is read from `feeds/` and stored with the conversion).
pub async fn run() -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let config = StepConfig::from_env(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let ports = StepPorts {
        events: Arc::new(DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table)),
        objects: Arc::new(S3ObjectStore::new(aws_sdk_s3::Client::new(&sdk), config.bucket)),
        voice: Arc::new(NoVoice { function: FUNCTION }),
        fetcher: None,
        clock: Arc::new(SystemClock),
        feeds: None,
        websub: None,
        folded_feeds: Default::default(),
    };
    let metrics = Metrics::stdout(config.namespace, function_name(&env, FUNCTION));
    let (ports, metrics) = (&ports, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(ports, metrics, event.payload).await
    }))
    .await
}

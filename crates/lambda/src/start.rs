//! `start-conversion`: the target of the bus rule on `ConversionRequested` and
//! `ConversionRevisionRequested`. An EventBridge target cannot name a Step Functions execution,
//! and the name `<conversion id>-<attempt>` (`-r<revision>-` for later revisions) is
//! what makes a repeated delivery start nothing; so the rule invokes this function, which
//! starts the execution through `lector_pipeline::steps::start_requested` (the local outbox's
//! rule calls the same function).
//!
//! A failure is the function's error: Lambda retries the asynchronous invocation, then sends the
//! event to the on-failure queue, whose depth is alarmed.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use lector_aws::StepFunctions;
use lector_core::ports::Workflows;
use lector_core::{ErrorKind, RecordedEvent, StepError};
use lector_pipeline::steps::start_requested;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::config::{Env, StartConfig, function_name};
use crate::diagnostic::StepFailure;
use crate::metrics::Metrics;

/// The function's name (`functions/start-conversion`).
pub const FUNCTION: &str = "start-conversion";

/// The parts of an EventBridge event the function reads; `detail` is the envelope the
/// `publish-events` function put on the bus.
#[derive(Debug, Deserialize)]
struct BusEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

/// Start the workflow of the conversion a bus event requests. Answers with the execution
/// started, or `null` when the event starts nothing (another type, or an attempt already
/// started).
pub async fn handle(
    workflows: &dyn Workflows,
    metrics: &Metrics,
    event: Value,
) -> Result<Value, StepFailure> {
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
        tracing::info_span!("start", conversion_id = %recorded.correlation_id, event_id = %recorded.event_id);
    async {
        match start_requested(workflows, &recorded).await {
            Ok(Some(execution)) => {
                metrics.conversion_started();
                tracing::info!(%execution, "workflow started");
                Ok(json!({ "execution": execution }))
            }
            Ok(None) => {
                tracing::info!(event_type = %recorded.event_type, "nothing to start");
                Ok(json!({ "execution": null }))
            }
            Err(e) => {
                tracing::error!(error = e.name(), cause = %e.cause, "the workflow was not started");
                Err(StepFailure(e))
            }
        }
    }
    .instrument(span)
    .await
}

/// Run `start-conversion` as this Lambda function.
pub async fn run() -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let config = StartConfig::from_env(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let workflows: Arc<dyn Workflows> =
        Arc::new(StepFunctions::new(aws_sdk_sfn::Client::new(&sdk), config.state_machine_arn));
    let metrics = Metrics::stdout(config.namespace, function_name(&env, FUNCTION));
    let (workflows, metrics) = (&*workflows, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(workflows, metrics, event.payload).await
    }))
    .await
}

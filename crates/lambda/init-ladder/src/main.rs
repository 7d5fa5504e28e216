//! Init up to a step of [`STEPS`], then serve as the hello-world function does. Run once per
//! step, against the hello-world function in the same rounds (`lambda_init`), it prices each
//! piece of a Lector function's init: the larger binary, the JSON logs, the SDK config, and each
//! SDK client (every service crate parses its own copy of the endpoint partitions).

use std::any::Any;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use lector_lambda::init_ladder::{CLIENTS_VAR, Client, STEP_VAR, Step};

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Ok(list) = std::env::var(CLIENTS_VAR) {
        return hello_with_clients(&Client::parse_list(&list)?).await;
    }
    let last = Step::from_env(std::env::var(STEP_VAR).ok().as_deref())?;
    if last >= Step::Telemetry {
        lector_lambda::telemetry::init();
    }
    // Kept alive for the function's life, as a function keeps its clients.
    let mut kept: Vec<Box<dyn Any + Send + Sync>> = Vec::new();
    if last >= Step::SdkConfig {
        let sdk = lector_aws::sdk::load_in_lambda().await;
        if last >= Step::DynamoDb {
            kept.push(Box::new(aws_sdk_dynamodb::Client::new(&sdk)));
        }
        if last >= Step::S3 {
            kept.push(Box::new(aws_sdk_s3::Client::new(&sdk)));
        }
        if last >= Step::Ssm {
            kept.push(Box::new(aws_sdk_ssm::Client::new(&sdk)));
        }
        if last >= Step::Polly {
            kept.push(Box::new(aws_sdk_polly::Client::new(&sdk)));
        }
        kept.push(Box::new(sdk));
    }
    let held = kept.len();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(serde_json::json!({ "held": held, "event": event.payload }))
    }))
    .await
}

/// The hello-world function with SDK clients: the functions' SDK config and the clients listed,
/// and nothing of Lector's (no logs, no settings, no handler state).
async fn hello_with_clients(clients: &[Client]) -> Result<(), Error> {
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let mut kept: Vec<Box<dyn Any + Send + Sync>> = Vec::new();
    for client in clients {
        kept.push(match client {
            Client::DynamoDb => Box::new(aws_sdk_dynamodb::Client::new(&sdk)),
            Client::S3 => Box::new(aws_sdk_s3::Client::new(&sdk)),
            Client::Ssm => Box::new(aws_sdk_ssm::Client::new(&sdk)),
            Client::Polly => Box::new(aws_sdk_polly::Client::new(&sdk)),
            Client::EventBridge => Box::new(aws_sdk_eventbridge::Client::new(&sdk)),
            Client::StepFunctions => Box::new(aws_sdk_sfn::Client::new(&sdk)),
        });
    }
    kept.push(Box::new(sdk));
    let held = kept.len();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(serde_json::json!({ "held": held, "event": event.payload }))
    }))
    .await
}

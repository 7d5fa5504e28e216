//! The `publish-events` Lambda: wires EventBridge into `lector_aws::publish::handle`.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lector_aws::EventBridgePublisher;
use lector_aws::settings::{BUS_VAR, require_env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lector_lambda::telemetry::init();
    let bus = require_env(BUS_VAR).map_err(|e| e.to_string())?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus);
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, Error>(lector_aws::publish::handle(publisher, event.payload).await)
    }))
    .await
}

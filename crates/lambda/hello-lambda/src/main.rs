//! A hello-world Lambda function: echoes its event. The baseline of the init-time benchmark.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(json!({ "hello": event.payload }))
    }))
    .await
}

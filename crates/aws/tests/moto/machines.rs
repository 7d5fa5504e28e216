//! State machines on moto for the Step Functions tests: created with a dummy role, one that
//! fails at once and one that waits, and conversion ids to name their executions.

use lector_aws::StepFunctions;
use lector_core::ConversionId;
use lector_testkit::services::{moto_config, unique_name};
use serde_json::json;

use crate::capture::Capture;

const ROLE: &str = "arn:aws:iam::123456789012:role/lector-workflow";

/// A new state machine running `definition`, its client recording requests into `capture`.
pub async fn state_machine(definition: serde_json::Value, capture: Option<Capture>) -> StepFunctions {
    let mut config = aws_sdk_sfn::config::Builder::from(&moto_config().await);
    if let Some(capture) = capture {
        config = config.interceptor(capture);
    }
    let client = aws_sdk_sfn::Client::from_conf(config.build());
    // moto makes a region's Step Functions backend on the first request that needs it; two
    // tests' first requests at once can each make one, and the machine created in the backend
    // that is replaced is lost ("State Machine Does Not Exist" on the next call). One request
    // made before any test creates a machine makes the backend once.
    static BACKEND: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BACKEND
        .get_or_init(|| async {
            client.list_state_machines().send().await.expect("moto answers ListStateMachines");
        })
        .await;
    let created = client
        .create_state_machine()
        .name(unique_name("conversion"))
        .definition(definition.to_string())
        .role_arn(ROLE)
        .send()
        .await
        .expect("the state machine is created");
    StepFunctions::new(client, created.state_machine_arn())
}

/// Fails with `Lector.NotFound`, cause "the post is gone".
pub fn failing() -> serde_json::Value {
    json!({"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Lector.NotFound", "Cause": "the post is gone"}}})
}

/// Waits ten minutes: an execution that stays running through a test.
pub fn waiting() -> serde_json::Value {
    json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": true}}})
}

/// The `n`th conversion id of a test.
pub fn conversion(n: u8) -> ConversionId {
    format!("{n:020x}").parse().expect("a conversion id")
}

//! The built `publish-events` binary against a local Lambda runtime API: the wiring of
//! `main.rs` and the response's wire shape, as Lambda reads it.

use std::process::Stdio;
use std::time::Duration;

use lector_lambda::runtime_api::{Call, RuntimeApi, lambda_env};
use serde_json::json;

fn function(runtime_api: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_publish-events"));
    cmd.env_clear()
        .envs(lambda_env(runtime_api, "publish-events"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn a_poison_batch_is_answered_with_its_batch_item_failure() {
    let poison = json!({
        "Records": [{
            "eventID": "1",
            "eventName": "INSERT",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "NewImage": {"stream_id": {"S": "conversion-x"}, "version": {"S": "damaged"}},
                "SequenceNumber": "4200000000000000000001",
                "SizeBytes": 60
            }
        }]
    });
    let mut api = RuntimeApi::start(vec![poison]).await.expect("the runtime API listens");
    let mut child =
        function(&api.address).env("LECTOR_EVENT_BUS", "lector").spawn().expect("the function starts");
    let answer =
        api.next_answer(Duration::from_secs(60)).await.expect("the function answered within a minute");
    let _ = child.kill().await;
    assert_eq!(
        answer,
        Call::Response {
            request_id: "req-1".into(),
            body: json!({"batchItemFailures": [{"itemIdentifier": "4200000000000000000001"}]})
        }
    );
}

#[tokio::test]
async fn a_missing_bus_name_stops_the_function_naming_the_variable() {
    let api = RuntimeApi::start(vec![json!({"Records": []})]).await.expect("the runtime API listens");
    let out = tokio::time::timeout(Duration::from_secs(60), function(&api.address).output())
        .await
        .expect("the function exits")
        .expect("the function ran");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LECTOR_EVENT_BUS"), "stderr: {stderr}");
}

/// `functions/build.rs` links every function position-dependent: an ELF `ET_EXEC`, which the
/// loader does not relocate at start, not the `ET_DYN` of a position-independent executable.
#[cfg(target_os = "linux")]
#[test]
fn the_bootstrap_is_a_position_dependent_executable() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_publish-events")).expect("the binary is readable");
    assert_eq!(&elf[..4], b"\x7fELF");
    let e_type = u16::from_le_bytes([elf[16], elf[17]]);
    assert_eq!(e_type, 2, "ET_EXEC (2), not ET_DYN (3)");
}

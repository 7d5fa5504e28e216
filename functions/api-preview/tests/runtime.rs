//! The built `api-preview` binary with the environment `template.yaml` gives it: its wiring
//! asks for no variable the template does not set, so the function gets through init on AWS.

use std::process::Stdio;
use std::time::Duration;

use lector_lambda::runtime_api::{Call, RuntimeApi, closed_endpoint, lambda_env};

/// The names of the variables the template gives `ApiPreviewFunction`: the globals' and its own.
fn template_variables() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    let template: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let variables = |function: &serde_norway::Value| -> Vec<String> {
        function["Environment"]["Variables"]
            .as_mapping()
            .map(|vars| vars.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let mut names = variables(&template["Globals"]["Function"]);
    names.extend(variables(&template["Resources"]["ApiPreviewFunction"]["Properties"]));
    names
}

#[tokio::test]
async fn the_template_environment_is_enough_to_get_through_init() {
    let names = template_variables();
    assert!(names.iter().any(|n| n == "LECTOR_INDEX_TABLE"), "the template's variables: {names:?}");
    let endpoint = closed_endpoint().expect("a loopback address");
    let mut api = RuntimeApi::start(Vec::new()).await.expect("the runtime API listens");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-preview"))
        .env_clear()
        .envs(lambda_env(&api.address, "api-preview"))
        .envs(names.iter().map(|name| (name.as_str(), "https://listen.example/")))
        // Nothing is called at init; were anything, it would fail here at once.
        .env("AWS_ENDPOINT_URL", &endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the function starts");
    let first = api
        .first_call(&mut child, Duration::from_secs(60))
        .await
        .unwrap_or_else(|why| panic!("api-preview stopped at init: it {why}"));
    let _ = child.kill().await;
    assert!(matches!(first, Some(Call::Next(_))), "api-preview asked for no event: {first:?}");
}

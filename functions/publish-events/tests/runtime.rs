//! The built `publish-events` binary against a local Lambda runtime API: the wiring of
//! `main.rs` and the response's wire shape, as Lambda reads it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One HTTP/1.1 request off a kept-alive connection: method, path, body.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((method, path, body))
}

/// Serves `event` once on `/next`, then holds further `/next` calls open; sends every posted
/// response or error (path, body) to the channel.
async fn runtime_api(event: Value) -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut served = false;
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            let event = event.clone();
            let first = !served;
            served = true;
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut gave_event = !first;
                while let Some((method, path, body)) = read_request(&mut reader).await {
                    let reply = if method == "GET" && path.ends_with("/invocation/next") {
                        if gave_event {
                            // The function waits for its next event; the test ends first.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        gave_event = true;
                        let body = event.to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                             Lambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:publish-events\r\n\
                             Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send((path, value));
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_owned()
                    };
                    if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), rx)
}

fn function(runtime_api: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_publish-events"));
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "publish-events")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
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
    let (addr, mut posted) = runtime_api(poison).await;
    let mut child = function(&addr).env("LECTOR_EVENT_BUS", "lector").spawn().expect("the function starts");
    let (path, body) = tokio::time::timeout(Duration::from_secs(60), posted.recv())
        .await
        .expect("the function answered within a minute")
        .expect("an answer");
    let _ = child.kill().await;
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/response");
    assert_eq!(body, json!({"batchItemFailures": [{"itemIdentifier": "4200000000000000000001"}]}));
}

#[tokio::test]
async fn a_missing_bus_name_stops_the_function_naming_the_variable() {
    let (addr, _posted) = runtime_api(json!({"Records": []})).await;
    let out = tokio::time::timeout(Duration::from_secs(60), function(&addr).output())
        .await
        .expect("the function exits")
        .expect("the function ran");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LECTOR_EVENT_BUS"), "stderr: {stderr}");
}

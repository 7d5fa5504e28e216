//! A stub of Lambda's Runtime API on loopback, for driving a built function binary in tests
//! and for timing its init in the benchmark: it hands out queued events on
//! `GET /2018-06-01/runtime/invocation/next` (holding the call open once the queue is empty, as
//! Lambda does between invocations), and reports every `/next` call and every posted response
//! or error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the function did, in the order it did it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `GET .../invocation/next`, at this instant.
    Next(Instant),
    /// `POST .../invocation/<id>/response` with this body.
    Response { request_id: String, body: Value },
    /// `POST .../invocation/<id>/error` with this body (`errorType`, `errorMessage`).
    Error { request_id: String, body: Value },
    /// `POST .../init/error`.
    InitError(Value),
}

/// A running stub. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    calls: mpsc::UnboundedReceiver<Call>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Queue = Arc<Mutex<VecDeque<(String, Value)>>>;

/// A loopback address nothing listens on: pointed at it (`AWS_ENDPOINT_URL`), an SDK call a
/// function makes at init fails at once instead of reaching AWS, and shows.
pub fn closed_endpoint() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    drop(listener);
    Ok(format!("http://{address}"))
}

impl RuntimeApi {
    /// Serve `events` in order, each under request id `req-<n>` (from 1).
    pub async fn start(events: Vec<Value>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let queue: Queue = Arc::new(Mutex::new(
            events.into_iter().enumerate().map(|(i, e)| (format!("req-{}", i + 1), e)).collect(),
        ));
        let (tx, calls) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(serve(stream, queue.clone(), tx.clone()));
            }
        });
        Ok(Self { address, calls, task })
    }

    /// The next call, or `None` when none came within `patience`.
    pub async fn next_call(&mut self, patience: Duration) -> Option<Call> {
        tokio::time::timeout(patience, self.calls.recv()).await.ok().flatten()
    }

    /// The first call `function` makes within `patience` (`None` when it makes none), or, when
    /// it exits first, an error with its status and whatever it wrote: why it stopped at init.
    /// `function`'s stdout and stderr must be piped.
    pub async fn first_call(
        &mut self,
        function: &mut tokio::process::Child,
        patience: Duration,
    ) -> Result<Option<Call>, String> {
        tokio::select! {
            call = self.next_call(patience) => Ok(call),
            status = function.wait() => {
                let mut written = Vec::new();
                if let Some(mut out) = function.stdout.take() {
                    let _ = out.read_to_end(&mut written).await;
                }
                if let Some(mut err) = function.stderr.take() {
                    let _ = err.read_to_end(&mut written).await;
                }
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(format!("exited ({status}) before asking for an event:\n{}", String::from_utf8_lossy(&written)))
            }
        }
    }

    /// The next response or error posted within `patience`, skipping `/next` calls.
    pub async fn next_answer(&mut self, patience: Duration) -> Option<Call> {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.next_call(left).await? {
                Call::Next(_) => continue,
                answer => return Some(answer),
            }
        }
    }
}

/// One HTTP/1.1 request: method, path, body.
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

async fn serve(stream: TcpStream, queue: Queue, tx: mpsc::UnboundedSender<Call>) {
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader).await {
        let reply = if method == "GET" && path.ends_with("/invocation/next") {
            let _ = tx.send(Call::Next(Instant::now()));
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some((request_id, event)) = next else {
                // Nothing more to invoke: hold the call, as Lambda does until the next event.
                std::future::pending::<()>().await;
                return;
            };
            let body = event.to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {request_id}\r\n\
                 Lambda-Runtime-Deadline-Ms: 4102444800000\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:lector\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let segments: Vec<&str> = path.trim_end_matches('/').rsplit('/').collect();
            let call = match segments.as_slice() {
                ["response", id, ..] => Call::Response { request_id: (*id).to_owned(), body: value },
                ["error", "init", ..] => Call::InitError(value),
                ["error", id, ..] => Call::Error { request_id: (*id).to_owned(), body: value },
                _ => Call::InitError(Value::String(format!("unexpected {method} {path}"))),
            };
            let _ = tx.send(call);
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n"
                .to_owned()
        };
        if reader.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The environment Lambda gives every function, pointed at `runtime_api`; add the function's
/// own variables to it.
pub fn lambda_env(runtime_api: &str, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn send(address: &str, request: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn events_go_out_in_order_and_answers_come_back() {
        let mut api = RuntimeApi::start(vec![json!({"n": 1})]).await.unwrap();
        let reply =
            send(&api.address, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(reply.contains("Lambda-Runtime-Aws-Request-Id: req-1"), "{reply}");
        assert!(reply.ends_with(r#"{"n":1}"#), "{reply}");
        let body = r#"{"errorType":"Lector.NotFound","errorMessage":"gone"}"#;
        let post = format!(
            "POST /2018-06-01/runtime/invocation/req-1/error HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert!(send(&api.address, &post).await.starts_with("HTTP/1.1 202"));
        assert!(matches!(api.next_call(Duration::from_secs(5)).await, Some(Call::Next(_))));
        assert_eq!(
            api.next_answer(Duration::from_secs(5)).await,
            Some(Call::Error {
                request_id: "req-1".into(),
                body: json!({"errorType": "Lector.NotFound", "errorMessage": "gone"})
            })
        );
    }
}

//! Real services for tests: DynamoDB Local and moto server, started once per test process on
//! free loopback ports, and SDK configs pointed at them.
//!
//! Each service starts lazily, the first time a test of the binary asks for it, and is shared
//! by every test of that binary. It runs under a small shell watchdog that kills it once the
//! test process is gone, however the process ended (a panic, a kill, a timeout), so no `java`
//! is left behind. The tools come from `scripts/tools.sh`; when one is not installed the test
//! fails with a message naming that script, it is never skipped.
//!
//! Tests share one moto and one DynamoDB Local, so every test makes its own resources with
//! [`unique_name`]; [`moto_reset`] wipes moto for everyone and is only for binaries whose tests
//! run one at a time.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A service running for the rest of the test process.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    /// Where the service's own output goes, for diagnosing a failed start.
    pub log: PathBuf,
    /// The watchdog shell that runs the service; it ends with the test process.
    watchdog: std::process::Child,
}

impl Service {
    /// The watchdog's process id (the service is its child).
    pub fn pid(&self) -> u32 {
        self.watchdog.id()
    }
}

/// The workspace root: `crates/testkit` is two levels below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default()
}

/// The folder `scripts/tools.sh` installs into.
pub fn tools_dir() -> PathBuf {
    workspace_root().join(".tools")
}

fn not_installed(tool: &str, missing: &Path) -> ! {
    panic!(
        "{tool} is not installed ({} is missing). Run `scripts/tools.sh {tool}` from the workspace root \
         ({}): it installs it into .tools/ and says what the machine lacks, if anything.",
        missing.display(),
        workspace_root().display()
    )
}

/// DynamoDB Local, in memory.
pub fn dynamodb_local() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let dir = tools_dir().join("dynamodb-local/current");
        let jar = dir.join("DynamoDBLocal.jar");
        if !jar.is_file() {
            not_installed("dynamodb-local", &jar);
        }
        start("dynamodb-local", Duration::from_secs(60), |port| {
            let mut cmd = Command::new("java");
            cmd.current_dir(&dir)
                .arg("-Xmx512m")
                .arg("-Djava.library.path=./DynamoDBLocal_lib")
                .arg("-jar")
                .arg("DynamoDBLocal.jar")
                .arg("-inMemory")
                .arg("-port")
                .arg(port.to_string());
            cmd
        })
    })
}

/// moto server (EventBridge, SQS, S3, Polly, Step Functions, SSM, ...).
pub fn moto() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let bin = tools_dir().join("venv/bin/moto_server");
        if !bin.is_file() {
            not_installed("moto", &bin);
        }
        start("moto", Duration::from_secs(60), |port| {
            let mut cmd = Command::new(&bin);
            cmd.arg("-H").arg("127.0.0.1").arg("-p").arg(port.to_string());
            cmd
        })
    })
}

/// Start `command(port)` on a free port under the watchdog and wait until it answers HTTP.
fn start(name: &'static str, patience: Duration, command: impl Fn(u16) -> Command) -> Service {
    let mut last_error = String::new();
    // A port found free can be taken before the service binds it: try a few.
    for _ in 0..3 {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("lector-{name}-{}-{port}.log", std::process::id()));
        let inner = command(port);
        let mut cmd = watched(&inner);
        let out =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("cannot reuse {}: {e}", log.display()));
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let deadline = Instant::now() + patience;
        loop {
            if answers_http(port) {
                let endpoint = format!("http://127.0.0.1:{port}");
                return Service { name, endpoint, port, log, watchdog: child };
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("{name} exited with {status}: {}", tail(&log));
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                last_error =
                    format!("{name} did not answer on port {port} within {patience:?}: {}", tail(&log));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("{last_error}")
}

/// `inner` run by a shell that watches the test process: when the test process is gone, the
/// service is terminated, then killed. The shell forwards nothing else, so the service's output
/// still goes where the returned command's does.
fn watched(inner: &Command) -> Command {
    let mut cmd = Command::new("sh");
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    let script = r#"
parent="$1"; shift
"$@" &
child=$!
trap 'kill "$child" 2>/dev/null; exit 0' TERM INT HUP
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill "$child" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child" 2>/dev/null || exit 0; sleep 0.2; done
kill -9 "$child" 2>/dev/null
"#;
    cmd.arg("-c").arg(script).arg("lector-service-watchdog").arg(std::process::id().to_string());
    cmd.arg(inner.get_program());
    cmd.args(inner.get_args());
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Whether something on `port` answers an HTTP request (any status: both services refuse an
/// unsigned `GET /`, which still proves they are serving).
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    format!("last lines of {}:\n{}", log.display(), lines[start..].join("\n"))
}

/// A name no other test of any process uses: `prefix-<pid>-<n>-<time>`, lowercase letters,
/// digits and dashes, at most 63 characters (fits tables, buses, queues and buckets).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(30)
        .collect();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Wipe every resource moto holds, for every test sharing it.
pub fn moto_reset() {
    http_post(moto(), "/moto-api/reset", "");
}

/// Let moto's Step Functions run state machine definitions (Lambda tasks return canned
/// results; no Docker).
pub fn moto_execute_state_machines() {
    http_post(
        moto(),
        "/moto-api/config",
        r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
    );
}

fn http_post(service: &Service, path: &str, body: &str) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, service.port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{} does not answer: {e}", service.name));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("POST {path} to {}: {e}", service.name));
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let ok = response.split(' ').nth(1).is_some_and(|status| status.starts_with('2'));
    assert!(ok, "POST {path} to {} answered: {}", service.name, response.lines().next().unwrap_or(""));
}

#[cfg(feature = "aws")]
pub use sdk::*;

/// SDK configs pointed at the services: region us-east-1, dummy static credentials.
#[cfg(feature = "aws")]
mod sdk {
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    use super::{Service, dynamodb_local, moto};

    /// The region every emulator is used in.
    pub const REGION: &str = "us-east-1";

    /// An SDK config for `service`'s endpoint.
    pub async fn sdk_config(service: &Service) -> SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "lector-testkit");
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(credentials)
            .endpoint_url(&service.endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .load()
            .await
    }

    /// DynamoDB Local's config.
    pub async fn dynamodb_config() -> SdkConfig {
        let service = dynamodb_local();
        sdk_config(service).await
    }

    /// moto's config, for every service but S3 (see [`s3_config`]).
    pub async fn moto_config() -> SdkConfig {
        sdk_config(moto()).await
    }

    /// moto's S3 config: path-style addressing, since `bucket.127.0.0.1` does not resolve.
    pub async fn s3_config() -> aws_sdk_s3::Config {
        aws_sdk_s3::config::Builder::from(&moto_config().await).force_path_style(true).build()
    }

    /// A subscriber on moto: a new SQS queue that a new rule on `bus` fills with every event
    /// matching `pattern`, as another team's queue would be. Returns the queue's URL and the
    /// rule's name.
    pub async fn subscriber_queue(
        eventbridge: &aws_sdk_eventbridge::Client,
        sqs: &aws_sdk_sqs::Client,
        bus: &str,
        pattern: &str,
    ) -> (String, String) {
        use aws_sdk_eventbridge::types::Target;
        use aws_sdk_sqs::types::QueueAttributeName;

        let queue_url = sqs
            .create_queue()
            .queue_name(super::unique_name("subscriber"))
            .send()
            .await
            .expect("the queue is created")
            .queue_url()
            .expect("a queue URL")
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's attributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .expect("a queue ARN");
        let rule = super::unique_name("subscriber");
        eventbridge
            .put_rule()
            .name(&rule)
            .event_bus_name(bus)
            .event_pattern(pattern)
            .send()
            .await
            .expect("the rule is created");
        let target = Target::builder().id("queue").arn(queue_arn).build().expect("a target");
        eventbridge
            .put_targets()
            .rule(&rule)
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .expect("the target is set");
        (queue_url, rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_unique_and_fit_every_service() {
        let a = unique_name("Events_Table");
        let b = unique_name("Events_Table");
        assert_ne!(a, b);
        assert!(a.starts_with("events-table-"));
        assert!(a.len() <= 63, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{a}");
    }

    #[test]
    fn the_workspace_root_holds_the_tools_script() {
        assert!(workspace_root().join("scripts/tools.sh").is_file());
    }
}

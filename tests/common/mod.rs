//! Driving the `lector` binary the way a user does, with a fresh data folder per test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use lector_core::EventStore;
use serde_json::Value;

/// A `lector` with its own data and output folders; loopback may be fetched.
pub struct Lector {
    pub dir: tempfile::TempDir,
}

impl Lector {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temporary folder") }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lector"));
        command
            .args(args)
            .env("LECTOR_DATA", self.data())
            .env("LECTOR_ALLOW_HOSTS", "127.0.0.1")
            .env_remove("RUST_LOG");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("lector runs")
    }

    /// `lector convert ARGS --json --out OUT`, each line parsed.
    pub fn convert_json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.out();
        let mut all: Vec<&str> = vec!["convert"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--json", "--out", out.to_str().unwrap()]);
        let run = self.run(&all);
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\nstderr: {stderr}"))
            })
            .collect();
        assert!(!lines.is_empty(), "convert printed nothing; status {:?}\nstderr: {stderr}", run.status);
        lines
    }

    /// `lector events ID --json`.
    pub fn events(&self, id: &str) -> Vec<Value> {
        let run = self.run(&["events", id, "--json"]);
        assert!(run.status.success(), "lector events {id}: {}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// `lector status ID --json`.
    pub fn status(&self, id: &str) -> Value {
        let run = self.run(&["status", id, "--json"]);
        assert!(run.status.success(), "lector status {id}: {}", String::from_utf8_lossy(&run.stderr));
        serde_json::from_slice(&run.stdout).unwrap()
    }

    /// A stored object's bytes.
    pub fn object(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.data().join("objects").join(key)).unwrap_or_else(|e| panic!("object {key}: {e}"))
    }

    /// Every event of the conversion's stream is valid against the published schemas.
    pub fn assert_events_match_schemas(&self, id: &str) {
        let db = lector_local::db::Db::open(self.data().join("lector.sqlite")).unwrap();
        let store: Arc<dyn EventStore> = Arc::new(lector_local::event_store::SqliteEventStore::new(db));
        let id: lector_core::ConversionId = id.parse().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let events = rt.block_on(store.read_stream(&id.stream(), 0)).unwrap();
        assert!(!events.is_empty());
        for event in &events {
            lector_testkit::schema::assert_valid_event(event);
        }
    }
}

/// The length of an MP3 file, decoded.
pub fn decode_mp3_seconds(path: &Path) -> f64 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lector_testkit::audio::decode_mp3(&bytes).seconds()
}

/// An RSS 2.0 feed of `items`.
pub fn rss(title: &str, items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>{title}</title>\
         <link>http://127.0.0.1/</link><description>test feed</description>{}</channel></rss>",
        items.concat()
    )
}

/// One RSS item, with its whole content when `content_html` is given.
pub fn rss_item(title: &str, link: &str, content_html: Option<&str>) -> String {
    let content = content_html
        .map(|c| format!("<content:encoded><![CDATA[{c}]]></content:encoded>"))
        .unwrap_or_default();
    format!("<item><title>{title}</title><link>{link}</link><guid>{link}</guid>{content}</item>")
}

/// An `espeak-ng` placed first on `PATH` that records every synthesis (a hash of its input, one
/// line each) and, while an outage file exists, dies by a signal instead of speaking (for text
/// holding a marker word, when a marker is set), as a crashed voice process does; while a slow
/// file exists, each synthesis first waits half a second.
pub struct Outage {
    dir: tempfile::TempDir,
}

impl Outage {
    pub fn new(marker: Option<&str>) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = which("espeak-ng");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = format!(
            r#"#!/bin/sh
# Listing voices and versions goes to the real program.
case "$1" in --voices|--version) exec "{real}" "$@";; esac
input=$(cat)
printf '%s\n' "$input" | md5sum | cut -c1-32 >> "{log}"
if [ -e "{slow}" ]; then sleep 0.5; fi
if [ -e "{outage}" ] && {{ [ -z "{marker}" ] || printf '%s' "$input" | grep -q "{marker}"; }}; then
    kill -9 $$
fi
printf '%s' "$input" | exec "{real}" "$@"
"#,
            real = real.display(),
            log = dir.path().join("syntheses.log").display(),
            outage = dir.path().join("outage").display(),
            slow = dir.path().join("slow").display(),
            marker = marker.unwrap_or(""),
        );
        let path = bin.join("espeak-ng");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    pub fn start(&self) {
        std::fs::write(self.dir.path().join("outage"), "").unwrap();
    }

    pub fn end(&self) {
        std::fs::remove_file(self.dir.path().join("outage")).unwrap();
    }

    /// Every synthesis waits half a second from now on (or no longer, with `false`).
    pub fn slow(&self, slow: bool) {
        let file = self.dir.path().join("slow");
        if slow {
            std::fs::write(file, "").unwrap();
        } else {
            let _ = std::fs::remove_file(file);
        }
    }

    /// The syntheses asked for so far, in order, by a hash of their input.
    pub fn syntheses(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("syntheses.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }
}

pub fn which(program: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed (scripts/tools.sh installs it)"))
}

/// A `lector serve` child process on a free loopback port, killed when dropped.
pub struct Serve {
    pub child: std::process::Child,
    pub url: String,
}

impl Serve {
    /// Start `lector serve --addr 127.0.0.1:0` on `lector`'s data folder, with extra env.
    pub fn start(lector: &Lector, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut command = lector.command(&["serve", "--addr", "127.0.0.1:0"]);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("lector serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("serve prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Self { url: url.to_owned(), child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("serve exits");
        std::mem::forget(self);
        status
    }

    /// SIGKILL: the process dies at once, with no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP client for the API: each call returns the status, the headers and the body.
pub struct Http {
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        }
    }

    pub fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.rt.block_on(async {
            let response = request.send().await.expect("the request is answered");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.expect("a body").to_vec();
            Answer { status, headers, body }
        })
    }

    pub fn get(&self, url: &str) -> Answer {
        self.send(self.client.get(url))
    }

    pub fn patch_json(&self, url: &str, body: &Value) -> Answer {
        self.send(self.client.patch(url).header("content-type", "application/json").body(body.to_string()))
    }

    pub fn delete(&self, url: &str) -> Answer {
        self.send(self.client.delete(url))
    }

    pub fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request)
    }

    pub fn post_json(&self, url: &str, body: &Value) -> Answer {
        self.post_raw(url, &body.to_string(), &[])
    }

    pub fn post_raw(&self, url: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.post(url).body(body.to_owned());
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            request = request.header("content-type", "application/json");
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request)
    }

    /// Poll a conversion until it is completed or failed.
    pub fn wait_final(&self, status_url: &str, timeout: std::time::Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let answer = self.get(status_url);
            assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
            let data = answer.json()["data"].clone();
            if data["state"] == "completed" || data["state"] == "failed" {
                return data;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{status_url} still {} after {timeout:?}",
                data["state"]
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

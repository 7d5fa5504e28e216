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

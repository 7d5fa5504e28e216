//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per measurement, which
//! CloudWatch Logs turns into metrics with no API call on the request path and no extra
//! permission. Every metric carries the `Function` dimension; some add one of their own.
//!
//! | metric | unit | dimensions | from |
//! |---|---|---|---|
//! | `ColdStart` | Count | Function | the first invocation of each instance |
//! | `ConversionsStarted` | Count | Function | `start-conversion`, a new execution |
//! | `ConversionsCompleted` | Count | Function | `stitch-audio`, the audio stored |
//! | `ConversionsFailed` | Count | Function, ErrorName | `record-failure`, a failure recorded |
//! | `CharactersSynthesized` | Count | Function, Engine | `synthesize-chunk`, each Polly request |
//! | `ChunkSynthesisLatency` | Milliseconds | Function, Engine | `synthesize-chunk`, each Polly request |
//! | `FeedsDue` | Count | Function | `list-due-feeds`, the feeds one polling run takes |
//! | `FeedPolls` | Count | Function, Outcome | `poll-feed`, each poll: `polled`, `failed` (the feed's failure, recorded) or `skipped` |
//! | `ConversionsRequested` | Count | Function, Outcome | `request-conversions`: `created`, `revised` or `unchanged` |

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub const COLD_START: &str = "ColdStart";
pub const CONVERSIONS_STARTED: &str = "ConversionsStarted";
pub const CONVERSIONS_COMPLETED: &str = "ConversionsCompleted";
pub const CONVERSIONS_FAILED: &str = "ConversionsFailed";
pub const CHARACTERS_SYNTHESIZED: &str = "CharactersSynthesized";
pub const CHUNK_SYNTHESIS_LATENCY: &str = "ChunkSynthesisLatency";
pub const FEEDS_DUE: &str = "FeedsDue";
pub const FEED_POLLS: &str = "FeedPolls";
pub const CONVERSIONS_REQUESTED: &str = "ConversionsRequested";

/// The dimension every metric has.
pub const FUNCTION: &str = "Function";
pub const ERROR_NAME: &str = "ErrorName";
pub const ENGINE: &str = "Engine";
pub const OUTCOME: &str = "Outcome";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Where the lines go: stdout on Lambda, a buffer in tests.
pub type Sink = Arc<Mutex<dyn Write + Send>>;

/// The metrics of one function. Cheap to clone; writing never fails the caller (a line that
/// cannot be written is logged and dropped: metrics must not fail a conversion).
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    function: String,
    sink: Sink,
    cold: Arc<AtomicBool>,
    clock: fn() -> DateTime<Utc>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics on stdout.
    pub fn stdout(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Self::with_sink(namespace, function, Arc::new(Mutex::new(std::io::stdout())))
    }

    pub fn with_sink(namespace: impl Into<String>, function: impl Into<String>, sink: Sink) -> Self {
        Self {
            namespace: namespace.into(),
            function: function.into(),
            sink,
            cold: Arc::new(AtomicBool::new(true)),
            clock: Utc::now,
        }
    }

    /// The same metrics with a fixed clock (tests).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One line: `value` of `name` in `unit`, with the `Function` dimension and `extra`.
    pub fn put(&self, name: &str, unit: Unit, value: f64, extra: &[(&str, &str)]) {
        let mut dimensions = vec![FUNCTION];
        dimensions.extend(extra.iter().map(|(k, _)| *k));
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": (self.clock)().timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": [{"Name": name, "Unit": unit.as_str()}],
                }],
            }),
        );
        line.insert(FUNCTION.into(), Value::from(self.function.as_str()));
        for (k, v) in extra {
            line.insert((*k).into(), Value::from(*v));
        }
        line.insert(name.into(), json!(value));
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush()) {
            tracing::warn!(metric = name, error = %e, "a metric could not be written");
        }
    }

    /// `ColdStart` once per instance: the first call says so, later calls write nothing.
    pub fn cold_start(&self) {
        if self.cold.swap(false, Ordering::SeqCst) {
            self.put(COLD_START, Unit::Count, 1.0, &[]);
        }
    }

    pub fn conversion_started(&self) {
        self.put(CONVERSIONS_STARTED, Unit::Count, 1.0, &[]);
    }

    pub fn conversion_completed(&self) {
        self.put(CONVERSIONS_COMPLETED, Unit::Count, 1.0, &[]);
    }

    pub fn conversion_failed(&self, error_name: &str) {
        self.put(CONVERSIONS_FAILED, Unit::Count, 1.0, &[(ERROR_NAME, error_name)]);
    }

    /// The feeds one run of the polling workflow takes.
    pub fn feeds_due(&self, count: usize) {
        self.put(FEEDS_DUE, Unit::Count, count as f64, &[]);
    }

    /// One poll of a feed, by what it did (`polled`, `failed`, `skipped`).
    pub fn feed_polled(&self, outcome: &str) {
        self.put(FEED_POLLS, Unit::Count, 1.0, &[(OUTCOME, outcome)]);
    }

    /// One post a subscription asked to convert, by what the submission did.
    pub fn conversion_requested(&self, outcome: &str) {
        self.put(CONVERSIONS_REQUESTED, Unit::Count, 1.0, &[(OUTCOME, outcome)]);
    }

    /// One synthesis request: its characters and how long the voice took.
    pub fn chunk_synthesized(&self, engine: &str, characters: u64, millis: f64) {
        self.put(CHARACTERS_SYNTHESIZED, Unit::Count, characters as f64, &[(ENGINE, engine)]);
        self.put(CHUNK_SYNTHESIS_LATENCY, Unit::Milliseconds, millis, &[(ENGINE, engine)]);
    }
}

/// A sink that keeps what was written, for tests: every line parsed as JSON.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn sink(&self) -> Sink {
        Arc::new(Mutex::new(self.clone()))
    }

    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let captured = Captured::default();
        let metrics = Metrics::with_sink("Lector/dev", "record-failure", captured.sink()).with_clock(fixed);
        metrics.conversion_failed("Lector.NotFound");
        let lines = captured.lines();
        assert_eq!(
            lines,
            [json!({
                "_aws": {
                    "Timestamp": 1_763_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Lector/dev",
                        "Dimensions": [["Function", "ErrorName"]],
                        "Metrics": [{"Name": "ConversionsFailed", "Unit": "Count"}],
                    }],
                },
                "Function": "record-failure",
                "ErrorName": "Lector.NotFound",
                "ConversionsFailed": 1.0,
            })]
        );
    }

    #[test]
    fn a_cold_start_is_counted_once_per_instance() {
        let captured = Captured::default();
        let metrics = Metrics::with_sink("N", "api", captured.sink());
        metrics.cold_start();
        metrics.clone().cold_start();
        metrics.cold_start();
        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0][COLD_START], json!(1.0));
    }

    #[test]
    fn a_synthesis_gives_characters_and_latency_by_engine() {
        let captured = Captured::default();
        let metrics = Metrics::with_sink("N", "synthesize-chunk", captured.sink());
        metrics.chunk_synthesized("neural", 2_400, 812.5);
        let lines = captured.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0][CHARACTERS_SYNTHESIZED].clone(), lines[0][ENGINE].clone()),
            (json!(2400.0), json!("neural"))
        );
        assert_eq!(lines[1][CHUNK_SYNTHESIS_LATENCY], json!(812.5));
        assert_eq!(lines[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], json!("Milliseconds"));
    }
}

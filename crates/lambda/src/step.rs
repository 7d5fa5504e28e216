//! One workflow step as a Lambda function: [`run_step`] builds the adapters once, then hands
//! each Task input to the step's `run` (through `lector_pipeline::steps::invoke`, as the local
//! engine does) and returns its output, or its error under the stable error name.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use lector_aws::feed_index::DynamoFeedIndex;
use lector_aws::{DynamoEventStore, PollyVoice, S3ObjectStore};
use lector_core::feed::index::FeedIndex;
use lector_core::ports::Voice;
use lector_core::{ErrorKind, StepError};
use lector_pipeline::poll::{ListDueFeeds, PollFeed};
use lector_pipeline::steps::{
    FetchArticle, PrepareSpeech, RecordFailure, Step, StepPorts, StitchAudio, SynthesizeChunk, invoke,
};
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::config::{Env, StepConfig, feed_table, function_name, public_url, settings_path};
use crate::diagnostic::StepFailure;
use crate::metrics::Metrics;
use crate::settings::{Fetchers, Settings, SystemClock, settings_error, websub};
use crate::voice::{MeteredVoice, NoVoice};

/// What the Lambda wiring knows of a step beyond `lector_pipeline::steps::Step`: which
/// settings it follows and which metrics its outcome gives.
pub trait StepWiring: Step + Default {
    /// The step fetches from the web, so its fetcher follows the runtime settings' allowed
    /// hosts (and the function needs `LECTOR_SETTINGS_PATH`).
    const FETCHES: bool = false;

    /// The step speaks, so its function has the Polly voice, metered. The others have
    /// [`NoVoice`]: no Polly client is built at their init, and none of its code is in them.
    const SPEAKS: bool = false;

    /// The step reads the list of subscriptions, so its function has the feed table (and
    /// needs `LECTOR_FEED_TABLE`). The others are given none.
    const LISTS_FEEDS: bool = false;

    /// The step asks a feed's WebSub hub for pushes, so its function reads the WebSub secret
    /// from the settings and the API's public address (`LECTOR_PUBLIC_URL`) for the callback.
    /// Only a step that `FETCHES` reads settings.
    const WEBSUB: bool = false;

    /// Record the metrics of one invocation's outcome.
    fn record(_input: &Value, _outcome: &Result<Value, StepError>, _metrics: &Metrics) {}
}

impl StepWiring for FetchArticle {
    const FETCHES: bool = true;
}

/// It chooses the voice (Polly's voices for the article's language) and keys each unit by it.
impl StepWiring for PrepareSpeech {
    const SPEAKS: bool = true;
}

/// Its voice is a [`MeteredVoice`]: characters and latency are recorded per request.
impl StepWiring for SynthesizeChunk {
    const SPEAKS: bool = true;
}

/// It speaks again a unit whose stored audio is gone (the speech cache expired under it).
impl StepWiring for StitchAudio {
    const SPEAKS: bool = true;

    fn record(_input: &Value, outcome: &Result<Value, StepError>, metrics: &Metrics) {
        if outcome.is_ok() {
            metrics.conversion_completed();
        }
    }
}

impl StepWiring for RecordFailure {
    /// A failure recorded ends in `Lector.ConversionFailed`; the metric names the error that
    /// was caught (`failed.<state>.Error`), which is what operators act on.
    fn record(input: &Value, outcome: &Result<Value, StepError>, metrics: &Metrics) {
        if let Err(e) = outcome
            && e.kind == ErrorKind::ConversionFailed
        {
            metrics.conversion_failed(caught_error(input).unwrap_or("unknown"));
        }
    }
}

/// It reads the feeds due for a poll from the feed table's due index.
impl StepWiring for ListDueFeeds {
    const LISTS_FEEDS: bool = true;

    fn record(_input: &Value, outcome: &Result<Value, StepError>, metrics: &Metrics) {
        if let Ok(due) = outcome {
            metrics.feeds_due(due.get("feeds").and_then(Value::as_array).map_or(0, Vec::len));
        }
    }
}

/// It fetches the feed (a conditional GET), following the allowed hosts of the settings.
impl StepWiring for PollFeed {
    const FETCHES: bool = true;
    const WEBSUB: bool = true;

    /// A feed's own failure is an outcome (recorded in its stream), not the step's error: both
    /// are counted, the first as `failed`, and the step's errors by Lambda's `Errors`.
    fn record(_input: &Value, outcome: &Result<Value, StepError>, metrics: &Metrics) {
        if let Some(polled) = outcome.as_ref().ok().and_then(|o| o.get("outcome")).and_then(Value::as_str) {
            metrics.feed_polled(polled);
        }
    }
}

/// The error name `RecordFailure` was given: `state.failed.<state>.Error`.
fn caught_error(input: &Value) -> Option<&str> {
    input.get("state")?.get("failed")?.as_object()?.values().next()?.get("Error")?.as_str()
}

/// The conversion an input is about, for the logs: `conversion_id`, or `state.conversion_id`
/// for `RecordFailure`.
fn conversion_of(input: &Value) -> &str {
    input
        .get("conversion_id")
        .or_else(|| input.get("state").and_then(|s| s.get("conversion_id")))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The feed an input is about, for the logs (`PollFeed`'s `feed_id`).
fn feed_of(input: &Value) -> &str {
    input.get("feed_id").and_then(Value::as_str).unwrap_or("")
}

/// A step with its adapters, ready for invocations.
pub struct StepFunction<S> {
    step: S,
    ports: StepPorts,
    settings: Option<Arc<dyn Settings>>,
    fetchers: Fetchers,
    metrics: Metrics,
    public_url: Option<Url>,
}

impl<S> std::fmt::Debug for StepFunction<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepFunction").field("metrics", &self.metrics).finish_non_exhaustive()
    }
}

impl<S: StepWiring> StepFunction<S> {
    /// `settings` are read before each invocation (from their cache) when the step fetches.
    pub fn new(ports: StepPorts, settings: Option<Arc<dyn Settings>>, metrics: Metrics) -> Self {
        Self { step: S::default(), ports, settings, fetchers: Fetchers::new(), metrics, public_url: None }
    }

    /// The API's public address, where WebSub hubs call back (used when `S::WEBSUB`).
    pub fn with_public_url(self, public_url: Option<Url>) -> Self {
        Self { public_url, ..self }
    }

    async fn ports(&self) -> Result<StepPorts, StepError> {
        let Some(settings) = self.settings.as_ref().filter(|_| S::FETCHES) else {
            return Ok(self.ports.clone());
        };
        let current = settings.get().await.map_err(settings_error)?;
        let fetcher = self.fetchers.for_settings(&current).await?;
        let websub = if S::WEBSUB { websub(self.public_url.as_ref(), &current).map(Arc::new) } else { None };
        Ok(StepPorts { fetcher: Some(fetcher), websub, ..self.ports.clone() })
    }

    /// One invocation: the Task's input in, the step's output or its named error out.
    pub async fn handle(&self, input: Value) -> Result<Value, StepFailure> {
        self.metrics.cold_start();
        let span = tracing::info_span!(
            "step",
            state = S::STATE,
            conversion_id = conversion_of(&input),
            feed_id = feed_of(&input)
        );
        async {
            let outcome = match self.ports().await {
                Ok(ports) => invoke(&self.step, &ports, input.clone()).await,
                Err(e) => Err(e),
            };
            S::record(&input, &outcome, &self.metrics);
            match &outcome {
                Ok(_) => tracing::info!("step done"),
                Err(e) if e.kind.is_transient() => {
                    tracing::warn!(error = e.name(), cause = %e.cause, "step failed; the workflow retries it")
                }
                Err(e) => tracing::error!(error = e.name(), cause = %e.cause, "step failed"),
            }
            outcome.map_err(StepFailure)
        }
        .instrument(span)
        .await
    }
}

/// Run step `S` as this Lambda function: configuration from the environment (a missing
/// variable stops the function at init, named), the AWS adapters built once, then one
/// invocation after another until Lambda stops the instance.
pub async fn run_step<S: StepWiring>() -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let config = StepConfig::from_env(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let settings_path = if S::FETCHES {
        Some(settings_path(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?)
    } else {
        None
    };
    let feeds_table = if S::LISTS_FEEDS {
        Some(feed_table(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?)
    } else {
        None
    };
    let public_url = if S::WEBSUB {
        public_url(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?
    } else {
        None
    };
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let metrics = Metrics::stdout(config.namespace, function_name(&env, S::FUNCTION));
    // A constant per step: the branch a function does not take is not compiled into it.
    let voice: Arc<dyn Voice> = if S::SPEAKS {
        let polly = Arc::new(PollyVoice::new(aws_sdk_polly::Client::new(&sdk)));
        Arc::new(MeteredVoice::new(polly, metrics.clone()))
    } else {
        Arc::new(NoVoice { function: S::FUNCTION })
    };
    let feeds = feeds_table
        .map(|table| Arc::new(DynamoFeedIndex::new(dynamodb.clone(), table)) as Arc<dyn FeedIndex>);
    let ports = StepPorts {
        events: Arc::new(DynamoEventStore::new(dynamodb, config.table)),
        objects: Arc::new(S3ObjectStore::new(aws_sdk_s3::Client::new(&sdk), config.bucket)),
        voice,
        // Set per invocation to the fetcher of the current allowed hosts when the step
        // fetches; the others build no HTTP client of their own.
        fetcher: None,
        clock: Arc::new(SystemClock),
        feeds,
        websub: None,
        folded_feeds: Default::default(),
    };
    let settings = settings_path.map(|path| {
        Arc::new(crate::settings::from_ssm(aws_sdk_ssm::Client::new(&sdk), &path)) as Arc<dyn Settings>
    });
    let function = StepFunction::<S>::new(ports, settings, metrics).with_public_url(public_url);
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        function.handle(event.payload).await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_caught_error_and_the_conversion_are_found_in_record_failure_input() {
        let input = json!({
            "state": {"conversion_id": "0123456789abcdef0123", "attempt": 1,
                      "failed": {"FetchArticle": {"Error": "Lector.NotFound", "Cause": "HTTP 404"}}},
            "redrive_count": 0,
            "execution_id": "arn:x"
        });
        assert_eq!(caught_error(&input), Some("Lector.NotFound"));
        assert_eq!(conversion_of(&input), "0123456789abcdef0123");
        assert_eq!(conversion_of(&json!({"conversion_id": "abc"})), "abc");
        assert_eq!(caught_error(&json!({})), None);
        assert_eq!(feed_of(&json!({"feed_id": "0123456789abcdef", "force": false})), "0123456789abcdef");
    }

    #[test]
    fn polling_steps_count_the_feeds_due_and_each_polls_outcome() {
        use crate::metrics::{Captured, FEED_POLLS, FEEDS_DUE, OUTCOME};

        let captured = Captured::default();
        let metrics = Metrics::with_sink("N", "poll-feed", captured.sink());
        let due = json!({"feeds": ["0123456789abcdef", "fedcba9876543210"], "force": false});
        ListDueFeeds::record(&json!({}), &Ok(due), &metrics);
        for outcome in ["polled", "failed", "skipped"] {
            let output = json!({"feed_id": "0123456789abcdef", "outcome": outcome, "new": 0, "changed": 0});
            PollFeed::record(&json!({}), &Ok(output), &metrics);
        }
        // The step's own error is Lambda's Errors metric, not a poll's outcome.
        PollFeed::record(&json!({}), &Err(StepError::new(ErrorKind::Transient, "log down")), &metrics);
        let lines = captured.lines();
        assert_eq!(lines[0][FEEDS_DUE], json!(2.0));
        let outcomes: Vec<&str> = lines
            .iter()
            .filter(|l| l.get(FEED_POLLS).is_some())
            .filter_map(|l| l[OUTCOME].as_str())
            .collect();
        assert_eq!(outcomes, ["polled", "failed", "skipped"]);
    }

    /// A step function whose step fetches is always wired with a fetcher (`StepWiring::FETCHES`);
    /// if one were not, the step fails as an internal error naming itself, not a panic.
    #[tokio::test]
    async fn a_step_that_must_fetch_without_a_fetcher_fails_as_internal_naming_its_state() {
        use std::sync::Arc;

        use lector_core::ports::ObjectStore;
        use lector_core::{ErrorKind, VoiceEngine, VoiceId};
        use lector_pipeline::steps::{FetchArticle, FetchArticleInput, Step, StepPorts};
        use lector_pipeline::submit::{Submission, submit};

        let events = Arc::new(lector_testkit::memory::MemoryEventStore::new());
        let objects: Arc<dyn ObjectStore> = Arc::new(crate::api::NoObjects { function: "fetch-article" });
        let clock = Arc::new(crate::settings::SystemClock);
        let submission = Submission::new(
            "https://blog.example/posts/1".parse().unwrap(),
            VoiceId::new("Joanna"),
            VoiceEngine::Neural,
            "test",
        );
        let submitted = submit(&*events, &*objects, &*clock, submission).await.expect("submitted");
        let ports = StepPorts {
            events,
            objects,
            voice: Arc::new(crate::voice::NoVoice { function: "prepare-speech" }),
            fetcher: None,
            clock,
            feeds: None,
            websub: None,
            folded_feeds: Default::default(),
        };
        let input = FetchArticleInput {
            conversion_id: submitted.conversion_id,
            attempt: 1,
            execution_id: "exec-1".into(),
        };
        let err = FetchArticle.run(&ports, input).await.expect_err("there is nothing to fetch with");
        assert_eq!(err.kind, ErrorKind::Internal, "{}", err.cause);
        assert!(err.cause.contains("FetchArticle needs to fetch"), "{}", err.cause);
    }
}

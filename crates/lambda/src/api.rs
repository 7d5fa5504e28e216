//! The API functions behind API Gateway's HTTP API, one per endpoint group
//! ([`lector_api::Endpoints`]): `api` serves [`lector_api::conversions_router`] and `api-preview`
//! serves [`lector_api::preview_router`], with the AWS adapters. The routes are the very ones
//! `lector serve` serves; here their settings (default voice and engine, allowed hosts) come
//! from SSM Parameter Store, and the router is built again when they change, so a changed
//! parameter takes effect within the settings' five-minute cache.
//!
//! The `api` function keeps subscriptions too: their list is the feed table
//! ([`DynamoFeedIndex`]), a poll on demand starts the polling state machine
//! ([`StepFunctionsPolls`]), and the owner of podcast feeds whose subscription names none comes
//! from the runtime settings (`podcast-owner-name`, `podcast-owner-email`).
//!
//! There is no token: the HTTP API's JWT authorizer checks callers of the writing routes before
//! the function runs.

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lector_api::error::ApiError;
use lector_api::{Api, ApiSettings};
use lector_aws::feed_index::DynamoFeedIndex;
use lector_aws::index::DynamoConversionIndex;
use lector_aws::polls::StepFunctionsPolls;
use lector_aws::sdk::SdkConfig;
use lector_aws::settings::RuntimeSettings;
use lector_aws::{DynamoEventStore, PollyVoice, S3ObjectStore};
use lector_core::feed::FeedStatus;
use lector_core::feed::index::{FeedIndex, FeedPage, FeedQuery};
use lector_core::index::{ConversionIndex, IndexError};
use lector_core::object::ObjectMeta;
use lector_core::ports::{Clock, FeedPolls, ObjectError, ObjectStore, Voice};
use lector_core::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, ObjectKey, RecordedEvent, StoreError, StreamId,
    VoiceEngine,
};
use tokio::sync::Mutex;
use tower::ServiceExt;
use url::Url;

use crate::config::{self, ApiConfig, ConfigError, Env, StoreConfig, function_name};
use crate::metrics::Metrics;
use crate::settings::{Fetchers, Settings, SystemClock, settings_error};

/// The conversions group's function (`functions/api`).
pub const FUNCTION: &str = "api";

/// The preview's function (`functions/api-preview`).
pub const PREVIEW_FUNCTION: &str = "api-preview";

/// The engines Amazon Polly offers.
pub const POLLY_ENGINES: [VoiceEngine; 4] =
    [VoiceEngine::Standard, VoiceEngine::Neural, VoiceEngine::LongForm, VoiceEngine::Generative];

/// Posts of a feed preview whose pages are fetched to measure them.
pub const PREVIEW_MEASURE_LIMIT: usize = 20;

/// The adapters the API is built from.
#[derive(Clone)]
pub struct ApiPorts {
    pub events: Arc<dyn EventStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub voice: Arc<dyn Voice>,
    pub index: Arc<dyn ConversionIndex>,
    pub clock: Arc<dyn Clock>,
    pub feeds: Arc<dyn FeedIndex>,
    pub polls: Arc<dyn FeedPolls>,
}

impl std::fmt::Debug for ApiPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiPorts").finish_non_exhaustive()
    }
}

/// One endpoint group's API, with settings that follow Parameter Store.
pub struct ApiFunction {
    ports: ApiPorts,
    routes: fn(Api) -> Router,
    settings: Arc<dyn Settings>,
    public_url: Option<Url>,
    engines: Vec<VoiceEngine>,
    fetchers: Fetchers,
    metrics: Metrics,
    current: Mutex<Option<(RuntimeSettings, Router)>>,
}

impl std::fmt::Debug for ApiFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiFunction").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl ApiFunction {
    /// `routes` is the group's router ([`lector_api::conversions_router`], ...): a function, not
    /// a value chosen at run time, so a function's package links its own group's handlers only.
    pub fn new(
        routes: fn(Api) -> Router,
        ports: ApiPorts,
        settings: Arc<dyn Settings>,
        public_url: Option<Url>,
        engines: Vec<VoiceEngine>,
        metrics: Metrics,
    ) -> Self {
        Self {
            ports,
            routes,
            settings,
            public_url,
            engines,
            fetchers: Fetchers::new(),
            metrics,
            current: Mutex::new(None),
        }
    }

    /// The router for the current settings: the one built before while they are unchanged.
    pub async fn router(&self) -> Result<Router, ApiError> {
        let settings = self.settings.get().await.map_err(|e| ApiError::from_step(settings_error(e)))?;
        let mut current = self.current.lock().await;
        if let Some((built_for, router)) = current.as_ref()
            && *built_for == settings
        {
            return Ok(router.clone());
        }
        let fetcher = self.fetchers.for_settings(&settings).await.map_err(ApiError::from_step)?;
        let api = Api::new(
            lector_api::ApiPorts {
                events: self.ports.events.clone(),
                objects: self.ports.objects.clone(),
                voice: self.ports.voice.clone(),
                fetcher,
                clock: self.ports.clock.clone(),
                index: self.ports.index.clone(),
                feeds: self.ports.feeds.clone(),
                polls: self.ports.polls.clone(),
            },
            ApiSettings {
                token: None,
                public_url: self.public_url.clone(),
                default_voice: settings.default_voice.clone(),
                default_engine: settings.default_engine,
                engines: self.engines.clone(),
                preview_measure_limit: PREVIEW_MEASURE_LIMIT,
                own_feeds: Vec::new(),
                podcast_owner: settings.podcast_owner.clone(),
                websub: crate::settings::websub(self.public_url.as_ref(), &settings),
            },
        );
        let router = (self.routes)(api);
        tracing::info!(default_voice = %settings.default_voice, "API built for the current settings");
        *current = Some((settings, router.clone()));
        Ok(router)
    }

    /// Answer one request.
    pub async fn handle<B>(&self, request: axum::http::Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        self.metrics.cold_start();
        match self.router().await {
            Ok(router) => match router.oneshot(request.map(axum::body::Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Err(e) => e.into_response(),
        }
    }
}

/// Run the `api` function: the conversions group, with the event log on DynamoDB and S3 for
/// texts, audio and presigned links.
pub async fn run() -> Result<(), crate::Error> {
    serve::<ConversionStores>(FUNCTION, lector_api::conversions_router).await
}

/// Run the `api-preview` function: the preview reads feeds and pages and keeps nothing, so it
/// is given no event table and no bucket, no S3 client is built and none of its code is in the
/// package.
pub async fn run_preview() -> Result<(), crate::Error> {
    serve::<NoStores>(PREVIEW_FUNCTION, lector_api::preview_router).await
}

/// What a group's function keeps conversions and subscriptions in.
struct Built {
    events: Arc<dyn EventStore>,
    objects: Arc<dyn ObjectStore>,
    feeds: Arc<dyn FeedIndex>,
    polls: Arc<dyn FeedPolls>,
}

/// Where a group's function keeps conversions and subscriptions, wired from its environment.
trait Stores: Sized {
    fn from_env(env: &Env) -> Result<Self, ConfigError>;
    /// `function` names the function in what its stores refuse.
    fn build(self, function: &'static str, sdk: &SdkConfig, dynamodb: &aws_sdk_dynamodb::Client) -> Built;
}

/// The conversions group's: the event table, the bucket, the list of subscriptions and the
/// polling workflow.
struct ConversionStores(StoreConfig);

impl Stores for ConversionStores {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        StoreConfig::from_env(env).map(Self)
    }

    fn build(self, _: &'static str, sdk: &SdkConfig, dynamodb: &aws_sdk_dynamodb::Client) -> Built {
        let StoreConfig { table, bucket, feed_table, poll_state_machine_arn } = self.0;
        Built {
            events: Arc::new(DynamoEventStore::new(dynamodb.clone(), table)),
            objects: Arc::new(S3ObjectStore::new(aws_sdk_s3::Client::new(sdk), bucket)),
            feeds: Arc::new(DynamoFeedIndex::new(dynamodb.clone(), feed_table)),
            polls: Arc::new(StepFunctionsPolls::new(aws_sdk_sfn::Client::new(sdk), poll_state_machine_arn)),
        }
    }
}

/// The preview's: none.
struct NoStores;

impl Stores for NoStores {
    fn from_env(_: &Env) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    fn build(self, function: &'static str, _: &SdkConfig, _: &aws_sdk_dynamodb::Client) -> Built {
        Built {
            events: Arc::new(NoEvents { function }),
            objects: Arc::new(NoObjects { function }),
            feeds: Arc::new(NoFeeds { function }),
            polls: Arc::new(NoPolls { function }),
        }
    }
}

/// `lambda_http` in front of one group's router.
async fn serve<S: Stores>(name: &'static str, routes: fn(Api) -> Router) -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let (config, stores) = config::api_and_stores(ApiConfig::from_env(&env), S::from_env(&env))
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let Built { events, objects, feeds, polls } = stores.build(name, &sdk, &dynamodb);
    let ports = ApiPorts {
        events,
        objects,
        voice: Arc::new(PollyVoice::new(aws_sdk_polly::Client::new(&sdk))),
        index: Arc::new(DynamoConversionIndex::new(dynamodb, config.index_table)),
        clock: Arc::new(SystemClock),
        feeds,
        polls,
    };
    let settings = Arc::new(crate::settings::from_ssm(aws_sdk_ssm::Client::new(&sdk), &config.settings_path));
    let metrics = Metrics::stdout(config.namespace, function_name(&env, name));
    let function =
        ApiFunction::new(routes, ports, settings, config.public_url, POLLY_ENGINES.to_vec(), metrics);
    let function = &function;
    lambda_http::run(lambda_http::service_fn(move |request: lambda_http::Request| async move {
        Ok::<Response, Infallible>(function.handle(request).await)
    }))
    .await
}

/// Polls on demand in a function whose routes start none: refused, naming the function.
#[derive(Debug, Clone, Copy)]
pub struct NoPolls {
    pub function: &'static str,
}

#[async_trait]
impl FeedPolls for NoPolls {
    async fn poll_now(&self, _: &[lector_core::FeedId]) -> Result<String, lector_core::ports::WorkflowError> {
        Err(lector_core::ports::WorkflowError::Failed(format!(
            "the {} function starts no polls",
            self.function
        )))
    }
}

/// The list of subscriptions of a function whose routes read none: every call is refused as a
/// permanent failure naming the function, as [`NoObjects`] does for objects.
#[derive(Debug, Clone, Copy)]
pub struct NoFeeds {
    pub function: &'static str,
}

impl NoFeeds {
    fn refuse(&self, what: &str) -> IndexError {
        IndexError::Failed(format!(
            "the {} function has no list of subscriptions (asked to {what})",
            self.function
        ))
    }
}

#[async_trait]
impl FeedIndex for NoFeeds {
    async fn get(&self, id: &lector_core::FeedId) -> Result<Option<FeedStatus>, IndexError> {
        Err(self.refuse(&format!("read {id}")))
    }
    async fn put(&self, status: &FeedStatus) -> Result<(), IndexError> {
        Err(self.refuse(&format!("write {}", status.feed_id)))
    }
    async fn list(&self, _: &FeedQuery) -> Result<FeedPage, IndexError> {
        Err(self.refuse("list"))
    }
    async fn due(&self, _: chrono::DateTime<chrono::Utc>, _: usize) -> Result<Vec<FeedStatus>, IndexError> {
        Err(self.refuse("find the due feeds"))
    }
    async fn clear(&self) -> Result<(), IndexError> {
        Err(self.refuse("clear"))
    }
}

/// The event log of a function whose routes read and append no events: every call is refused
/// as a permanent failure naming the function, as [`NoObjects`] does for objects.
#[derive(Debug, Clone, Copy)]
pub struct NoEvents {
    pub function: &'static str,
}

impl NoEvents {
    fn refuse(&self, what: &str) -> StoreError {
        StoreError::Refused(format!("the {} function has no event log (asked to {what})", self.function))
    }
}

#[async_trait]
impl EventStore for NoEvents {
    async fn append(
        &self,
        stream: &StreamId,
        _: ExpectedVersion,
        _: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        Err(self.refuse(&format!("append to {stream}")))
    }
    async fn read_stream(&self, stream: &StreamId, _: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(self.refuse(&format!("read {stream}")))
    }
    async fn read_all(&self, _: u64, _: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(self.refuse("read the log"))
    }
}

/// The object store of a function whose routes read and write no objects: every call is refused
/// as a permanent failure naming the function, so wiring a route to the wrong function shows.
#[derive(Debug, Clone, Copy)]
pub struct NoObjects {
    pub function: &'static str,
}

impl NoObjects {
    fn refuse(&self, key: &str) -> ObjectError {
        ObjectError::Failed(format!("the {} function has no object store (asked for {key})", self.function))
    }
}

#[async_trait]
impl ObjectStore for NoObjects {
    async fn put(&self, key: &ObjectKey, _: Bytes, _: &str) -> Result<(), ObjectError> {
        Err(self.refuse(key.as_str()))
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        Err(self.refuse(key.as_str()))
    }
    async fn get_range(&self, key: &ObjectKey, _: u64, _: u64) -> Result<Bytes, ObjectError> {
        Err(self.refuse(key.as_str()))
    }
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError> {
        Err(self.refuse(key.as_str()))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        Err(self.refuse(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_objects_refuses_every_call_naming_its_function() {
        let store = NoObjects { function: PREVIEW_FUNCTION };
        let key = ObjectKey::new("audio/x.mp3").unwrap();
        let refusals = [
            store.put(&key, Bytes::from_static(b"x"), "audio/mpeg").await.unwrap_err(),
            store.get(&key).await.unwrap_err(),
            store.get_range(&key, 0, 1).await.unwrap_err(),
            store.head(&key).await.unwrap_err(),
            store.list("audio/").await.unwrap_err(),
        ];
        for refused in refusals {
            assert!(!refused.is_transient(), "{refused}");
            assert!(refused.to_string().contains("api-preview"), "{refused}");
        }
        assert_eq!(store.presigned_get(&key, std::time::Duration::from_secs(60)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn no_feeds_and_no_polls_refuse_naming_their_function() {
        let feeds = NoFeeds { function: PREVIEW_FUNCTION };
        let id: lector_core::FeedId = "0123456789abcdef".parse().unwrap();
        let refusals = [
            feeds.get(&id).await.unwrap_err(),
            feeds.list(&FeedQuery { limit: 5, ..FeedQuery::default() }).await.unwrap_err(),
            feeds.due(chrono::Utc::now(), 5).await.unwrap_err(),
            feeds.clear().await.unwrap_err(),
        ];
        for refused in refusals {
            assert!(matches!(refused, IndexError::Failed(_)), "{refused}");
            assert!(refused.to_string().contains("api-preview"), "{refused}");
        }
        let polls = NoPolls { function: PREVIEW_FUNCTION };
        let refused = polls.poll_now(&[id]).await.unwrap_err();
        assert!(!refused.is_transient() && refused.to_string().contains("api-preview"), "{refused}");
    }

    #[tokio::test]
    async fn no_events_refuses_every_call_naming_its_function() {
        let store = NoEvents { function: PREVIEW_FUNCTION };
        let stream = StreamId::new("conversion-0123456789abcdef0123");
        let refusals = [
            store.append(&stream, ExpectedVersion(0), Vec::new()).await.unwrap_err(),
            store.read_stream(&stream, 0).await.unwrap_err(),
            store.read_all(0, 10).await.unwrap_err(),
        ];
        for refused in refusals {
            assert!(!refused.is_transient(), "{refused}");
            assert!(matches!(refused, StoreError::Refused(_)), "{refused}");
            assert!(refused.to_string().contains("api-preview"), "{refused}");
        }
    }
}

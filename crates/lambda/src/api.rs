//! The `api` function: `lector_api::router` behind API Gateway's HTTP API, with the AWS
//! adapters. The router is the very one `lector serve` serves; here its settings (default voice
//! and engine, allowed hosts) come from SSM Parameter Store, and the router is built again when
//! they change, so a changed parameter takes effect within the settings' five-minute cache.
//!
//! There is no token: the HTTP API's JWT authorizer checks callers of the writing routes before
//! the function runs.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use lector_api::error::ApiError;
use lector_api::{Api, ApiSettings};
use lector_aws::index::DynamoConversionIndex;
use lector_aws::settings::RuntimeSettings;
use lector_aws::{DynamoEventStore, PollyVoice, S3ObjectStore};
use lector_core::index::ConversionIndex;
use lector_core::ports::{Clock, ObjectStore, Voice};
use lector_core::{EventStore, VoiceEngine};
use tokio::sync::Mutex;
use tower::ServiceExt;
use url::Url;

use crate::config::{ApiConfig, Env, function_name};
use crate::metrics::Metrics;
use crate::settings::{Fetchers, Settings, SystemClock, settings_error};

/// The function's name (`functions/api`).
pub const FUNCTION: &str = "api";

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
}

impl std::fmt::Debug for ApiPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiPorts").finish_non_exhaustive()
    }
}

/// The API with settings that follow Parameter Store.
pub struct ApiFunction {
    ports: ApiPorts,
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
    pub fn new(
        ports: ApiPorts,
        settings: Arc<dyn Settings>,
        public_url: Option<Url>,
        engines: Vec<VoiceEngine>,
        metrics: Metrics,
    ) -> Self {
        Self {
            ports,
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
            self.ports.events.clone(),
            self.ports.objects.clone(),
            self.ports.voice.clone(),
            fetcher,
            self.ports.clock.clone(),
            self.ports.index.clone(),
            ApiSettings {
                token: None,
                public_url: self.public_url.clone(),
                default_voice: settings.default_voice.clone(),
                default_engine: settings.default_engine,
                engines: self.engines.clone(),
                preview_measure_limit: PREVIEW_MEASURE_LIMIT,
                own_feeds: Vec::new(),
            },
        );
        let router = lector_api::router(api);
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

/// Run the `api` function: `lambda_http` in front of the router.
pub async fn run() -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let config = ApiConfig::from_env(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let ports = ApiPorts {
        events: Arc::new(DynamoEventStore::new(dynamodb.clone(), config.table)),
        objects: Arc::new(S3ObjectStore::new(aws_sdk_s3::Client::new(&sdk), config.bucket)),
        voice: Arc::new(PollyVoice::new(aws_sdk_polly::Client::new(&sdk))),
        index: Arc::new(DynamoConversionIndex::new(dynamodb, config.index_table)),
        clock: Arc::new(SystemClock),
    };
    let settings = Arc::new(crate::settings::from_ssm(aws_sdk_ssm::Client::new(&sdk), &config.settings_path));
    let metrics = Metrics::stdout(config.namespace, function_name(&env, FUNCTION));
    let function = ApiFunction::new(ports, settings, config.public_url, POLLY_ENGINES.to_vec(), metrics);
    let function = &function;
    lambda_http::run(lambda_http::service_fn(move |request: lambda_http::Request| async move {
        Ok::<Response, Infallible>(function.handle(request).await)
    }))
    .await
}

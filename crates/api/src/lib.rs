//! Lector's HTTP API as one axum [`Router`]: `lambda_http::run(router)` serves it behind API
//! Gateway, and `lector serve` serves the very same router with `axum::serve`. Only the ports in
//! [`Api`] differ between the two.
//!
//! - [`error`]: every answer, error or not, is the `{status, message, data}` envelope;
//! - [`extract`]: JSON bodies, ids, queries and the base URL, each refusing bad input in words;
//! - [`conversions`], [`feeds`], [`pronunciations`], [`audio`], [`service`]: the handlers;
//! - [`ROUTES`]: the route table, checked against `openapi.yaml` by a test, each route in its
//!   [`Endpoints`] group: on AWS each group is its own function ([`conversions_router`],
//!   [`preview_router`]); `lector serve` serves them all ([`router`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use lector_core::feed::event::PodcastOwner;
use lector_core::feed::index::FeedIndex;
use lector_core::index::ConversionIndex;
use lector_core::ports::{Clock, FeedPolls, ObjectStore, Voice};
use lector_core::voice::VoiceInfo;
use lector_core::{EventStore, VoiceEngine, VoiceId};
use lector_pipeline::fetch::Fetcher;
use tokio::sync::OnceCell;
use url::Url;

pub mod audio;
pub mod auth;
pub mod conversions;
pub mod error;
pub mod extract;
pub mod feeds;
pub mod pronunciations;
pub mod service;
pub mod subscriptions;
pub mod transcripts;
pub mod views;
pub mod websub;

/// The adapters and settings the handlers use.
pub struct Api {
    pub events: Arc<dyn EventStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub voice: Arc<dyn Voice>,
    pub fetcher: Arc<Fetcher>,
    pub clock: Arc<dyn Clock>,
    pub index: Arc<dyn ConversionIndex>,
    /// The list of subscriptions.
    pub feeds: Arc<dyn FeedIndex>,
    /// Polls on demand (`POST /feeds/{feed_id}/poll`, and a new subscription's first poll).
    pub polls: Arc<dyn FeedPolls>,
    pub settings: ApiSettings,
    voices: OnceCell<Vec<VoiceInfo>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The adapters an [`Api`] is built from.
#[derive(Clone)]
pub struct ApiPorts {
    pub events: Arc<dyn EventStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub voice: Arc<dyn Voice>,
    pub fetcher: Arc<Fetcher>,
    pub clock: Arc<dyn Clock>,
    pub index: Arc<dyn ConversionIndex>,
    pub feeds: Arc<dyn FeedIndex>,
    pub polls: Arc<dyn FeedPolls>,
}

impl std::fmt::Debug for ApiPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiPorts").finish_non_exhaustive()
    }
}

/// What differs between deployments.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Writes need `Authorization: Bearer <token>` when set. On AWS the HTTP API's JWT
    /// authorizer checks callers before the function runs, and this is unset.
    pub token: Option<String>,
    /// The public base address for the links in answers; when unset, taken from the request's
    /// `Host` (and `X-Forwarded-Proto`).
    pub public_url: Option<Url>,
    pub default_voice: VoiceId,
    pub default_engine: VoiceEngine,
    /// The engines this deployment's voice service speaks.
    pub engines: Vec<VoiceEngine>,
    /// Posts of a preview whose page is fetched to measure them; the rest are not measured.
    pub preview_measure_limit: usize,
    /// Feeds this server itself serves (the sample feed of `lector serve`): read from here
    /// rather than fetched, since fetching loopback addresses is refused.
    pub own_feeds: Vec<OwnFeed>,
    /// The owner of every podcast feed whose subscription names none (Apple Podcasts requires
    /// one).
    pub podcast_owner: Option<PodcastOwner>,
    /// Where WebSub hubs push feeds to, when this deployment can be reached by them.
    pub websub: Option<lector_pipeline::websub::WebSubConfig>,
}

/// A feed served by this server at `path`.
#[derive(Debug, Clone)]
pub struct OwnFeed {
    pub path: &'static str,
    pub body: &'static str,
    /// The port this server listens on: only a loopback address with this port names it.
    pub port: u16,
}

impl OwnFeed {
    fn names(&self, url: &Url) -> bool {
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        loopback && url.port_or_known_default() == Some(self.port) && url.path() == self.path
    }
}

impl Api {
    pub fn new(ports: ApiPorts, settings: ApiSettings) -> Self {
        let ApiPorts { events, objects, voice, fetcher, clock, index, feeds, polls } = ports;
        Self {
            events,
            objects,
            voice,
            fetcher,
            clock,
            index,
            feeds,
            polls,
            settings,
            voices: OnceCell::new(),
        }
    }

    /// Read the feed at `url`: one of this server's own feeds, or fetched with the guards.
    pub async fn load_feed(&self, url: &Url) -> Result<lector_pipeline::feed::Feed, lector_core::StepError> {
        if let Some(own) = self.settings.own_feeds.iter().find(|f| f.names(url)) {
            return Ok(lector_pipeline::feed::parse_feed(own.body.as_bytes(), Some(url), Some("utf-8"))?);
        }
        lector_pipeline::feed::fetch_feed(&self.fetcher, url.as_str()).await
    }

    /// The voices of the voice service, asked once and kept.
    pub async fn voices(&self) -> Result<&[VoiceInfo], lector_core::ports::VoiceError> {
        self.voices.get_or_try_init(|| self.voice.voices()).await.map(Vec::as_slice)
    }
}

/// The handlers' shared state.
pub type AppState = Arc<Api>;

/// The endpoint groups. On AWS each group is its own function behind the one HTTP API, so each
/// function's package holds only the code its routes reach: only the preview prepares posts'
/// speech (sentence segmentation for every language); the conversions read a page only to tell
/// an edited post submitted again from an unchanged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoints {
    /// Conversions, their audio and embeds, the podcast feeds, voices and health.
    Conversions,
    /// `POST /feeds/preview`.
    Preview,
}

/// Every route: method, path (in axum's syntax), whether it writes (and so needs the token), and
/// its group.
pub const ROUTES: &[(&str, &str, bool, Endpoints)] = &[
    ("GET", "/health", false, Endpoints::Conversions),
    ("GET", "/voices", false, Endpoints::Conversions),
    ("POST", "/feeds/preview", true, Endpoints::Preview),
    ("GET", "/feeds/{feed_id}/podcast.xml", false, Endpoints::Conversions),
    ("GET", "/feeds/{feed_id}/cover.png", false, Endpoints::Conversions),
    ("POST", "/feeds", true, Endpoints::Conversions),
    ("GET", "/feeds", false, Endpoints::Conversions),
    ("GET", "/feeds/{feed_id}", false, Endpoints::Conversions),
    ("PATCH", "/feeds/{feed_id}", true, Endpoints::Conversions),
    ("DELETE", "/feeds/{feed_id}", true, Endpoints::Conversions),
    ("POST", "/feeds/{feed_id}/poll", true, Endpoints::Conversions),
    ("GET", "/feeds/{feed_id}/events", false, Endpoints::Conversions),
    ("GET", "/feeds/{feed_id}/pronunciations", false, Endpoints::Conversions),
    ("PUT", "/feeds/{feed_id}/pronunciations", true, Endpoints::Conversions),
    ("GET", "/pronunciations", false, Endpoints::Conversions),
    ("PUT", "/pronunciations", true, Endpoints::Conversions),
    // A hub holds no token: a push is authenticated by its signature.
    ("GET", "/websub/{feed_id}", false, Endpoints::Conversions),
    ("POST", "/websub/{feed_id}", false, Endpoints::Conversions),
    ("POST", "/conversions", true, Endpoints::Conversions),
    ("GET", "/conversions", false, Endpoints::Conversions),
    ("POST", "/conversions/batch", true, Endpoints::Conversions),
    ("GET", "/conversions/{id}", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/events", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/audio", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/audio/{file}", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/transcript.vtt", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/transcript.srt", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/transcript.json", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/chapters.json", false, Endpoints::Conversions),
    ("GET", "/conversions/{id}/timeline.json", false, Endpoints::Conversions),
    ("GET", "/embed/{id}", false, Endpoints::Conversions),
];

/// The API's router: every group, as `lector serve` serves it.
pub fn router(api: Api) -> Router {
    serve(api, conversion_routes().merge(preview_routes()))
}

/// The [`Endpoints::Conversions`] routes alone (the `api` function).
pub fn conversions_router(api: Api) -> Router {
    serve(api, conversion_routes())
}

/// The [`Endpoints::Preview`] routes alone (the `api-preview` function).
pub fn preview_router(api: Api) -> Router {
    serve(api, preview_routes())
}

fn conversion_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(service::health))
        .route("/voices", get(service::voices))
        .route("/feeds/{feed_id}/podcast.xml", get(feeds::podcast))
        .route("/feeds/{feed_id}/cover.png", get(subscriptions::cover))
        .route("/feeds", post(subscriptions::subscribe).get(subscriptions::list))
        .route(
            "/feeds/{feed_id}",
            get(subscriptions::get_one).patch(subscriptions::change).delete(subscriptions::unsubscribe),
        )
        .route("/feeds/{feed_id}/poll", post(subscriptions::poll_now))
        .route("/feeds/{feed_id}/events", get(subscriptions::events))
        .route("/feeds/{feed_id}/pronunciations", get(pronunciations::get_feed).put(pronunciations::put_feed))
        .route("/pronunciations", get(pronunciations::get_global).put(pronunciations::put_global))
        .route("/websub/{feed_id}", get(websub::verify).post(websub::push))
        .route("/conversions", post(conversions::submit_one).get(conversions::list))
        .route("/conversions/batch", post(conversions::submit_batch))
        .route("/conversions/{id}", get(conversions::get_one))
        .route("/conversions/{id}/events", get(conversions::events))
        .route("/conversions/{id}/audio", get(audio::audio))
        .route("/conversions/{id}/audio/{file}", get(audio::revision_audio))
        .route("/conversions/{id}/transcript.vtt", get(transcripts::vtt))
        .route("/conversions/{id}/transcript.srt", get(transcripts::srt))
        .route("/conversions/{id}/transcript.json", get(transcripts::json))
        .route("/conversions/{id}/chapters.json", get(transcripts::chapters))
        .route("/conversions/{id}/timeline.json", get(transcripts::timeline_json))
        .route("/embed/{id}", get(audio::embed))
}

fn preview_routes() -> Router<AppState> {
    Router::new().route("/feeds/preview", post(feeds::preview))
}

/// `routes` with what every group shares: the envelope for unknown routes and methods, the
/// token check and the body limit.
fn serve(api: Api, routes: Router<AppState>) -> Router {
    let state: AppState = Arc::new(api);
    routes
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The largest request body: far above any real request (a batch of 100 posts), far below
/// anything that could hurt.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

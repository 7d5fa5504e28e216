//! `lector serve`: the API, the web page, the local engine and the event log in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lector_api::{Api, ApiPorts, ApiSettings, OwnFeed};
use lector_core::VoiceId;
use lector_pipeline::fetch::AllowList;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use crate::local::{LocalOptions, LocalSystem};
use crate::voices::VoiceSetup;

/// The path the sample feed is served at.
pub const SAMPLE_FEED_PATH: &str = "/sample/feed.xml";
const SAMPLE_FEED: &str = include_str!("sample/feed.xml");

/// The web page, compiled in so the binary serves it from anywhere.
const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");
/// The read-along player, the very files the embed inlines.
const PLAYER_JS: &str = lector_api::audio::PLAYER_JS;
const PLAYER_CSS: &str = lector_api::audio::PLAYER_CSS;

/// How `lector serve` is set up.
#[derive(Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub allow_hosts: AllowList,
    /// The bearer token writes need; required to listen beyond loopback.
    pub token: Option<String>,
    pub public_url: Option<Url>,
    /// The voices; espeak-ng alone when `None`.
    pub voice: Option<VoiceSetup>,
    /// The owner of the podcast feeds whose subscriptions name none.
    pub podcast_owner: Option<lector_core::feed::event::PodcastOwner>,
    /// How often the poller looks for due feeds; `None` runs no poller.
    pub poll_every: Option<std::time::Duration>,
    /// Where WebSub hubs push feeds to, when this server can be reached by them.
    pub websub: Option<lector_pipeline::websub::WebSubConfig>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("addr", &self.addr)
            .field("data", &self.data)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    http: JoinHandle<std::io::Result<()>>,
    system: Option<LocalSystem>,
    poller: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind, start the local system (resuming unfinished executions) and serve.
    pub async fn start(options: ServeOptions) -> anyhow::Result<Self> {
        if !options.addr.ip().is_loopback() && options.token.as_deref().is_none_or(str::is_empty) {
            anyhow::bail!(
                "refusing to listen on {} without a token: set LECTOR_API_TOKEN, or listen on 127.0.0.1",
                options.addr
            );
        }
        let listener = TcpListener::bind(options.addr)
            .await
            .with_context(|| format!("cannot listen on {}", options.addr))?;
        let addr = listener.local_addr()?;
        let setup = options.voice.clone().unwrap_or_else(VoiceSetup::espeak);
        let mut local = LocalOptions::new(options.allow_hosts.clone());
        local.websub = options.websub.clone();
        local.voice = setup.voice.clone();
        let system = LocalSystem::start(&options.data, local).await?;
        // Fails early, and by name, when the voice cannot list its voices (espeak-ng missing).
        system.ports.voice.voices().await.map_err(|e| anyhow::anyhow!("the voice: {e}"))?;
        let settings = ApiSettings {
            token: options.token.clone().filter(|t| !t.is_empty()),
            public_url: options.public_url.clone(),
            default_voice: VoiceId::auto(),
            default_engine: setup.default_engine,
            engines: setup.engines.clone(),
            preview_measure_limit: 20,
            own_feeds: vec![OwnFeed { path: SAMPLE_FEED_PATH, body: SAMPLE_FEED, port: addr.port() }],
            podcast_owner: options.podcast_owner.clone(),
            websub: options.websub.clone(),
        };
        let api = Api::new(
            ApiPorts {
                events: system.ports.events.clone(),
                objects: system.ports.objects.clone(),
                voice: system.ports.voice.clone(),
                fetcher: system.fetcher.clone(),
                clock: system.ports.clock.clone(),
                index: system.index.clone(),
                feeds: system.feeds.clone(),
                polls: system.polls.clone(),
            },
            settings,
        );
        let poller = options.poll_every.map(|every| system.start_poller(every));
        let app = web_routes().merge(lector_api::router(api));
        let (stop, stopped) = oneshot::channel::<()>();
        let http = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self { addr, stop: Some(stop), http, system: Some(system), poller })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop taking requests, finish those in flight, stop the outbox. Executions in flight
    /// resume at the next start.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A poll cut short resumes with the engine's executions at the next start.
        if let Some(poller) = self.poller.take() {
            poller.abort();
        }
        (&mut self.http).await.context("the HTTP server task")?.context("the HTTP server")?;
        if let Some(system) = self.system.take() {
            system.shutdown().await;
        }
        Ok(())
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The web page, its player and the sample feed.
fn web_routes() -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/player.js", get(|| async { asset("text/javascript; charset=utf-8", PLAYER_JS) }))
        .route("/player.css", get(|| async { asset("text/css; charset=utf-8", PLAYER_CSS) }))
        .route(SAMPLE_FEED_PATH, get(|| async { asset("application/rss+xml; charset=utf-8", SAMPLE_FEED) }))
}

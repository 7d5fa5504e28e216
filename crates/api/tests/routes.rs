//! The routes the router serves and the ones `openapi.yaml` documents are the same, and every
//! documented route reaches a handler.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request};
use bytes::Bytes;
use lector_api::{Api, ApiSettings, Endpoints, ROUTES, conversions_router, preview_router, router};
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::VoiceInfo;
use lector_core::{VoiceEngine, VoiceId};
use lector_pipeline::fetch::{FetchPolicy, Fetcher};
use tower::ServiceExt;

/// `(METHOD, path)` of every operation in `openapi.yaml`, read from its `paths:` section.
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.yaml")).unwrap();
    let mut ops = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None::<String>;
    for line in text.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            break;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let (Some(p), Some(method)) =
            (&path, line.strip_prefix("    ").and_then(|m| m.strip_suffix(':')))
            && ["get", "post", "put", "patch", "delete"].contains(&method)
        {
            ops.insert((method.to_uppercase(), p.clone()));
        }
    }
    ops
}

#[test]
fn the_router_and_openapi_yaml_agree() {
    let routed: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p, _, _)| (m.to_string(), p.to_string())).collect();
    let documented = documented();
    assert!(documented.len() >= 10, "openapi.yaml was not read: {documented:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

struct OneVoice;

#[async_trait]
impl Voice for OneVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        Ok(vec![VoiceInfo {
            id: VoiceId::new("en-us"),
            name: "English".into(),
            language: "en-US".into(),
            gender: None,
            engines: vec![VoiceEngine::Espeak],
            licence: None,
        }])
    }
    async fn synthesize(&self, _: &str, _: &VoiceSpec) -> Result<Bytes, VoiceError> {
        Err(VoiceError::Unavailable("not used by this test".into()))
    }
}

/// An API on the local adapters in `dir`.
fn api(dir: &std::path::Path) -> Api {
    let db = lector_local::db::Db::open(dir.join("lector.sqlite")).unwrap();
    Api::new(
        lector_api::ApiPorts {
            events: Arc::new(lector_local::event_store::SqliteEventStore::new(db.clone())),
            objects: Arc::new(lector_local::objects::FolderObjectStore::new(dir.join("objects"))),
            voice: Arc::new(OneVoice),
            fetcher: Arc::new(Fetcher::new(FetchPolicy::default()).unwrap()),
            clock: Arc::new(lector_local::clock::SystemClock),
            index: Arc::new(lector_local::index::SqliteConversionIndex::new(db)),
            feeds: Arc::new(lector_core::feed::index::MemoryFeedIndex::default()),
            polls: Arc::new(lector_testkit::memory::NoPolls),
        },
        ApiSettings {
            token: None,
            public_url: None,
            default_voice: VoiceId::new("en-us"),
            default_engine: VoiceEngine::Espeak,
            engines: vec![VoiceEngine::Espeak],
            preview_measure_limit: 0,
            own_feeds: vec![],
            podcast_owner: None,
            websub: None,
        },
    )
}

/// Whether `app` routes `method path` to a handler (and not to the not-found fallback, nor to a
/// path of its own that does not take the method: `POST /feeds/preview` meets the conversions
/// group's `/feeds/{feed_id}`, which has no POST).
async fn reaches_a_handler(app: &axum::Router, method: &str, path: &str) -> bool {
    let concrete = path.replace("{id}", "0123456789abcdef0123").replace("{feed_id}", "0123456789abcdef");
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(&concrete)
        .header("host", "lector.test")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&body);
    status != 405 && !text.contains("no such resource")
}

#[tokio::test]
async fn every_documented_route_reaches_a_handler() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(api(dir.path()));
    for (method, path, _, _) in ROUTES {
        assert!(reaches_a_handler(&app, method, path).await, "{method} {path} fell through to the fallback");
    }
}

#[tokio::test]
async fn each_group_router_serves_its_routes_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    for (group, app) in [
        (Endpoints::Conversions, conversions_router(api(dir.path()))),
        (Endpoints::Preview, preview_router(api(dir.path()))),
    ] {
        for (method, path, _, of) in ROUTES {
            assert_eq!(
                reaches_a_handler(&app, method, path).await,
                *of == group,
                "{method} {path} ({of:?}) on the {group:?} router"
            );
        }
    }
    assert!(
        ROUTES.iter().any(|r| r.3 == Endpoints::Preview)
            && ROUTES.iter().any(|r| r.3 == Endpoints::Conversions)
    );
}

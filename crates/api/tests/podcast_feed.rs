//! `GET /feeds/{feed_id}/podcast.xml` on the local adapters: the feed of a source feed's
//! completed conversions passes the checker of Apple's and Podcasting 2.0's rules (all but the
//! owner, until one is set), lists only completed conversions, and keeps its guids from one
//! request to the next.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use lector_api::{Api, ApiSettings, router};
use lector_core::index::ConversionIndex;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::VoiceInfo;
use lector_core::{ConversionId, ConversionStatus, FeedId, VoiceEngine, VoiceId};
use lector_pipeline::fetch::{FetchPolicy, Fetcher};
use lector_testkit::podcast_rules::{check, check_history, ids};
use serde_json::json;
use tower::ServiceExt;
use url::Url;

struct NoVoice;

#[async_trait]
impl Voice for NoVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        Ok(vec![])
    }
    async fn synthesize(&self, _: &str, _: &VoiceSpec) -> Result<Bytes, VoiceError> {
        Err(VoiceError::Unavailable("not used by this test".into()))
    }
}

const FEED: &str = "https://blog.example.com/feed.xml";

/// A conversion of the feed's post `n` in `state`, as the status projection stores it.
fn status(n: u32, state: &str, title: &str) -> ConversionStatus {
    let post = Url::parse(&format!("https://blog.example.com/posts/{n}")).unwrap();
    let feed = Url::parse(FEED).unwrap();
    let id = ConversionId::derive(&post, &VoiceId::new("en-us"), VoiceEngine::Espeak);
    let done = state == "completed";
    serde_json::from_value(json!({
        "conversion_id": id,
        "state": state,
        "stage": state,
        "progress": {"chunks_done": 1, "chunks_total": 1},
        "post_url": post,
        "feed_url": feed,
        "feed_id": FeedId::derive(&feed),
        "feed_title": "Example & Blog",
        "title": title,
        "byline": "Ann Example",
        "voice": "en-us",
        "engine": "espeak",
        "audio_ref": if done { Some(format!("audio/{id}.mp3")) } else { None },
        "audio_bytes": if done { Some(20_000 + n) } else { None },
        "duration_seconds": if done { Some(12.6 + f64::from(n)) } else { None },
        "attempt": 1,
        "redrives": 0,
        "requested_by": "test",
        "created_at": format!("2024-03-0{n}T09:00:00Z"),
        "updated_at": format!("2024-03-0{n}T09:05:00Z"),
        "completed_at": if done { Some(format!("2024-03-0{n}T09:05:00Z")) } else { None },
        "version": 4
    }))
    .expect("a status")
}

async fn get(app: &axum::Router, path: &str) -> (u16, String) {
    let request = Request::builder().uri(path).header("host", "lector.test").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_podcast_feed_of_a_source_feed_passes_the_rules_but_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = lector_local::db::Db::open(dir.path().join("lector.sqlite")).unwrap();
    let index = Arc::new(lector_local::index::SqliteConversionIndex::new(db.clone()));
    let statuses = [
        status(1, "completed", "First <post> & more"),
        status(2, "completed", "Second post"),
        status(3, "failed", "Broken post"),
    ];
    for s in &statuses {
        index.put(s).await.unwrap();
    }
    let api = Api::new(
        lector_api::ApiPorts {
            events: Arc::new(lector_local::event_store::SqliteEventStore::new(db.clone())),
            objects: Arc::new(lector_local::objects::FolderObjectStore::new(dir.path().join("objects"))),
            voice: Arc::new(NoVoice),
            fetcher: Arc::new(Fetcher::new(FetchPolicy::default()).unwrap()),
            clock: Arc::new(lector_local::clock::SystemClock),
            index,
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
    );
    let app = router(api);
    let feed_id = FeedId::derive(&Url::parse(FEED).unwrap());
    let path = format!("/feeds/{feed_id}/podcast.xml");
    let (code, xml) = get(&app, &path).await;
    assert_eq!(code, 200, "{xml}");

    // Served without an owner until one is set: that rule alone is broken.
    assert_eq!(ids(&check(&xml)), ["channel.owner"], "{xml}");
    assert_eq!(xml.matches("<item>").count(), 2, "only completed conversions: {xml}");
    for s in &statuses[..2] {
        let id = &s.conversion_id;
        assert!(xml.contains(&format!("<guid isPermaLink=\"false\">lector:{id}</guid>")), "{xml}");
        assert!(xml.contains(&format!(
            "<enclosure url=\"http://lector.test/conversions/{id}/audio\" length=\"{}\" type=\"audio/mpeg\"/>",
            s.audio_bytes.unwrap()
        )));
        let seconds = s.duration_seconds.unwrap().round() as u64;
        assert!(xml.contains(&format!("<itunes:duration>{seconds}</itunes:duration>")), "{xml}");
    }
    assert!(xml.contains("<title>First &lt;post&gt; &amp; more</title>"), "{xml}");
    assert!(xml.contains(&format!("<itunes:image href=\"http://lector.test/feeds/{feed_id}/cover.png\"/>")));
    let guid = lector_pipeline::podcast::podcast_guid(&format!("http://lector.test{path}"));
    assert!(xml.contains(&format!("<podcast:guid>{guid}</podcast:guid>")), "{xml}");

    // Asked again, nothing an app keys on has moved.
    let (_, again) = get(&app, &path).await;
    assert_eq!(check_history(&xml, &again), []);
}

//! Where the object store hands out direct addresses (S3), the audio endpoint redirects to them
//! instead of streaming the bytes through the API.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use chrono::Utc;
use lector_api::{Api, ApiSettings, router};
use lector_core::conversion::Command;
use lector_core::event::*;
use lector_core::object::ObjectMeta;
use lector_core::ports::{ObjectError, ObjectStore, Voice, VoiceError, VoiceSpec};
use lector_core::service::execute;
use lector_core::voice::VoiceInfo;
use lector_core::{ConversionId, EventMeta, ObjectKey, VoiceEngine, VoiceId};
use lector_pipeline::fetch::{FetchPolicy, Fetcher};
use lector_testkit::memory::MemoryEventStore;
use tower::ServiceExt;

/// A folder store that, like S3, can presign.
struct Presigning(lector_local::objects::FolderObjectStore);

#[async_trait]
impl ObjectStore for Presigning {
    async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str) -> Result<(), ObjectError> {
        self.0.put(key, body, content_type).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, ObjectError> {
        self.0.get(key).await
    }
    async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<Bytes, ObjectError> {
        self.0.get_range(key, start, end).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError> {
        self.0.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        self.0.list(prefix).await
    }
    async fn presigned_get(
        &self,
        key: &ObjectKey,
        valid_for: std::time::Duration,
    ) -> Result<Option<url::Url>, ObjectError> {
        Ok(Some(
            url::Url::parse(&format!("https://bucket.example/{key}?expires={}", valid_for.as_secs()))
                .unwrap(),
        ))
    }
}

struct NoVoice;

#[async_trait]
impl Voice for NoVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        Ok(vec![])
    }
    async fn synthesize(&self, _: &str, _: &VoiceSpec) -> Result<Bytes, VoiceError> {
        Err(VoiceError::Unavailable("unused".into()))
    }
}

#[tokio::test]
async fn audio_redirects_to_a_presigned_address_when_the_store_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(MemoryEventStore::new());
    let post = url::Url::parse("https://blog.example/p").unwrap();
    let id = ConversionId::derive(&post, &VoiceId::new("Joanna"), VoiceEngine::Neural);
    let meta = EventMeta { occurred_at: Utc::now(), correlation_id: id.to_string(), causation_id: None };
    for command in [
        Command::Request(ConversionRequested {
            conversion_id: id.clone(),
            post_url: post,
            title: None,
            feed_url: None,
            feed_id: None,
            feed_title: None,
            content_ref: None,
            voice: VoiceId::new("Joanna"),
            engine: VoiceEngine::Neural,
            requested_by: "test".into(),
            post: None,
            content_hash: None,
            feed_language: None,
            pronunciations: Vec::new(),
        }),
        Command::Start(ConversionStarted { execution_id: "e".into(), attempt: 1 }),
        Command::RecordArticle(ArticleFetched {
            attempt: 1,
            title: "T".into(),
            byline: None,
            language: None,
            words: 10,
            characters: 50,
            text_ref: ObjectKey::article_text(&id, 1),
            source: ArticleSource::Page,
            content_hash: None,
            summary: None,
            published_at: None,
        }),
        Command::PrepareSpeech(SpeechPrepared {
            attempt: 1,
            chunks: 1,
            characters: 50,
            chunks_ref: ObjectKey::speech_chunks(&id, 1),
            units: None,
            units_cached: None,
            voice: None,
            language: None,
            language_note: None,
        }),
        Command::RecordChunk(ChunkSynthesized {
            attempt: 1,
            index: 0,
            audio_ref: None,
            bytes: 9,
            duration_seconds: 1.0,
            units: 1,
            units_synthesized: 1,
            units_reused: 0,
            characters_synthesized: 0,
            characters_reused: 0,
        }),
        Command::Complete(ConversionCompleted {
            attempt: 1,
            audio_ref: ObjectKey::audio(&id),
            bytes: 9,
            duration_seconds: 1.0,
            format: AudioFormat::Mp3,
            revision: None,
            timings_ref: None,
            synthesis: None,
            chapters: None,
        }),
    ] {
        execute(&*events, &id, command, &meta).await.unwrap();
    }
    let db = lector_local::db::Db::open(dir.path().join("i.sqlite")).unwrap();
    let api = Api::new(
        lector_api::ApiPorts {
            events,
            objects: Arc::new(Presigning(lector_local::objects::FolderObjectStore::new(
                dir.path().join("objects"),
            ))),
            voice: Arc::new(NoVoice),
            fetcher: Arc::new(Fetcher::new(FetchPolicy::default()).unwrap()),
            clock: Arc::new(lector_local::clock::SystemClock),
            index: Arc::new(lector_local::index::SqliteConversionIndex::new(db)),
            feeds: Arc::new(lector_core::feed::index::MemoryFeedIndex::default()),
            polls: Arc::new(lector_testkit::memory::NoPolls),
        },
        ApiSettings {
            token: None,
            public_url: None,
            default_voice: VoiceId::new("Joanna"),
            default_engine: VoiceEngine::Neural,
            engines: vec![VoiceEngine::Neural],
            preview_measure_limit: 0,
            own_feeds: vec![],
            podcast_owner: None,
            websub: None,
        },
    );
    let response = router(api)
        .oneshot(
            Request::get(format!("/conversions/{id}/audio"))
                .header("host", "api.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(location, format!("https://bucket.example/audio/{id}.mp3?expires=3600"));
}

//! The published schemas: up to date with the Rust types, and every event the domain produces
//! is valid against them.

use std::path::Path;

use chrono::DateTime;
use lector_core::conversion::Command;
use lector_core::event::*;
use lector_core::service::execute;
use lector_core::{ConversionId, EventMeta, EventStore, ObjectKey, VoiceEngine, VoiceId};
use lector_testkit::memory::MemoryEventStore;
use lector_testkit::schema::assert_valid_event;
use url::Url;

#[test]
fn schema_files_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let stale = lector::cmd::schemas::stale(&dir).unwrap();
    assert!(stale.is_empty(), "stale schema files {stale:?}: regenerate them with `cargo run -- schemas`");
}

#[tokio::test]
async fn every_event_type_the_domain_produces_matches_its_schema() {
    let store = MemoryEventStore::new();
    let post = Url::parse("https://blog.example/posts/1?utm=x").unwrap();
    let feed = Url::parse("https://blog.example/feed.xml").unwrap();
    let voice = VoiceId::new("Joanna");
    let id = ConversionId::derive(&post, &voice, VoiceEngine::Neural);
    let meta = EventMeta {
        occurred_at: DateTime::from_timestamp(1_763_700_000, 123_000_000).unwrap(),
        correlation_id: id.to_string(),
        causation_id: Some("test".into()),
    };
    let commands = vec![
        Command::Request(ConversionRequested {
            conversion_id: id.clone(),
            post_url: post.clone(),
            title: Some("Ünïcode & <markup>".into()),
            feed_url: Some(feed.clone()),
            feed_id: Some(lector_core::FeedId::derive(&feed)),
            feed_title: Some("A feed".into()),
            content_ref: Some(ObjectKey::feed_content(&id)),
            voice: voice.clone(),
            engine: VoiceEngine::Neural,
            requested_by: "schema-test".into(),
            post: Some(PostInfo {
                key: Some("tag:blog.example,2026:1".into()),
                published_at: Some(DateTime::from_timestamp(1_763_600_000, 0).unwrap()),
                updated_at: None,
                summary: Some("A summary & more".into()),
                author: Some("A. Writer".into()),
            }),
            content_hash: Some("0011223344556677".into()),
            feed_language: Some("en".into()),
            pronunciations: Vec::new(),
        }),
        Command::Start(ConversionStarted {
            execution_id: "arn:aws:states:local:0:execution:conversion:x-1".into(),
            attempt: 1,
        }),
        Command::Fail(ConversionFailed {
            attempt: 1,
            state: "FetchArticle".into(),
            error: "Lector.Transient".into(),
            cause: "HTTP 503".into(),
        }),
        Command::Retry { how: RetryMethod::Redrive, by: "ops".into(), reason: Some("site back".into()) },
        Command::RecordArticle(ArticleFetched {
            attempt: 1,
            title: "A title".into(),
            byline: Some("A. Writer".into()),
            language: Some("en".into()),
            words: 1200,
            characters: 7000,
            text_ref: ObjectKey::article_text(&id, 1),
            source: ArticleSource::Page,
            content_hash: Some("8899aabbccddeeff".into()),
            summary: None,
            published_at: None,
        }),
        Command::PrepareSpeech(SpeechPrepared {
            attempt: 1,
            chunks: 1,
            characters: 7000,
            chunks_ref: ObjectKey::speech_chunks(&id, 1),
            units: Some(60),
            units_cached: Some(3),
            voice: Some(VoiceId::new("Joanna")),
            language: Some("en".into()),
            language_note: None,
        }),
        Command::RecordChunk(ChunkSynthesized {
            attempt: 1,
            index: 0,
            units: 57,
            units_synthesized: 57,
            units_reused: 0,
            characters_synthesized: 6800,
            characters_reused: 0,
            bytes: 4096,
            duration_seconds: 12.5,
            audio_ref: None,
        }),
        Command::Complete(ConversionCompleted {
            attempt: 1,
            audio_ref: ObjectKey::audio(&id),
            bytes: 4096,
            duration_seconds: 12.5,
            format: AudioFormat::Mp3,
            revision: Some(1),
            timings_ref: Some(ObjectKey::timings(&id, 1)),
            synthesis: Some(SynthesisTotals {
                units: 60,
                units_synthesized: 57,
                units_reused: 3,
                characters_synthesized: 6800,
                characters_reused: 200,
            }),
            chapters: None,
        }),
        Command::Revise(lector_core::conversion::Revision {
            reason: RevisionReason::PostChanged,
            content_ref: Some(ObjectKey::feed_content_version(&id, "ffeeddcc")),
            content_hash: Some("ffeeddcc".into()),
            title: Some("A title, edited".into()),
            post: None,
            requested_by: "feed-subscription".into(),
            pronunciations: Vec::new(),
        }),
    ];
    for command in commands {
        execute(&store, &id, command, &meta).await.unwrap();
    }
    let events = store.read_stream(&id.stream(), 0).await.unwrap();
    let types: std::collections::BTreeSet<_> = events.iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(types.len(), ConversionEvent::TYPES.len(), "every event type was produced: {types:?}");
    for event in &events {
        assert_valid_event(event);
    }
}

#[test]
fn an_event_that_breaks_its_schema_is_caught() {
    let mut event = lector_core::RecordedEvent {
        event_id: lector_core::EventId::derive(&["bad"]),
        stream_id: lector_core::StreamId::new("conversion-0123456789abcdef0123"),
        version: 1,
        position: 1,
        event_type: "ConversionStarted".into(),
        schema_version: 1,
        occurred_at: DateTime::from_timestamp(0, 0).unwrap(),
        correlation_id: "x".into(),
        causation_id: None,
        data: serde_json::json!({"execution_id": "e", "attempt": 1}),
    };
    assert_valid_event(&event);
    event.data = serde_json::json!({"execution_id": "e", "attempt": -1});
    let caught =
        std::panic::catch_unwind(|| assert_valid_event(&event)).expect_err("a negative attempt passed");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("breaks events/ConversionStarted.v1.json"),
        "caught by the schema, not later: {message}"
    );
}

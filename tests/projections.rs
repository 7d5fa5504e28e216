//! `lector projections rebuild` on a folder with 100 conversions rebuilds the same list the
//! live projector kept, and `check` notices a list that drifted from the log.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::Lector;
use lector_core::conversion::Command;
use lector_core::event::*;
use lector_core::index::{ConversionIndex, list_all};
use lector_core::service::execute;
use lector_core::{ConversionId, EventMeta, ObjectKey, VoiceEngine, VoiceId};
use lector_local::outbox::{Outbox, OutboxOptions};
use url::Url;

/// 100 conversions in every state, projected live by the outbox as `lector serve` does.
async fn populate(lector: &Lector) -> Vec<lector_core::ConversionStatus> {
    let data = lector::data::DataDir::open(&lector.data()).unwrap();
    let index = Arc::new(lector_local::index::SqliteConversionIndex::new(data.db.clone()));
    let start = Utc::now() - Duration::hours(3);
    for n in 0..100u32 {
        let post = Url::parse(&format!("https://blog.example/{n}")).unwrap();
        let feed = Url::parse(&format!("https://feed{}.example/rss", n % 4)).unwrap();
        let id = ConversionId::derive(&post, &VoiceId::new("en-us"), VoiceEngine::Espeak);
        let meta = EventMeta {
            occurred_at: start + Duration::seconds(i64::from(n)),
            correlation_id: id.to_string(),
            causation_id: None,
        };
        let mut commands = vec![Command::Request(ConversionRequested {
            conversion_id: id.clone(),
            post_url: post,
            title: Some(format!("Post {n}")),
            feed_id: Some(lector_core::FeedId::derive(&feed)),
            feed_url: Some(feed),
            feed_title: None,
            content_ref: None,
            voice: VoiceId::new("en-us"),
            engine: VoiceEngine::Espeak,
            requested_by: "test".into(),
            post: None,
            content_hash: None,
            feed_language: None,
            pronunciations: Vec::new(),
        })];
        if n % 5 != 0 {
            commands
                .push(Command::Start(ConversionStarted { execution_id: format!("exec-{n}"), attempt: 1 }));
        }
        if n % 5 == 1 {
            commands.push(Command::Fail(ConversionFailed {
                attempt: 1,
                state: "FetchArticle".into(),
                error: "Lector.NotFound".into(),
                cause: "HTTP 404".into(),
            }));
        }
        if n % 5 >= 2 {
            commands.push(Command::RecordArticle(ArticleFetched {
                attempt: 1,
                title: format!("Article {n}"),
                byline: None,
                language: None,
                words: 100 + n,
                characters: 600,
                text_ref: ObjectKey::article_text(&id, 1),
                source: ArticleSource::Page,
                content_hash: None,
                summary: None,
                published_at: None,
            }));
            commands.push(Command::PrepareSpeech(SpeechPrepared {
                attempt: 1,
                chunks: 2,
                characters: 600,
                chunks_ref: ObjectKey::speech_chunks(&id, 1),
                units: None,
                units_cached: None,
                voice: None,
                language: None,
                language_note: None,
            }));
            commands.push(Command::RecordChunk(ChunkSynthesized {
                attempt: 1,
                index: 0,
                audio_ref: None,
                bytes: 10,
                duration_seconds: 1.0,
                units: 1,
                units_synthesized: 1,
                units_reused: 0,
                characters_synthesized: 0,
                characters_reused: 0,
            }));
        }
        if n % 5 == 4 {
            commands.push(Command::RecordChunk(ChunkSynthesized {
                attempt: 1,
                index: 1,
                audio_ref: None,
                bytes: 10,
                duration_seconds: 1.0,
                units: 1,
                units_synthesized: 1,
                units_reused: 0,
                characters_synthesized: 0,
                characters_reused: 0,
            }));
            commands.push(Command::Complete(ConversionCompleted {
                attempt: 1,
                audio_ref: ObjectKey::audio(&id),
                bytes: 20,
                duration_seconds: 2.0,
                format: AudioFormat::Mp3,
                revision: None,
                timings_ref: None,
                synthesis: None,
                chapters: None,
            }));
        }
        for command in commands {
            execute(&data.events, &id, command, &meta).await.unwrap();
        }
    }
    let mut outbox = Outbox::new(data.events.clone(), OutboxOptions::default());
    outbox.subscribe(Arc::new(lector::local::ListProjector {
        index: index.clone(),
        events: data.events.clone(),
        kept: Default::default(),
    }));
    outbox.drain().await.unwrap();
    list_all(&*index).await.unwrap()
}

#[test]
fn rebuild_gives_back_the_same_list_and_check_sees_drift() {
    let lector = Lector::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let live = rt.block_on(populate(&lector));
    assert_eq!(live.len(), 100);
    let states: std::collections::HashSet<_> = live.iter().map(|s| s.state).collect();
    assert_eq!(states.len(), 4, "every state is represented: {states:?}");

    let check = lector.run(&["projections", "check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    let rebuilt = lector.run(&["projections", "rebuild"]);
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    let data = lector::data::DataDir::open(&lector.data()).unwrap();
    let index = lector_local::index::SqliteConversionIndex::new(data.db.clone());
    let after = rt.block_on(list_all(&index)).unwrap();
    assert_eq!(after, live, "the rebuilt list is the live one, order included");

    // A list that drifted from the log: one row lost, one changed.
    rt.block_on(async {
        let mut changed = after[3].clone();
        changed.title = Some("tampered".into());
        changed.version += 100;
        index.put(&changed).await.unwrap();
        data.db
            .write(|tx| {
                tx.execute(
                    "DELETE FROM conversions WHERE rowid IN (SELECT rowid FROM conversions LIMIT 1)",
                    [],
                )
                .map_err(lector_local::db::DbError::from)
            })
            .await
            .unwrap();
    });
    let check = lector.run(&["projections", "check"]);
    assert!(!check.status.success());
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("missing: ") && report.contains("different: "), "{report}");
    assert!(lector.run(&["projections", "rebuild"]).status.success());
    assert!(lector.run(&["projections", "check"]).status.success());
}

/// The list of subscriptions is covered too: subscriptions in the log that the list misses are
/// named by `check`, and `rebuild` folds them in.
#[test]
fn the_list_of_subscriptions_is_checked_and_rebuilt_from_the_log() {
    use lector_core::feed::FeedStatus;
    use lector_core::feed::event::FeedSubscribed;
    use lector_core::feed::index::FeedIndex;
    use lector_core::feed::service::execute_feed;
    use lector_core::feed::subscription::FeedCommand;
    use lector_core::{EventStore, FeedId};

    let lector = Lector::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = lector::data::DataDir::open(&lector.data()).unwrap();
    let ids: Vec<FeedId> = rt.block_on(async {
        let mut ids = Vec::new();
        for n in 0..3 {
            let url = Url::parse(&format!("https://feed{n}.example/rss")).unwrap();
            let id = FeedId::derive(&url);
            let subscribed = FeedSubscribed {
                feed_id: id.clone(),
                url,
                voice: VoiceId::new("en-us"),
                engine: VoiceEngine::Espeak,
                auto_convert: true,
                regenerate_on_edit: false,
                backfill: 0,
                interval_minutes: 30,
                owner: None,
                podcast_guid: None,
                subscribed_by: "test".into(),
            };
            let meta =
                EventMeta { occurred_at: Utc::now(), correlation_id: id.to_string(), causation_id: None };
            execute_feed(&data.events, &id, FeedCommand::Subscribe(subscribed), &meta).await.unwrap();
            ids.push(id);
        }
        ids
    });

    // Nothing projected them: check names each missing feed and fails.
    let check = lector.run(&["projections", "check"]);
    assert!(!check.status.success());
    let report = String::from_utf8_lossy(&check.stdout);
    for id in &ids {
        assert!(report.contains(&format!("missing: {id}")), "{report}");
    }
    assert!(report.contains("the conversion list matches the log"), "{report}");

    let rebuilt = lector.run(&["projections", "rebuild"]);
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert!(
        String::from_utf8_lossy(&rebuilt.stdout).contains("rebuilt the list of subscriptions from 3 events")
    );
    let feeds = lector_local::feed_index::SqliteFeedIndex::new(data.db.clone());
    for id in &ids {
        let stream = rt.block_on(data.events.read_stream(&id.stream(), 0)).unwrap();
        let folded = FeedStatus::fold(&stream).unwrap();
        assert_eq!(rt.block_on(feeds.get(id)).unwrap(), folded, "{id} is listed as the log says");
    }
    let check = lector.run(&["projections", "check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("the list of subscriptions matches the log"));
}

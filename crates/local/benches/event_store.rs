//! SQLite event store throughput against bare rusqlite doing the same work in the same run.
//!
//! `cargo bench -p lector-local --bench event_store`
//!
//! - single-event appends: `EventStore::append` (async, conflict check, spawn_blocking) against a
//!   bare `INSERT` in its own transaction on a plain connection with the same pragmas;
//! - batched appends (20 events per append) against a bare transaction of 20 inserts;
//! - reading a 20-event stream and folding it into a status, against a bare `SELECT` of the
//!   same rows.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lector_core::event::*;
use lector_core::{
    ConversionId, ConversionStatus, EventId, EventStore, ExpectedVersion, NewEvent, ObjectKey, VoiceEngine,
    VoiceId,
};
use lector_local::db::Db;
use lector_local::event_store::SqliteEventStore;
use rusqlite::{Connection, params};

const SINGLE: usize = 5_000;
const BATCHES: usize = 500;
const BATCH: usize = 20;
const READS: usize = 5_000;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_763_700_000, 0).unwrap()
}

fn new_event(stream: &str, i: usize) -> NewEvent {
    NewEvent {
        event_id: EventId::derive(&[stream, &i.to_string()]),
        event_type: "ChunkSynthesized".into(),
        schema_version: 1,
        occurred_at: now(),
        correlation_id: stream.into(),
        causation_id: Some("bench".into()),
        data: serde_json::json!({"attempt": 1, "index": i, "audio_ref": format!("work/x/chunks/{i}.mp3"), "bytes": 4096, "duration_seconds": 12.5}),
    }
}

fn bare_connection(path: &std::path::Path) -> Connection {
    // Same schema and pragmas as the store's.
    drop(Db::open(path).unwrap());
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

fn bare_insert(tx: &rusqlite::Transaction<'_>, stream: &str, version: usize, e: &NewEvent) {
    tx.prepare_cached(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, occurred_at, correlation_id, \
         causation_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .unwrap()
    .execute(params![
        stream,
        version as i64,
        e.event_id.0.to_string(),
        e.event_type,
        e.schema_version,
        e.occurred_at.to_rfc3339(),
        e.correlation_id,
        e.causation_id,
        serde_json::to_string(&e.data).unwrap()
    ])
    .unwrap();
}

fn report(what: &str, n: usize, store: Duration, bare: Duration) {
    let per = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{what:<38} store {:>9.0}/s   bare rusqlite {:>9.0}/s   store/bare time {:.2}x",
        per(store),
        per(bare),
        store.as_secs_f64() / bare.as_secs_f64()
    );
}

fn conversion_stream(id: &ConversionId) -> Vec<NewEvent> {
    let post = url::Url::parse("https://blog.example/post").unwrap();
    let mut events = vec![
        ConversionEvent::ConversionRequested(ConversionRequested {
            conversion_id: id.clone(),
            post_url: post,
            title: Some("Bench".into()),
            feed_url: None,
            feed_id: None,
            feed_title: None,
            content_ref: None,
            voice: VoiceId::new("en-us"),
            engine: VoiceEngine::Espeak,
            requested_by: "bench".into(),
        }),
        ConversionEvent::ConversionStarted(ConversionStarted { execution_id: "exec".into(), attempt: 1 }),
        ConversionEvent::ArticleFetched(ArticleFetched {
            attempt: 1,
            title: "Bench".into(),
            byline: None,
            language: Some("en".into()),
            words: 3000,
            characters: 18_000,
            text_ref: ObjectKey::article_text(id, 1),
            source: ArticleSource::Page,
        }),
        ConversionEvent::SpeechPrepared(SpeechPrepared {
            attempt: 1,
            chunks: 16,
            characters: 18_000,
            chunks_ref: ObjectKey::speech_chunks(id, 1),
        }),
    ];
    for index in 0..16 {
        events.push(ConversionEvent::ChunkSynthesized(ChunkSynthesized {
            attempt: 1,
            index,
            audio_ref: ObjectKey::chunk_audio(id, &format!("h{index}")),
            bytes: 40_000,
            duration_seconds: 20.0,
        }));
    }
    events
        .iter()
        .enumerate()
        .map(|(i, e)| NewEvent {
            event_id: EventId::derive(&[id.as_str(), &i.to_string()]),
            event_type: e.event_type().into(),
            schema_version: 1,
            occurred_at: now(),
            correlation_id: id.to_string(),
            causation_id: None,
            data: e.data(),
        })
        .collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("SQLite event store vs bare rusqlite, same schema and pragmas (WAL, synchronous=NORMAL)");

    // Single-event appends.
    let store = SqliteEventStore::new(Db::open(dir.path().join("store.sqlite")).unwrap());
    let events: Vec<_> = (0..SINGLE).map(|i| new_event("single", i)).collect();
    let started = Instant::now();
    rt.block_on(async {
        let stream = lector_core::StreamId::new("single");
        for (i, e) in events.iter().enumerate() {
            store.append(&stream, ExpectedVersion(i as u64), vec![e.clone()]).await.unwrap();
        }
    });
    let store_single = started.elapsed();
    let mut bare = bare_connection(&dir.path().join("bare.sqlite"));
    let started = Instant::now();
    for (i, e) in events.iter().enumerate() {
        let tx = bare.transaction().unwrap();
        bare_insert(&tx, "single", i + 1, e);
        tx.commit().unwrap();
    }
    let bare_single = started.elapsed();
    report("single-event appends (events)", SINGLE, store_single, bare_single);

    // Batched appends.
    let events: Vec<_> = (0..BATCHES * BATCH).map(|i| new_event("batched", i)).collect();
    let started = Instant::now();
    rt.block_on(async {
        let stream = lector_core::StreamId::new("batched");
        for (b, batch) in events.chunks(BATCH).enumerate() {
            store.append(&stream, ExpectedVersion((b * BATCH) as u64), batch.to_vec()).await.unwrap();
        }
    });
    let store_batched = started.elapsed();
    let started = Instant::now();
    for (b, batch) in events.chunks(BATCH).enumerate() {
        let tx = bare.transaction().unwrap();
        for (i, e) in batch.iter().enumerate() {
            bare_insert(&tx, "batched", b * BATCH + i + 1, e);
        }
        tx.commit().unwrap();
    }
    let bare_batched = started.elapsed();
    report(&format!("batched appends of {BATCH} (events)"), BATCHES * BATCH, store_batched, bare_batched);

    // A 20-event stream read and folded.
    let id = ConversionId::derive(
        &url::Url::parse("https://blog.example/post").unwrap(),
        &VoiceId::new("en-us"),
        VoiceEngine::Espeak,
    );
    let stream_events = conversion_stream(&id);
    rt.block_on(store.append(&id.stream(), ExpectedVersion(0), stream_events.clone())).unwrap();
    {
        let tx = bare.transaction().unwrap();
        for (i, e) in stream_events.iter().enumerate() {
            bare_insert(&tx, id.stream().as_str(), i + 1, e);
        }
        tx.commit().unwrap();
    }
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..READS {
            let events = store.read_stream(&id.stream(), 0).await.unwrap();
            let status = ConversionStatus::fold(&events).unwrap().unwrap();
            assert_eq!(status.progress.chunks_done, 16);
        }
    });
    let store_read = started.elapsed();
    let started = Instant::now();
    for _ in 0..READS {
        let mut stmt = bare
            .prepare_cached("SELECT event_type, data FROM events WHERE stream_id = ?1 ORDER BY version")
            .unwrap();
        let rows: Vec<(String, String)> = stmt
            .query_map([id.stream().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 20);
    }
    let bare_read = started.elapsed();
    report("20-event stream read + fold (streams)", READS, store_read, bare_read);
}

//! SQLite event store throughput against bare rusqlite doing the same work in the same run.
//!
//! `cargo bench -p lector-local --bench event_store`
//!
//! - single-event appends: `EventStore::append` (async, conflict check, spawn_blocking) against a
//!   bare `INSERT` in its own transaction on a plain connection with the same pragmas;
//! - batched appends (20 events per append) against a bare transaction of 20 inserts;
//! - reading a 20-event stream and folding it into a status, against a bare `SELECT` of the
//!   same rows turned into envelopes and folded the same way (so the difference is the adapter).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lector_core::event::*;
use lector_core::{
    ConversionId, ConversionStatus, EventId, EventStore, ExpectedVersion, NewEvent, ObjectKey, RecordedEvent,
    VoiceEngine, VoiceId,
};
use lector_local::db::Db;
use lector_local::event_store::SqliteEventStore;
use rusqlite::{Connection, params};

const SINGLE: usize = 5_000;
const BATCHES: usize = 500;
const BATCH: usize = 20;
const READS: usize = 5_000;
const ROUNDS: usize = 3;

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

/// This process's CPU time (user + system, every thread), from /proc/self/stat: unlike wall
/// time, other work on the machine barely moves it.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

impl Took {
    const NONE: Took = Took { wall: Duration::MAX, cpu: Duration::MAX };

    fn best(self, other: Took) -> Took {
        Took { wall: self.wall.min(other.wall), cpu: self.cpu.min(other.cpu) }
    }
}

fn measure(f: impl FnOnce()) -> Took {
    let (wall, cpu) = (Instant::now(), cpu_time());
    f();
    Took { wall: wall.elapsed(), cpu: cpu_time().saturating_sub(cpu) }
}

fn report(what: &str, n: usize, store: Took, bare: Took) {
    let per = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{what:<38} store {:>8.0}/s   bare rusqlite {:>8.0}/s   store/bare wall {:.2}x, CPU {:.2}x",
        per(store.wall),
        per(bare.wall),
        store.wall.as_secs_f64() / bare.wall.as_secs_f64(),
        store.cpu.as_secs_f64() / bare.cpu.as_secs_f64().max(1e-3)
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
            post: None,
            content_hash: None,
            feed_language: None,
            pronunciations: Vec::new(),
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
            content_hash: None,
            summary: None,
            published_at: None,
        }),
        ConversionEvent::SpeechPrepared(SpeechPrepared {
            attempt: 1,
            chunks: 16,
            characters: 18_000,
            chunks_ref: ObjectKey::speech_chunks(id, 1),
            units: None,
            units_cached: None,
            voice: None,
            language: None,
            language_note: None,
        }),
    ];
    for index in 0..16 {
        events.push(ConversionEvent::ChunkSynthesized(ChunkSynthesized {
            attempt: 1,
            index,
            audio_ref: None,
            bytes: 40_000,
            duration_seconds: 20.0,
            units: 1,
            units_synthesized: 1,
            units_reused: 0,
            characters_synthesized: 0,
            characters_reused: 0,
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
    println!(
        "SQLite event store vs bare rusqlite, same schema and pragmas (WAL, synchronous=NORMAL), best of {ROUNDS}"
    );

    // Each comparison runs ROUNDS times, store and bare alternating, and keeps the best of each:
    // other work on the machine then slows both sides alike or neither.
    let store = SqliteEventStore::new(Db::open(dir.path().join("store.sqlite")).unwrap());
    let mut bare = bare_connection(&dir.path().join("bare.sqlite"));
    let (mut store_single, mut bare_single) = (Took::NONE, Took::NONE);
    let (mut store_batched, mut bare_batched) = (Took::NONE, Took::NONE);
    for round in 0..ROUNDS {
        // Single-event appends.
        let name = format!("single-{round}");
        let events: Vec<_> = (0..SINGLE).map(|i| new_event(&name, i)).collect();
        store_single = store_single.best(measure(|| {
            rt.block_on(async {
                let stream = lector_core::StreamId::new(name.clone());
                for (i, e) in events.iter().enumerate() {
                    store.append(&stream, ExpectedVersion(i as u64), vec![e.clone()]).await.unwrap();
                }
            })
        }));
        bare_single = bare_single.best(measure(|| {
            for (i, e) in events.iter().enumerate() {
                let tx = bare.transaction().unwrap();
                bare_insert(&tx, &name, i + 1, e);
                tx.commit().unwrap();
            }
        }));

        // Batched appends.
        let name = format!("batched-{round}");
        let events: Vec<_> = (0..BATCHES * BATCH).map(|i| new_event(&name, i)).collect();
        store_batched = store_batched.best(measure(|| {
            rt.block_on(async {
                let stream = lector_core::StreamId::new(name.clone());
                for (b, batch) in events.chunks(BATCH).enumerate() {
                    store.append(&stream, ExpectedVersion((b * BATCH) as u64), batch.to_vec()).await.unwrap();
                }
            })
        }));
        bare_batched = bare_batched.best(measure(|| {
            for (b, batch) in events.chunks(BATCH).enumerate() {
                let tx = bare.transaction().unwrap();
                for (i, e) in batch.iter().enumerate() {
                    bare_insert(&tx, &name, b * BATCH + i + 1, e);
                }
                tx.commit().unwrap();
            }
        }));
    }
    report("single-event appends (events)", SINGLE, store_single, bare_single);
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
    let (mut store_read, mut bare_read) = (Took::NONE, Took::NONE);
    for _ in 0..ROUNDS {
        store_read = store_read.best(measure(|| {
            rt.block_on(async {
                for _ in 0..READS {
                    let events = store.read_stream(&id.stream(), 0).await.unwrap();
                    let status = ConversionStatus::fold(&events).unwrap().unwrap();
                    assert_eq!(status.progress.chunks_done, 16);
                }
            })
        }));
        // The same work on a bare select: rows into envelopes, then the same fold.
        bare_read = bare_read.best(measure(|| for _ in 0..READS {
            let mut stmt = bare
                .prepare_cached(
                    "SELECT position, version, event_id, event_type, schema_version, occurred_at, correlation_id, \
                     causation_id, data FROM events WHERE stream_id = ?1 ORDER BY version",
                )
                .unwrap();
            let events: Vec<RecordedEvent> = stmt
                .query_map([id.stream().as_str()], |r| {
                    Ok(RecordedEvent {
                        position: r.get::<_, i64>(0)? as u64,
                        version: r.get::<_, i64>(1)? as u64,
                        event_id: EventId(r.get::<_, String>(2)?.parse().unwrap()),
                        event_type: r.get(3)?,
                        schema_version: r.get(4)?,
                        occurred_at: DateTime::parse_from_rfc3339(&r.get::<_, String>(5)?).unwrap().with_timezone(&Utc),
                        correlation_id: r.get(6)?,
                        causation_id: r.get(7)?,
                        data: serde_json::from_str(&r.get::<_, String>(8)?).unwrap(),
                        stream_id: id.stream(),
                    })
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let status = ConversionStatus::fold(&events).unwrap().unwrap();
            assert_eq!(status.progress.chunks_done, 16);
        }));
    }
    report("20-event stream read + fold (streams)", READS, store_read, bare_read);
}

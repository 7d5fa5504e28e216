//! The event store contract: one suite every `EventStore` adapter must pass, conflicts and
//! concurrency included. An adapter's test file invokes [`event_store_contract!`] with a
//! function that makes a fresh, empty store.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lector_core::store::MAX_EVENTS_PER_APPEND;
use lector_core::{
    AppendOutcome, EventId, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId,
};
use serde_json::{Value, json};

/// Expands to one `#[tokio::test]` per contract case, each with a fresh store from `$make`, an
/// `async fn() -> Arc<dyn EventStore>`. The calling crate needs `tokio` as a dev-dependency.
#[macro_export]
macro_rules! event_store_contract {
    ($make:path) => {
        $crate::event_store_contract!(@cases $make;
            reads_of_missing_streams_are_empty,
            appends_read_back_in_order_with_their_envelope,
            a_stale_expected_version_conflicts_and_writes_nothing,
            an_expected_version_beyond_the_stream_conflicts,
            a_retried_identical_append_is_a_no_op,
            a_different_append_at_a_taken_version_conflicts,
            read_stream_starts_after_the_given_version,
            read_all_pages_through_every_stream_in_position_order,
            appends_are_bounded_and_never_empty,
            data_round_trips_exactly,
            a_stream_longer_than_one_megabyte_reads_back_whole,
            concurrent_writers_on_one_stream_lose_nothing,
            a_reader_following_read_all_misses_nothing_under_concurrent_writers,
            any_interleaving_of_writers_yields_contiguous_versions_losing_nothing,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $make().await;
                $crate::contract::$case(store).await;
            }
        )*
    };
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("a valid timestamp")
}

/// A new event with a unique id derived from `key`.
pub fn event(key: &str, data: Value) -> NewEvent {
    NewEvent {
        event_id: EventId::derive(&["contract", key]),
        event_type: "ContractTested".into(),
        schema_version: 1,
        occurred_at: at(key.len() as i64),
        correlation_id: format!("corr-{key}"),
        causation_id: Some(format!("cause-{key}")),
        data,
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(format!("contract-{name}"))
}

async fn append_ok(
    store: &dyn EventStore,
    s: &StreamId,
    expected: u64,
    events: Vec<NewEvent>,
) -> AppendOutcome {
    store
        .append(s, ExpectedVersion(expected), events)
        .await
        .unwrap_or_else(|e| panic!("append to {s} at {expected} failed: {e}"))
}

fn assert_same(recorded: &RecordedEvent, new: &NewEvent) {
    assert_eq!(recorded.event_id, new.event_id);
    assert_eq!(recorded.event_type, new.event_type);
    assert_eq!(recorded.schema_version, new.schema_version);
    assert_eq!(recorded.occurred_at, new.occurred_at);
    assert_eq!(recorded.correlation_id, new.correlation_id);
    assert_eq!(recorded.causation_id, new.causation_id);
    assert_eq!(recorded.data, new.data);
}

pub async fn reads_of_missing_streams_are_empty(store: Arc<dyn EventStore>) {
    assert!(store.read_stream(&stream("missing"), 0).await.unwrap().is_empty());
    assert!(store.read_all(0, 100).await.unwrap().is_empty());
}

pub async fn appends_read_back_in_order_with_their_envelope(store: Arc<dyn EventStore>) {
    let s = stream("basic");
    let first = vec![event("a", json!({"n": 1})), event("b", json!({"n": 2}))];
    let outcome = append_ok(&*store, &s, 0, first.clone()).await;
    assert_eq!(outcome, AppendOutcome::Appended { first_version: 1, last_version: 2 });
    let third = event("c", json!({"n": 3}));
    let outcome = append_ok(&*store, &s, 2, vec![third.clone()]).await;
    assert_eq!(outcome, AppendOutcome::Appended { first_version: 3, last_version: 3 });

    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (recorded, new)) in read.iter().zip(first.iter().chain([&third])).enumerate() {
        assert_same(recorded, new);
        assert_eq!(recorded.version, i as u64 + 1);
        assert_eq!(recorded.stream_id, s);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position), "positions increase within a stream");
}

pub async fn a_stale_expected_version_conflicts_and_writes_nothing(store: Arc<dyn EventStore>) {
    let s = stream("stale");
    append_ok(&*store, &s, 0, vec![event("s1", json!(1)), event("s2", json!(2))]).await;
    let err = store
        .append(&s, ExpectedVersion(1), vec![event("x1", json!("x")), event("x2", json!("y"))])
        .await
        .expect_err("an append at a stale version must conflict");
    match err {
        StoreError::Conflict { stream, expected, actual } => {
            assert_eq!((stream, expected, actual), (s.clone(), 1, 2));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), vec![json!(1), json!(2)]);
    // And nothing of the refused append leaked into the global log.
    let all = store.read_all(0, 100).await.unwrap();
    assert_eq!(all.len(), 2);
}

pub async fn an_expected_version_beyond_the_stream_conflicts(store: Arc<dyn EventStore>) {
    let s = stream("ahead");
    let err = store.append(&s, ExpectedVersion(5), vec![event("h", json!(null))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 5, actual: 0, .. }), "got {err}");
    assert!(store.read_stream(&s, 0).await.unwrap().is_empty(), "no gap may be written");
}

pub async fn a_retried_identical_append_is_a_no_op(store: Arc<dyn EventStore>) {
    let s = stream("retried");
    let events = vec![event("r1", json!({"k": 1})), event("r2", json!({"k": 2}))];
    append_ok(&*store, &s, 0, events.clone()).await;
    let again = append_ok(&*store, &s, 0, events.clone()).await;
    assert_eq!(again, AppendOutcome::AlreadyAppended { last_version: 2 });
    // Also once the stream has moved on past the retried events.
    append_ok(&*store, &s, 2, vec![event("r3", json!({"k": 3}))]).await;
    let late = append_ok(&*store, &s, 0, events).await;
    assert_eq!(late, AppendOutcome::AlreadyAppended { last_version: 2 });
    assert_eq!(store.read_stream(&s, 0).await.unwrap().len(), 3, "nothing duplicated");
    assert_eq!(store.read_all(0, 100).await.unwrap().len(), 3);
}

pub async fn a_different_append_at_a_taken_version_conflicts(store: Arc<dyn EventStore>) {
    let s = stream("taken");
    append_ok(&*store, &s, 0, vec![event("t1", json!(1)), event("t2", json!(2))]).await;
    // Same ids, different data: not the same fact.
    let mut changed = event("t1", json!(1));
    changed.data = json!("other");
    assert!(matches!(
        store.append(&s, ExpectedVersion(0), vec![changed]).await,
        Err(StoreError::Conflict { actual: 2, .. })
    ));
    // A prefix of what is there plus something new: a conflict, never a partial no-op.
    let partial = vec![event("t1", json!(1)), event("t9", json!(9))];
    assert!(matches!(store.append(&s, ExpectedVersion(0), partial).await, Err(StoreError::Conflict { .. })));
    assert_eq!(store.read_stream(&s, 0).await.unwrap().len(), 2);
}

pub async fn read_stream_starts_after_the_given_version(store: Arc<dyn EventStore>) {
    let s = stream("after");
    let events: Vec<_> = (0..5).map(|i| event(&format!("after{i}"), json!(i))).collect();
    append_ok(&*store, &s, 0, events).await;
    let tail = store.read_stream(&s, 3).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.version).collect::<Vec<_>>(), vec![4, 5]);
    assert!(store.read_stream(&s, 5).await.unwrap().is_empty());
}

pub async fn read_all_pages_through_every_stream_in_position_order(store: Arc<dyn EventStore>) {
    let mut expected = Vec::new();
    for round in 0..4 {
        for name in ["x", "y", "z"] {
            let e = event(&format!("all-{name}-{round}"), json!({"s": name, "r": round}));
            append_ok(&*store, &stream(name), round, vec![e.clone()]).await;
            expected.push(e.event_id);
        }
    }
    // Page through with a small limit.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 5).await.unwrap();
        assert!(page.len() <= 5, "read_all returned more than its limit");
        let Some(last) = page.last() else { break };
        assert!(page.windows(2).all(|w| w[0].position < w[1].position));
        assert!(page[0].position > after);
        after = last.position;
        seen.extend(page.iter().map(|e| e.event_id));
    }
    assert_eq!(seen, expected, "the global order is the commit order");
}

pub async fn appends_are_bounded_and_never_empty(store: Arc<dyn EventStore>) {
    let s = stream("bounds");
    assert!(matches!(store.append(&s, ExpectedVersion(0), vec![]).await, Err(StoreError::Invalid(_))));
    let too_many: Vec<_> =
        (0..=MAX_EVENTS_PER_APPEND).map(|i| event(&format!("many{i}"), json!(i))).collect();
    assert!(matches!(store.append(&s, ExpectedVersion(0), too_many).await, Err(StoreError::Invalid(_))));
    assert!(store.read_stream(&s, 0).await.unwrap().is_empty());
    let most: Vec<_> = (0..MAX_EVENTS_PER_APPEND).map(|i| event(&format!("most{i}"), json!(i))).collect();
    let outcome = append_ok(&*store, &s, 0, most).await;
    assert_eq!(outcome.last_version(), MAX_EVENTS_PER_APPEND as u64);
}

pub async fn data_round_trips_exactly(store: Arc<dyn EventStore>) {
    let s = stream("data");
    let data = json!({
        "text": "Grüße, 世界 — \"quotes\" <tags> & \u{1F600}",
        "float": 12.625,
        "negative": -3,
        "big": 9_007_199_254_740_991_u64,
        "empty": {},
        "list": [1, "two", null, true, {"nested": [1.5]}],
        "null": null,
    });
    let mut e = event("data", data.clone());
    e.causation_id = None;
    append_ok(&*store, &s, 0, vec![e.clone()]).await;
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_same(&read[0], &e);
}

pub async fn a_stream_longer_than_one_megabyte_reads_back_whole(store: Arc<dyn EventStore>) {
    let s = stream("large");
    let filler = "x".repeat(4_000);
    let events: Vec<_> =
        (0..300).map(|i| event(&format!("large{i}"), json!({"i": i, "pad": filler}))).collect();
    let mut version = 0;
    for batch in events.chunks(25) {
        version = append_ok(&*store, &s, version, batch.to_vec()).await.last_version();
    }
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), 300, "every event of a stream longer than one page reads back");
    assert!(read.iter().enumerate().all(|(i, e)| e.version == i as u64 + 1 && e.data["i"] == json!(i)));
    let all_len = {
        let mut n = 0;
        let mut after = 0;
        loop {
            let page = store.read_all(after, 128).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.position;
            n += page.len();
        }
        n
    };
    assert_eq!(all_len, 300);
}

/// Writers on one stream, one per store given (the same store several times, or stores that
/// share only their storage): each appends its own numbered events (`{"writer": w, "n": n}`),
/// one at a time, re-expecting the version a conflict reports.
pub async fn write_concurrently(stores: Vec<Arc<dyn EventStore>>, s: StreamId, each: usize) {
    let tasks: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut expected = 0;
                for n in 0..each {
                    let e = event(&format!("{s}-w{w}-n{n}"), json!({"writer": w, "n": n}));
                    loop {
                        match store.append(&s, ExpectedVersion(expected), vec![e.clone()]).await {
                            Ok(outcome) => {
                                expected = outcome.last_version();
                                break;
                            }
                            Err(StoreError::Conflict { actual, .. }) => expected = actual,
                            Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                            Err(other) => panic!("writer {w} failed: {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.expect("a writer panicked");
    }
}

pub async fn concurrent_writers_on_one_stream_lose_nothing(store: Arc<dyn EventStore>) {
    const WRITERS: usize = 8;
    const EACH: usize = 1_000;
    let s = stream("hot");
    write_concurrently(vec![store.clone(); WRITERS], s.clone(), EACH).await;

    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), WRITERS * EACH);
    assert!(read.iter().enumerate().all(|(i, e)| e.version == i as u64 + 1), "versions are contiguous");
    let mut per_writer: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in &read {
        per_writer.entry(e.data["writer"].as_u64().unwrap()).or_default().push(e.data["n"].as_u64().unwrap());
    }
    for (w, ns) in per_writer {
        assert_eq!(ns, (0..EACH as u64).collect::<Vec<_>>(), "writer {w}: each event once, in its order");
    }
    // The global log holds the same events in the same order.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 1_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        all.extend(page);
    }
    assert_eq!(
        all.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        read.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
}

pub async fn a_reader_following_read_all_misses_nothing_under_concurrent_writers(store: Arc<dyn EventStore>) {
    let streams: Vec<StreamId> = (0..4).map(|i| stream(&format!("follow{i}"))).collect();
    let writers: Vec<_> = streams
        .iter()
        .map(|s| tokio::spawn(write_concurrently(vec![store.clone(); 2], s.clone(), 60)))
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            loop {
                // Read the flag before the page: once the writers are done, one more empty page
                // means the reader has caught up for good.
                let writers_done = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.read_all(after, 17).await.unwrap();
                match page.last() {
                    Some(last) => {
                        assert!(page[0].position > after);
                        after = last.position;
                        seen.extend(page.into_iter().map(|e| e.event_id));
                    }
                    None if writers_done => break,
                    None => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                }
            }
            seen
        })
    };
    for w in writers {
        w.await.expect("writer panicked");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.expect("reader panicked");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "the reader saw an event twice");
    assert_eq!(seen.len(), 4 * 2 * 60, "a reader following positions saw every committed event");
}

/// Expands to one `#[tokio::test]` per object store contract case, each with a fresh, empty
/// store from `$make`, an `async fn() -> Arc<dyn ObjectStore>`.
#[macro_export]
macro_rules! object_store_contract {
    ($make:path) => {
        $crate::object_store_contract!(@cases $make;
            objects_round_trip_and_overwrite,
            missing_objects_are_not_found,
            ranges_are_clamped_to_the_object,
            listing_is_by_prefix_in_key_order,
            a_large_object_round_trips,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make().await;
                $crate::contract::objects::$case(store).await;
            }
        )*
    };
}

/// The cases of [`object_store_contract!`].
pub mod objects {
    use std::sync::Arc;

    use lector_core::ObjectKey;
    use lector_core::ports::{ObjectError, ObjectStore};

    fn key(s: &str) -> ObjectKey {
        ObjectKey::new(s).expect("a valid key")
    }

    pub async fn objects_round_trip_and_overwrite(store: Arc<dyn ObjectStore>) {
        let k = key("work/c1/1/article.txt");
        store.put(&k, "first".into(), "text/plain").await.unwrap();
        assert_eq!(store.get(&k).await.unwrap(), "first");
        store.put(&k, "second, longer".into(), "text/plain").await.unwrap();
        assert_eq!(store.get(&k).await.unwrap(), "second, longer");
        let meta = store.head(&k).await.unwrap().expect("the object exists");
        assert_eq!((meta.key, meta.size), (k, 14));
    }

    pub async fn missing_objects_are_not_found(store: Arc<dyn ObjectStore>) {
        let k = key("audio/none.mp3");
        assert!(matches!(store.get(&k).await, Err(ObjectError::NotFound(missing)) if missing == k));
        assert!(store.head(&k).await.unwrap().is_none());
        assert!(matches!(store.get_range(&k, 0, 10).await, Err(ObjectError::NotFound(_))));
    }

    pub async fn ranges_are_clamped_to_the_object(store: Arc<dyn ObjectStore>) {
        let k = key("audio/range.mp3");
        store.put(&k, "0123456789".into(), "audio/mpeg").await.unwrap();
        assert_eq!(store.get_range(&k, 2, 5).await.unwrap(), "234");
        assert_eq!(store.get_range(&k, 7, 100).await.unwrap(), "789");
        assert_eq!(store.get_range(&k, 0, 10).await.unwrap(), "0123456789");
    }

    pub async fn listing_is_by_prefix_in_key_order(store: Arc<dyn ObjectStore>) {
        for k in ["work/c2/chunks/b.mp3", "work/c2/chunks/a.mp3", "work/c2/1/article.txt", "work/c3/x.mp3"] {
            store.put(&key(k), vec![1u8; 3].into(), "application/octet-stream").await.unwrap();
        }
        let listed: Vec<String> = store
            .list("work/c2/chunks/")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key.as_str().to_owned())
            .collect();
        assert_eq!(listed, ["work/c2/chunks/a.mp3", "work/c2/chunks/b.mp3"]);
        assert_eq!(store.list("work/c2").await.unwrap().len(), 3);
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }

    pub async fn a_large_object_round_trips(store: Arc<dyn ObjectStore>) {
        let k = key("audio/large.mp3");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        store.put(&k, body.clone().into(), "audio/mpeg").await.unwrap();
        assert_eq!(store.get(&k).await.unwrap().as_ref(), body.as_slice());
        assert_eq!(
            store.get_range(&k, 1_000_000, 1_000_010).await.unwrap().as_ref(),
            &body[1_000_000..1_000_010]
        );
    }
}

/// Expands to one `#[tokio::test]` per conversion index contract case, each with a fresh, empty
/// index from `$make`, an `async fn() -> Arc<dyn ConversionIndex>`.
#[macro_export]
macro_rules! conversion_index_contract {
    ($make:path) => {
        $crate::conversion_index_contract!(@cases $make;
            statuses_are_stored_and_read_back,
            an_older_version_never_replaces_a_newer_one,
            pages_are_newest_first_without_gaps_or_repeats,
            lists_filter_by_feed_and_state,
            a_foreign_cursor_is_refused,
            clear_empties_the_index,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let index = $make().await;
                $crate::contract::index::$case(index).await;
            }
        )*
    };
}

/// The cases of [`conversion_index_contract!`].
pub mod index {
    use std::collections::HashSet;
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use lector_core::index::{ConversionIndex, IndexError, ListQuery};
    use lector_core::status::{Progress, Stage};
    use lector_core::{ConversionId, ConversionState, ConversionStatus, FeedId, VoiceEngine, VoiceId};
    use url::Url;

    /// A status for conversion `n`, created `seconds` after a fixed instant.
    pub fn status(
        n: u32,
        seconds: i64,
        feed: Option<&str>,
        state: ConversionState,
        version: u64,
    ) -> ConversionStatus {
        let post = Url::parse(&format!("https://blog.example/posts/{n}")).unwrap();
        let voice = VoiceId::new("en-us");
        let feed_url = feed.map(|f| Url::parse(&format!("https://{f}/feed.xml")).unwrap());
        let created: DateTime<Utc> = DateTime::from_timestamp(1_763_000_000 + seconds, 0).unwrap();
        ConversionStatus {
            conversion_id: ConversionId::derive(&post, &voice, VoiceEngine::Espeak),
            state,
            stage: Stage::Queued,
            progress: Progress::default(),
            post_url: post,
            feed_id: feed_url.as_ref().map(FeedId::derive),
            feed_url,
            feed_title: None,
            title: Some(format!("Post {n}")),
            byline: None,
            voice,
            engine: VoiceEngine::Espeak,
            voice_used: None,
            language: None,
            language_note: None,
            words: None,
            characters: None,
            revision: 1,
            audio_ref: None,
            audio_bytes: None,
            duration_seconds: None,
            audio_revision: None,
            timings_ref: None,
            synthesis: None,
            post: None,
            published_at: None,
            summary: None,
            chapters: None,
            error: None,
            attempt: 1,
            redrives: 0,
            execution_id: None,
            requested_by: "contract".into(),
            created_at: created,
            updated_at: created,
            completed_at: None,
            version,
        }
    }

    async fn all(index: &dyn ConversionIndex, mut query: ListQuery) -> Vec<ConversionStatus> {
        let mut out = Vec::new();
        loop {
            let page = index.list(&query).await.unwrap();
            assert!(page.conversions.len() <= query.limit);
            out.extend(page.conversions);
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => return out,
            }
        }
    }

    pub async fn statuses_are_stored_and_read_back(index: Arc<dyn ConversionIndex>) {
        let s = status(1, 0, Some("a.example"), ConversionState::Requested, 1);
        assert!(index.get(&s.conversion_id).await.unwrap().is_none());
        index.put(&s).await.unwrap();
        assert_eq!(index.get(&s.conversion_id).await.unwrap(), Some(s));
    }

    pub async fn an_older_version_never_replaces_a_newer_one(index: Arc<dyn ConversionIndex>) {
        let newer = status(2, 0, None, ConversionState::Completed, 7);
        let older = status(2, 0, None, ConversionState::Processing, 3);
        index.put(&newer).await.unwrap();
        index.put(&older).await.unwrap();
        assert_eq!(index.get(&newer.conversion_id).await.unwrap().unwrap().state, ConversionState::Completed);
        let newest = status(2, 0, None, ConversionState::Failed, 8);
        index.put(&newest).await.unwrap();
        assert_eq!(index.get(&newer.conversion_id).await.unwrap().unwrap().version, 8);
    }

    pub async fn pages_are_newest_first_without_gaps_or_repeats(index: Arc<dyn ConversionIndex>) {
        // 25 conversions, several created in the same second, so ties must break on the id.
        for n in 0..25 {
            index.put(&status(n, i64::from(n / 3), None, ConversionState::Requested, 1)).await.unwrap();
        }
        let listed = all(&*index, ListQuery { limit: 10, ..ListQuery::default() }).await;
        assert_eq!(listed.len(), 25);
        let ids: HashSet<_> = listed.iter().map(|s| s.conversion_id.clone()).collect();
        assert_eq!(ids.len(), 25, "no conversion twice");
        assert!(
            listed
                .windows(2)
                .all(|w| (w[0].created_at, &w[0].conversion_id) > (w[1].created_at, &w[1].conversion_id)),
            "newest first, ties broken by id"
        );
        let first = index.list(&ListQuery { limit: 10, ..ListQuery::default() }).await.unwrap();
        assert_eq!(first.conversions.len(), 10);
        assert!(first.next_cursor.is_some());
    }

    pub async fn lists_filter_by_feed_and_state(index: Arc<dyn ConversionIndex>) {
        for n in 0..12 {
            let feed = if n % 2 == 0 { "even.example" } else { "odd.example" };
            let state = if n % 3 == 0 { ConversionState::Completed } else { ConversionState::Failed };
            index.put(&status(100 + n, i64::from(n), Some(feed), state, 2)).await.unwrap();
        }
        let even = FeedId::derive(&Url::parse("https://even.example/feed.xml").unwrap());
        let evens =
            all(&*index, ListQuery { feed_id: Some(even.clone()), limit: 2, ..ListQuery::default() }).await;
        assert_eq!(evens.len(), 6);
        assert!(evens.iter().all(|s| s.feed_id.as_ref() == Some(&even)));
        let done = all(
            &*index,
            ListQuery { state: Some(ConversionState::Completed), limit: 3, ..ListQuery::default() },
        )
        .await;
        assert_eq!(done.len(), 4);
        let both = all(
            &*index,
            ListQuery {
                feed_id: Some(even),
                state: Some(ConversionState::Completed),
                limit: 1,
                ..ListQuery::default()
            },
        )
        .await;
        assert_eq!(both.len(), 2, "n = 0 and 6");
    }

    pub async fn a_foreign_cursor_is_refused(index: Arc<dyn ConversionIndex>) {
        index.put(&status(3, 0, None, ConversionState::Requested, 1)).await.unwrap();
        let result = index
            .list(&ListQuery { limit: 5, cursor: Some("not-a-cursor".into()), ..ListQuery::default() })
            .await;
        assert!(matches!(result, Err(IndexError::InvalidCursor)), "{result:?}");
    }

    pub async fn clear_empties_the_index(index: Arc<dyn ConversionIndex>) {
        for n in 0..3 {
            index.put(&status(n, 0, None, ConversionState::Requested, 1)).await.unwrap();
        }
        index.clear().await.unwrap();
        assert!(
            index
                .list(&ListQuery { limit: 10, ..ListQuery::default() })
                .await
                .unwrap()
                .conversions
                .is_empty()
        );
    }
}

/// One generated run of writers on one stream: each writer's appends (the number of events of
/// each), and the order in which the writers act. A step of the schedule is one append attempt
/// by that writer (which may conflict and be tried again later), or, when `retry` is set, the
/// writer sending its last successful append again at the version it expected then (a retried
/// Lambda), which must change nothing.
#[derive(Debug, Clone)]
pub struct Interleaving {
    pub writers: Vec<Vec<usize>>,
    pub schedule: Vec<(usize, bool)>,
}

/// From one to four writers of one to five appends of one to four events, in any order.
pub fn interleavings() -> impl proptest::strategy::Strategy<Value = Interleaving> {
    use proptest::prelude::*;
    (1usize..=4).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::collection::vec(1usize..=4, 1..=5), n),
            proptest::collection::vec((0..n, proptest::bool::weighted(0.2)), 0..48),
        )
            .prop_map(|(writers, schedule)| Interleaving { writers, schedule })
    })
}

/// The property on any [`EventStore`]: whatever the interleaving of appends by N writers, the
/// stream holds every event exactly once, at contiguous versions from 1, each append's events
/// together and each writer's in its order; a retried append writes nothing; and `read_all`
/// has the stream's events in version order. Cases: `PROPTEST_CASES` (default 32).
pub async fn any_interleaving_of_writers_yields_contiguous_versions_losing_nothing(
    store: Arc<dyn EventStore>,
) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(32);
    let handle = tokio::runtime::Handle::current();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let result = tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        runner.run(&interleavings(), |plan| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let s = stream(&format!("interleaving-{n}"));
            handle.block_on(check_interleaving(&*store, &s, &plan)).map_err(TestCaseError::fail)
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The events of writer `w`'s append `b`.
fn batch_events(s: &StreamId, w: usize, b: usize, size: usize) -> Vec<NewEvent> {
    (0..size)
        .map(|i| event(&format!("{s}-w{w}-b{b}-e{i}"), json!({"writer": w, "batch": b, "i": i})))
        .collect()
}

/// Runs one interleaving on stream `s` and checks the stream afterwards.
pub async fn check_interleaving(
    store: &dyn EventStore,
    s: &StreamId,
    plan: &Interleaving,
) -> Result<(), String> {
    let n = plan.writers.len();
    // Where the global log stood before: the stream's events are all after it.
    let mut mark = 0;
    loop {
        let page = store.read_all(mark, 1_000).await.map_err(|e| e.to_string())?;
        match page.last() {
            Some(last) => mark = last.position,
            None => break,
        }
    }
    let mut next = vec![0usize; n];
    let mut expected = vec![0u64; n];
    let mut last_success: Vec<Option<(u64, Vec<NewEvent>)>> = vec![None; n];
    // The scheduled steps, then every writer in turn until each has made all its appends.
    let drain = (0..).map(|i| (i % n, false));
    let mut idle_rounds = 0;
    for (w, retry) in plan.schedule.iter().copied().chain(drain) {
        let w = w % n;
        if next.iter().zip(&plan.writers).all(|(b, batches)| *b >= batches.len()) {
            break;
        }
        if retry {
            if let Some((at, events)) = &last_success[w] {
                match store.append(s, ExpectedVersion(*at), events.clone()).await {
                    Ok(AppendOutcome::AlreadyAppended { .. }) => {}
                    Ok(other) => {
                        return Err(format!("writer {w}'s retried append at {at} wrote again: {other:?}"));
                    }
                    Err(StoreError::Unavailable(_)) => {}
                    Err(e) => return Err(format!("writer {w}'s retried append at {at} failed: {e}")),
                }
            }
            continue;
        }
        let Some(&size) = plan.writers[w].get(next[w]) else {
            idle_rounds += 1;
            if idle_rounds > 10_000 {
                return Err("the writers never finished".into());
            }
            continue;
        };
        let events = batch_events(s, w, next[w], size);
        match store.append(s, ExpectedVersion(expected[w]), events.clone()).await {
            Ok(AppendOutcome::Appended { first_version, last_version }) => {
                if first_version != expected[w] + 1 || last_version != expected[w] + size as u64 {
                    return Err(format!(
                        "writer {w} expected {} and got versions {first_version}..={last_version} for {size} events",
                        expected[w]
                    ));
                }
                last_success[w] = Some((expected[w], events));
                expected[w] = last_version;
                next[w] += 1;
            }
            Ok(AppendOutcome::AlreadyAppended { .. }) => {
                return Err(format!(
                    "writer {w}'s first attempt at append {} was taken for a retry",
                    next[w]
                ));
            }
            Err(StoreError::Conflict { actual, .. }) => expected[w] = actual,
            Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
            Err(e) => return Err(format!("writer {w} failed: {e}")),
        }
    }

    let read = store.read_stream(s, 0).await.map_err(|e| e.to_string())?;
    let total: usize = plan.writers.iter().flatten().sum();
    if read.len() != total {
        return Err(format!("{} events in the stream, {total} appended", read.len()));
    }
    for (i, e) in read.iter().enumerate() {
        if e.version != i as u64 + 1 {
            return Err(format!("event {i} is at version {}: versions are not contiguous", e.version));
        }
    }
    let mut ids = HashSet::new();
    let mut seen: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for e in &read {
        if !ids.insert(e.event_id) {
            return Err(format!("event {} is in the stream twice", e.event_id));
        }
        let field = |k: &str| e.data[k].as_u64().map(|v| v as usize).ok_or(format!("event data {}", e.data));
        seen.entry(field("writer")?).or_default().push((field("batch")?, field("i")?));
    }
    for (w, batches) in plan.writers.iter().enumerate() {
        let want: Vec<(usize, usize)> =
            batches.iter().enumerate().flat_map(|(b, &size)| (0..size).map(move |i| (b, i))).collect();
        let got = seen.remove(&w).unwrap_or_default();
        if got != want {
            return Err(format!("writer {w}: {got:?} in the stream, {want:?} appended"));
        }
    }
    // Each append's events are together: one atomic write, at consecutive versions.
    for pair in read.windows(2) {
        let (a, b) = (&pair[0].data, &pair[1].data);
        if a["writer"] == b["writer"]
            && a["batch"] == b["batch"]
            && a["i"].as_u64().map(|i| i + 1) != b["i"].as_u64()
        {
            return Err(format!("an append's events are apart: {a} then {b}"));
        }
        if b["i"] != json!(0) && (a["writer"] != b["writer"] || a["batch"] != b["batch"]) {
            return Err(format!("an append was split by another: {a} then {b}"));
        }
    }
    // The global log has the stream's events, in version order.
    let mut logged = Vec::new();
    loop {
        let page = store.read_all(mark, 1_000).await.map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        mark = last.position;
        logged.extend(page.into_iter().filter(|e| e.stream_id == *s).map(|e| e.event_id));
    }
    if logged != read.iter().map(|e| e.event_id).collect::<Vec<_>>() {
        return Err("read_all does not hold the stream's events in version order".into());
    }
    Ok(())
}

/// The contract of every [`lector_core::feed::index::FeedIndex`], as `#[tokio::test]`s:
/// `feed_index_contract!(make)` where `make` is an async fn giving a fresh, empty index.
#[macro_export]
macro_rules! feed_index_contract {
    ($make:path) => {
        $crate::feed_index_contract!(@cases $make;
            subscriptions_are_stored_and_read_back,
            an_older_subscription_version_never_replaces_a_newer_one,
            subscriptions_page_newest_first_without_gaps_or_repeats,
            subscriptions_filter_by_state,
            due_feeds_are_the_polled_ones_due_by_now_soonest_first,
            a_foreign_feed_cursor_is_refused,
            clear_empties_the_feed_index,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let index = $make().await;
                $crate::contract::feed_index::$case(index).await;
            }
        )*
    };
}

/// The cases of [`feed_index_contract!`].
pub mod feed_index {
    use std::collections::HashSet;
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use lector_core::feed::event::FeedDetails;
    use lector_core::feed::index::{FeedIndex, FeedQuery};
    use lector_core::feed::status::NextPollReason;
    use lector_core::feed::{FeedState, FeedStatus};
    use lector_core::index::IndexError;
    use lector_core::{FeedId, VoiceEngine, VoiceId};
    use url::Url;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_000_000 + seconds, 0).unwrap()
    }

    /// Subscription `n`, created `created` seconds after a fixed instant, due `due` seconds
    /// after it.
    pub fn feed(n: u32, created: i64, due: i64, state: FeedState, version: u64) -> FeedStatus {
        let url = Url::parse(&format!("https://blog{n}.example/feed.xml")).unwrap();
        FeedStatus {
            feed_id: FeedId::derive(&url),
            url,
            title: Some(format!("Blog {n}")),
            state,
            paused_reason: None,
            paused_automatically: false,
            voice: VoiceId::auto(),
            engine: VoiceEngine::Espeak,
            auto_convert: true,
            regenerate_on_edit: true,
            backfill: 0,
            interval_minutes: 15,
            owner: None,
            podcast_guid: None,
            details: FeedDetails::default(),
            last_poll_at: None,
            last_status: None,
            last_poll_source: None,
            next_poll_at: at(due),
            next_poll_reason: NextPollReason::FirstPoll,
            consecutive_failures: 0,
            last_error: None,
            posts_seen: 0,
            conversions_requested: 0,
            hub: None,
            hub_expires_at: None,
            subscribed_by: "contract".into(),
            pronunciations: Vec::new(),
            created_at: at(created),
            updated_at: at(created),
            version,
        }
    }

    async fn all(index: &dyn FeedIndex, mut query: FeedQuery) -> Vec<FeedStatus> {
        let mut out = Vec::new();
        loop {
            let page = index.list(&query).await.unwrap();
            assert!(page.feeds.len() <= query.limit);
            out.extend(page.feeds);
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => return out,
            }
        }
    }

    pub async fn subscriptions_are_stored_and_read_back(index: Arc<dyn FeedIndex>) {
        let s = feed(1, 0, 0, FeedState::Active, 1);
        index.put(&s).await.unwrap();
        assert_eq!(index.get(&s.feed_id).await.unwrap(), Some(s));
        let other = FeedId::derive(&Url::parse("https://nobody.example/").unwrap());
        assert_eq!(index.get(&other).await.unwrap(), None);
    }

    pub async fn an_older_subscription_version_never_replaces_a_newer_one(index: Arc<dyn FeedIndex>) {
        let newer = feed(2, 0, 0, FeedState::Failing, 7);
        index.put(&newer).await.unwrap();
        index.put(&feed(2, 0, 0, FeedState::Active, 3)).await.unwrap();
        assert_eq!(index.get(&newer.feed_id).await.unwrap().unwrap().state, FeedState::Failing);
        index.put(&feed(2, 0, 0, FeedState::Paused, 8)).await.unwrap();
        assert_eq!(index.get(&newer.feed_id).await.unwrap().unwrap().version, 8);
    }

    pub async fn subscriptions_page_newest_first_without_gaps_or_repeats(index: Arc<dyn FeedIndex>) {
        for n in 0..23 {
            index.put(&feed(n, i64::from(n / 3), 0, FeedState::Active, 1)).await.unwrap();
        }
        let listed = all(&*index, FeedQuery { limit: 10, ..FeedQuery::default() }).await;
        assert_eq!(listed.len(), 23);
        assert_eq!(listed.iter().map(|s| s.feed_id.clone()).collect::<HashSet<_>>().len(), 23);
        assert!(
            listed.windows(2).all(|w| (w[0].created_at, &w[0].feed_id) > (w[1].created_at, &w[1].feed_id)),
            "newest first, ties broken by id"
        );
    }

    pub async fn subscriptions_filter_by_state(index: Arc<dyn FeedIndex>) {
        for n in 0..9 {
            let state = [FeedState::Active, FeedState::Failing, FeedState::Paused][n as usize % 3];
            index.put(&feed(n, i64::from(n), 0, state, 1)).await.unwrap();
        }
        let paused =
            all(&*index, FeedQuery { state: Some(FeedState::Paused), limit: 2, ..FeedQuery::default() })
                .await;
        assert_eq!(paused.len(), 3);
        assert!(paused.iter().all(|s| s.state == FeedState::Paused));
    }

    pub async fn due_feeds_are_the_polled_ones_due_by_now_soonest_first(index: Arc<dyn FeedIndex>) {
        index.put(&feed(1, 0, 50, FeedState::Active, 1)).await.unwrap();
        index.put(&feed(2, 0, 10, FeedState::Failing, 1)).await.unwrap();
        index.put(&feed(3, 0, 5, FeedState::Paused, 1)).await.unwrap();
        index.put(&feed(4, 0, 5, FeedState::Unsubscribed, 1)).await.unwrap();
        index.put(&feed(5, 0, 500, FeedState::Active, 1)).await.unwrap();
        index.put(&feed(6, 0, 30, FeedState::Active, 1)).await.unwrap();
        let due = |now, limit| {
            let index = index.clone();
            async move {
                index
                    .due(at(now), limit)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.title.unwrap())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(due(100, 10).await, ["Blog 2", "Blog 6", "Blog 1"]);
        assert_eq!(due(100, 2).await, ["Blog 2", "Blog 6"]);
        assert_eq!(due(10, 10).await, ["Blog 2"], "due at exactly now is due");
        assert!(due(0, 10).await.is_empty());
        // A poll moves a feed's next poll on: it is no longer due.
        index.put(&feed(2, 0, 900, FeedState::Active, 2)).await.unwrap();
        assert_eq!(due(100, 10).await, ["Blog 6", "Blog 1"]);
    }

    pub async fn a_foreign_feed_cursor_is_refused(index: Arc<dyn FeedIndex>) {
        index.put(&feed(3, 0, 0, FeedState::Active, 1)).await.unwrap();
        let result = index
            .list(&FeedQuery { limit: 5, cursor: Some("not-a-cursor".into()), ..FeedQuery::default() })
            .await;
        assert!(matches!(result, Err(IndexError::InvalidCursor)), "{result:?}");
    }

    pub async fn clear_empties_the_feed_index(index: Arc<dyn FeedIndex>) {
        for n in 0..3 {
            index.put(&feed(n, 0, 0, FeedState::Active, 1)).await.unwrap();
        }
        index.clear().await.unwrap();
        assert!(index.list(&FeedQuery { limit: 10, ..FeedQuery::default() }).await.unwrap().feeds.is_empty());
        assert!(index.due(at(1_000_000), 10).await.unwrap().is_empty());
    }
}

//! The Subscription aggregate's rules: given events, when a command, then events or an error.
//! And its service: two pollers racing on one feed record each post once.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lector_core::feed::event::*;
use lector_core::feed::index::{
    FeedIndex, Feeds, MemoryFeedIndex, check_feeds, project_feed, project_feeds, rebuild_feeds,
};
use lector_core::feed::service::{
    FeedExecuteError, FeedSnapshot, FoldedFeeds, SNAPSHOT_EVERY, SNAPSHOT_FORMAT, SnapshotLoaded,
    execute_feed, execute_feed_on, load_feed, load_feed_folded, load_feed_snapshot, save_feed_snapshot,
};
use lector_core::feed::subscription::{FeedCommand, FeedError, FeedItem, PollFailure, PollResult, decide};
use lector_core::feed::{FeedState, FeedStatus, Subscription};
use lector_core::index::{IndexError, KeptStatuses, ReadModel, follow_all};
use lector_core::object::ObjectMeta;
use lector_core::ports::{ObjectError, ObjectStore};
use lector_core::schedule::{FailureKind, PollReason};
use lector_core::{EventMeta, EventStore, FeedId, ObjectKey, VoiceEngine, VoiceId};
use lector_testkit::memory::MemoryEventStore;
use url::Url;

fn url() -> Url {
    Url::parse("https://blog.example/feed.xml").unwrap()
}

fn feed_id() -> FeedId {
    FeedId::derive(&url())
}

fn t(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_000_000, 0).unwrap() + Duration::minutes(minutes)
}

fn subscribed(backfill: u32, auto_convert: bool) -> FeedEvent {
    FeedEvent::FeedSubscribed(FeedSubscribed {
        feed_id: feed_id(),
        url: url(),
        voice: VoiceId::auto(),
        engine: VoiceEngine::Espeak,
        auto_convert,
        regenerate_on_edit: true,
        backfill,
        interval_minutes: 15,
        owner: None,
        podcast_guid: None,
        subscribed_by: "test".into(),
    })
}

fn item(key: &str, hash: &str, published_minutes: i64) -> FeedItem {
    FeedItem {
        key: key.into(),
        url: Some(Url::parse(&format!("https://blog.example/{key}")).unwrap()),
        title: Some(format!("Post {key}")),
        published_at: Some(t(published_minutes)),
        updated_at: None,
        summary: None,
        author: None,
        content_hash: hash.into(),
        content_ref: None,
    }
}

fn poll(at: i64, items: Option<Vec<FeedItem>>) -> FeedCommand {
    FeedCommand::RecordPoll(PollResult {
        at: t(at),
        source: PollSource::Poll,
        status: if items.is_some() { 200 } else { 304 },
        etag: Some("\"v1\"".into()),
        last_modified: None,
        items,
        details: Some(FeedDetails { title: Some("A blog".into()), ..FeedDetails::default() }),
        next_poll_at: t(at + 15),
        next_poll_reason: PollReason::Interval,
    })
}

fn then(state: &Subscription, command: FeedCommand) -> Vec<FeedEvent> {
    decide(state, command).unwrap().into_iter().map(|d| d.event).collect()
}

fn fold(events: &[FeedEvent]) -> Subscription {
    Subscription::from_events(events)
}

#[test]
fn the_first_poll_discovers_every_post_and_converts_only_the_backfill_newest() {
    let state = fold(&[subscribed(2, true)]);
    let events =
        then(&state, poll(0, Some(vec![item("a", "h1", -30), item("b", "h2", -10), item("c", "h3", -20)])));
    let converted: Vec<(&str, bool, bool)> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::PostDiscovered(d) => Some((d.post_key.as_str(), d.convert, d.existing)),
            _ => None,
        })
        .collect();
    assert_eq!(converted, [("a", false, true), ("b", true, true), ("c", true, true)]);
    let FeedEvent::FeedPolled(polled) = events.last().unwrap() else { panic!("{events:?}") };
    assert_eq!((polled.items_seen, polled.new, polled.changed), (3, 3, 0));
    assert_eq!(polled.details.as_ref().unwrap().title.as_deref(), Some("A blog"));
}

#[test]
fn later_polls_convert_new_posts_and_revise_edited_ones_but_not_reordered_ones() {
    let mut history = vec![subscribed(0, true)];
    let state = fold(&history);
    history.extend(then(&state, poll(0, Some(vec![item("a", "h1", -30), item("b", "h2", -10)]))));
    let state = fold(&history);
    // Reordered and re-dated (published), nothing new: only the poll is recorded.
    let events = then(&state, poll(15, Some(vec![item("b", "h2", 99), item("a", "h1", -30)])));
    assert!(
        matches!(events[..], [FeedEvent::FeedPolled(ref p)] if p.new == 0 && p.changed == 0),
        "{events:?}"
    );
    // A new post and an edited one.
    let events = then(
        &state,
        poll(30, Some(vec![item("c", "h3", 20), item("a", "h1-edited", -30), item("b", "h2", -10)])),
    );
    assert!(
        matches!(&events[0], FeedEvent::PostDiscovered(d) if d.post_key == "c" && d.convert && !d.existing)
    );
    assert!(
        matches!(&events[1], FeedEvent::PostChanged(c) if c.post_key == "a" && c.previous_hash == "h1" && c.regenerate)
    );
    // A post whose updated date moved is changed too.
    let mut redated = item("b", "h2", -10);
    redated.updated_at = Some(t(25));
    let events = then(&state, poll(30, Some(vec![redated])));
    assert!(
        matches!(&events[0], FeedEvent::PostChanged(c) if c.post_key == "b" && c.updated_at == Some(t(25)))
    );
}

#[test]
fn a_subscription_that_does_not_convert_discovers_without_converting() {
    let mut history = vec![subscribed(0, false)];
    history.extend(then(&fold(&history), poll(0, Some(vec![]))));
    let events = then(&fold(&history), poll(15, Some(vec![item("new", "h", 10)])));
    assert!(matches!(&events[0], FeedEvent::PostDiscovered(d) if !d.convert));
}

#[test]
fn failures_back_off_and_a_permanent_one_pauses_with_its_reason() {
    let mut history = vec![subscribed(0, true)];
    history.extend(then(&fold(&history), poll(0, Some(vec![]))));
    let fail = |at: i64, kind: FailureKind| {
        FeedCommand::RecordFailure(PollFailure {
            at: t(at),
            source: PollSource::Poll,
            error: "Lector.NotFound".into(),
            cause: "HTTP 404".into(),
            kind,
            status: Some(404),
            retry_after: None,
        })
    };
    let mut waits = Vec::new();
    for n in 0..4 {
        let events = then(&fold(&history), fail(n * 10, FailureKind::Transient));
        let FeedEvent::FeedPollFailed(f) = &events[0] else { panic!("{events:?}") };
        assert_eq!(f.consecutive_failures, n as u32 + 1);
        waits.push((f.next_try_at - t(n * 10)).num_seconds());
        history.extend(events);
    }
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "each wait is longer: {waits:?}");
    // A 404 a week after the first failure pauses the subscription, saying why.
    let state = fold(&history);
    let events = then(&state, fail(7 * 24 * 60 + 1, FailureKind::Gone));
    assert!(matches!(&events[1], FeedEvent::FeedPaused(p) if p.automatic && p.reason.contains("HTTP 404")));
    history.extend(events);
    assert_eq!(
        decide(&fold(&history), poll(8 * 24 * 60, Some(vec![]))).unwrap_err(),
        FeedError::NotActive("paused")
    );
    // A success in between recovers by itself.
    let mut recovering = vec![subscribed(0, true)];
    recovering.extend(then(&fold(&recovering), fail(0, FailureKind::Transient)));
    recovering.extend(then(&fold(&recovering), poll(5, Some(vec![]))));
    assert_eq!(fold(&recovering).consecutive_failures, 0);
}

#[test]
fn settings_pause_resume_and_unsubscribe_follow_their_rules() {
    let history = vec![subscribed(0, true)];
    let state = fold(&history);
    let same = FeedSettingsChanged { auto_convert: Some(true), changed_by: "u".into(), ..Default::default() };
    assert!(then(&state, FeedCommand::ChangeSettings(same)).is_empty(), "a setting already so is no change");
    let slower = FeedSettingsChanged {
        interval_minutes: Some(60),
        auto_convert: Some(true),
        changed_by: "u".into(),
        ..Default::default()
    };
    let events = then(&state, FeedCommand::ChangeSettings(slower));
    assert!(
        matches!(&events[..], [FeedEvent::FeedSettingsChanged(c)] if c.interval_minutes == Some(60) && c.auto_convert.is_none())
    );
    let too_fast =
        FeedSettingsChanged { interval_minutes: Some(1), changed_by: "u".into(), ..Default::default() };
    assert!(matches!(decide(&state, FeedCommand::ChangeSettings(too_fast)), Err(FeedError::Invalid(_))));
    let paused = then(&state, FeedCommand::Pause { reason: "holiday".into(), by: "u".into() });
    let mut history = history.clone();
    history.extend(paused);
    assert!(then(&fold(&history), FeedCommand::Pause { reason: "again".into(), by: "u".into() }).is_empty());
    history.extend(then(&fold(&history), FeedCommand::Resume { by: "u".into(), at: t(5) }));
    assert!(fold(&history).is_due(t(5)), "resumed: polled at once");
    history.extend(then(&fold(&history), FeedCommand::Unsubscribe { by: "u".into() }));
    assert!(!fold(&history).is_active());
    // Subscribing the same URL while subscribed is nothing new.
    let FeedEvent::FeedSubscribed(again) = subscribed(0, true) else { unreachable!() };
    assert!(then(&fold(&[subscribed(0, true)]), FeedCommand::Subscribe(again)).is_empty());
}

#[test]
fn the_status_shows_failing_with_its_reason_and_next_try_then_recovers() {
    let store = MemoryEventStore::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let meta = |m: i64| EventMeta {
            occurred_at: t(m),
            correlation_id: feed_id().to_string(),
            causation_id: None,
        };
        let FeedEvent::FeedSubscribed(s) = subscribed(0, true) else { unreachable!() };
        execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta(0)).await.unwrap();
        let failure = PollFailure {
            at: t(1),
            source: PollSource::Poll,
            error: "Lector.Transient".into(),
            cause: "HTTP 503".into(),
            kind: FailureKind::Transient,
            status: Some(503),
            retry_after: Some(t(30)),
        };
        execute_feed(&store, &feed_id(), FeedCommand::RecordFailure(failure), &meta(1)).await.unwrap();
        let events = store.read_stream(&feed_id().stream(), 0).await.unwrap();
        let status = FeedStatus::fold(&events).unwrap().unwrap();
        assert_eq!(status.state, FeedState::Failing);
        assert_eq!(status.last_error.as_ref().unwrap().cause, "HTTP 503");
        assert!(status.next_poll_at >= t(30), "Retry-After is honoured");
        execute_feed(&store, &feed_id(), poll(31, Some(vec![item("a", "h", 0)])), &meta(31)).await.unwrap();
        let events = store.read_stream(&feed_id().stream(), 0).await.unwrap();
        let status = FeedStatus::fold(&events).unwrap().unwrap();
        assert_eq!((status.state, status.posts_seen, status.last_status), (FeedState::Active, 1, Some(200)));

        // The list follows the log, and a rebuild gives the same list.
        let index = MemoryFeedIndex::default();
        let read = rebuild_feeds(&index, &store).await.unwrap();
        assert_eq!(read as usize, events.len());
        assert_eq!(index.get(&feed_id()).await.unwrap().unwrap(), status);
        assert!(check_feeds(&index, &store).await.unwrap().is_empty());
        assert_eq!(index.due(t(31), 10).await.unwrap().len(), 0);
        assert_eq!(index.due(t(60), 10).await.unwrap().len(), 1);
    });
}

/// Two feeds subscribed, then each polled once a minute for `minutes` minutes with one new
/// post: their events interleaved in the log.
async fn two_feeds_polled(store: &MemoryEventStore, minutes: i64) -> Vec<FeedId> {
    let ids: Vec<FeedId> = ["https://a.example/feed", "https://b.example/feed"]
        .iter()
        .map(|u| FeedId::derive(&Url::parse(u).unwrap()))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let FeedEvent::FeedSubscribed(mut s) = subscribed(0, false) else { unreachable!() };
        s.feed_id = id.clone();
        s.url = Url::parse(&format!("https://{n}.example/feed")).unwrap();
        let meta = EventMeta { occurred_at: t(0), correlation_id: id.to_string(), causation_id: None };
        execute_feed(store, id, FeedCommand::Subscribe(s), &meta).await.unwrap();
    }
    for minute in 1..=minutes {
        for id in &ids {
            let meta =
                EventMeta { occurred_at: t(minute), correlation_id: id.to_string(), causation_id: None };
            let items = vec![item(&format!("post-{minute}"), &format!("h{minute}"), minute)];
            execute_feed(store, id, poll(minute, Some(items)), &meta).await.unwrap();
        }
    }
    ids
}

#[test]
fn the_list_folds_a_batch_of_events_as_it_folds_them_one_at_a_time() {
    let store = MemoryEventStore::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let ids = two_feeds_polled(&store, 4).await;
        let log = store.read_all(0, 1000).await.unwrap();
        assert!(log.len() > 10);

        let one_at_a_time = MemoryFeedIndex::default();
        for event in &log {
            project_feed(&one_at_a_time, &store, event).await.unwrap();
        }
        // In batches of 3, one batch delivered twice, and one batch missed before the next
        // (a gap: the status is folded from the stream).
        let batched = MemoryFeedIndex::default();
        let batches: Vec<&[lector_core::RecordedEvent]> = log.chunks(3).collect();
        for (n, batch) in batches.iter().enumerate() {
            if n == 2 {
                continue;
            }
            project_feeds(&batched, &store, batch).await.unwrap();
            if n == 1 {
                project_feeds(&batched, &store, batch).await.unwrap();
            }
        }
        for id in &ids {
            let expected = one_at_a_time.get(id).await.unwrap().unwrap();
            assert_eq!(batched.get(id).await.unwrap().unwrap(), expected);
            let events = store.read_stream(&id.stream(), 0).await.unwrap();
            assert_eq!(expected, FeedStatus::fold(&events).unwrap().unwrap());
        }
        assert!(check_feeds(&batched, &store).await.unwrap().is_empty());
    });
}

/// The list of subscriptions read through [`Feeds`], counting its reads.
struct CountedReads<'a> {
    feeds: Feeds<'a>,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ReadModel for CountedReads<'_> {
    type Key = FeedId;
    type Status = FeedStatus;
    fn key_of_stream(stream: &lector_core::StreamId) -> Option<FeedId> {
        Feeds::key_of_stream(stream)
    }
    fn key_of(status: &FeedStatus) -> FeedId {
        Feeds::key_of(status)
    }
    fn version_of(status: &FeedStatus) -> u64 {
        Feeds::version_of(status)
    }
    fn apply(
        status: Option<FeedStatus>,
        event: &lector_core::RecordedEvent,
    ) -> Result<Option<FeedStatus>, lector_core::event::DecodeError> {
        Feeds::apply(status, event)
    }
    async fn get_status(&self, key: &FeedId) -> Result<Option<FeedStatus>, IndexError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.feeds.get_status(key).await
    }
    async fn put_status(&self, status: &FeedStatus) -> Result<(), IndexError> {
        self.feeds.put_status(status).await
    }
    async fn put_statuses(&self, statuses: &[FeedStatus]) -> Result<(), IndexError> {
        self.feeds.put_statuses(statuses).await
    }
    async fn clear_all(&self) -> Result<(), IndexError> {
        self.feeds.clear_all().await
    }
    async fn every_status(&self) -> Result<Vec<FeedStatus>, IndexError> {
        self.feeds.every_status().await
    }
}

#[test]
fn a_projection_that_keeps_its_statuses_reads_each_once_and_never_stores_an_older_one() {
    let store = MemoryEventStore::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let ids = two_feeds_polled(&store, 6).await;
        let log = store.read_all(0, 1000).await.unwrap();
        let (first, rest) = log.split_at(log.len() / 2);
        let index = MemoryFeedIndex::default();
        let model = CountedReads { feeds: Feeds(&index), reads: Default::default() };
        let reads = || model.reads.load(std::sync::atomic::Ordering::SeqCst);

        // One projector, in batches of 3: each status is read once, the first time its feed
        // is met (absent then), and never again.
        let kept = KeptStatuses::default();
        for batch in first.chunks(3) {
            follow_all(&kept.over(&model), &store, batch).await.unwrap();
        }
        assert_eq!(reads(), 2);
        assert_eq!(kept.len(), 2);

        // Another projector (another process) folds the whole log meanwhile: the first one's
        // kept statuses are now behind the model's.
        let other = KeptStatuses::default();
        follow_all(&other.over(&model), &store, &log).await.unwrap();
        // What the first one delivers now (the rest, and an old batch again) leaves the model
        // where it is, and what it then keeps is no newer than the model.
        for batch in rest.chunks(3).chain(first.chunks(3).take(1)) {
            follow_all(&kept.over(&model), &store, batch).await.unwrap();
        }
        assert_eq!(reads(), 4, "read once by each projector");
        for id in &ids {
            let events = store.read_stream(&id.stream(), 0).await.unwrap();
            assert_eq!(index.get(id).await.unwrap(), FeedStatus::fold(&events).unwrap());
        }
        assert!(check_feeds(&index, &store).await.unwrap().is_empty());
    });
}

#[test]
fn two_pollers_racing_on_one_feed_discover_each_post_once() {
    let store = Arc::new(MemoryEventStore::new());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    rt.block_on(async {
        let meta = EventMeta { occurred_at: t(0), correlation_id: feed_id().to_string(), causation_id: None };
        let FeedEvent::FeedSubscribed(s) = subscribed(0, true) else { unreachable!() };
        execute_feed(&*store, &feed_id(), FeedCommand::Subscribe(s), &meta).await.unwrap();
        let items: Vec<FeedItem> = (0..150).map(|n| item(&format!("p{n}"), "h", n)).collect();
        let mut racers = Vec::new();
        for n in 0..4 {
            let (store, items, meta) = (store.clone(), items.clone(), meta.clone());
            racers.push(tokio::spawn(async move {
                execute_feed(&*store, &feed_id(), poll(n, Some(items)), &meta).await.unwrap()
            }));
        }
        for racer in racers {
            racer.await.unwrap();
        }
        let events = store.read_stream(&feed_id().stream(), 0).await.unwrap();
        let discovered = events.iter().filter(|e| e.event_type == "PostDiscovered").count();
        assert_eq!(discovered, 150, "each post once, though 150 posts take two appends per poll");
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>());
    });
}

/// Objects in a map: the snapshot's store for these tests.
#[derive(Default)]
struct MapObjects(std::sync::Mutex<std::collections::HashMap<String, bytes::Bytes>>);

#[async_trait::async_trait]
impl ObjectStore for MapObjects {
    async fn put(&self, key: &ObjectKey, body: bytes::Bytes, _: &str) -> Result<(), ObjectError> {
        self.0.lock().unwrap().insert(key.as_str().to_owned(), body);
        Ok(())
    }
    async fn get(&self, key: &ObjectKey) -> Result<bytes::Bytes, ObjectError> {
        self.0.lock().unwrap().get(key.as_str()).cloned().ok_or_else(|| ObjectError::NotFound(key.clone()))
    }
    async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<bytes::Bytes, ObjectError> {
        let all = self.get(key).await?;
        Ok(all.slice(start.min(all.len() as u64) as usize..end.min(all.len() as u64) as usize))
    }
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectError> {
        let objects = self.0.lock().unwrap();
        Ok(objects.get(key.as_str()).map(|b| ObjectMeta {
            key: key.clone(),
            size: b.len() as u64,
            content_type: None,
        }))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, ObjectError> {
        let objects = self.0.lock().unwrap();
        let mut keys: Vec<&String> = objects.keys().filter(|k| k.starts_with(prefix)).collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let key = ObjectKey::new(k).map_err(|e| ObjectError::Failed(e.to_string()))?;
                Ok(ObjectMeta { key, size: objects[k].len() as u64, content_type: None })
            })
            .collect()
    }
}

/// `polls` polls through the snapshot, as the PollFeed step makes them.
async fn poll_through_snapshots(store: &MemoryEventStore, objects: &MapObjects, polls: i64) -> u64 {
    let mut last_snapshot = 0;
    for n in 0..polls {
        let loaded = load_feed_snapshot(store, objects, &feed_id()).await.unwrap();
        last_snapshot = loaded.snapshot_version;
        let meta =
            EventMeta { occurred_at: t(n * 20), correlation_id: feed_id().to_string(), causation_id: None };
        let items = vec![item(&format!("p{n}"), "h", n * 20)];
        let done =
            execute_feed_on(store, &feed_id(), loaded.state, poll(n * 20, Some(items)), &meta).await.unwrap();
        save_feed_snapshot(objects, &feed_id(), &done, loaded.snapshot_version).await.unwrap();
    }
    last_snapshot
}

#[tokio::test]
async fn a_poll_folds_from_the_snapshot_and_gets_the_state_of_the_whole_stream() {
    let store = MemoryEventStore::new();
    let objects = MapObjects::default();
    let meta = EventMeta { occurred_at: t(0), correlation_id: feed_id().to_string(), causation_id: None };
    let FeedEvent::FeedSubscribed(s) = subscribed(0, true) else { unreachable!() };
    execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta).await.unwrap();

    let from = poll_through_snapshots(&store, &objects, 80).await;
    let (events, whole) = load_feed(&store, &feed_id()).await.unwrap();
    // 1 subscription + 80 × (a discovery, a conversion asked, the poll).
    assert!(events.len() as u64 > 2 * SNAPSHOT_EVERY, "{} events", events.len());
    assert!(from > 0, "the last polls started from a snapshot");
    assert!(
        whole.version - from <= SNAPSHOT_EVERY + 3,
        "read {} events past the snapshot",
        whole.version - from
    );
    let through = load_feed_snapshot(&store, &objects, &feed_id()).await.unwrap();
    assert_eq!(through.state, whole, "the snapshot and the events after it fold to the whole stream's state");
    assert_eq!(through.state.posts.len(), 80);
}

#[tokio::test]
async fn a_snapshot_that_is_not_of_this_stream_or_unreadable_is_ignored() {
    let store = MemoryEventStore::new();
    let objects = MapObjects::default();
    let meta = EventMeta { occurred_at: t(0), correlation_id: feed_id().to_string(), causation_id: None };
    let FeedEvent::FeedSubscribed(s) = subscribed(0, true) else { unreachable!() };
    execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta).await.unwrap();
    poll_through_snapshots(&store, &objects, 30).await;
    let (_, whole) = load_feed(&store, &feed_id()).await.unwrap();
    let key = ObjectKey::feed_snapshot(&feed_id());

    // Another log's snapshot (its last event is not this stream's), folded further than the log.
    let mut forged: FeedSnapshot = serde_json::from_slice(&objects.get(&key).await.unwrap()).unwrap();
    forged.last_event_id = lector_core::EventId::derive(&["another log"]);
    forged.state.posts.clear();
    objects.put(&key, serde_json::to_vec(&forged).unwrap().into(), "application/json").await.unwrap();
    let loaded = load_feed_snapshot(&store, &objects, &feed_id()).await.unwrap();
    assert_eq!((loaded.snapshot_version, &loaded.state), (0, &whole));

    // Another format, and bytes that are not a snapshot.
    forged.format = SNAPSHOT_FORMAT + 1;
    objects.put(&key, serde_json::to_vec(&forged).unwrap().into(), "application/json").await.unwrap();
    assert_eq!(load_feed_snapshot(&store, &objects, &feed_id()).await.unwrap().snapshot_version, 0);
    objects
        .put(&key, bytes::Bytes::from_static(b"{\"format\": 1, \"trunc"), "application/json")
        .await
        .unwrap();
    let loaded = load_feed_snapshot(&store, &objects, &feed_id()).await.unwrap();
    assert_eq!((loaded.snapshot_version, &loaded.state), (0, &whole));
}

/// A store that notes from which version each stream read starts.
struct ReadsNoted {
    store: MemoryEventStore,
    reads_after: std::sync::Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl EventStore for ReadsNoted {
    async fn append(
        &self,
        stream: &lector_core::StreamId,
        expected: lector_core::store::ExpectedVersion,
        events: Vec<lector_core::NewEvent>,
    ) -> Result<lector_core::store::AppendOutcome, lector_core::store::StoreError> {
        self.store.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &lector_core::StreamId,
        after: u64,
    ) -> Result<Vec<lector_core::RecordedEvent>, lector_core::store::StoreError> {
        self.reads_after.lock().unwrap().push(after);
        self.store.read_stream(stream, after).await
    }
    async fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<lector_core::RecordedEvent>, lector_core::store::StoreError> {
        self.store.read_all(after, limit).await
    }
}

#[tokio::test]
async fn a_poll_from_the_kept_subscription_reads_only_what_was_appended_since() {
    let store = ReadsNoted { store: MemoryEventStore::new(), reads_after: Default::default() };
    let objects = MapObjects::default();
    let folded = FoldedFeeds::default();
    let meta =
        |n: i64| EventMeta { occurred_at: t(n), correlation_id: feed_id().to_string(), causation_id: None };
    let FeedEvent::FeedSubscribed(s) = subscribed(0, true) else { unreachable!() };
    execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta(0)).await.unwrap();

    for n in 1..=6i64 {
        store.reads_after.lock().unwrap().clear();
        let loaded = load_feed_folded(&store, &objects, &folded, &feed_id()).await.unwrap();
        let (_, whole) = load_feed(&store.store, &feed_id()).await.unwrap();
        assert_eq!(
            loaded.state, whole,
            "poll {n}: the kept state and what came after fold to the whole stream's"
        );
        let reads = store.reads_after.lock().unwrap().clone();
        if n == 1 {
            assert_eq!(reads, vec![0], "nothing kept yet: the whole stream is read");
        } else {
            // Only what was appended after the last poll's own events: a pause and a resume.
            assert_eq!(reads, vec![whole.version - 2], "one read, of the two events after the last poll");
        }
        let items = vec![item(&format!("p{n}"), "h", n * 20)];
        let snapshot_version = loaded.snapshot_version;
        let done =
            execute_feed_on(&store, &feed_id(), loaded.state, poll(n * 20, Some(items)), &meta(n * 20))
                .await
                .unwrap();
        folded.keep(&feed_id(), SnapshotLoaded { state: done.state, snapshot_version });
        // Another writer (a user pausing and resuming) appends behind the poller's back.
        let pause = FeedCommand::Pause { reason: "a break".into(), by: "user".into() };
        execute_feed(&store, &feed_id(), pause, &meta(n * 20 + 1)).await.unwrap();
        let resume = FeedCommand::Resume { by: "user".into(), at: t(n * 20 + 2) };
        execute_feed(&store, &feed_id(), resume, &meta(n * 20 + 2)).await.unwrap();
    }
    let pause = FeedCommand::Pause { reason: "a break".into(), by: "user".into() };
    execute_feed(&store, &feed_id(), pause, &meta(200)).await.unwrap();
    let loaded = load_feed_folded(&store, &objects, &folded, &feed_id()).await.unwrap();
    assert!(!loaded.state.is_active(), "the pause, appended by another writer, is seen");
    assert_eq!(loaded.state.posts.len(), 6);
}

/// A poll decided on a state that another writer has since moved on conflicts at its append;
/// only what that writer appended is read, and the poll decided again on it: a change of
/// settings is kept under the poll, a pause refuses it.
#[tokio::test]
async fn a_conflicting_append_reads_only_what_others_appended_and_decides_again() {
    let store = ReadsNoted { store: MemoryEventStore::new(), reads_after: Default::default() };
    let meta =
        |n: i64| EventMeta { occurred_at: t(n), correlation_id: feed_id().to_string(), causation_id: None };
    let FeedEvent::FeedSubscribed(s) = subscribed(0, false) else { unreachable!() };
    let done = execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta(0)).await.unwrap();
    let reads = || std::mem::take(&mut *store.reads_after.lock().unwrap());

    // A user changes the interval after the poller loaded the subscription: the poll's append
    // conflicts, the change alone is read, and the poll is recorded after it.
    let loaded = done.state;
    let change = FeedSettingsChanged {
        voice: None,
        engine: None,
        auto_convert: None,
        regenerate_on_edit: None,
        interval_minutes: Some(60),
        owner: None,
        changed_by: "user".into(),
    };
    execute_feed(&store, &feed_id(), FeedCommand::ChangeSettings(change), &meta(10)).await.unwrap();
    reads();
    let behind = loaded.version;
    let items = vec![item("p1", "h", 15)];
    let done = execute_feed_on(&store, &feed_id(), loaded, poll(20, Some(items)), &meta(20)).await.unwrap();
    assert_eq!(reads(), vec![behind], "one read, of what was appended after the state's version");
    let (_, whole) = load_feed(&store.store, &feed_id()).await.unwrap();
    assert_eq!(done.state, whole, "the poll is decided on the stream as it is");
    assert_eq!(whole.settings.as_ref().unwrap().interval_minutes, 60, "the user's change is kept");
    assert_eq!(whole.posts.len(), 1, "and the poll's post recorded");

    // Paused after the poller loaded it: the poll is refused once the pause is read.
    let loaded = done.state;
    let pause = FeedCommand::Pause { reason: "a break".into(), by: "user".into() };
    execute_feed(&store, &feed_id(), pause, &meta(30)).await.unwrap();
    reads();
    let refused = execute_feed_on(&store, &feed_id(), loaded.clone(), poll(40, None), &meta(40)).await;
    assert!(matches!(refused, Err(FeedExecuteError::Rejected(_))), "{refused:?}");
    assert_eq!(reads(), vec![loaded.version], "only the pause was read");
    let events = store.store.read_stream(&feed_id().stream(), 0).await.unwrap();
    assert_eq!(events.last().unwrap().event_type, "FeedPaused", "nothing recorded after the pause");
}

#[tokio::test]
async fn kept_subscriptions_are_bounded_by_the_posts_they_know() {
    let store = MemoryEventStore::new();
    let meta = EventMeta { occurred_at: t(0), correlation_id: feed_id().to_string(), causation_id: None };
    let FeedEvent::FeedSubscribed(s) = subscribed(0, false) else { unreachable!() };
    let done = execute_feed(&store, &feed_id(), FeedCommand::Subscribe(s), &meta).await.unwrap();
    let items: Vec<FeedItem> = (0..9).map(|i| item(&format!("p{i}"), "h", i)).collect();
    let done = execute_feed_on(&store, &feed_id(), done.state, poll(20, Some(items)), &meta).await.unwrap();
    assert_eq!(done.state.posts.len(), 9);

    // Room for 25 posts: two subscriptions of 10 (9 posts and itself) fit, a third does not.
    let folded = FoldedFeeds::new(25);
    let ids: Vec<FeedId> =
        (0..3).map(|i| FeedId::derive(&Url::parse(&format!("https://b{i}.test/f")).unwrap())).collect();
    for id in &ids {
        folded.keep(id, SnapshotLoaded { state: done.state.clone(), snapshot_version: 0 });
    }
    assert!(folded.len() < 3, "{} kept", folded.len());
    assert!(!folded.contains(&ids[0]), "the least recently kept went first");
    assert!(folded.contains(&ids[2]), "the last kept stays");
    // One that alone knows more posts than the room is not kept at all.
    let small = FoldedFeeds::new(5);
    small.keep(&ids[0], SnapshotLoaded { state: done.state.clone(), snapshot_version: 0 });
    assert!(small.is_empty());
}

//! The outbox delivers each committed event, in order, at least once, and keeps its place
//! across restarts.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lector_core::{EventId, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use lector_local::db::Db;
use lector_local::event_store::SqliteEventStore;
use lector_local::outbox::{DeliveryError, Outbox, OutboxOptions, RetryPolicy, Subscriber};
use serde_json::json;

#[derive(Default)]
struct Recorder {
    name: String,
    only: Option<String>,
    seen: Mutex<Vec<u64>>,
    /// Positions that fail transiently this many more times.
    flaky: Mutex<Vec<(u64, u32)>>,
    poison: Vec<u64>,
}

impl Recorder {
    fn named(name: &str) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
    fn seen(&self) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Subscriber for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn wants(&self, _stream: &StreamId, event_type: &str) -> bool {
        self.only.as_ref().is_none_or(|t| t == event_type)
    }
    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        if self.poison.contains(&event.position) {
            return Err(DeliveryError::Permanent("cannot take this one".into()));
        }
        {
            let mut flaky = self.flaky.lock().unwrap();
            if let Some(entry) = flaky.iter_mut().find(|(p, n)| *p == event.position && *n > 0) {
                entry.1 -= 1;
                return Err(DeliveryError::Transient("busy".into()));
            }
        }
        self.seen.lock().unwrap().push(event.position);
        Ok(())
    }
}

fn options() -> OutboxOptions {
    OutboxOptions {
        retry: RetryPolicy {
            max_attempts: 5,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        batch: 3,
        poll_interval: Duration::from_millis(20),
        min_interval: Duration::from_millis(1),
    }
}

fn store_at(dir: &Path) -> SqliteEventStore {
    SqliteEventStore::new(Db::open(dir.join("lector.sqlite")).unwrap())
}

async fn append(store: &SqliteEventStore, stream: &str, n: u64, event_type: &str, at: DateTime<Utc>) {
    let s = StreamId::new(stream);
    let version = store.read_stream(&s, 0).await.unwrap().len() as u64;
    let events = (0..n)
        .map(|i| NewEvent {
            event_id: EventId::derive(&[stream, &(version + i).to_string()]),
            event_type: event_type.into(),
            schema_version: 1,
            occurred_at: at,
            correlation_id: stream.into(),
            causation_id: None,
            data: json!({"i": version + i}),
        })
        .collect();
    store.append(&s, ExpectedVersion(version), events).await.unwrap();
}

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000 + seconds, 0).unwrap()
}

#[tokio::test]
async fn delivers_in_order_and_a_restart_resumes_from_the_persisted_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 4, "Happened", t(0)).await;
    append(&store, "b", 3, "Happened", t(1)).await;

    let first = Arc::new(Recorder::named("projector"));
    let mut outbox = Outbox::new(store.clone(), options());
    outbox.subscribe(first.clone());
    assert_eq!(outbox.drain().await.unwrap(), 7);
    assert_eq!(first.seen(), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(outbox.cursor("projector").await.unwrap(), 7);

    // A new process on the same folder: nothing is delivered again, new events are.
    drop(outbox);
    let store = store_at(dir.path());
    append(&store, "a", 2, "Happened", t(2)).await;
    let second = Arc::new(Recorder::named("projector"));
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(second.clone());
    outbox.drain().await.unwrap();
    assert_eq!(second.seen(), vec![8, 9]);
}

#[tokio::test]
async fn a_transient_failure_is_retried_before_anything_later_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 3, "Happened", t(0)).await;
    let recorder = Arc::new(Recorder { flaky: Mutex::new(vec![(2, 3)]), ..Recorder::named("r") });
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(recorder.clone());
    outbox.drain().await.unwrap();
    assert_eq!(recorder.seen(), vec![1, 2, 3], "2 was retried until it went through, and 3 waited for it");
    assert!(outbox.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_does_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 3, "Happened", t(0)).await;
    let poisoned = Arc::new(Recorder { poison: vec![2], ..Recorder::named("p") });
    let exhausted = Arc::new(Recorder { flaky: Mutex::new(vec![(1, 100)]), ..Recorder::named("e") });
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(poisoned.clone()).subscribe(exhausted.clone());
    outbox.drain().await.unwrap();
    assert_eq!(poisoned.seen(), vec![1, 3]);
    assert_eq!(exhausted.seen(), vec![2, 3], "after its retries ran out, 1 was set aside");
    let dead: Vec<_> =
        outbox.dead_letters().await.unwrap().into_iter().map(|d| (d.subscriber, d.position)).collect();
    assert_eq!(dead, vec![("e".to_owned(), 1), ("p".to_owned(), 2)]);
}

#[tokio::test]
async fn subscribers_get_only_what_they_want_and_keep_their_own_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 2, "Wanted", t(0)).await;
    append(&store, "b", 2, "Other", t(0)).await;
    let picky = Arc::new(Recorder { only: Some("Wanted".into()), ..Recorder::named("picky") });
    let all = Arc::new(Recorder::named("all"));
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(picky.clone()).subscribe(all.clone());
    outbox.drain().await.unwrap();
    assert_eq!(picky.seen(), vec![1, 2]);
    assert_eq!(all.seen(), vec![1, 2, 3, 4]);
    assert_eq!(outbox.cursor("picky").await.unwrap(), 4, "skipped events move the cursor too");
}

#[tokio::test]
async fn a_running_outbox_delivers_new_commits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let recorder = Arc::new(Recorder::named("live"));
    let mut outbox =
        Outbox::new(store.clone(), OutboxOptions { poll_interval: Duration::from_secs(60), ..options() });
    outbox.subscribe(recorder.clone());
    let handle = outbox.start();
    append(&store, "a", 2, "Happened", t(0)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while recorder.seen().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
    assert_eq!(recorder.seen(), vec![1, 2], "the commit woke the outbox long before its 60 s poll");
}

#[tokio::test]
async fn replay_redelivers_events_since_a_time_without_moving_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 2, "Old", t(0)).await;
    append(&store, "b", 2, "New", t(100)).await;
    append(&store, "c", 1, "Other", t(100)).await;
    let recorder = Arc::new(Recorder::named("r"));
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(recorder.clone());
    outbox.drain().await.unwrap();
    assert_eq!(outbox.replay(t(50), &["New".to_owned()]).await.unwrap(), 2);
    assert_eq!(recorder.seen(), vec![1, 2, 3, 4, 5, 3, 4]);
    assert_eq!(outbox.cursor("r").await.unwrap(), 5);
}

/// A subscriber that takes batches, recording each batch it was handed, and refusing for good
/// any batch that holds its poison event.
struct Batcher {
    inner: Recorder,
    batches: Mutex<Vec<Vec<u64>>>,
}

#[async_trait]
impl Subscriber for Batcher {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn wants(&self, stream: &StreamId, event_type: &str) -> bool {
        self.inner.wants(stream, event_type)
    }
    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError> {
        self.inner.deliver(event).await
    }
    fn takes_batches(&self) -> bool {
        true
    }
    async fn deliver_all(&self, events: &[RecordedEvent]) -> Result<(), DeliveryError> {
        self.batches.lock().unwrap().push(events.iter().map(|e| e.position).collect());
        if events.iter().any(|e| self.inner.poison.contains(&e.position)) {
            return Err(DeliveryError::Permanent("a batch with the poison event".into()));
        }
        for event in events {
            self.inner.deliver(event).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_subscriber_that_takes_batches_gets_each_read_at_once_and_a_poison_event_alone_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    append(&store, "a", 3, "Wanted", t(0)).await;
    append(&store, "b", 1, "Other", t(0)).await;
    append(&store, "c", 2, "Wanted", t(0)).await;
    let batcher = Arc::new(Batcher {
        inner: Recorder { only: Some("Wanted".into()), poison: vec![5], ..Recorder::named("batcher") },
        batches: Mutex::new(Vec::new()),
    });
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(batcher.clone());
    outbox.drain().await.unwrap();
    // Reads of 3: [1 2 3] whole, [4 5 6] with 4 unwanted and 5 refusing the batch.
    assert_eq!(*batcher.batches.lock().unwrap(), vec![vec![1, 2, 3], vec![5, 6]]);
    assert_eq!(batcher.inner.seen(), vec![1, 2, 3, 6], "after the batch failed, 6 was delivered alone");
    let dead: Vec<u64> = outbox.dead_letters().await.unwrap().into_iter().map(|d| d.position).collect();
    assert_eq!(dead, vec![5]);
    assert_eq!(outbox.cursor("batcher").await.unwrap(), 6);
}

#[tokio::test]
async fn a_running_outbox_keeps_its_place_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let picky = Arc::new(Recorder { only: Some("Wanted".into()), ..Recorder::named("picky") });
    let mut outbox = Outbox::new(store.clone(), options());
    outbox.subscribe(picky.clone());
    let handle = outbox.start();
    append(&store, "a", 2, "Wanted", t(0)).await;
    append(&store, "b", 4, "Other", t(0)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while picky.seen().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let it read past the unwanted events too, then stop it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.shutdown().await;
    assert_eq!(picky.seen(), vec![1, 2]);

    let outbox = Outbox::new(store.clone(), options());
    assert_eq!(outbox.cursor("picky").await.unwrap(), 6, "stopping stored the place past the skipped events");
    append(&store, "a", 1, "Wanted", t(1)).await;
    let again = Arc::new(Recorder { only: Some("Wanted".into()), ..Recorder::named("picky") });
    let mut outbox = Outbox::new(store, options());
    outbox.subscribe(again.clone());
    outbox.drain().await.unwrap();
    assert_eq!(again.seen(), vec![7], "nothing delivered before the stop came again");
}

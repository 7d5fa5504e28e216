//! The outbox: delivers each committed event of the log, in order, at least once, to
//! in-process subscribers, with a cursor per subscriber persisted beside the log. It is the
//! local stand-in for the DynamoDB Stream → `publish-events` → EventBridge path: an event
//! reaches a subscriber only if it is in the log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use lector_core::{EventStore, RecordedEvent, StoreError, StreamId};
use rusqlite::params;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::DbError;
use crate::event_store::{SqliteEventStore, cursor, wanted_after};

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later (with backoff).
    #[error("transient: {0}")]
    Transient(String),
    /// This event can never be delivered to this subscriber: it goes to the dead letters and
    /// the subscriber moves on.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Something that reacts to the log: the workflow starter, a projection, a tail.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// A stable name: the cursor and the dead letters are kept under it.
    fn name(&self) -> &str;

    /// Whether the subscriber wants an event of this stream and type, as an EventBridge rule's
    /// pattern says (on the envelope: the events it does not want are not decoded for it).
    fn wants(&self, _stream: &StreamId, _event_type: &str) -> bool {
        true
    }

    /// Handle one event. Called at least once per wanted event, in log order.
    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError>;

    /// Whether [`Subscriber::deliver_all`] takes the wanted events of a batch at once.
    fn takes_batches(&self) -> bool {
        false
    }

    /// Handle the wanted events of one batch read from the log, in log order, all or nothing
    /// as far as the subscriber can tell (a projection storing them in one write). Called only
    /// when [`Subscriber::takes_batches`] says so; when it fails for good, the batch is
    /// delivered again one event at a time, so that an event that cannot be taken is set aside
    /// alone.
    async fn deliver_all(&self, events: &[RecordedEvent]) -> Result<(), DeliveryError> {
        for event in events {
            self.deliver(event).await?;
        }
        Ok(())
    }
}

/// How stubbornly a transient failure is retried before the event is dead-lettered.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, first_delay: Duration::from_millis(100), max_delay: Duration::from_secs(30) }
    }
}

/// The settings of a running outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxOptions {
    pub retry: RetryPolicy,
    /// Events read per query.
    pub batch: usize,
    /// How often to look for events written by another process (commits through this process
    /// wake the outbox at once).
    pub poll_interval: Duration,
    /// The least time between two reads of the log by one subscriber: commits closer together
    /// than this are read and delivered as one batch, rather than one read per commit.
    pub min_interval: Duration,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            batch: 256,
            poll_interval: Duration::from_millis(500),
            min_interval: Duration::from_millis(10),
        }
    }
}

/// An event a subscriber could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub subscriber: String,
    pub position: u64,
    pub event_id: String,
    pub error: String,
    pub failed_at: String,
}

/// The dispatcher: one delivery loop per subscriber.
pub struct Outbox {
    store: SqliteEventStore,
    subscribers: Vec<Arc<dyn Subscriber>>,
    options: OutboxOptions,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("subscribers", &self.subscribers.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}

/// Running delivery loops; stop them with [`OutboxHandle::shutdown`].
#[derive(Debug)]
pub struct OutboxHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl OutboxHandle {
    /// Stop after the deliveries in progress and wait for the loops to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Outbox {
    pub fn new(store: SqliteEventStore, options: OutboxOptions) -> Self {
        Self { store, subscribers: Vec::new(), options }
    }

    pub fn subscribe(&mut self, subscriber: Arc<dyn Subscriber>) -> &mut Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Start one delivery loop per subscriber.
    pub fn start(self) -> OutboxHandle {
        let (stop, stopped) = watch::channel(false);
        let tasks = self
            .subscribers
            .into_iter()
            .map(|subscriber| {
                let worker = Worker { store: self.store.clone(), subscriber, options: self.options };
                let stopped = stopped.clone();
                tokio::spawn(async move { worker.run(stopped).await })
            })
            .collect();
        OutboxHandle { stop, tasks }
    }

    /// Deliver everything committed so far to every subscriber, then return how many events
    /// were delivered. For commands that run once and for tests.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut delivered = 0;
        let (_never, stopped) = watch::channel(false);
        for subscriber in &self.subscribers {
            let worker =
                Worker { store: self.store.clone(), subscriber: subscriber.clone(), options: self.options };
            delivered += worker.catch_up(&mut Place::default(), &stopped, true).await?;
        }
        Ok(delivered)
    }

    /// Deliver again, to every subscriber that wants them, the stored events that occurred at
    /// or after `since` and whose type is in `types` (all types when empty), without moving any
    /// cursor: for subscribers that missed events. Returns how many deliveries were made.
    pub async fn replay(&self, since: DateTime<Utc>, types: &[String]) -> Result<usize, StoreError> {
        let mut deliveries = 0;
        let mut after = 0;
        loop {
            let batch = self.store.read_all(after, self.options.batch).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            for event in batch.iter().filter(|e| e.occurred_at >= since) {
                if !types.is_empty() && !types.contains(&event.event_type) {
                    continue;
                }
                for subscriber in
                    self.subscribers.iter().filter(|s| s.wants(&event.stream_id, &event.event_type))
                {
                    let worker = Worker {
                        store: self.store.clone(),
                        subscriber: subscriber.clone(),
                        options: self.options,
                    };
                    let (_never, stopped) = watch::channel(false);
                    worker.deliver_with_retries(event, &stopped).await?;
                    deliveries += 1;
                }
            }
        }
        Ok(deliveries)
    }

    /// The persisted cursor of a subscriber.
    pub async fn cursor(&self, subscriber: &str) -> Result<u64, StoreError> {
        let name = subscriber.to_owned();
        self.store.db().read(move |c| cursor(c, &name).map_err(|e| StoreError::from(DbError::from(e)))).await
    }

    /// The events subscribers gave up on.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.store
            .db()
            .read(|c| {
                let mut stmt = c
                    .prepare(
                        "SELECT subscriber, position, event_id, error, failed_at FROM outbox_dead_letters \
                         ORDER BY position, subscriber",
                    )
                    .map_err(DbError::from)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(DeadLetter {
                            subscriber: r.get(0)?,
                            position: r.get::<_, i64>(1)? as u64,
                            event_id: r.get(2)?,
                            error: r.get(3)?,
                            failed_at: r.get(4)?,
                        })
                    })
                    .map_err(DbError::from)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(|e| StoreError::from(DbError::from(e)))
            })
            .await
    }
}

struct Worker {
    store: SqliteEventStore,
    subscriber: Arc<dyn Subscriber>,
    options: OutboxOptions,
}

/// A subscriber's cursor is written after each batch in which it took an event, and otherwise
/// once this many events it did not want have gone by since the last write (and when the
/// outbox stops or drains), rather than after every event: a cursor write is a transaction,
/// and most subscribers want few of the events (a poll's `FeedPolled` is wanted by the list of
/// subscriptions alone). A restart may then deliver again what the last batch delivered, which
/// at-least-once delivery allows, and reads again at most this many unwanted events.
const SKIPPED_PER_CURSOR_WRITE: u64 = 1_000;

/// Where a worker stands in the log, and what its stored cursor says.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    position: u64,
    saved: u64,
}

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut committed = self.store.subscribe();
        let name = self.subscriber.name().to_owned();
        let mut place = Place::default();
        while !*stopped.borrow() {
            let read_at = tokio::time::Instant::now();
            match self.catch_up(&mut place, &stopped, false).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(subscriber = %name, error = %e, "outbox could not read the log"),
            }
            tokio::select! {
                _ = committed.changed() => {}
                _ = stopped.changed() => {}
                _ = tokio::time::sleep(self.options.poll_interval) => {}
            }
            // Let the commits of the next few milliseconds join this one's batch.
            tokio::select! {
                _ = tokio::time::sleep_until(read_at + self.options.min_interval) => {}
                _ = stopped.changed() => {}
            }
        }
        if place.position > place.saved
            && let Err(e) = self.save_cursor(place.position).await
        {
            tracing::warn!(subscriber = %name, error = %e, "outbox could not store its cursor on stopping");
        }
    }

    /// Deliver everything after the cursor; returns the number of events delivered. `place` is
    /// kept between calls (the stored cursor wins when it is further on); `drain` stores the
    /// cursor at the end whatever was skipped.
    async fn catch_up(
        &self,
        place: &mut Place,
        stopped: &watch::Receiver<bool>,
        drain: bool,
    ) -> Result<usize, StoreError> {
        let mut at = *place;
        let mut delivered = 0;
        loop {
            // The stored cursor is read with each batch, in the same read: another process's
            // outbox on the same log (a command beside `lector serve`) may have moved it on.
            let name = self.subscriber.name().to_owned();
            let (after, limit) = (at.position, self.options.batch);
            let subscriber = self.subscriber.clone();
            let (stored, read) = self
                .store
                .db()
                .read(move |c| {
                    let stored = cursor(c, &name).map_err(|e| StoreError::from(DbError::from(e)))?;
                    let wants = |stream: &StreamId, event_type: &str| subscriber.wants(stream, event_type);
                    Ok::<_, StoreError>((stored, wanted_after(c, after.max(stored), limit, &wants)?))
                })
                .await?;
            if stored > at.position {
                at = Place { position: stored, saved: stored };
            }
            at.saved = at.saved.max(stored);
            let last_batch = read.rows < self.options.batch;
            let mut took = false;
            let wanted = read.events;
            if self.subscriber.takes_batches()
                && !*stopped.borrow()
                && !wanted.is_empty()
                && self.deliver_all_with_retries(&wanted, stopped).await
            {
                delivered += wanted.len();
                took = true;
                at.position = read.last.unwrap_or(at.position);
            }
            let from = at.position;
            for event in wanted.iter().filter(|e| e.position > from) {
                if *stopped.borrow() {
                    break;
                }
                self.deliver_with_retries(event, stopped).await?;
                delivered += 1;
                took = true;
                at.position = event.position;
            }
            if !*stopped.borrow() {
                at.position = at.position.max(read.last.unwrap_or(at.position));
            }
            let done = last_batch || *stopped.borrow();
            let skipped_enough = at.position - at.saved >= SKIPPED_PER_CURSOR_WRITE;
            if at.position > at.saved && (took || skipped_enough || (drain && done)) {
                self.save_cursor(at.position).await?;
                at.saved = at.position;
            }
            *place = at;
            if done {
                return Ok(delivered);
            }
        }
    }

    /// Deliver the wanted events of a batch at once, retrying transient failures; `false` when
    /// they were not taken (the batch is then delivered one event at a time).
    async fn deliver_all_with_retries(
        &self,
        events: &[RecordedEvent],
        stopped: &watch::Receiver<bool>,
    ) -> bool {
        match self.retrying(stopped, || self.subscriber.deliver_all(events)).await {
            Ok(()) => true,
            Err(error) => {
                tracing::info!(subscriber = self.subscriber.name(), events = events.len(), %error,
                    "delivery of a batch failed; delivering its events one at a time");
                false
            }
        }
    }

    async fn deliver_with_retries(
        &self,
        event: &RecordedEvent,
        stopped: &watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        match self.retrying(stopped, || self.subscriber.deliver(event)).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::error!(subscriber = self.subscriber.name(), position = event.position, %error,
                    "delivery failed for good; dead-lettered");
                self.dead_letter(event, &error.to_string()).await
            }
        }
    }

    /// Run `delivery` until it succeeds, fails for good, or its transient failures use up the
    /// retry policy (or the outbox stops); the error it ended with.
    async fn retrying<F, Fut>(
        &self,
        stopped: &watch::Receiver<bool>,
        delivery: F,
    ) -> Result<(), DeliveryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), DeliveryError>>,
    {
        let policy = self.options.retry;
        let mut delay = policy.first_delay;
        let mut attempt = 1;
        loop {
            match delivery().await {
                Err(DeliveryError::Transient(why)) if attempt < policy.max_attempts && !*stopped.borrow() => {
                    tracing::info!(subscriber = self.subscriber.name(), attempt, %why, "delivery failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(policy.max_delay);
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn save_cursor(&self, position: u64) -> Result<(), StoreError> {
        let name = self.subscriber.name().to_owned();
        self.store
            .db()
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO outbox_cursors (subscriber, position) VALUES (?1, ?2) \
                     ON CONFLICT (subscriber) DO UPDATE SET position = MAX(position, excluded.position)",
                )
                .and_then(|mut st| st.execute(params![name, position as i64]))
                .map(|_| ())
                .map_err(|e| StoreError::from(DbError::from(e)))
            })
            .await
    }

    async fn dead_letter(&self, event: &RecordedEvent, error: &str) -> Result<(), StoreError> {
        let (name, position, event_id, error) =
            (self.subscriber.name().to_owned(), event.position, event.event_id.to_string(), error.to_owned());
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        self.store
            .db()
            .write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO outbox_dead_letters (subscriber, position, event_id, error, failed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name, position as i64, event_id, error, now],
                )
                .map(|_| ())
                .map_err(|e| StoreError::from(DbError::from(e)))
            })
            .await
    }
}

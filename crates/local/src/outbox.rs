//! The outbox: delivers each committed event of the log, in order, at least once, to
//! in-process subscribers, with a cursor per subscriber persisted beside the log. It is the
//! local stand-in for the DynamoDB Stream → `publish-events` → EventBridge path: an event
//! reaches a subscriber only if it is in the log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use lector_core::{EventStore, RecordedEvent, StoreError};
use rusqlite::params;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::DbError;
use crate::event_store::{SqliteEventStore, cursor};

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

    /// Whether the subscriber wants this event, as an EventBridge rule's pattern says.
    fn wants(&self, _event: &RecordedEvent) -> bool {
        true
    }

    /// Handle one event. Called at least once per wanted event, in log order.
    async fn deliver(&self, event: &RecordedEvent) -> Result<(), DeliveryError>;
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
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self { retry: RetryPolicy::default(), batch: 256, poll_interval: Duration::from_millis(500) }
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
            delivered += worker.catch_up(&stopped).await?;
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
                for subscriber in self.subscribers.iter().filter(|s| s.wants(event)) {
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

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut committed = self.store.subscribe();
        let name = self.subscriber.name().to_owned();
        while !*stopped.borrow() {
            match self.catch_up(&stopped).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(subscriber = %name, error = %e, "outbox could not read the log"),
            }
            tokio::select! {
                _ = committed.changed() => {}
                _ = stopped.changed() => {}
                _ = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// Deliver everything after the cursor; returns the number of events delivered.
    async fn catch_up(&self, stopped: &watch::Receiver<bool>) -> Result<usize, StoreError> {
        let name = self.subscriber.name().to_owned();
        let mut position = {
            let name = name.clone();
            self.store
                .db()
                .read(move |c| cursor(c, &name).map_err(|e| StoreError::from(DbError::from(e))))
                .await?
        };
        let mut delivered = 0;
        loop {
            let batch = self.store.read_all(position, self.options.batch).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            for event in &batch {
                if *stopped.borrow() {
                    return Ok(delivered);
                }
                if self.subscriber.wants(event) {
                    self.deliver_with_retries(event, stopped).await?;
                    delivered += 1;
                }
                position = event.position;
                self.save_cursor(position).await?;
            }
        }
    }

    async fn deliver_with_retries(
        &self,
        event: &RecordedEvent,
        stopped: &watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let policy = self.options.retry;
        let mut delay = policy.first_delay;
        let mut attempt = 1;
        loop {
            match self.subscriber.deliver(event).await {
                Ok(()) => return Ok(()),
                Err(DeliveryError::Transient(why)) if attempt < policy.max_attempts && !*stopped.borrow() => {
                    tracing::info!(subscriber = self.subscriber.name(), position = event.position, attempt, %why,
                        "delivery failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(policy.max_delay);
                    attempt += 1;
                }
                Err(error) => {
                    tracing::error!(subscriber = self.subscriber.name(), position = event.position, %error,
                        "delivery failed for good; dead-lettered");
                    return self.dead_letter(event, &error.to_string()).await;
                }
            }
        }
    }

    async fn save_cursor(&self, position: u64) -> Result<(), StoreError> {
        let name = self.subscriber.name().to_owned();
        self.store
            .db()
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO outbox_cursors (subscriber, position) VALUES (?1, ?2) \
                     ON CONFLICT (subscriber) DO UPDATE SET position = MAX(position, excluded.position)",
                    params![name, position as i64],
                )
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

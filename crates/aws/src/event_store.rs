//! The event log on DynamoDB: one item per event, optimistic appends in one transaction, and a
//! global position in commit order.
//!
//! # Layout
//!
//! | item | `stream_id` (partition) | `version` (sort) | other attributes |
//! |---|---|---|---|
//! | an event | the stream | 1, 2, 3, ... | `position`, `bucket`, `event_id`, `type`, `schema_version`, `occurred_at`, `correlation_id`, `causation_id`, `data` (the JSON text, so it reads back exactly) |
//! | the position counter | `$position` | 0 | `position`: the last position given |
//!
//! The global secondary index [`POSITION_INDEX`] is keyed by `bucket` (`position /
//! BUCKET_SIZE`) and `position`, with every attribute projected, so `read_all` pages through the
//! buckets in order without touching the table.
//!
//! # Appends
//!
//! One `TransactWriteItems` holds a `Put` per event with `attribute_not_exists` (a taken
//! version fails the whole append: a conflict, never an overwrite), a `ConditionCheck` that the
//! expected version exists (no gaps), and an `Update` of the counter conditioned on the value the
//! writer last saw. A writer whose counter value is stale learns the current one from the
//! cancellation reason and tries again at once; so positions are given in commit order, and they
//! are dense (1, 2, 3, ...: the counter only moves with the events), which lets a reader of the
//! eventually consistent index tell a lagging index (a gap) from the end of the log: `read_all`
//! stops at the first gap and the caller reads again later.
//!
//! The events, the check and the counter make `n + 2` items, and a transaction takes 100. An
//! append of 99 events ([`MAX_EVENTS_PER_APPEND`]) at a version above 0 checks that the expected
//! version exists with a consistent read before the transaction instead: items are never
//! updated or deleted, so a version once seen stays there.
//!
//! # What it costs at scale
//!
//! Every append of every stream updates the one counter item, so the whole log takes at most
//! what one partition takes (about 1,000 write units a second; a transactional write costs two)
//! and concurrent appends of different streams race on the counter. A conversion writes a few
//! dozen events, so this is hundreds of conversions a second, far above Lector's use. Past that,
//! the global order would come from the table's DynamoDB Stream (ordered per stream only)
//! instead of a counter.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use lector_core::store::MAX_EVENTS_PER_APPEND;
use lector_core::{
    AppendOutcome, EventId, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId,
};
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::sdk::Failure;

/// The index that orders every event by its global position.
pub const POSITION_INDEX: &str = "by-position";
/// Positions per index partition. Writes go to one bucket at a time whatever its size (the
/// counter is the bottleneck anyway); larger buckets mean fewer queries for a reader.
pub const BUCKET_SIZE: u64 = 10_000;
/// Stream ids starting with this are the store's own items and refused for events.
pub const RESERVED_PREFIX: char = '$';
const COUNTER_STREAM: &str = "$position";

const STREAM: &str = "stream_id";
const VERSION: &str = "version";
const POSITION: &str = "position";
const BUCKET: &str = "bucket";

/// The most items a `TransactWriteItems` takes.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Times in a row a writer may find the counter moved before it reports the log as too busy.
const MAX_COUNTER_RACES: u32 = 200;
/// Transaction conflicts, throttling and 5xx: retried inside the store before `Unavailable`.
const TRANSIENT: Backoff =
    Backoff { base: Duration::from_millis(5), cap: Duration::from_millis(500), attempts: 8 };

/// One event as stored: what [`serde_dynamo`] writes to the table and reads back from the
/// table and from the stream's images alike.
#[derive(Debug, Serialize, Deserialize)]
struct EventItem {
    stream_id: String,
    version: u64,
    position: u64,
    bucket: u64,
    event_id: EventId,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<String>,
    /// The data as JSON text: DynamoDB maps and numbers would not give back the exact JSON.
    data: String,
}

impl EventItem {
    fn new(stream: &StreamId, version: u64, position: u64, event: &NewEvent) -> Self {
        Self {
            stream_id: stream.as_str().to_owned(),
            version,
            position,
            bucket: position / BUCKET_SIZE,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            correlation_id: event.correlation_id.clone(),
            causation_id: event.causation_id.clone(),
            data: event.data.to_string(),
        }
    }

    fn into_recorded(self) -> Result<RecordedEvent, ItemError> {
        let data = serde_json::from_str(&self.data).map_err(|e| ItemError::Data {
            stream: self.stream_id.clone(),
            version: self.version,
            reason: e.to_string(),
        })?;
        Ok(RecordedEvent {
            event_id: self.event_id,
            stream_id: StreamId::new(self.stream_id),
            version: self.version,
            position: self.position,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data,
        })
    }
}

/// Why an item (from the table or a stream image) is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// An attribute is missing or has the wrong type.
    #[error("not an event item: {0}")]
    Shape(String),
    /// The `data` attribute is not JSON.
    #[error("event {stream}#{version} has data that is not JSON: {reason}")]
    Data { stream: String, version: u64, reason: String },
}

impl From<ItemError> for StoreError {
    fn from(e: ItemError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// The event an item of the table holds.
pub fn recorded_from_item(item: HashMap<String, AttributeValue>) -> Result<RecordedEvent, ItemError> {
    let parsed: EventItem = serde_dynamo::from_item(item).map_err(|e| ItemError::Shape(e.to_string()))?;
    parsed.into_recorded()
}

/// The event a DynamoDB Stream record's `NEW_IMAGE` holds, or `None` when the image is one of
/// the store's own items (the position counter), which is not an event.
pub fn recorded_from_image(image: &serde_dynamo::Item) -> Result<Option<RecordedEvent>, ItemError> {
    if let Some(serde_dynamo::AttributeValue::S(stream)) = image.get(STREAM)
        && stream.starts_with(RESERVED_PREFIX)
    {
        return Ok(None);
    }
    let parsed: EventItem =
        serde_dynamo::from_item(image.clone()).map_err(|e| ItemError::Shape(e.to_string()))?;
    parsed.into_recorded().map(Some)
}

/// The event log on a DynamoDB table laid out as the module doc says.
#[derive(Debug)]
pub struct DynamoEventStore {
    client: Client,
    table: String,
    /// The counter's value as this writer last saw it: the guess each transaction is
    /// conditioned on. Only ever moves up.
    last_position: AtomicU64,
    /// What this process knows of each stream's tail, and the turn its appends take.
    tails: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<Tail>>>>,
}

/// Streams whose tail one store remembers.
const MAX_CACHED_STREAMS: usize = 1_024;
/// Events per stream it remembers.
const TAIL_EVENTS: usize = 64;

/// The last versions of a stream this process has seen written. Versions are never updated
/// or deleted, so what is known here stays true; it may only be behind.
#[derive(Debug, Default)]
struct Tail {
    /// The highest version known to exist (0: none known).
    version: u64,
    /// The events at `version - recent.len() + 1 ..= version`.
    recent: VecDeque<NewEvent>,
}

impl Tail {
    /// Whether `events` at `expected + 1..` are the ones known there: `Some(false)` as soon as
    /// one known version holds another event, `Some(true)` when all are known and the same,
    /// `None` when that takes a read.
    fn matches(&self, expected: u64, events: &[NewEvent]) -> Option<bool> {
        let first_known = self.version + 1 - self.recent.len() as u64;
        let mut all_known = true;
        for (i, event) in events.iter().enumerate() {
            let version = expected + 1 + i as u64;
            if version < first_known || version > self.version {
                all_known = false;
                continue;
            }
            let known = &self.recent[(version - first_known) as usize];
            let same = known.event_id == event.event_id
                && known.event_type == event.event_type
                && known.data == event.data;
            if !same {
                return Some(false);
            }
        }
        all_known.then_some(true)
    }

    /// `events` are at `expected + 1..`.
    fn extend(&mut self, expected: u64, events: &[NewEvent]) {
        if expected < self.version {
            return;
        }
        if expected > self.version {
            self.recent.clear();
        }
        self.recent.extend(events.iter().cloned());
        self.version = expected + events.len() as u64;
        while self.recent.len() > TAIL_EVENTS {
            self.recent.pop_front();
        }
    }

    /// The stream is at least at `version`, with events not seen here.
    fn advance_to(&mut self, version: u64) {
        if version > self.version {
            self.recent.clear();
            self.version = version;
        }
    }
}

impl DynamoEventStore {
    /// A store on `table`, which must exist with the layout of [`create_table`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            last_position: AtomicU64::new(0),
            tails: Mutex::new(HashMap::new()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn unavailable(&self, what: &str, failure: &Failure) -> StoreError {
        StoreError::Unavailable(format!("{what} on table {}: {}", self.table, failure.message))
    }

    /// Appends of one stream from this process take turns, and what they learn about the
    /// stream's tail answers the appends that are sure to conflict (or were already made)
    /// without a transaction. Other processes' appends are caught by DynamoDB's conditions.
    async fn append_in_turn(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let tail = self.tail(stream);
        let mut tail = tail.lock().await;
        if expected < tail.version {
            match tail.matches(expected, events) {
                Some(true) => {
                    return Ok(AppendOutcome::AlreadyAppended {
                        last_version: expected + events.len() as u64,
                    });
                }
                Some(false) => {
                    return Err(StoreError::Conflict {
                        stream: stream.clone(),
                        expected,
                        actual: tail.version,
                    });
                }
                None => {}
            }
        }
        let result = self.append_events(stream, expected, events, expected <= tail.version).await;
        match &result {
            Ok(_) => tail.extend(expected, events),
            Err(StoreError::Conflict { actual, .. }) => tail.advance_to(*actual),
            Err(_) => {}
        }
        result
    }

    fn tail(&self, stream: &StreamId) -> Arc<tokio::sync::Mutex<Tail>> {
        let mut tails = self.tails.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if tails.len() >= MAX_CACHED_STREAMS && !tails.contains_key(stream) {
            // Forget the streams no append is using right now.
            tails.retain(|_, tail| Arc::strong_count(tail) > 1);
        }
        tails.entry(stream.clone()).or_default().clone()
    }

    /// Append with the transaction of the module doc, retrying counter races and transient
    /// failures; a taken or missing version is resolved by [`Self::resolve_conflict`].
    async fn append_events(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
        expected_exists: bool,
    ) -> Result<AppendOutcome, StoreError> {
        let n = events.len();
        let must_check = expected > 0 && !expected_exists;
        let check_in_transaction = must_check && n + 2 <= MAX_TRANSACTION_ITEMS;
        if must_check && !check_in_transaction && !self.version_exists(stream, expected).await? {
            return self.resolve_conflict(stream, expected, events, None).await;
        }
        let mut counter_races = 0;
        let mut transient_retries = 0;
        loop {
            let before = self.last_position.load(Ordering::SeqCst);
            let items = self.transaction(stream, expected, events, before, check_in_transaction)?;
            let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
            let err = match sent {
                Ok(_) => {
                    self.last_position.fetch_max(before + n as u64, Ordering::SeqCst);
                    return Ok(AppendOutcome::Appended {
                        first_version: expected + 1,
                        last_version: expected + n as u64,
                    });
                }
                Err(err) => err,
            };
            match self.classify(&err, n, check_in_transaction) {
                TxOutcome::StreamConflict(stored) => {
                    return self.resolve_conflict(stream, expected, events, stored).await;
                }
                TxOutcome::CounterMoved(seen) => {
                    counter_races += 1;
                    if counter_races >= MAX_COUNTER_RACES {
                        return Err(StoreError::Unavailable(format!(
                            "the position counter of table {} moved {counter_races} times in a row under \
                             this append: the log is too busy, retry later",
                            self.table
                        )));
                    }
                    let current = match seen {
                        Some(p) => p,
                        None => self.read_counter().await?,
                    };
                    // Stored, not maxed: a table made anew starts again from 0.
                    self.last_position.store(current, Ordering::SeqCst);
                    if counter_races > 3 {
                        // Many writers in step: spread them a little.
                        tokio::time::sleep(Duration::from_micros(rand::random_range(0..2_000))).await;
                    }
                }
                TxOutcome::Transient(reason) => {
                    transient_retries += 1;
                    if transient_retries >= TRANSIENT.attempts {
                        return Err(StoreError::Unavailable(format!(
                            "append to {stream} on table {} failed {transient_retries} times: {reason}",
                            self.table
                        )));
                    }
                    tracing::debug!(%stream, transient_retries, %reason, "append retried");
                    TRANSIENT.sleep(transient_retries).await;
                }
                TxOutcome::Invalid(reason) => return Err(StoreError::Invalid(reason)),
                TxOutcome::Failed(failure) => return Err(self.unavailable("TransactWriteItems", &failure)),
            }
        }
    }

    fn transaction(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
        before: u64,
        check_expected: bool,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let n = events.len() as u64;
        let mut items = Vec::with_capacity(events.len() + 2);
        for (i, event) in events.iter().enumerate() {
            let i = i as u64;
            let item = serde_dynamo::to_item(EventItem::new(stream, expected + 1 + i, before + 1 + i, event))
                .map_err(|e| {
                    StoreError::Invalid(format!("event {} cannot be stored: {e}", event.event_id))
                })?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#s)")
                .expression_attribute_names("#s", STREAM)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if check_expected {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(STREAM, AttributeValue::S(stream.as_str().to_owned()))
                .key(VERSION, AttributeValue::N(expected.to_string()))
                .condition_expression("attribute_exists(#s)")
                .expression_attribute_names("#s", STREAM)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let counter = Update::builder()
            .table_name(&self.table)
            .key(STREAM, AttributeValue::S(COUNTER_STREAM.to_owned()))
            .key(VERSION, AttributeValue::N("0".to_owned()))
            .update_expression("SET #p = :after")
            .expression_attribute_names("#p", POSITION)
            .expression_attribute_values(":after", AttributeValue::N((before + n).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let counter = if before == 0 {
            counter.condition_expression("attribute_not_exists(#p)")
        } else {
            counter
                .condition_expression("#p = :before")
                .expression_attribute_values(":before", AttributeValue::N(before.to_string()))
        };
        let counter = counter.build().map_err(|e| StoreError::Invalid(e.to_string()))?;
        items.push(TransactWriteItem::builder().update(counter).build());
        Ok(items)
    }

    /// What a failed transaction means. The reasons come in the order of the items: the events,
    /// then the check if there is one, then the counter.
    fn classify(
        &self,
        err: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
        n: usize,
        has_check: bool,
    ) -> TxOutcome {
        if let SdkError::ServiceError(ctx) = err
            && let TransactWriteItemsError::TransactionCanceledException(cancelled) = ctx.err()
        {
            return classify_cancellation(cancelled.cancellation_reasons(), n, has_check);
        }
        let failure = Failure::of(err);
        if failure.transient {
            TxOutcome::Transient(failure.message)
        } else if failure.code_is("ValidationException") {
            // Item too large, transaction over 4 MB, ...: the same append fails the same way.
            TxOutcome::Invalid(format!("DynamoDB refused the append: {}", failure.message))
        } else {
            TxOutcome::Failed(failure)
        }
    }

    /// The stream moved on or never reached `expected`: either these very events are already at
    /// `expected + 1..` (a retried append) or it is a conflict at the stream's actual version.
    async fn resolve_conflict(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
        stored: Option<Vec<HashMap<String, AttributeValue>>>,
    ) -> Result<AppendOutcome, StoreError> {
        let last = expected + events.len() as u64;
        let stored = match stored {
            // The cancellation gave back the items at those versions: no need to read them.
            Some(items) => items.into_iter().map(recorded_from_item).collect::<Result<Vec<_>, _>>()?,
            None => self.query_stream(stream, expected, Some(last)).await?,
        };
        if stored.len() == events.len() && stored.iter().zip(events).all(|(s, e)| s.is_same_as(e)) {
            return Ok(AppendOutcome::AlreadyAppended { last_version: last });
        }
        let actual = self.last_version(stream).await?;
        Err(StoreError::Conflict { stream: stream.clone(), expected, actual })
    }

    async fn version_exists(&self, stream: &StreamId, version: u64) -> Result<bool, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(STREAM, AttributeValue::S(stream.as_str().to_owned()))
            .key(VERSION, AttributeValue::N(version.to_string()))
            .projection_expression("#v")
            .expression_attribute_names("#v", VERSION)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", &Failure::of(&e)))?;
        Ok(got.item().is_some())
    }

    async fn read_counter(&self) -> Result<u64, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(STREAM, AttributeValue::S(COUNTER_STREAM.to_owned()))
            .key(VERSION, AttributeValue::N("0".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("GetItem", &Failure::of(&e)))?;
        Ok(got.item().and_then(position_of).unwrap_or(0))
    }

    /// The stream's last version, 0 when it has none.
    async fn last_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", STREAM)
            .expression_attribute_values(":s", AttributeValue::S(stream.as_str().to_owned()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.unavailable("Query", &Failure::of(&e)))?;
        match out.items().first().and_then(|item| item.get(VERSION)) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("version '{n}' of {stream} is not a number"))),
            Some(other) => {
                Err(StoreError::Corrupt(format!("version of {stream} is not a number: {other:?}")))
            }
        }
    }

    /// Events of `stream` after `after` up to `until` (inclusive), consistently, following
    /// every page.
    async fn query_stream(
        &self,
        stream: &StreamId,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (condition, mut values) = match until {
            Some(until) => (
                "#s = :s AND #v BETWEEN :from AND :until",
                HashMap::from([
                    (":from".to_owned(), AttributeValue::N((after + 1).to_string())),
                    (":until".to_owned(), AttributeValue::N(until.to_string())),
                ]),
            ),
            None => (
                "#s = :s AND #v > :after",
                HashMap::from([(":after".to_owned(), AttributeValue::N(after.to_string()))]),
            ),
        };
        values.insert(":s".to_owned(), AttributeValue::S(stream.as_str().to_owned()));
        let mut events = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .expression_attribute_names("#s", STREAM)
                .expression_attribute_names("#v", VERSION)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.unavailable("Query", &Failure::of(&e)))?;
            for item in out.items() {
                events.push(recorded_from_item(item.clone())?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(events),
            }
        }
    }
}

fn position_of(item: &HashMap<String, AttributeValue>) -> Option<u64> {
    match item.get(POSITION) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A failed transaction, as the append loop acts on it.
#[derive(Debug)]
enum TxOutcome {
    /// An event's version is taken, or the expected version does not exist; with the items
    /// found at every version of the append when the service returned them all.
    StreamConflict(Option<Vec<HashMap<String, AttributeValue>>>),
    /// Only the counter had moved; its current value when the service said so.
    CounterMoved(Option<u64>),
    /// Another transaction on the same items, throttling, a 5xx: retry after a while.
    Transient(String),
    Invalid(String),
    Failed(Failure),
}

/// The reasons come in the order of the items: `events` puts, the check when there is one,
/// then the counter.
fn classify_cancellation(reasons: &[CancellationReason], events: usize, has_check: bool) -> TxOutcome {
    let code = |r: &CancellationReason| r.code().unwrap_or("None").to_owned();
    let failed = |r: &CancellationReason| r.code() == Some("ConditionalCheckFailed");
    let stream_items = events + usize::from(has_check);
    if reasons.iter().take(stream_items).any(failed) {
        let puts = &reasons[..events.min(reasons.len())];
        let stored = (puts.len() == events && puts.iter().all(failed))
            .then(|| puts.iter().map(|r| r.item().cloned()).collect::<Option<Vec<_>>>())
            .flatten();
        return TxOutcome::StreamConflict(stored);
    }
    if let Some(counter) = reasons.get(stream_items)
        && counter.code() == Some("ConditionalCheckFailed")
    {
        return TxOutcome::CounterMoved(counter.item().and_then(position_of));
    }
    let codes: Vec<String> = reasons.iter().map(code).filter(|c| c != "None").collect();
    if codes.iter().any(|c| c == "ValidationError") {
        let messages: Vec<&str> = reasons.iter().filter_map(|r| r.message()).collect();
        return TxOutcome::Invalid(format!("DynamoDB refused the append: {}", messages.join("; ")));
    }
    TxOutcome::Transient(format!("transaction cancelled: {}", codes.join(", ")))
}

#[async_trait]
impl EventStore for DynamoEventStore {
    #[tracing::instrument(skip(self, events), fields(table = %self.table, n = events.len()))]
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid(format!("an append to {stream} carries no event")));
        }
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::Invalid(format!(
                "an append to {stream} carries {} events; at most {MAX_EVENTS_PER_APPEND} are written atomically",
                events.len()
            )));
        }
        if stream.as_str().starts_with(RESERVED_PREFIX) || stream.as_str().is_empty() {
            return Err(StoreError::Invalid(format!(
                "stream id '{stream}' is reserved: stream ids may not be empty or start with '{RESERVED_PREFIX}'"
            )));
        }
        self.append_in_turn(stream, expected.0, &events).await
    }

    async fn read_stream(&self, stream: &StreamId, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.query_stream(stream, after, None).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        let mut next = after + 1;
        while events.len() < limit {
            let bucket = next / BUCKET_SIZE;
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let want = (limit - events.len()).min(1_000) as i32;
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(POSITION_INDEX)
                    .key_condition_expression("#b = :b AND #p >= :next")
                    .expression_attribute_names("#b", BUCKET)
                    .expression_attribute_names("#p", POSITION)
                    .expression_attribute_values(":b", AttributeValue::N(bucket.to_string()))
                    .expression_attribute_values(":next", AttributeValue::N(next.to_string()))
                    .limit(want)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| self.unavailable("Query", &Failure::of(&e)))?;
                for item in out.items() {
                    let event = recorded_from_item(item.clone())?;
                    if event.position != next {
                        // Positions are dense: a gap is an index that has not caught up yet.
                        return Ok(events);
                    }
                    events.push(event);
                    next += 1;
                    if events.len() == limit {
                        return Ok(events);
                    }
                }
                match out.last_evaluated_key() {
                    Some(key) if !key.is_empty() => start = Some(key.clone()),
                    _ => break,
                }
            }
            if next / BUCKET_SIZE == bucket {
                // The bucket ended before its last position: that is the end of the log.
                return Ok(events);
            }
        }
        Ok(events)
    }
}

/// Create an event table with the layout of the module doc: on-demand, with a stream of new
/// images for `publish-events`; waits until it is active. The deployed table comes from
/// `template.yaml`; this is for tests and local tools.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(t).build()
    };
    let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
    let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
    let index = GlobalSecondaryIndex::builder()
        .index_name(POSITION_INDEX)
        .key_schema(key(BUCKET, KeyType::Hash).map_err(invalid)?)
        .key_schema(key(POSITION, KeyType::Range).map_err(invalid)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(invalid)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(STREAM, ScalarAttributeType::S).map_err(invalid)?)
        .attribute_definitions(attr(VERSION, ScalarAttributeType::N).map_err(invalid)?)
        .attribute_definitions(attr(BUCKET, ScalarAttributeType::N).map_err(invalid)?)
        .attribute_definitions(attr(POSITION, ScalarAttributeType::N).map_err(invalid)?)
        .key_schema(key(STREAM, KeyType::Hash).map_err(invalid)?)
        .key_schema(key(VERSION, KeyType::Range).map_err(invalid)?)
        .global_secondary_indexes(index)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(invalid)?,
        )
        .send()
        .await
        .map_err(|e| StoreError::Unavailable(format!("CreateTable {table}: {}", Failure::of(&e).message)))?;
    for _ in 0..120 {
        let described = client.describe_table().table_name(table).send().await.map_err(|e| {
            StoreError::Unavailable(format!("DescribeTable {table}: {}", Failure::of(&e).message))
        })?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!("table {table} did not become active within a minute")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn a_taken_version_is_a_stream_conflict_even_when_the_counter_also_moved() {
        let reasons = [reason("None"), reason("ConditionalCheckFailed"), reason("ConditionalCheckFailed")];
        assert!(matches!(classify_cancellation(&reasons, 1, true), TxOutcome::StreamConflict(None)));
        let taken = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item(VERSION, AttributeValue::N("1".into()))
            .build();
        let reasons = [taken, reason("ConditionalCheckFailed")];
        assert!(
            matches!(classify_cancellation(&reasons, 1, false), TxOutcome::StreamConflict(Some(items)) if items.len() == 1)
        );
    }

    #[test]
    fn a_moved_counter_reports_its_current_value() {
        let counter = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item(POSITION, AttributeValue::N("41".into()))
            .build();
        let reasons = [reason("None"), counter];
        assert!(matches!(classify_cancellation(&reasons, 1, false), TxOutcome::CounterMoved(Some(41))));
    }

    #[test]
    fn transaction_conflicts_and_throttling_are_transient() {
        for code in ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"] {
            let reasons = [reason(code), reason("None")];
            assert!(matches!(classify_cancellation(&reasons, 1, false), TxOutcome::Transient(_)), "{code}");
        }
        let reasons = [reason("ValidationError"), reason("None")];
        assert!(matches!(classify_cancellation(&reasons, 1, false), TxOutcome::Invalid(_)));
    }

    #[test]
    fn stream_images_read_back_as_recorded_events_and_the_counter_is_skipped() {
        let event = NewEvent {
            event_id: EventId::derive(&["image"]),
            event_type: "ConversionStarted".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_750_000_000, 123_000_000).unwrap(),
            correlation_id: "c".into(),
            causation_id: None,
            data: serde_json::json!({"execution_id": "e", "attempt": 1, "big": 9_007_199_254_740_993_u64}),
        };
        let stream = StreamId::new("conversion-x");
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(EventItem::new(&stream, 3, 12_345, &event)).unwrap();
        assert_eq!(item.get(BUCKET), Some(&AttributeValue::N("1".into())));
        // The stream's image is the same item in the Lambda event's JSON form.
        let image: serde_dynamo::Item =
            serde_dynamo::to_item(EventItem::new(&stream, 3, 12_345, &event)).unwrap();
        let back = recorded_from_image(&image).unwrap().unwrap();
        assert!(back.is_same_as(&event));
        assert_eq!((back.version, back.position, back.stream_id.clone()), (3, 12_345, stream));
        assert_eq!(back.occurred_at, event.occurred_at);
        assert_eq!(recorded_from_item(item).unwrap(), back);

        let mut counter = HashMap::new();
        counter.insert(STREAM.to_owned(), serde_dynamo::AttributeValue::S(COUNTER_STREAM.into()));
        counter.insert(POSITION.to_owned(), serde_dynamo::AttributeValue::N("5".into()));
        assert_eq!(recorded_from_image(&serde_dynamo::Item::from(counter)).unwrap(), None);
    }

    fn new_event(key: &str) -> NewEvent {
        NewEvent {
            event_id: EventId::derive(&[key]),
            event_type: "T".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(0, 0).unwrap(),
            correlation_id: "c".into(),
            causation_id: None,
            data: serde_json::json!(key),
        }
    }

    #[test]
    fn a_known_tail_answers_only_what_it_knows() {
        let mut tail = Tail::default();
        let (a, b, c) = (new_event("a"), new_event("b"), new_event("c"));
        assert_eq!(tail.matches(0, std::slice::from_ref(&a)), None);
        tail.extend(0, &[a.clone(), b.clone()]);
        assert_eq!(tail.version, 2);
        assert_eq!(tail.matches(0, &[a.clone(), b.clone()]), Some(true));
        assert_eq!(tail.matches(1, std::slice::from_ref(&b)), Some(true));
        assert_eq!(tail.matches(1, std::slice::from_ref(&c)), Some(false));
        // Known to be the same so far, but version 3 is not known: ask the table.
        assert_eq!(tail.matches(1, &[b.clone(), c.clone()]), None);
        tail.advance_to(10);
        assert_eq!((tail.version, tail.recent.len()), (10, 0));
        assert_eq!(tail.matches(0, std::slice::from_ref(&a)), None);
        tail.extend(10, std::slice::from_ref(&c));
        assert_eq!(tail.matches(10, std::slice::from_ref(&c)), Some(true));
        for i in 0..200 {
            let v = tail.version;
            tail.extend(v, &[new_event(&i.to_string())]);
        }
        assert_eq!(tail.recent.len(), TAIL_EVENTS);
        assert_eq!(tail.matches(10, std::slice::from_ref(&c)), None, "forgotten, not contradicted");
    }

    #[test]
    fn a_damaged_image_is_a_named_error() {
        let mut image = HashMap::new();
        image.insert(STREAM.to_owned(), serde_dynamo::AttributeValue::S("conversion-x".into()));
        image.insert(VERSION.to_owned(), serde_dynamo::AttributeValue::S("not a number".into()));
        assert!(matches!(recorded_from_image(&serde_dynamo::Item::from(image)), Err(ItemError::Shape(_))));
    }
}

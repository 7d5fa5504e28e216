//! The list of subscriptions on DynamoDB: one item per subscribed feed, with global secondary
//! indexes that list the feeds newest first (all of them, or the ones in one state) and find
//! the ones due for a poll, soonest first.
//!
//! # Layout
//!
//! | attribute | what |
//! |---|---|
//! | `feed_id` (partition key) | the feed |
//! | `status` | the [`FeedStatus`] as JSON text, so it reads back exactly |
//! | `version` | the stream version the status was folded up to; a put never lowers it |
//! | `sort_key` | `<created_at, RFC 3339 with nanoseconds>|<feed id>`: newest first is descending |
//! | `listed` | always [`LISTED`]: the one partition of [`BY_CREATED`] |
//! | `state` | `active`, `failing`, `paused` or `unsubscribed` |
//! | `polled` | [`POLLED`] while the feed is polled (active or failing), absent otherwise: the sparse partition of [`BY_DUE`] |
//! | `due_key` | `<next_poll_at, RFC 3339 with nanoseconds>|<feed id>`: soonest due is ascending |
//!
//! # Why the indexes project keys only
//!
//! Every poll moves a feed's next poll, so every poll rewrites its item. An index that
//! projected the status would be rewritten with it, at the status's size, in every index; an
//! index that projects only its keys is written only when its keys change: [`BY_CREATED`] never
//! after the first put, [`BY_STATE`] when the state changes, and [`BY_DUE`] once a poll with a
//! small delete and put of the key. A page of keys is then read from the table with
//! `BatchGetItem` (consistent reads): a list page of at most 100 feeds, or the due feeds of a
//! polling run. The statuses so read are the table's, not the index's, which is eventually
//! consistent: [`FeedIndex::due`] checks each one again (still polled, still due) and a list by
//! state leaves out a feed whose state has just moved on.
//!
//! # Cursors
//!
//! A cursor is the `sort_key` of the last feed of a page, base64url-encoded; the next page asks
//! the index for keys below it. A cursor this index did not make is
//! [`IndexError::InvalidCursor`].
//!
//! # What it costs at scale
//!
//! [`BY_CREATED`] and [`BY_DUE`] each have one partition. A partition takes about 1,000 writes
//! a second; [`BY_DUE`] takes two small writes per poll, so one partition serves about 500
//! polls a second, some 450,000 feeds polled every 15 minutes, far above Lector's use. Past
//! that, shard `polled` (`due-0` … `due-n` by a hash of the feed id) and query the shards in
//! turn.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use lector_core::FeedId;
use lector_core::feed::FeedStatus;
use lector_core::feed::index::{FeedIndex, FeedPage, FeedQuery};
use lector_core::index::IndexError;

use crate::sdk::Failure;
use crate::table::{self, Item};

/// The feed table's name, in the functions' environment.
pub const FEED_TABLE_VAR: &str = "LECTOR_FEED_TABLE";

/// Every subscription, newest first.
pub const BY_CREATED: &str = "by-created";
/// The subscriptions in one state, newest first.
pub const BY_STATE: &str = "by-state";
/// The polled subscriptions, soonest due first.
pub const BY_DUE: &str = "by-due";
/// The value of `listed`, the single partition of [`BY_CREATED`].
pub const LISTED: &str = "all";
/// The value of `polled` while a feed is polled, the single partition of [`BY_DUE`].
pub const POLLED: &str = "due";

const ID: &str = "feed_id";
const STATUS: &str = "status";
const VERSION: &str = "version";
const SORT_KEY: &str = "sort_key";
const LISTED_ATTR: &str = "listed";
const STATE: &str = "state";
const POLLED_ATTR: &str = "polled";
const DUE_KEY: &str = "due_key";

/// Each index as `(name, partition attribute, sort attribute)`, for the table's definition
/// (here and in `template.yaml`).
pub const INDEXES: [(&str, &str, &str); 3] =
    [(BY_CREATED, LISTED_ATTR, SORT_KEY), (BY_STATE, STATE, SORT_KEY), (BY_DUE, POLLED_ATTR, DUE_KEY)];

/// [`FeedIndex`] on a DynamoDB table laid out as the module doc says.
#[derive(Debug, Clone)]
pub struct DynamoFeedIndex {
    client: Client,
    table: String,
}

/// Times as keys: one fixed-width form, so that text order is time order.
fn key_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn sort_key(status: &FeedStatus) -> String {
    format!("{}|{}", key_time(status.created_at), status.feed_id)
}

fn due_key(status: &FeedStatus) -> String {
    format!("{}|{}", key_time(status.next_poll_at), status.feed_id)
}

/// The cursor of a page that ended at the sort key `key`.
fn cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The sort key a cursor made by [`cursor`] stands for; anything else is refused.
fn sort_key_of_cursor(cursor: &str) -> Result<String, IndexError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| IndexError::InvalidCursor)?;
    let key = String::from_utf8(bytes).map_err(|_| IndexError::InvalidCursor)?;
    let (at, id) = key.split_once('|').ok_or(IndexError::InvalidCursor)?;
    let parsed = DateTime::parse_from_rfc3339(at).map_err(|_| IndexError::InvalidCursor)?;
    if key_time(parsed.with_timezone(&Utc)) != at || id.parse::<FeedId>().is_err() {
        return Err(IndexError::InvalidCursor);
    }
    Ok(key)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn is_condition_failed(
    err: &SdkError<PutItemError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)))
}

/// A page of an index: the keys of the items found, in the index's order.
struct KeyPage {
    keys: Vec<Item>,
    /// Whether the index holds more past these.
    more: bool,
}

impl DynamoFeedIndex {
    /// The index on `table`, which must exist with the layout of [`create_table`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn error(&self, op: &str, failure: &Failure) -> IndexError {
        table::index_error(&self.table, op, failure)
    }

    fn item(status: &FeedStatus) -> Result<Item, IndexError> {
        let json = serde_json::to_string(status).map_err(|e| {
            IndexError::Failed(format!("the subscription {} cannot be written: {e}", status.feed_id))
        })?;
        let mut item = HashMap::from([
            (ID.to_owned(), s(status.feed_id.as_str())),
            (STATUS.to_owned(), s(json)),
            (VERSION.to_owned(), AttributeValue::N(status.version.to_string())),
            (SORT_KEY.to_owned(), s(sort_key(status))),
            (LISTED_ATTR.to_owned(), s(LISTED)),
            (STATE.to_owned(), s(status.state.as_str())),
            (DUE_KEY.to_owned(), s(due_key(status))),
        ]);
        if status.state.is_polled() {
            item.insert(POLLED_ATTR.to_owned(), s(POLLED));
        }
        Ok(item)
    }

    fn status_of(item: &Item) -> Result<FeedStatus, IndexError> {
        let json = item
            .get(STATUS)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| IndexError::Failed(format!("an item of the feed table has no '{STATUS}'")))?;
        serde_json::from_str(json)
            .map_err(|e| IndexError::Failed(format!("a stored subscription is damaged: {e}")))
    }

    fn id_of(item: &Item) -> Option<&str> {
        item.get(ID).and_then(|v| v.as_s().ok()).map(String::as_str)
    }

    /// Up to `want` keys of `index` in the order asked, where the partition attribute is
    /// `partition` and the sort attribute passes `bound` (`("<", key)`, `("<=", key)`), all
    /// pages followed until `want` are found or the index ends.
    async fn query_keys(
        &self,
        index: &str,
        partition: (&str, &str),
        bound: Option<(&str, &str, String)>,
        forward: bool,
        want: usize,
    ) -> Result<KeyPage, IndexError> {
        let mut key_condition = "#p = :p".to_owned();
        let mut names = HashMap::from([("#p".to_owned(), partition.0.to_owned())]);
        let mut values = HashMap::from([(":p".to_owned(), s(partition.1))]);
        if let Some((attribute, op, value)) = bound {
            key_condition.push_str(&format!(" AND #k {op} :k"));
            names.insert("#k".into(), attribute.into());
            values.insert(":k".into(), s(value));
        }
        let mut keys = Vec::with_capacity(want);
        let mut start: Option<Item> = None;
        loop {
            let out = table::retrying(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(index)
                    .key_condition_expression(&key_condition)
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .scan_index_forward(forward)
                    .limit(i32::try_from(want - keys.len()).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start.clone())
                    .send()
            })
            .await
            .map_err(|failure| self.error("Query", &failure))?;
            keys.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(last) if !last.is_empty() && keys.len() < want => start = Some(last.clone()),
                Some(last) if !last.is_empty() => return Ok(KeyPage { keys, more: true }),
                _ => return Ok(KeyPage { keys, more: false }),
            }
        }
    }

    /// The statuses of the items `keys` name, in the order of `keys`; a key whose item is gone
    /// is left out.
    async fn statuses(&self, keys: &[Item]) -> Result<Vec<FeedStatus>, IndexError> {
        let table_keys: Vec<Item> = keys
            .iter()
            .filter_map(|k| Self::id_of(k).map(|id| HashMap::from([(ID.to_owned(), s(id))])))
            .collect();
        let mut by_id: HashMap<String, FeedStatus> = HashMap::with_capacity(table_keys.len());
        for item in table::batch_get(&self.client, &self.table, &table_keys).await? {
            let status = Self::status_of(&item)?;
            by_id.insert(status.feed_id.as_str().to_owned(), status);
        }
        Ok(keys.iter().filter_map(|k| Self::id_of(k).and_then(|id| by_id.remove(id))).collect())
    }
}

#[async_trait]
impl FeedIndex for DynamoFeedIndex {
    async fn get(&self, id: &FeedId) -> Result<Option<FeedStatus>, IndexError> {
        let out = table::retrying(|| {
            self.client
                .get_item()
                .table_name(&self.table)
                .key(ID, s(id.as_str()))
                .consistent_read(true)
                .send()
        })
        .await
        .map_err(|failure| self.error("GetItem", &failure))?;
        out.item().map(Self::status_of).transpose()
    }

    /// A conditional put: written only when the table holds no status of the feed or an older
    /// one, so deliveries out of order never lower a status.
    async fn put(&self, status: &FeedStatus) -> Result<(), IndexError> {
        let item = Self::item(status)?;
        table::retrying(|| async {
            let sent = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#id) OR #v < :v")
                .expression_attribute_names("#id", ID)
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::N(status.version.to_string()))
                .send()
                .await;
            match sent {
                // The same or a later version is there already.
                Err(e) if is_condition_failed(&e) => Ok(()),
                other => other.map(drop),
            }
        })
        .await
        .map_err(|failure| self.error("PutItem", &failure))
    }

    async fn list(&self, query: &FeedQuery) -> Result<FeedPage, IndexError> {
        let limit = query.limit.clamp(1, 100);
        let before = query.cursor.as_deref().map(sort_key_of_cursor).transpose()?;
        let bound = before.map(|key| (SORT_KEY, "<", key));
        let page = match query.state {
            Some(state) => self.query_keys(BY_STATE, (STATE, state.as_str()), bound, false, limit).await?,
            None => self.query_keys(BY_CREATED, (LISTED_ATTR, LISTED), bound, false, limit).await?,
        };
        let next_cursor = if page.more {
            page.keys.last().and_then(|k| k.get(SORT_KEY)).and_then(|v| v.as_s().ok()).map(|k| cursor(k))
        } else {
            None
        };
        let mut feeds = self.statuses(&page.keys).await?;
        // The index may lag the table by a moment: a feed whose state has just moved on is no
        // longer one of this state's.
        if let Some(state) = query.state {
            feeds.retain(|f| f.state == state);
        }
        Ok(FeedPage { feeds, next_cursor })
    }

    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<FeedStatus>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Every due key of a time at or before `now`: '~' sorts after the '|' that ends the
        // time and after every feed id.
        let upto = format!("{}~", key_time(now));
        let page =
            self.query_keys(BY_DUE, (POLLED_ATTR, POLLED), Some((DUE_KEY, "<", upto)), true, limit).await?;
        let mut due = self.statuses(&page.keys).await?;
        // The table's status, not the index's: still polled and still due.
        due.retain(|f| f.state.is_polled() && f.next_poll_at <= now);
        Ok(due)
    }

    async fn clear(&self) -> Result<(), IndexError> {
        let keys = table::scan_keys(&self.client, &self.table, ID).await?;
        table::delete_keys(&self.client, &self.table, &keys).await
    }
}

/// Create a feed table with the layout of the module doc (on demand) and wait until it is
/// active. The deployed table comes from `template.yaml`; this is for tests and local tools.
pub async fn create_table(client: &Client, table: &str) -> Result<(), IndexError> {
    let failed = |e: aws_sdk_dynamodb::error::BuildError| IndexError::Failed(e.to_string());
    let attr = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
    };
    let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(ID).map_err(failed)?)
        .key_schema(key(ID, KeyType::Hash).map_err(failed)?);
    let mut defined = vec![ID];
    for (name, partition, sort) in INDEXES {
        for attribute in [partition, sort] {
            if !defined.contains(&attribute) {
                defined.push(attribute);
                request = request.attribute_definitions(attr(attribute).map_err(failed)?);
            }
        }
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(partition, KeyType::Hash).map_err(failed)?)
                .key_schema(key(sort, KeyType::Range).map_err(failed)?)
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()
                .map_err(failed)?,
        );
    }
    request
        .send()
        .await
        .map_err(|e| IndexError::Unavailable(format!("CreateTable {table}: {}", Failure::of(&e).message)))?;
    for _ in 0..120 {
        let described = client.describe_table().table_name(table).send().await.map_err(|e| {
            IndexError::Unavailable(format!("DescribeTable {table}: {}", Failure::of(&e).message))
        })?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(IndexError::Unavailable(format!("table {table} did not become active within a minute")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_sort_keys_this_index_made() {
        let key = "2026-01-02T03:04:05.000000000Z|0123456789abcdef";
        assert_eq!(sort_key_of_cursor(&cursor(key)).unwrap(), key);
        for bad in [
            "not-a-cursor".to_owned(),
            cursor("2026-01-02T03:04:05Z|0123456789abcdef"),
            cursor("2026-01-02T03:04:05.000000000Z|nope"),
            cursor("|0123456789abcdef"),
            key.to_owned(),
        ] {
            assert!(matches!(sort_key_of_cursor(&bad), Err(IndexError::InvalidCursor)), "{bad} accepted");
        }
    }

    #[test]
    fn due_keys_order_by_time_then_feed_and_the_bound_takes_the_whole_instant() {
        let at = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let bound = format!("{}~", key_time(at));
        let same = format!("{}|ffffffffffffffff", key_time(at));
        let later = format!("{}|0000000000000000", key_time(at + chrono::Duration::nanoseconds(1)));
        assert!(same < bound && bound < later);
    }
}

//! The list projection on DynamoDB: one item per conversion, with global secondary indexes that
//! list conversions newest first, all of them, by feed, or by state.
//!
//! # Layout
//!
//! | attribute | what |
//! |---|---|
//! | `conversion_id` (partition key) | the conversion |
//! | `status` | the [`ConversionStatus`] as JSON text, so it reads back exactly |
//! | `version` | the stream version the status was folded up to; a put never lowers it |
//! | `sort_key` | `<created_at, RFC 3339 with nanoseconds>|<conversion id>`: newest first is descending |
//! | `listed` | always [`LISTED`]: the one partition of [`BY_CREATED`] |
//! | `feed_id` | the feed, when the conversion came from one (sparse in [`BY_FEED`]) |
//! | `state` | `requested`, `processing`, `completed` or `failed` |
//!
//! Every index is keyed by its partition attribute and `sort_key` and projects every attribute,
//! so a page is one `Query` (or a few, past 1 MB) and never a second read. A feed and a state
//! together query [`BY_FEED`] with a filter on `state`, paging on until the page is full.
//!
//! A cursor is the `sort_key` of the last conversion of a page; the next page asks for keys
//! below it. Global secondary indexes are eventually consistent: a list may lag a status put a
//! moment ago by a fraction of a second, which a read model may do (one conversion's status is
//! always folded from its own stream).
//!
//! # What it costs at scale
//!
//! [`BY_CREATED`] has one partition, so listing everything shares one partition's write rate
//! (about 1,000 writes a second); a conversion writes its status a few dozen times, so that is
//! tens of conversions started every second, above Lector's use. Past that, shard `listed` by
//! day and query the days in turn.

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
use chrono::SecondsFormat;
use lector_core::index::{ConversionIndex, IndexError, ListPage, ListQuery};
use lector_core::{ConversionId, ConversionStatus};

use crate::sdk::Failure;
use crate::table;

/// The list table's name, in the functions' environment.
pub const INDEX_TABLE_VAR: &str = "LECTOR_INDEX_TABLE";

/// Every conversion, newest first.
pub const BY_CREATED: &str = "by-created";
/// One feed's conversions, newest first.
pub const BY_FEED: &str = "by-feed";
/// The conversions in one state, newest first.
pub const BY_STATE: &str = "by-state";
/// The value of `listed`, the single partition of [`BY_CREATED`].
pub const LISTED: &str = "all";

const ID: &str = "conversion_id";
const STATUS: &str = "status";
const VERSION: &str = "version";
const SORT_KEY: &str = "sort_key";
const LISTED_ATTR: &str = "listed";
const FEED: &str = "feed_id";
const STATE: &str = "state";

/// The partition attribute of each index, for the table's definition (here and in
/// `template.yaml`).
pub const INDEXES: [(&str, &str); 3] = [(BY_CREATED, LISTED_ATTR), (BY_FEED, FEED), (BY_STATE, STATE)];

/// [`ConversionIndex`] on a DynamoDB table laid out as the module doc says.
#[derive(Debug, Clone)]
pub struct DynamoConversionIndex {
    client: Client,
    table: String,
}

/// The sort key of a status: its creation time (fixed width, so text order is time order) and
/// its id, which breaks ties.
fn sort_key(status: &ConversionStatus) -> String {
    format!("{}|{}", status.created_at.to_rfc3339_opts(SecondsFormat::Nanos, true), status.conversion_id)
}

/// A cursor is a sort key this index made: a time in its format and a conversion id.
fn check_cursor(cursor: &str) -> Result<&str, IndexError> {
    let (at, id) = cursor.split_once('|').ok_or(IndexError::InvalidCursor)?;
    let parsed = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| IndexError::InvalidCursor)?;
    let canonical = parsed.with_timezone(&chrono::Utc).to_rfc3339_opts(SecondsFormat::Nanos, true);
    if canonical != at {
        return Err(IndexError::InvalidCursor);
    }
    id.parse::<ConversionId>().map_err(|_| IndexError::InvalidCursor)?;
    Ok(cursor)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoConversionIndex {
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

    fn item(status: &ConversionStatus) -> Result<HashMap<String, AttributeValue>, IndexError> {
        let json = serde_json::to_string(status).map_err(|e| {
            IndexError::Failed(format!("status of {} cannot be written: {e}", status.conversion_id))
        })?;
        let mut item = HashMap::from([
            (ID.to_owned(), s(status.conversion_id.as_str())),
            (STATUS.to_owned(), s(json)),
            (VERSION.to_owned(), AttributeValue::N(status.version.to_string())),
            (SORT_KEY.to_owned(), s(sort_key(status))),
            (LISTED_ATTR.to_owned(), s(LISTED)),
            (STATE.to_owned(), s(status.state.as_str())),
        ]);
        if let Some(feed) = &status.feed_id {
            item.insert(FEED.to_owned(), s(feed.as_str()));
        }
        Ok(item)
    }

    fn status_of(item: &HashMap<String, AttributeValue>) -> Result<ConversionStatus, IndexError> {
        let json = item
            .get(STATUS)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| IndexError::Failed(format!("an item of the list table has no '{STATUS}'")))?;
        serde_json::from_str(json).map_err(|e| IndexError::Failed(format!("a stored status is damaged: {e}")))
    }

    /// One page of `index` where the partition attribute is `partition`, below `before`,
    /// filtered on `state` when given; `limit + 1` conversions at most, to tell whether more
    /// follow.
    async fn query(
        &self,
        index: &str,
        partition: (&str, String),
        state: Option<&str>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversionStatus>, IndexError> {
        let mut key_condition = "#p = :p".to_owned();
        let mut names = HashMap::from([("#p".to_owned(), partition.0.to_owned())]);
        let mut values = HashMap::from([(":p".to_owned(), s(partition.1))]);
        if let Some(before) = before {
            key_condition.push_str(" AND #k < :before");
            names.insert("#k".into(), SORT_KEY.into());
            values.insert(":before".into(), s(before));
        }
        let filter = state.map(|state| {
            names.insert("#s".into(), STATE.into());
            values.insert(":s".into(), s(state));
            "#s = :s".to_owned()
        });
        let want = limit + 1;
        let mut found = Vec::with_capacity(want);
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = table::retrying(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(index)
                    .key_condition_expression(&key_condition)
                    .set_filter_expression(filter.clone())
                    .set_expression_attribute_names(Some(names.clone()))
                    .set_expression_attribute_values(Some(values.clone()))
                    .scan_index_forward(false)
                    .limit((want - found.len()) as i32)
                    .set_exclusive_start_key(start.clone())
                    .send()
            })
            .await
            .map_err(|failure| self.error("Query", &failure))?;
            for item in out.items() {
                found.push(Self::status_of(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && found.len() < want => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }
}

fn is_condition_failed(
    err: &SdkError<PutItemError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)))
}

#[async_trait]
impl ConversionIndex for DynamoConversionIndex {
    async fn get(&self, id: &ConversionId) -> Result<Option<ConversionStatus>, IndexError> {
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

    /// A conditional put: written only when the table holds no status of the conversion or an
    /// older one, so deliveries out of order never lower a status.
    async fn put(&self, status: &ConversionStatus) -> Result<(), IndexError> {
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

    async fn list(&self, query: &ListQuery) -> Result<ListPage, IndexError> {
        let limit = query.limit.clamp(1, 100);
        let before = query.cursor.as_deref().map(check_cursor).transpose()?;
        let mut found = match (&query.feed_id, query.state) {
            (Some(feed), state) => {
                self.query(
                    BY_FEED,
                    (FEED, feed.as_str().to_owned()),
                    state.map(|s| s.as_str()),
                    before,
                    limit,
                )
                .await?
            }
            (None, Some(state)) => {
                self.query(BY_STATE, (STATE, state.as_str().to_owned()), None, before, limit).await?
            }
            (None, None) => {
                self.query(BY_CREATED, (LISTED_ATTR, LISTED.to_owned()), None, before, limit).await?
            }
        };
        let more = found.len() > limit;
        found.truncate(limit);
        let next_cursor = if more { found.last().map(sort_key) } else { None };
        Ok(ListPage { conversions: found, next_cursor })
    }

    async fn clear(&self) -> Result<(), IndexError> {
        let keys = table::scan_keys(&self.client, &self.table, ID).await?;
        table::delete_keys(&self.client, &self.table, &keys).await
    }
}

/// Create a list table with the layout of the module doc (on demand) and wait until it is
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
        .attribute_definitions(attr(SORT_KEY).map_err(failed)?)
        .key_schema(key(ID, KeyType::Hash).map_err(failed)?);
    for (name, partition) in INDEXES {
        request = request.attribute_definitions(attr(partition).map_err(failed)?).global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(partition, KeyType::Hash).map_err(failed)?)
                .key_schema(key(SORT_KEY, KeyType::Range).map_err(failed)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
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
        assert!(check_cursor("2026-01-02T03:04:05.000000000Z|0123456789abcdef0123").is_ok());
        for bad in [
            "not-a-cursor",
            "2026-01-02T03:04:05Z|0123456789abcdef0123",
            "2026-01-02T03:04:05.000000000Z|nope",
            "|0123456789abcdef0123",
        ] {
            assert!(matches!(check_cursor(bad), Err(IndexError::InvalidCursor)), "{bad} accepted");
        }
    }
}

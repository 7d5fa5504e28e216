//! The calls the read models' tables share (the list of conversions, the list of subscriptions):
//! every key of a table, deleting keys in batches, and reading items by key in batches, each
//! following DynamoDB's pages and retrying what it leaves unprocessed.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, WriteRequest};
use lector_core::index::IndexError;

use crate::backoff::Backoff;
use crate::sdk::Failure;

/// An item, or its key.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Items per `BatchWriteItem`.
const MAX_BATCH_WRITE: usize = 25;
/// Keys per `BatchGetItem`.
pub(crate) const MAX_BATCH_GET: usize = 100;

pub(crate) const RETRY: Backoff =
    Backoff { base: Duration::from_millis(20), cap: Duration::from_secs(2), attempts: 6 };

/// A failed call on `table` as the read model's error: transient failures are `Unavailable`.
pub(crate) fn index_error(table: &str, op: &str, failure: &Failure) -> IndexError {
    let reason = format!("{op} on table {table}: {}", failure.message);
    if failure.transient { IndexError::Unavailable(reason) } else { IndexError::Failed(reason) }
}

/// The key attribute `key` of every item of `table`, all pages of a consistent `Scan`.
pub(crate) async fn scan_keys(client: &Client, table: &str, key: &str) -> Result<Vec<Item>, IndexError> {
    let mut keys = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .projection_expression("#k")
            .expression_attribute_names("#k", key)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| index_error(table, "Scan", &Failure::of(&e)))?;
        keys.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(last) if !last.is_empty() => start = Some(last.clone()),
            _ => return Ok(keys),
        }
    }
}

fn delete_request(key: &Item) -> Result<WriteRequest, IndexError> {
    DeleteRequest::builder()
        .set_key(Some(key.clone()))
        .build()
        .map(|d| WriteRequest::builder().delete_request(d).build())
        .map_err(|e| IndexError::Failed(e.to_string()))
}

/// Delete `keys` from `table` in batches, retrying what DynamoDB leaves unprocessed.
pub(crate) async fn delete_keys(client: &Client, table: &str, keys: &[Item]) -> Result<(), IndexError> {
    for chunk in keys.chunks(MAX_BATCH_WRITE) {
        let all: Vec<WriteRequest> = chunk.iter().map(delete_request).collect::<Result<_, _>>()?;
        let mut pending = all.clone();
        let mut retry = 0;
        while !pending.is_empty() {
            let sent =
                client.batch_write_item().request_items(table, std::mem::take(&mut pending)).send().await;
            match sent {
                Ok(out) => {
                    pending = out.unprocessed_items().and_then(|u| u.get(table)).cloned().unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    let failure = Failure::of(&e);
                    if !failure.transient {
                        return Err(index_error(table, "BatchWriteItem", &failure));
                    }
                    // Deleting again what was deleted already is harmless.
                    pending = all.clone();
                }
            }
            retry += 1;
            if retry >= RETRY.attempts {
                return Err(IndexError::Unavailable(format!(
                    "BatchWriteItem on table {table}: {} deletes still unprocessed",
                    pending.len()
                )));
            }
            RETRY.sleep(retry).await;
        }
    }
    Ok(())
}

/// The items of `table` with these `keys` (consistent reads), in no particular order; keys
/// with no item are left out. Batches of [`MAX_BATCH_GET`], unprocessed keys asked again.
pub(crate) async fn batch_get(client: &Client, table: &str, keys: &[Item]) -> Result<Vec<Item>, IndexError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BATCH_GET) {
        let mut pending = chunk.to_vec();
        let mut retry = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| IndexError::Failed(e.to_string()))?;
            let sent = client.batch_get_item().request_items(table, request.clone()).send().await;
            match sent {
                Ok(out) => {
                    if let Some(items) = out.responses().and_then(|r| r.get(table)) {
                        found.extend(items.iter().cloned());
                    }
                    pending = out
                        .unprocessed_keys()
                        .and_then(|u| u.get(table))
                        .map(|k| k.keys().to_vec())
                        .unwrap_or_default();
                    if pending.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    let failure = Failure::of(&e);
                    if !failure.transient {
                        return Err(index_error(table, "BatchGetItem", &failure));
                    }
                    pending = request.keys().to_vec();
                }
            }
            retry += 1;
            if retry >= RETRY.attempts {
                return Err(IndexError::Unavailable(format!(
                    "BatchGetItem on table {table}: {} keys still unprocessed",
                    pending.len()
                )));
            }
            RETRY.sleep(retry).await;
        }
    }
    Ok(found)
}

/// Send a request again after a transient failure, with [`RETRY`]'s backoff; a permanent
/// failure, or the last one when the attempts are spent, is returned. `call` builds the request
/// anew each time, so a retried page starts where the failed one did.
pub(crate) async fn retrying<T, E, F, Fut>(mut call: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
            Output = Result<
                T,
                aws_sdk_dynamodb::error::SdkError<
                    E,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >,
            >,
        >,
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    RETRY
        .retry(
            || {
                let sent = call();
                async move { sent.await.map_err(|e| Failure::of(&e)) }
            },
            |f| f.transient,
        )
        .await
}

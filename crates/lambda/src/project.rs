//! `project-conversions`: the read models on AWS. Reads the event table's DynamoDB Stream and
//! folds each event into its list: a conversion's into the list table with
//! `lector_core::index::project`, a subscription's into the feed table with
//! `lector_core::feed::index::project_feed`, as the local outbox's two projectors do.
//!
//! One function follows the stream for both lists, rather than a function per list, because a
//! DynamoDB Stream's shards serve at most two readers at once before they are throttled, and
//! `publish-events` is the other. Its event source mapping filters the records to the inserts
//! of `conversion-` and `feed-` streams, so the position counter's updates invoke nothing.
//!
//! Records are handled in order. At the first record that cannot be projected (an image that
//! is not an event, an event that does not decode, the list table or the log unreachable) the
//! handler stops and reports that record's sequence number as the batch item failure: Lambda
//! checkpoints everything before it and retries from it; the event source mapping's bounded
//! retries with `BisectBatchOnFunctionError` then send a poison record to the on-failure queue,
//! so it delays the records behind it but never blocks them for good. The projection can
//! always be rebuilt from the log (`lector projections rebuild`).

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{LambdaEvent, service_fn};
use lector_aws::DynamoEventStore;
use lector_aws::event_store::recorded_from_image;
use lector_aws::feed_index::DynamoFeedIndex;
use lector_aws::index::DynamoConversionIndex;
use lector_core::feed::index::{FeedIndex, project_feed};
use lector_core::index::{ConversionIndex, ProjectError, project};
use lector_core::{EventStore, RecordedEvent};

use crate::config::{Env, ProjectorConfig, function_name};
use crate::metrics::Metrics;

/// The function's name (`functions/project-conversions`).
pub const FUNCTION: &str = "project-conversions";

/// The lists the projector keeps.
#[derive(Clone, Copy)]
pub struct Lists<'a> {
    pub conversions: &'a dyn ConversionIndex,
    pub feeds: &'a dyn FeedIndex,
}

impl std::fmt::Debug for Lists<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lists")
    }
}

impl Lists<'_> {
    /// Fold `event` into the list its stream belongs to; an event of neither is skipped.
    async fn project(&self, store: &dyn EventStore, event: &RecordedEvent) -> Result<(), ProjectError> {
        if event.stream_id.feed_id().is_some() {
            project_feed(self.feeds, store, event).await
        } else {
            project(self.conversions, store, event).await
        }
    }
}

/// Project the batch's events; the response names the first record that failed, if any.
#[tracing::instrument(skip_all, fields(records = batch.records.len()))]
pub async fn handle(
    lists: Lists<'_>,
    store: &dyn EventStore,
    metrics: &Metrics,
    batch: Event,
) -> DynamoDbEventResponse {
    metrics.cold_start();
    let mut response = DynamoDbEventResponse::default();
    for record in &batch.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let event = match recorded_from_image(&record.change.new_image) {
            Ok(Some(event)) => event,
            // The store's own items (its position counter) are not events.
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(sequence_number = ?record.change.sequence_number, error = %e, "stream record is not an event");
                fail(&mut response, record);
                return response;
            }
        };
        if let Err(e) = lists.project(store, &event).await {
            tracing::warn!(
                stream_id = %event.stream_id,
                version = event.version,
                error = %e,
                "event not projected; reported as a batch item failure"
            );
            fail(&mut response, record);
            return response;
        }
    }
    response
}

fn fail(response: &mut DynamoDbEventResponse, record: &EventRecord) {
    let mut failure = DynamoDbBatchItemFailure::default();
    // Lambda resumes an ordered stream from this sequence number.
    failure.item_identifier =
        Some(record.change.sequence_number.clone().unwrap_or_else(|| record.event_id.clone()));
    response.batch_item_failures.push(failure);
}

/// Run `project-conversions` as this Lambda function.
pub async fn run() -> Result<(), crate::Error> {
    crate::telemetry::init();
    let env = Env::process();
    let config =
        ProjectorConfig::from_env(&env).inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let sdk = lector_aws::sdk::load_in_lambda().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let index = DynamoConversionIndex::new(dynamodb.clone(), config.index_table);
    let feeds = DynamoFeedIndex::new(dynamodb.clone(), config.feed_table);
    let store: Arc<dyn EventStore> = Arc::new(DynamoEventStore::new(dynamodb, config.table));
    let metrics = Metrics::stdout(config.namespace, function_name(&env, FUNCTION));
    let lists = Lists { conversions: &index, feeds: &feeds };
    let (store, metrics) = (&*store, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, lambda_runtime::Error>(handle(lists, store, metrics, event.payload).await)
    }))
    .await
}

//! The `publish-events` handler: the event table's DynamoDB Stream to the bus, in log order.
//!
//! Each INSERT of an event item becomes one bus event; other records (the position counter's
//! updates, anything but inserts) are skipped. Records are published in order, in groups of at
//! most [`GROUP`] (one `PutEvents` request each). At the first record that cannot be published
//! (an image that does not decode, or a group the bus would not take) the handler stops and
//! reports that record's sequence number as the batch item failure: Lambda's
//! `ReportBatchItemFailures` on an ordered stream then checkpoints everything before it and
//! retries from it, so nothing after a failure is taken as delivered. A poison record fails the
//! same way on every retry until the event source mapping's bounded `MaximumRetryAttempts`
//! (with `BisectBatchOnFunctionError`) sends it to the dead-letter destination and the stream
//! moves on: a poison record delays the records behind it, it never blocks them for good.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lector_core::RecordedEvent;
use lector_core::ports::EventPublisher;

use crate::event_store::recorded_from_image;

/// Records per `publish` call: one `PutEvents` request's worth, so a failure is pinned to the
/// first record of the smallest group that failed.
pub const GROUP: usize = crate::eventbridge::MAX_ENTRIES;

/// Publish the stream batch's events; the response names the first record that failed, if any.
#[tracing::instrument(skip_all, fields(records = batch.records.len()))]
pub async fn handle<P>(publisher: &P, batch: Event) -> DynamoDbEventResponse
where
    P: EventPublisher + ?Sized,
{
    let mut response = DynamoDbEventResponse::default();
    let mut group: Vec<(&EventRecord, RecordedEvent)> = Vec::with_capacity(GROUP);
    for record in &batch.records {
        if record.event_name != "INSERT" {
            continue;
        }
        match recorded_from_image(&record.change.new_image) {
            Ok(None) => {}
            Ok(Some(event)) => {
                group.push((record, event));
                if group.len() == GROUP {
                    if let Some(failed) = publish_group(publisher, &group).await {
                        fail(&mut response, failed);
                        return response;
                    }
                    group.clear();
                }
            }
            Err(e) => {
                // Everything before the poison record goes out first, so that only the poison
                // record and what follows it are retried.
                if let Some(failed) = publish_group(publisher, &group).await {
                    fail(&mut response, failed);
                    return response;
                }
                tracing::error!(
                    event_id = %record.event_id,
                    sequence_number = ?record.change.sequence_number,
                    error = %e,
                    "stream record is not an event; reported as a batch item failure"
                );
                fail(&mut response, record);
                return response;
            }
        }
    }
    if let Some(failed) = publish_group(publisher, &group).await {
        fail(&mut response, failed);
    }
    response
}

/// The first record of the group when the group could not be published.
async fn publish_group<'a, P>(
    publisher: &P,
    group: &[(&'a EventRecord, RecordedEvent)],
) -> Option<&'a EventRecord>
where
    P: EventPublisher + ?Sized,
{
    let (first, _) = group.first()?;
    let events: Vec<RecordedEvent> = group.iter().map(|(_, e)| e.clone()).collect();
    match publisher.publish(&events).await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, "publishing failed; reported as a batch item failure");
            Some(first)
        }
    }
}

fn fail(response: &mut DynamoDbEventResponse, record: &EventRecord) {
    let mut failure = DynamoDbBatchItemFailure::default();
    // Lambda resumes an ordered stream from this sequence number.
    failure.item_identifier =
        Some(record.change.sequence_number.clone().unwrap_or_else(|| record.event_id.clone()));
    response.batch_item_failures.push(failure);
}

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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use lector_core::ports::PublishError;
    use serde_json::{Value, json};

    use super::*;

    /// Records what it is asked to publish; refuses any group holding a refused version.
    #[derive(Default)]
    struct Double {
        published: Mutex<Vec<u64>>,
        calls: Mutex<usize>,
        refuse: Vec<u64>,
    }

    #[async_trait]
    impl EventPublisher for Double {
        async fn publish(&self, events: &[RecordedEvent]) -> Result<(), PublishError> {
            *self.calls.lock().unwrap() += 1;
            if events.iter().any(|e| self.refuse.contains(&e.version)) {
                return Err(PublishError::Failed {
                    failed: events.len(),
                    total: events.len(),
                    reason: "no".into(),
                });
            }
            self.published.lock().unwrap().extend(events.iter().map(|e| e.version));
            Ok(())
        }
    }

    fn image(version: u64) -> Value {
        json!({
            "stream_id": {"S": "conversion-0123456789abcdef0123"},
            "version": {"N": version.to_string()},
            "position": {"N": version.to_string()},
            "bucket": {"N": "0"},
            "event_id": {"S": format!("00000000-0000-4000-8000-{version:012}")},
            "type": {"S": "ConversionStarted"},
            "schema_version": {"N": "1"},
            "occurred_at": {"S": "2026-01-01T00:00:00Z"},
            "correlation_id": {"S": "0123456789abcdef0123"},
            "data": {"S": "{\"execution_id\":\"e\",\"attempt\":1}"}
        })
    }

    fn batch(records: &[(&str, u64, Value)]) -> Event {
        let records: Vec<Value> = records
            .iter()
            .map(|(name, seq, image)| {
                json!({
                    "eventID": format!("id-{seq}"),
                    "eventName": name,
                    "awsRegion": "us-east-1",
                    "dynamodb": {"NewImage": image, "SequenceNumber": seq.to_string(), "SizeBytes": 1}
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
        response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
    }

    #[tokio::test]
    async fn events_go_out_in_groups_of_ten_and_other_records_are_skipped() {
        let double = Double::default();
        let mut records: Vec<_> = (1..=23).map(|v| ("INSERT", v, image(v))).collect();
        records.insert(3, ("MODIFY", 100, image(99)));
        records.insert(5, ("REMOVE", 101, image(98)));
        let response = handle(&double, batch(&records)).await;
        assert!(failures(&response).is_empty());
        assert_eq!(*double.published.lock().unwrap(), (1..=23).collect::<Vec<_>>());
        assert_eq!(*double.calls.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_group_that_fails_reports_its_first_record_and_stops() {
        let double = Double { refuse: vec![14], ..Double::default() };
        let records: Vec<_> = (1..=25).map(|v| ("INSERT", v, image(v))).collect();
        let response = handle(&double, batch(&records)).await;
        // The second group (11..=20) failed: Lambda resumes from its first record.
        assert_eq!(failures(&response), ["11"]);
        assert_eq!(*double.published.lock().unwrap(), (1..=10).collect::<Vec<_>>());
        assert_eq!(*double.calls.lock().unwrap(), 2, "nothing after the failure is attempted");
    }

    #[tokio::test]
    async fn a_poison_record_is_reported_after_what_came_before_it_is_published() {
        let double = Double::default();
        let records = [
            ("INSERT", 1, image(1)),
            ("INSERT", 2, image(2)),
            ("INSERT", 3, json!({"junk": {"S": "x"}})),
            ("INSERT", 4, image(4)),
        ];
        let response = handle(&double, batch(&records)).await;
        assert_eq!(failures(&response), ["3"]);
        assert_eq!(*double.published.lock().unwrap(), [1, 2]);
    }

    #[tokio::test]
    async fn a_poison_record_behind_a_failing_group_reports_the_group() {
        let double = Double { refuse: vec![1], ..Double::default() };
        let records = [("INSERT", 1, image(1)), ("INSERT", 2, json!({}))];
        let response = handle(&double, batch(&records)).await;
        assert_eq!(failures(&response), ["1"]);
    }
}

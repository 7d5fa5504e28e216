//! Publishing events on an EventBridge bus: `PutEvents` in batches within the service's limits,
//! retrying only the entries that failed.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lector_core::RecordedEvent;
use lector_core::ports::{EventPublisher, PublishError};

use crate::backoff::Backoff;
use crate::sdk::Failure;

/// The `source` of every Lector event on the bus; rules match on it.
pub const SOURCE: &str = "lector";
/// Entries per `PutEvents` request.
pub const MAX_ENTRIES: usize = 10;
/// Bytes per `PutEvents` request, counted as EventBridge counts them.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

const RETRY: Backoff = Backoff { base: Duration::from_millis(50), cap: Duration::from_secs(2), attempts: 6 };

/// Per-entry error codes that will fail the same way again.
const PERMANENT_ENTRY_CODES: &[&str] =
    &["MalformedDetail", "InvalidArgument", "NotAuthorizedForSourceException", "AccessDeniedException"];

/// [`EventPublisher`] on an EventBridge bus: source `lector`, detail-type the event's type,
/// detail the envelope as JSON (the same JSON as `lector events --json`).
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    fn entry(&self, event: &RecordedEvent) -> Result<(PutEventsRequestEntry, usize), PublishError> {
        let detail = serde_json::to_string(event).map_err(|e| PublishError::Failed {
            failed: 1,
            total: 1,
            reason: format!("event {} cannot be serialized: {e}", event.event_id),
        })?;
        let size = entry_size(&event.event_type, &detail);
        if size > MAX_REQUEST_BYTES {
            return Err(PublishError::Failed {
                failed: 1,
                total: 1,
                reason: format!(
                    "event {} of {} is {size} bytes, over EventBridge's {MAX_REQUEST_BYTES}",
                    event.event_id, event.stream_id
                ),
            });
        }
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(&event.event_type)
            .detail(detail)
            .time(AwsDateTime::from_millis(event.occurred_at.timestamp_millis()))
            .build();
        Ok((entry, size))
    }

    /// Put one batch, retrying only the failed entries until none is left or the attempts run
    /// out. Returns how many entries could not be put, and why.
    async fn put_batch(&self, mut pending: Vec<PutEventsRequestEntry>) -> Result<(), (usize, String)> {
        let mut reason = String::new();
        for attempt in 0..RETRY.attempts {
            if attempt > 0 {
                RETRY.sleep(attempt).await;
            }
            let out = match self.client.put_events().set_entries(Some(pending.clone())).send().await {
                Ok(out) => out,
                Err(err) => {
                    let failure = Failure::of(&err);
                    if !failure.transient {
                        return Err((
                            pending.len(),
                            format!("PutEvents on bus {}: {}", self.bus, failure.message),
                        ));
                    }
                    reason = failure.message;
                    continue;
                }
            };
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            let results = out.entries();
            let mut still = Vec::new();
            let mut codes = Vec::new();
            for (i, entry) in pending.into_iter().enumerate() {
                // A result without an event id is a failed entry, whatever else it says.
                let result = results.get(i);
                let failed = result.is_none_or(|r| r.event_id().is_none() || r.error_code().is_some());
                if failed {
                    let code = result.and_then(|r| r.error_code()).unwrap_or("Unknown").to_owned();
                    let message = result.and_then(|r| r.error_message()).unwrap_or("").to_owned();
                    if PERMANENT_ENTRY_CODES.contains(&code.as_str()) {
                        return Err((1, format!("bus {} refused an entry: {code}: {message}", self.bus)));
                    }
                    codes.push(format!("{code}: {message}"));
                    still.push(entry);
                }
            }
            tracing::warn!(bus = %self.bus, failed = still.len(), attempt, "PutEvents entries failed, retrying them");
            reason = codes.join("; ");
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err((pending.len(), reason))
    }
}

/// An entry's size as EventBridge counts it against the request limit.
fn entry_size(detail_type: &str, detail: &str) -> usize {
    // Time counts 14 bytes.
    SOURCE.len() + detail_type.len() + detail.len() + 14
}

/// Split entries (with their sizes) into requests of at most [`MAX_ENTRIES`] entries and
/// [`MAX_REQUEST_BYTES`] bytes, keeping their order.
fn batches(entries: Vec<(PutEventsRequestEntry, usize)>) -> Vec<Vec<PutEventsRequestEntry>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for (entry, size) in entries {
        if !current.is_empty() && (current.len() == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(entry);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    /// Publishes in order, batch after batch; stops at the first batch that cannot be put, so
    /// the events after it are not published out of turn.
    #[tracing::instrument(skip(self, events), fields(bus = %self.bus, n = events.len()))]
    async fn publish(&self, events: &[RecordedEvent]) -> Result<(), PublishError> {
        let total = events.len();
        let entries = events.iter().map(|e| self.entry(e)).collect::<Result<Vec<_>, _>>()?;
        let mut done = 0;
        for batch in batches(entries) {
            let len = batch.len();
            if let Err((failed, reason)) = self.put_batch(batch).await {
                return Err(PublishError::Failed { failed: failed + (total - done - len), total, reason });
            }
            done += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: usize) -> (PutEventsRequestEntry, usize) {
        (PutEventsRequestEntry::builder().detail("x".repeat(size)).build(), size)
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kib() {
        let sizes: Vec<usize> = batches((0..25).map(|_| entry(100)).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let big = 100 * 1024;
        let sizes: Vec<usize> = batches((0..5).map(|_| entry(big)).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(batches(vec![]).is_empty());
    }

    #[test]
    fn batches_keep_the_order() {
        let entries: Vec<_> = (1..=12).map(entry).collect();
        let flat: Vec<usize> =
            batches(entries).concat().iter().map(|e| e.detail().map_or(0, str::len)).collect();
        assert_eq!(flat, (1..=12).collect::<Vec<_>>());
    }
}

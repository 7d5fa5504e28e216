//! An in-memory event store for unit tests. It passes the same contract as the real stores
//! (conflicts, retried appends, global order), so a test that uses it cannot pass by relying
//! on a store that never says no.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use lector_core::store::MAX_EVENTS_PER_APPEND;
use lector_core::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId,
};

#[derive(Debug, Default)]
pub struct MemoryEventStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, Vec<usize>>,
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() || events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::Invalid(format!("{} events in one append", events.len())));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let indices = inner.streams.get(stream).cloned().unwrap_or_default();
        let current = indices.len() as u64;
        if current != expected.0 {
            let from = expected.0 as usize;
            let to = from + events.len();
            let same = indices.len() >= to
                && indices[from..to].iter().zip(&events).all(|(&i, e)| inner.log[i].is_same_as(e));
            return if same {
                Ok(AppendOutcome::AlreadyAppended { last_version: to as u64 })
            } else {
                Err(StoreError::Conflict { stream: stream.clone(), expected: expected.0, actual: current })
            };
        }
        let n = events.len() as u64;
        for (i, e) in events.into_iter().enumerate() {
            let position = inner.log.len() as u64 + 1;
            inner.log.push(RecordedEvent {
                event_id: e.event_id,
                stream_id: stream.clone(),
                version: current + 1 + i as u64,
                position,
                event_type: e.event_type,
                schema_version: e.schema_version,
                occurred_at: e.occurred_at,
                correlation_id: e.correlation_id,
                causation_id: e.causation_id,
                data: e.data,
            });
            let index = inner.log.len() - 1;
            inner.streams.entry(stream.clone()).or_default().push(index);
        }
        Ok(AppendOutcome::Appended { first_version: current + 1, last_version: current + n })
    }

    async fn read_stream(&self, stream: &StreamId, after: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(inner
            .streams
            .get(stream)
            .map(|ix| ix.iter().skip(after as usize).map(|&i| inner.log[i].clone()).collect())
            .unwrap_or_default())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(inner.log.iter().skip(after as usize).take(limit).cloned().collect())
    }
}

/// Polls on demand refused: for APIs whose tests start no polling workflow.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPolls;

#[async_trait::async_trait]
impl lector_core::ports::FeedPolls for NoPolls {
    async fn poll_now(&self, _: &[lector_core::FeedId]) -> Result<String, lector_core::ports::WorkflowError> {
        Err(lector_core::ports::WorkflowError::Failed("no polling workflow in this test".into()))
    }
}

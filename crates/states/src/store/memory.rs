//! An execution store in memory: everything the SQLite store keeps, lost with the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, ready};

use super::{
    Batch, CreateOutcome, ExecutionRecord, ExecutionStore, FrameRecord, ListFilter, StoreError, is_under,
};
use crate::history::{Event, HistoryEvent};

#[derive(Debug)]
struct Exec {
    record: ExecutionRecord,
    events: Vec<Event>,
    frames: HashMap<Arc<str>, FrameRecord>,
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    execs: HashMap<String, Exec>,
    by_name: HashMap<(String, String), String>,
    seq: u64,
}

/// An in-memory [`ExecutionStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Writers never leave the maps half-updated, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn apply(exec: &mut Exec, batch: Batch) {
    exec.events.extend(batch.events);
    for root in &batch.delete_frames_under {
        exec.frames.retain(|p, _| !is_under(p, root));
    }
    for f in batch.put_frames {
        exec.frames.insert(f.path.clone(), f);
    }
    if let Some(u) = batch.update {
        let r = &mut exec.record;
        if let Some(s) = u.status {
            r.status = s;
        }
        if let Some(o) = u.output {
            r.output = Some(o);
        }
        if let Some(e) = u.error {
            r.error = e;
        }
        if let Some(c) = u.cause {
            r.cause = c;
        }
        if let Some(d) = u.stop_date {
            r.stop_date = d;
        }
        if let Some((n, d)) = u.redrive {
            r.redrive_count = n;
            r.redrive_date = Some(d);
        }
    }
}

impl ExecutionStore for MemoryStore {
    fn create(
        &self,
        record: ExecutionRecord,
        first: Batch,
    ) -> BoxFuture<'static, Result<CreateOutcome, StoreError>> {
        let mut inner = self.lock();
        let key = (record.state_machine_name.clone(), record.name.clone());
        let express = super::is_express_arn(&record.execution_arn);
        if !express
            && let Some(arn) = inner.by_name.get(&key)
            && let Some(e) = inner.execs.get(arn)
        {
            return Box::pin(ready(Ok(CreateOutcome::Existing(Box::new(e.record.clone())))));
        }
        inner.seq += 1;
        let seq = inner.seq;
        let arn = record.execution_arn.clone();
        let mut exec = Exec { record, events: Vec::new(), frames: HashMap::new(), seq };
        apply(&mut exec, first);
        if !express {
            inner.by_name.insert(key, arn.clone());
        }
        inner.execs.insert(arn, exec);
        Box::pin(ready(Ok(CreateOutcome::Created)))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'static, Result<(), StoreError>> {
        let mut inner = self.lock();
        let result = match inner.execs.get_mut(&*batch.execution_arn) {
            Some(exec) => {
                apply(exec, batch);
                Ok(())
            }
            None => Err(StoreError::Corrupt(format!("no execution '{}' to write to", batch.execution_arn))),
        };
        Box::pin(ready(result))
    }

    fn execution(&self, arn: &str) -> BoxFuture<'static, Result<Option<ExecutionRecord>, StoreError>> {
        let r = self.lock().execs.get(arn).map(|e| e.record.clone());
        Box::pin(ready(Ok(r)))
    }

    fn list(&self, filter: ListFilter) -> BoxFuture<'static, Result<Vec<ExecutionRecord>, StoreError>> {
        let inner = self.lock();
        let mut v: Vec<(&Exec, &ExecutionRecord)> = inner
            .execs
            .values()
            .map(|e| (e, &e.record))
            .filter(|(_, r)| filter.state_machine_name.as_ref().is_none_or(|n| &r.state_machine_name == n))
            .filter(|(_, r)| filter.status.is_none_or(|s| r.status == s))
            .collect();
        v.sort_by(|a, b| b.1.start_date.cmp(&a.1.start_date).then(b.0.seq.cmp(&a.0.seq)));
        let out = v.into_iter().map(|(_, r)| r.clone()).collect();
        Box::pin(ready(Ok(out)))
    }

    fn history(&self, arn: &str) -> BoxFuture<'static, Result<Vec<HistoryEvent>, StoreError>> {
        let mut h: Vec<HistoryEvent> = self
            .lock()
            .execs
            .get(arn)
            .map(|e| e.events.iter().map(Event::to_history).collect())
            .unwrap_or_default();
        h.sort_by_key(|e| e.id);
        Box::pin(ready(Ok(h)))
    }

    fn frames(&self, arn: &str) -> BoxFuture<'static, Result<Vec<FrameRecord>, StoreError>> {
        let mut f: Vec<FrameRecord> =
            self.lock().execs.get(arn).map(|e| e.frames.values().cloned().collect()).unwrap_or_default();
        f.sort_by(|a, b| a.path.cmp(&b.path));
        Box::pin(ready(Ok(f)))
    }

    fn last_event_id(&self, arn: &str) -> BoxFuture<'static, Result<u64, StoreError>> {
        let id = self.lock().execs.get(arn).and_then(|e| e.events.iter().map(|e| e.id).max()).unwrap_or(0);
        Box::pin(ready(Ok(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_the_store_contract() {
        super::super::contract::behaves(&MemoryStore::new()).await;
    }
}

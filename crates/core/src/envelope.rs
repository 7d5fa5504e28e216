//! The event envelope: what the log stores around each event's data, and what the bus carries.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{ConversionEvent, DecodeError};
use crate::id::{EventId, StreamId};

/// An event about to be appended. The store gives it its version and global position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// A conversion event with its metadata.
    pub fn from_event(event_id: EventId, event: &ConversionEvent, meta: &EventMeta) -> Self {
        Self {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: meta.occurred_at,
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            data: event.data(),
        }
    }
}

impl NewEvent {
    /// A feed subscription's event with its metadata.
    pub fn from_feed_event(event_id: EventId, event: &crate::feed::FeedEvent, meta: &EventMeta) -> Self {
        Self {
            event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            occurred_at: meta.occurred_at,
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            data: event.data(),
        }
    }
}

/// Who and when: the metadata every event of one decision shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub occurred_at: DateTime<Utc>,
    /// The conversion the event belongs to (the correlation of a whole conversion's history).
    pub correlation_id: String,
    /// What caused it: an execution id, a request id, an operator's replay.
    pub causation_id: Option<String>,
}

/// An event as stored in the log: the envelope, with the data left as JSON so that the log,
/// the outbox and the publisher never depend on knowing every event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub event_id: EventId,
    pub stream_id: StreamId,
    /// 1, 2, 3, ... within the stream, without gaps.
    pub version: u64,
    /// The event's place in the whole log: increasing in commit order, across streams.
    pub position: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub data: serde_json::Value,
}

impl RecordedEvent {
    /// The typed event, upcast to the current schema version.
    pub fn decode(&self) -> Result<ConversionEvent, DecodeError> {
        ConversionEvent::from_parts(&self.event_type, self.schema_version, self.data.clone())
    }

    /// Whether this stored event is the given new event (same id and same content): how an
    /// append that was already made is recognised.
    pub fn is_same_as(&self, new: &NewEvent) -> bool {
        self.event_id == new.event_id && self.event_type == new.event_type && self.data == new.data
    }
}

/// The envelope with its data typed: the published shape of every conversion event, on the
/// bus and in `lector events --json`. Serializes exactly as [`RecordedEvent`] does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "ConversionEventEnvelope")]
pub struct EventEnvelope {
    /// Unique per fact; a repeated delivery carries the same id, so consumers can deduplicate.
    pub event_id: EventId,
    /// `conversion-<conversion id>`.
    pub stream_id: StreamId,
    /// 1, 2, 3, ... within the stream.
    pub version: u64,
    /// Position in the whole log, increasing in commit order.
    pub position: u64,
    /// The event's type and data.
    #[serde(flatten)]
    pub event: ConversionEvent,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    /// The conversion id.
    pub correlation_id: String,
    /// What caused the event: an execution id, a request id, an operator's replay.
    pub causation_id: Option<String>,
}

impl TryFrom<&RecordedEvent> for EventEnvelope {
    type Error = DecodeError;

    fn try_from(e: &RecordedEvent) -> Result<Self, Self::Error> {
        let event = e.decode()?;
        Ok(Self {
            event_id: e.event_id,
            stream_id: e.stream_id.clone(),
            version: e.version,
            position: e.position,
            schema_version: event.schema_version(),
            event,
            occurred_at: e.occurred_at,
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ConversionStarted;

    #[test]
    fn recorded_and_typed_envelopes_serialize_alike() {
        let recorded = RecordedEvent {
            event_id: EventId::derive(&["x"]),
            stream_id: StreamId::new("conversion-0123456789abcdef0123"),
            version: 2,
            position: 17,
            event_type: "ConversionStarted".into(),
            schema_version: 1,
            occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            correlation_id: "0123456789abcdef0123".into(),
            causation_id: Some("exec".into()),
            data: serde_json::json!({"execution_id": "e", "attempt": 1}),
        };
        let typed = EventEnvelope::try_from(&recorded).unwrap();
        assert_eq!(
            typed.event,
            ConversionEvent::ConversionStarted(ConversionStarted { execution_id: "e".into(), attempt: 1 })
        );
        assert_eq!(serde_json::to_value(&typed).unwrap(), serde_json::to_value(&recorded).unwrap());
        let back: EventEnvelope = serde_json::from_value(serde_json::to_value(&recorded).unwrap()).unwrap();
        assert_eq!(back, typed);
    }
}

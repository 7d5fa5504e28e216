//! The JSON Schemas of the published contract, generated from the Rust types: one per event
//! (the full EventBridge `detail`: the envelope with that event's data) and one for the
//! envelope of any event. `lector schemas` writes them to `schemas/`; a test fails when the
//! files are stale.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde::Serialize;
use serde_json::{Value, json};

use crate::envelope::EventEnvelope;
use crate::event::{
    ArticleFetched, ChunkSynthesized, ConversionCompleted, ConversionEvent, ConversionFailed,
    ConversionRequested, ConversionRetried, ConversionRevisionRequested, ConversionStarted, SpeechPrepared,
};
use crate::id::{EventId, StreamId};

/// Where the published schemas are documented and served from; used as the base of `$id`.
pub const SCHEMA_BASE: &str = "https://schemas.lector.dev/";

/// One generated schema file: its path under `schemas/` and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaFile {
    pub path: String,
    pub schema: Value,
}

impl SchemaFile {
    /// The file's text: pretty JSON with a final newline, so diffs stay readable.
    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The `detail` of one event type on the bus: the envelope with that event's data.
#[derive(Serialize, JsonSchema)]
#[allow(dead_code)]
struct EventDetail<T> {
    /// Unique per fact; a repeated delivery carries the same id, so consumers can deduplicate.
    event_id: EventId,
    /// `conversion-<conversion id>`.
    stream_id: StreamId,
    /// 1, 2, 3, ... within the stream.
    version: u64,
    /// Position in the whole log, increasing in commit order.
    position: u64,
    /// The event type (the EventBridge detail-type).
    #[serde(rename = "type")]
    event_type: String,
    /// The schema version of `data`.
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    /// The conversion id.
    correlation_id: String,
    /// What caused the event: an execution id, a request id, an operator's replay.
    causation_id: Option<String>,
    data: T,
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn event_schema<T: JsonSchema>(name: &str, version: u32) -> SchemaFile {
    let mut schema: Schema = generator().into_root_schema_for::<EventDetail<T>>();
    let obj = schema.ensure_object();
    obj.insert("$id".into(), json!(format!("{SCHEMA_BASE}events/{name}.v{version}.json")));
    obj.insert("title".into(), json!(name));
    obj.insert(
        "description".into(),
        json!(format!(
            "The `detail` of a `{name}` event on the `lector` bus (source `lector`, detail-type `{name}`)."
        )),
    );
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.insert(
            "type".into(),
            json!({"const": name, "description": "The event type (the EventBridge detail-type)."}),
        );
        props.insert(
            "schema_version".into(),
            json!({"const": version, "description": "The schema version of `data`."}),
        );
    }
    SchemaFile { path: format!("events/{name}.v{version}.json"), schema: schema.to_value() }
}

/// Every schema file, in a stable order.
pub fn all() -> Vec<SchemaFile> {
    let version_of = |name: &str| crate::event::schema_version_of(name).unwrap_or(1);
    let mut files = vec![
        event_schema::<ConversionRequested>("ConversionRequested", version_of("ConversionRequested")),
        event_schema::<ConversionStarted>("ConversionStarted", version_of("ConversionStarted")),
        event_schema::<ArticleFetched>("ArticleFetched", version_of("ArticleFetched")),
        event_schema::<SpeechPrepared>("SpeechPrepared", version_of("SpeechPrepared")),
        event_schema::<ChunkSynthesized>("ChunkSynthesized", version_of("ChunkSynthesized")),
        event_schema::<ConversionCompleted>("ConversionCompleted", version_of("ConversionCompleted")),
        event_schema::<ConversionFailed>("ConversionFailed", version_of("ConversionFailed")),
        event_schema::<ConversionRetried>("ConversionRetried", version_of("ConversionRetried")),
        event_schema::<ConversionRevisionRequested>(
            "ConversionRevisionRequested",
            version_of("ConversionRevisionRequested"),
        ),
    ];
    debug_assert_eq!(files.len(), ConversionEvent::TYPES.len());
    let mut envelope: Schema = generator().into_root_schema_for::<EventEnvelope>();
    let obj = envelope.ensure_object();
    obj.insert("$id".into(), json!(format!("{SCHEMA_BASE}envelope.v1.json")));
    obj.insert(
        "description".into(),
        json!("The envelope of every conversion event, as stored in the log and carried as the `detail` on the bus."),
    );
    files.push(SchemaFile { path: "envelope.v1.json".into(), schema: envelope.to_value() });
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_schema_per_event_type_and_one_for_the_envelope() {
        let files = all();
        for t in ConversionEvent::TYPES {
            let path = format!("events/{}.v{}.json", t.name, t.schema_version);
            let file = files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path}"));
            assert_eq!(file.schema["properties"]["type"]["const"], t.name);
            assert!(file.schema["required"].as_array().unwrap().contains(&json!("data")));
        }
        assert!(files.iter().any(|f| f.path == "envelope.v1.json"));
        assert_eq!(files.len(), ConversionEvent::TYPES.len() + 1);
    }
}

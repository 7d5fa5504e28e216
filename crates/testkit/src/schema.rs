//! Checks events against the published JSON Schemas in `schemas/`, the files other teams read.

use std::path::PathBuf;

use lector_core::{EventEnvelope, RecordedEvent};

/// The repository's `schemas/` folder.
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn load(path: &str) -> serde_json::Value {
    let full = schemas_dir().join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| {
        panic!("cannot read {} ({e}); regenerate with `cargo run -- schemas`", full.display())
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", full.display()))
}

/// Panics, naming every violation, unless the event's envelope is valid against both its own
/// event schema and the envelope schema.
pub fn assert_valid_event(event: &RecordedEvent) {
    // The stored shape is checked as it is, before this build's types get a say.
    let instance = serde_json::to_value(event).expect("an event serializes");
    let own = format!("events/{}.v{}.json", event.event_type, event.schema_version);
    for path in [own.as_str(), "envelope.v1.json"] {
        let schema = load(path);
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{path} is not a valid JSON Schema: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{} v{} breaks {path}:\n  {}\n{instance:#}",
            event.event_type,
            event.version,
            errors.join("\n  ")
        );
    }
    let typed = EventEnvelope::try_from(event)
        .unwrap_or_else(|e| panic!("event {} does not decode: {e}", event.event_id));
    assert_eq!(
        serde_json::to_value(&typed).expect("an envelope serializes"),
        instance,
        "typed and stored shapes differ"
    );
}

//! The conversion events: what happened to a conversion, as facts, in the past tense.
//!
//! These types are the published contract: `schemas/` is generated from them and other teams
//! subscribe to them on the bus. Never change a released event's fields in place: adding an
//! optional field is a minor change; renaming or removing one is a new schema version with an
//! upcaster in [`upcast`] so that old events still read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::id::{ConversionId, FeedId};
use crate::object::ObjectKey;
use crate::voice::{VoiceEngine, VoiceId};

/// A post was submitted for conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionRequested {
    pub conversion_id: ConversionId,
    /// The post's address.
    pub post_url: Url,
    /// The title the feed gave the post, if it came from a feed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The feed the post was picked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_id: Option<FeedId>,
    /// The feed's title, for the podcast feed of its conversions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_title: Option<String>,
    /// The post's full text as the feed carried it (HTML), stored as an object; when present
    /// the page is not fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<ObjectKey>,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// Who asked: a user, a token's subject, or `cli`.
    pub requested_by: String,
}

/// A workflow execution took the conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionStarted {
    /// The execution's id (a Step Functions execution ARN, or the local engine's).
    pub execution_id: String,
    /// 1 for the first run; a restart starts the next attempt.
    pub attempt: u32,
}

/// Where an article's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleSource {
    /// The feed carried the whole post.
    Feed,
    /// The page was fetched and its readable text extracted.
    Page,
}

/// The article was fetched and its readable text extracted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleFetched {
    pub attempt: u32,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byline: Option<String>,
    /// BCP 47 language of the text, when the page declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub words: u32,
    pub characters: u64,
    /// The extracted text, stored as an object.
    pub text_ref: ObjectKey,
    pub source: ArticleSource,
}

/// The text was turned into narration and cut into chunks within the voice's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechPrepared {
    pub attempt: u32,
    /// How many chunks the speech was cut into; at least one.
    pub chunks: u32,
    /// Characters that will be spoken (and billed), markup excluded.
    pub characters: u64,
    /// The chunks (SSML documents), stored as an object.
    pub chunks_ref: ObjectKey,
}

/// One chunk has audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkSynthesized {
    pub attempt: u32,
    /// Zero-based index of the chunk.
    pub index: u32,
    pub audio_ref: ObjectKey,
    pub bytes: u64,
    pub duration_seconds: f64,
}

/// The audio format of a finished conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Mp3,
}

impl AudioFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio/mpeg",
        }
    }
}

/// The audio is stored: the conversion is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionCompleted {
    pub attempt: u32,
    pub audio_ref: ObjectKey,
    pub bytes: u64,
    /// Counted from the MP3 frames, never estimated from the bitrate.
    pub duration_seconds: f64,
    pub format: AudioFormat,
}

/// A step failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionFailed {
    pub attempt: u32,
    /// The state of the workflow that failed (`FetchArticle`, ...).
    pub state: String,
    /// The stable error name (`Lector.NotFound`, `States.Timeout`, ...).
    pub error: String,
    /// Why, in words.
    pub cause: String,
}

/// How a failed conversion is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryMethod {
    /// The failed execution resumes from the state that failed, keeping the work done.
    Redrive,
    /// A new attempt runs the workflow from the start.
    Restart,
}

impl RetryMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryMethod::Redrive => "redrive",
            RetryMethod::Restart => "restart",
        }
    }
}

/// An operator replayed a failed conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionRetried {
    pub how: RetryMethod,
    /// Who replayed it.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The attempt that runs now: the same one for a redrive, the next one for a restart.
    pub attempt: u32,
}

/// Every event of a conversion's stream. Serialized with its type name beside its data:
/// `{"type": "ChunkSynthesized", "data": {...}}`.
// One request per stream makes the size difference irrelevant; boxing would only complicate
// every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ConversionEvent {
    ConversionRequested(ConversionRequested),
    ConversionStarted(ConversionStarted),
    ArticleFetched(ArticleFetched),
    SpeechPrepared(SpeechPrepared),
    ChunkSynthesized(ChunkSynthesized),
    ConversionCompleted(ConversionCompleted),
    ConversionFailed(ConversionFailed),
    ConversionRetried(ConversionRetried),
}

/// The current schema version of an event type, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub schema_version: u32,
}

impl ConversionEvent {
    /// Every event type with its current schema version.
    pub const TYPES: [EventType; 8] = [
        EventType { name: "ConversionRequested", schema_version: 1 },
        EventType { name: "ConversionStarted", schema_version: 1 },
        EventType { name: "ArticleFetched", schema_version: 1 },
        EventType { name: "SpeechPrepared", schema_version: 1 },
        EventType { name: "ChunkSynthesized", schema_version: 1 },
        EventType { name: "ConversionCompleted", schema_version: 1 },
        EventType { name: "ConversionFailed", schema_version: 1 },
        EventType { name: "ConversionRetried", schema_version: 1 },
    ];

    pub fn event_type(&self) -> &'static str {
        match self {
            ConversionEvent::ConversionRequested(_) => "ConversionRequested",
            ConversionEvent::ConversionStarted(_) => "ConversionStarted",
            ConversionEvent::ArticleFetched(_) => "ArticleFetched",
            ConversionEvent::SpeechPrepared(_) => "SpeechPrepared",
            ConversionEvent::ChunkSynthesized(_) => "ChunkSynthesized",
            ConversionEvent::ConversionCompleted(_) => "ConversionCompleted",
            ConversionEvent::ConversionFailed(_) => "ConversionFailed",
            ConversionEvent::ConversionRetried(_) => "ConversionRetried",
        }
    }

    pub fn schema_version(&self) -> u32 {
        schema_version_of(self.event_type()).unwrap_or(1)
    }

    /// The event's data without its type tag, as stored in the log.
    pub fn data(&self) -> serde_json::Value {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        match value {
            serde_json::Value::Object(mut map) => map.remove("data").unwrap_or_default(),
            other => other,
        }
    }

    /// Rebuild an event from its stored type name, schema version and data, upcasting old
    /// versions first.
    pub fn from_parts(
        event_type: &str,
        schema_version: u32,
        data: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        let data = upcast(event_type, schema_version, data)?;
        let tagged = serde_json::json!({ "type": event_type, "data": data });
        serde_json::from_value(tagged)
            .map_err(|e| DecodeError::Invalid { event_type: event_type.to_owned(), reason: e.to_string() })
    }
}

/// The current schema version of the named event type.
pub fn schema_version_of(event_type: &str) -> Option<u32> {
    ConversionEvent::TYPES.iter().find(|t| t.name == event_type).map(|t| t.schema_version)
}

/// Why a stored event could not be read as a [`ConversionEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The type is not one of ours: a newer writer, or another stream's event. Skip or stop;
    /// never guess.
    #[error("unknown event type '{0}'")]
    UnknownType(String),
    /// The event was written by a newer version of Lector than this one.
    #[error("{event_type} has schema version {found}, newer than this build's {known}")]
    NewerVersion { event_type: String, found: u32, known: u32 },
    /// The data does not fit the type: the log is damaged or the writer had a bug.
    #[error("{event_type} data is invalid: {reason}")]
    Invalid { event_type: String, reason: String },
}

/// Bring `data` written at `schema_version` up to the current version of `event_type`.
///
/// Every event type is at version 1, so there is nothing to convert yet; when a type gets a
/// version 2, its conversion from 1 goes here, as a match arm, and stays forever.
pub fn upcast(
    event_type: &str,
    schema_version: u32,
    data: serde_json::Value,
) -> Result<serde_json::Value, DecodeError> {
    let current =
        schema_version_of(event_type).ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
    if schema_version > current {
        return Err(DecodeError::NewerVersion {
            event_type: event_type.to_owned(),
            found: schema_version,
            known: current,
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_type_and_data() {
        let event = ConversionEvent::ConversionStarted(ConversionStarted {
            execution_id: "exec-1".into(),
            attempt: 1,
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "ConversionStarted");
        assert_eq!(json["data"]["execution_id"], "exec-1");
        assert_eq!(event.data()["attempt"], 1);
    }

    #[test]
    fn parts_round_trip() {
        let event = ConversionEvent::ConversionFailed(ConversionFailed {
            attempt: 2,
            state: "FetchArticle".into(),
            error: "Lector.NotFound".into(),
            cause: "404".into(),
        });
        let back = ConversionEvent::from_parts(event.event_type(), 1, event.data()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn unknown_types_newer_versions_and_bad_data_are_named() {
        assert_eq!(
            ConversionEvent::from_parts("Nope", 1, serde_json::json!({})),
            Err(DecodeError::UnknownType("Nope".into()))
        );
        assert!(matches!(
            ConversionEvent::from_parts("ConversionStarted", 9, serde_json::json!({})),
            Err(DecodeError::NewerVersion { found: 9, known: 1, .. })
        ));
        assert!(matches!(
            ConversionEvent::from_parts("ConversionStarted", 1, serde_json::json!({"attempt": "x"})),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn every_variant_has_a_registered_type() {
        for t in ConversionEvent::TYPES {
            assert_eq!(schema_version_of(t.name), Some(t.schema_version));
        }
    }
}

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
    /// The voice, or `auto`: the voice of the engine that speaks the article's language.
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// Who asked: a user, a token's subject, or `cli`.
    pub requested_by: String,
    /// The post as its feed describes it, for the podcast episode: its stable key in the feed,
    /// when it was published and last updated, and its summary (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<PostInfo>,
    /// The hash of the text the request carries (`content_ref`'s text), when it carries one: a
    /// later submission of the same text is recognised as unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The language the feed declares, used when the article declares none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_language: Option<String>,
    /// The pronunciation rules in force when it was requested (the subscription's over the
    /// global default), so that every run of this revision reads them alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pronunciations: Vec<crate::pronunciation::Rule>,
}

/// What a feed says of a post, beyond its address and title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostInfo {
    /// The post's stable key in its feed (guid, else link, else a hash of title and date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The summary, plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// Why a conversion gets a new revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevisionReason {
    /// The subscribed feed says the post changed (`PostChanged`).
    PostChanged,
    /// The same post was submitted again and its text differs.
    Resubmitted,
}

/// The post changed: the conversion runs again as its next revision, keeping its id. The
/// previous revision's audio stays served until the new one is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionRevisionRequested {
    /// The new revision: 2 for the first edit.
    pub revision: u32,
    /// The attempt that runs it (attempts count on across revisions).
    pub attempt: u32,
    pub reason: RevisionReason,
    /// The post's new text as the feed carries it (HTML), stored as an object; when absent
    /// the page is fetched again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<ObjectKey>,
    /// The hash of the new text, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<PostInfo>,
    pub requested_by: String,
    /// The pronunciation rules in force for this revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pronunciations: Vec<crate::pronunciation::Rule>,
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
    /// A hash of the text as read (its blocks' text), to tell an edited post from an unchanged
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The page's own summary (its description metadata), plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When the page says it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
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
    /// The speech (its units and how they are grouped into chunks), stored as an object.
    pub chunks_ref: ObjectKey,
    /// Units of speech (sentences) in the narration; each is synthesized once and stored under
    /// a key made of everything that decides its sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u32>,
    /// Units whose audio was already stored (by an earlier revision, another conversion or a
    /// failed run): they are not synthesized again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_cached: Option<u32>,
    /// The voice that speaks, once chosen (the request may say `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceId>,
    /// The language the text is read in (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Set when the voice's language differs from the text's: the voice was named in the
    /// request and is used as asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_note: Option<String>,
}

/// Every unit of one chunk has stored audio. Schema version 2: a chunk is a group of units of
/// speech, each stored under its own key, with what was synthesized and what was reused;
/// version 1 events (one MP3 per chunk) are upcast, their MP3 kept as `audio_ref`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkSynthesized {
    pub attempt: u32,
    /// Zero-based index of the chunk.
    pub index: u32,
    /// Units in the chunk.
    pub units: u32,
    /// Units the voice spoke for this chunk.
    pub units_synthesized: u32,
    /// Units found already stored.
    pub units_reused: u32,
    /// Characters sent to the voice (billed).
    pub characters_synthesized: u64,
    /// Characters whose stored audio was reused (not billed).
    pub characters_reused: u64,
    /// Bytes of the chunk's audio.
    pub bytes: u64,
    pub duration_seconds: f64,
    /// The chunk's own MP3, in chunks synthesized by Lector before units (schema version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_ref: Option<ObjectKey>,
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
    /// The revision this audio is of (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// When each sentence starts and ends in the audio, and the chapters, stored as an object
    /// (the transcripts and the read-along player are made from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ref: Option<ObjectKey>,
    /// What this revision cost: units and characters synthesized, and reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthesis: Option<SynthesisTotals>,
    /// Chapters in the timings (one per heading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapters: Option<u32>,
}

/// What a revision's speech cost: units (sentences) and characters synthesized (billed) and
/// reused from stored audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthesisTotals {
    pub units: u32,
    pub units_synthesized: u32,
    pub units_reused: u32,
    pub characters_synthesized: u64,
    pub characters_reused: u64,
}

impl SynthesisTotals {
    /// What the speech cost, in words: "narrated 212 sentences, 18,034 characters" for a
    /// speech made whole, "re-narrated 4 of 212 sentences, 312 of 18,034 characters" when
    /// stored audio was reused.
    pub fn describe(&self) -> String {
        let characters = self.characters_synthesized + self.characters_reused;
        if self.units_reused == 0 {
            format!("narrated {} sentences, {} characters", group(self.units.into()), group(characters))
        } else {
            format!(
                "re-narrated {} of {} sentences, {} of {} characters",
                group(self.units_synthesized.into()),
                group(self.units.into()),
                group(self.characters_synthesized),
                group(characters)
            )
        }
    }

    /// The totals with `more` added.
    pub fn plus(self, more: SynthesisTotals) -> SynthesisTotals {
        SynthesisTotals {
            units: self.units + more.units,
            units_synthesized: self.units_synthesized + more.units_synthesized,
            units_reused: self.units_reused + more.units_reused,
            characters_synthesized: self.characters_synthesized + more.characters_synthesized,
            characters_reused: self.characters_reused + more.characters_reused,
        }
    }
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

/// `18034` as `18,034`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    ConversionRevisionRequested(ConversionRevisionRequested),
}

/// The current schema version of an event type, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub schema_version: u32,
}

impl ConversionEvent {
    /// Every event type with its current schema version.
    pub const TYPES: [EventType; 9] = [
        EventType { name: "ConversionRequested", schema_version: 1 },
        EventType { name: "ConversionStarted", schema_version: 1 },
        EventType { name: "ArticleFetched", schema_version: 1 },
        EventType { name: "SpeechPrepared", schema_version: 1 },
        EventType { name: "ChunkSynthesized", schema_version: 2 },
        EventType { name: "ConversionCompleted", schema_version: 1 },
        EventType { name: "ConversionFailed", schema_version: 1 },
        EventType { name: "ConversionRetried", schema_version: 1 },
        EventType { name: "ConversionRevisionRequested", schema_version: 1 },
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
            ConversionEvent::ConversionRevisionRequested(_) => "ConversionRevisionRequested",
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

/// The current schema version of the named event type, of either aggregate.
pub fn schema_version_of(event_type: &str) -> Option<u32> {
    ConversionEvent::TYPES
        .iter()
        .chain(crate::feed::FeedEvent::TYPES.iter())
        .find(|t| t.name == event_type)
        .map(|t| t.schema_version)
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

/// Bring `data` written at `schema_version` up to the current version of `event_type`. Each
/// conversion from one version to the next is a match arm here, and stays forever.
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
    let mut data = data;
    let mut version = schema_version.max(1);
    while version < current {
        data = match (event_type, version) {
            ("ChunkSynthesized", 1) => chunk_v1_to_v2(data),
            _ => data,
        };
        version += 1;
    }
    Ok(data)
}

/// A version 1 chunk was one MP3 synthesized whole: one unit, synthesized, its characters not
/// recorded.
fn chunk_v1_to_v2(mut data: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut data {
        for (key, value) in [
            ("units", 1),
            ("units_synthesized", 1),
            ("units_reused", 0),
            ("characters_synthesized", 0),
            ("characters_reused", 0),
        ] {
            map.entry(key).or_insert(serde_json::Value::from(value));
        }
    }
    data
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
    fn version_1_chunks_are_upcast_to_units() {
        let v1 = serde_json::json!({
            "attempt": 1, "index": 2, "audio_ref": "work/x/chunks/h.mp3", "bytes": 10, "duration_seconds": 1.5
        });
        let event = ConversionEvent::from_parts("ChunkSynthesized", 1, v1).unwrap();
        let ConversionEvent::ChunkSynthesized(chunk) = event else { panic!("{event:?}") };
        assert_eq!((chunk.units, chunk.units_synthesized, chunk.units_reused), (1, 1, 0));
        assert_eq!(chunk.audio_ref.unwrap().as_str(), "work/x/chunks/h.mp3");
        assert_eq!(schema_version_of("ChunkSynthesized"), Some(2));
    }

    #[test]
    fn synthesis_totals_say_what_a_revision_cost() {
        let first = SynthesisTotals {
            units: 212,
            units_synthesized: 212,
            units_reused: 0,
            characters_synthesized: 18_034,
            characters_reused: 0,
        };
        assert_eq!(first.describe(), "narrated 212 sentences, 18,034 characters");
        let revision = SynthesisTotals {
            units: 212,
            units_synthesized: 4,
            units_reused: 208,
            characters_synthesized: 312,
            characters_reused: 17_722,
        };
        assert_eq!(revision.describe(), "re-narrated 4 of 212 sentences, 312 of 18,034 characters");
    }

    #[test]
    fn every_variant_has_a_registered_type() {
        for t in ConversionEvent::TYPES {
            assert_eq!(schema_version_of(t.name), Some(t.schema_version));
        }
    }
}

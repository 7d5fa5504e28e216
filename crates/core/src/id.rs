//! Identifiers: conversions, streams, feeds and events.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use crate::voice::{VoiceEngine, VoiceId};

/// Namespace for the name-based (v5) UUIDs of events, so that a retried step derives the same
/// event id and the store recognises the append as a repeat.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6374_6f72_2d65_7665_6e74_732d_7631);

/// Length in hex digits of a conversion id: 80 bits, far beyond any collision risk at the
/// scale of one deployment, and short enough to read out and type.
const CONVERSION_ID_LEN: usize = 20;

/// The id of one conversion: derived from what was asked for (the post URL, the voice and the
/// engine), so the same submission always gets the same id and submitting twice is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ConversionId(String);

impl ConversionId {
    /// The id of converting `post_url` with `voice` on `engine`.
    pub fn derive(post_url: &Url, voice: &VoiceId, engine: VoiceEngine) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(canonical_url(post_url).as_bytes());
        hasher.update([0]);
        hasher.update(voice.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(engine.as_str().as_bytes());
        let digest = hex::encode(hasher.finalize());
        Self(digest[..CONVERSION_ID_LEN].to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the workflow execution that runs `attempt` of this conversion: unique per
    /// attempt, so a repeated start of the same attempt starts nothing new.
    pub fn execution_name(&self, attempt: u32) -> String {
        format!("{}-{attempt}", self.0)
    }

    /// The name of the execution that runs `attempt` of `revision`: the attempt alone for the
    /// first revision, `<id>-r<revision>-<attempt>` for later ones. Attempts count on across
    /// revisions, so every name is unique to one run.
    pub fn revision_execution_name(&self, revision: u32, attempt: u32) -> String {
        if revision <= 1 { self.execution_name(attempt) } else { format!("{}-r{revision}-{attempt}", self.0) }
    }

    /// The event stream that holds this conversion's history.
    pub fn stream(&self) -> StreamId {
        StreamId(format!("{}{}", StreamId::CONVERSION_PREFIX, self.0))
    }
}

impl fmt::Display for ConversionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a conversion id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a conversion id: expected {CONVERSION_ID_LEN} lowercase hex digits")]
pub struct InvalidConversionId(pub String);

impl FromStr for ConversionId {
    type Err = InvalidConversionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == CONVERSION_ID_LEN
            && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid { Ok(Self(s.to_owned())) } else { Err(InvalidConversionId(s.to_owned())) }
    }
}

impl TryFrom<String> for ConversionId {
    type Error = InvalidConversionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ConversionId> for String {
    fn from(id: ConversionId) -> Self {
        id.0
    }
}

/// The name of an event stream (`conversion-<id>` for conversions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub const CONVERSION_PREFIX: &'static str = "conversion-";
    pub const FEED_PREFIX: &'static str = "feed-";

    /// Any stream name; the store does not interpret it.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The feed this stream belongs to, if it is a feed subscription's stream.
    pub fn feed_id(&self) -> Option<FeedId> {
        self.0.strip_prefix(Self::FEED_PREFIX).map(|id| FeedId(id.to_owned())).filter(FeedId::is_valid)
    }

    /// The conversion this stream belongs to, if it is a conversion stream.
    pub fn conversion_id(&self) -> Option<ConversionId> {
        self.0.strip_prefix(Self::CONVERSION_PREFIX).and_then(|id| id.parse().ok())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a feed, derived from its URL; podcast feeds and list filters use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct FeedId(String);

impl FeedId {
    pub fn derive(feed_url: &Url) -> Self {
        let digest = hex::encode(Sha256::digest(canonical_url(feed_url).as_bytes()));
        Self(digest[..16].to_owned())
    }

    /// A feed id as received (for example in a URL path); it is only ever compared.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The event stream that holds this feed's subscription.
    pub fn stream(&self) -> StreamId {
        StreamId(format!("{}{}", StreamId::FEED_PREFIX, self.0))
    }

    /// Whether this is a feed id as [`FeedId::derive`] makes them (16 lowercase hex digits).
    pub fn is_valid(&self) -> bool {
        self.0.len() == 16 && self.0.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl std::str::FromStr for FeedId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = Self(s.to_owned());
        if id.is_valid() {
            Ok(id)
        } else {
            Err(format!("'{s}' is not a feed id: expected 16 lowercase hex digits"))
        }
    }
}

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unique id of an event. Derived from what makes a step's fact unique (the conversion, the
/// attempt, the step and, for chunks, the index), so a step that runs twice produces the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A deterministic id from the parts that make the fact unique.
    pub fn derive(parts: &[&str]) -> Self {
        Self(Uuid::new_v5(&EVENT_NAMESPACE, parts.join("\u{1f}").as_bytes()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The URL as it identifies a post: scheme and host lowercased (the `url` crate does that),
/// the fragment dropped (it names a place in the page, not another page), default ports dropped.
pub fn canonical_url(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn same_post_voice_and_engine_give_the_same_id() {
        let voice = VoiceId::new("Joanna");
        let a = ConversionId::derive(&url("https://Blog.example/post#top"), &voice, VoiceEngine::Neural);
        let b = ConversionId::derive(&url("https://blog.example:443/post"), &voice, VoiceEngine::Neural);
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), CONVERSION_ID_LEN);
    }

    #[test]
    fn another_voice_or_engine_or_post_gives_another_id() {
        let post = url("https://blog.example/post");
        let joanna = VoiceId::new("Joanna");
        let base = ConversionId::derive(&post, &joanna, VoiceEngine::Neural);
        assert_ne!(base, ConversionId::derive(&post, &VoiceId::new("Matthew"), VoiceEngine::Neural));
        assert_ne!(base, ConversionId::derive(&post, &joanna, VoiceEngine::Standard));
        assert_ne!(
            base,
            ConversionId::derive(&url("https://blog.example/other"), &joanna, VoiceEngine::Neural)
        );
    }

    #[test]
    fn conversion_ids_parse_strictly_and_round_trip_through_streams() {
        let id = ConversionId::derive(&url("https://a.example/"), &VoiceId::new("en"), VoiceEngine::Espeak);
        let parsed: ConversionId = id.as_str().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(id.stream().conversion_id(), Some(id.clone()));
        assert!("../etc/passwd".parse::<ConversionId>().is_err());
        assert!("ABCDEF0123456789ABCD".parse::<ConversionId>().is_err());
        assert_eq!(StreamId::new("other-1").conversion_id(), None);
    }

    #[test]
    fn event_ids_are_deterministic_per_fact() {
        assert_eq!(EventId::derive(&["c", "1", "chunk", "3"]), EventId::derive(&["c", "1", "chunk", "3"]));
        assert_ne!(EventId::derive(&["c", "1", "chunk", "3"]), EventId::derive(&["c", "1", "chunk", "4"]));
        // The separator keeps ["ab", "c"] and ["a", "bc"] apart.
        assert_ne!(EventId::derive(&["ab", "c"]), EventId::derive(&["a", "bc"]));
    }
}

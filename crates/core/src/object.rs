//! Object references: large text and audio travel between steps as keys, never inline.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::id::ConversionId;

/// The key of a stored object (an S3 key on AWS, a relative path under the data folder locally).
///
/// Keys are made by Lector, never taken from users, and are always relative, `/`-separated and
/// free of `..`, so that a folder-backed store can join them safely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

/// Why a string is not an object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an object key: keys are relative, '/'-separated, without '..', '.' or empty segments")]
pub struct InvalidObjectKey(pub String);

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidObjectKey> {
        let key = key.into();
        let valid = !key.is_empty()
            && key.len() <= 1024
            && !key.starts_with('/')
            && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'))
            && !key.chars().any(char::is_control);
        if valid { Ok(Self(key)) } else { Err(InvalidObjectKey(key)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extracted article of an attempt (title, byline, language and the text as blocks).
    pub fn article_text(id: &ConversionId, attempt: u32) -> Self {
        Self(format!("work/{id}/{attempt}/article.json"))
    }

    /// The post's content as the feed carried it.
    pub fn feed_content(id: &ConversionId) -> Self {
        Self(format!("work/{id}/feed-content.html"))
    }

    /// One version of the post's content as the feed carried it, by the hash of its text.
    pub fn feed_content_version(id: &ConversionId, content_hash: &str) -> Self {
        let hash: String = content_hash.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
        Self(format!("work/{id}/feed-content-{hash}.html"))
    }

    /// A subscribed feed's post as the feed carried it, by the hash of its text.
    pub fn feed_post(feed: &crate::id::FeedId, content_hash: &str) -> Self {
        let hash: String = content_hash.chars().filter(char::is_ascii_alphanumeric).take(80).collect();
        Self(format!("feeds/{feed}/posts/{hash}.html"))
    }

    /// A subscription's state folded up to a version of its stream (a snapshot).
    pub fn feed_snapshot(feed: &crate::id::FeedId) -> Self {
        Self(format!("feeds/{feed}/snapshot.json"))
    }

    /// The chunks of an attempt, as one JSON document.
    pub fn speech_chunks(id: &ConversionId, attempt: u32) -> Self {
        Self(format!("work/{id}/{attempt}/chunks.json"))
    }

    /// The audio of one chunk, as Lector stored it before speech was cut into units.
    pub fn chunk_audio(id: &ConversionId, content_hash: &str) -> Self {
        Self(format!("work/{id}/chunks/{content_hash}.mp3"))
    }

    /// The stored audio of one unit of speech, by its key (a hex hash of everything that
    /// decides its sound): shared by every conversion, revision and run that speaks the same
    /// unit. `None` when the key is not a hash.
    pub fn speech_unit(key: &str) -> Option<Self> {
        let valid = key.len() >= 8 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        valid.then(|| Self(format!("speech/{}/{key}.mp3", &key[..2])))
    }

    /// The finished audio of a conversion's first revision.
    pub fn audio(id: &ConversionId) -> Self {
        Self(format!("audio/{id}.mp3"))
    }

    /// The finished audio of `revision`: a new object (and address) per revision, so that
    /// caches and podcast apps fetch it, while the previous revision's stays served until it is
    /// complete.
    pub fn revision_audio(id: &ConversionId, revision: u32) -> Self {
        if revision <= 1 { Self::audio(id) } else { Self(format!("audio/{id}/r{revision}.mp3")) }
    }

    /// The sentence timings and chapters of `revision`'s audio.
    pub fn timings(id: &ConversionId, revision: u32) -> Self {
        Self(format!("audio/{id}/r{revision}.timeline.json"))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = InvalidObjectKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> Self {
        key.0
    }
}

/// What the store knows of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: ObjectKey,
    pub size: u64,
    pub content_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_escapes() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a/.", "a\\b", "a\nb"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectKey::new("audio/abc.mp3").is_ok());
    }

    #[test]
    fn keys_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<ObjectKey>("\"../x\"").is_err());
        let key: ObjectKey = serde_json::from_str("\"work/x/1/article.txt\"").unwrap();
        assert_eq!(key.as_str(), "work/x/1/article.txt");
    }
}

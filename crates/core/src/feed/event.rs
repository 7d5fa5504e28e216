//! The events of a feed subscription's stream (`feed-<feed id>`): what happened to a
//! subscribed feed, as facts. Like the conversion events, they are the published contract:
//! `schemas/` is generated from them, other teams subscribe to them on the bus, and a released
//! event's fields never change in place.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::event::{DecodeError, EventType, upcast};
use crate::id::FeedId;
use crate::object::ObjectKey;
use crate::pronunciation::PronunciationsChanged;
use crate::schedule::{FailureKind, PollReason};
use crate::voice::{VoiceEngine, VoiceId};

/// Who owns a podcast feed, as Apple Podcasts asks for it (`itunes:owner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodcastOwner {
    pub name: String,
    pub email: String,
}

/// A feed was subscribed to: its posts are narrated from now on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedSubscribed {
    pub feed_id: FeedId,
    pub url: Url,
    /// The voice, or `auto`: the voice that speaks each post's language.
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    /// Whether new posts are converted by themselves.
    pub auto_convert: bool,
    /// Whether an edited post gets a new revision.
    pub regenerate_on_edit: bool,
    /// How many of the posts already in the feed are converted at the first poll (0 to 50).
    pub backfill: u32,
    /// Minutes between polls (at least 5).
    pub interval_minutes: u32,
    /// The podcast feed's owner, when set for this subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<PodcastOwner>,
    /// The podcast's `podcast:guid`, fixed when subscribing (a UUIDv5 of the podcast feed's
    /// address, as the Podcasting 2.0 namespace has it), so that it never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podcast_guid: Option<uuid::Uuid>,
    /// Who subscribed: a user, a token's subject, or `cli`.
    pub subscribed_by: String,
}

/// Where a poll's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollSource {
    /// A conditional GET of the feed.
    Poll,
    /// A WebSub hub pushed the feed.
    Push,
}

/// The image a feed names for itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedImage {
    pub url: Url,
    /// Its size when the feed says (or when it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether it meets Apple Podcasts' artwork rules (square, 1400 to 3000 pixels, JPEG or
    /// PNG), so that a podcast feed of this feed can use it.
    #[serde(default)]
    pub artwork: bool,
}

/// What a feed says of itself, recorded when it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The site the feed belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Url>,
    /// BCP 47.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<FeedImage>,
    /// The WebSub hub the feed names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<Url>,
    /// The feed's own address, as it states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<Url>,
}

/// A poll (or a push) read the feed, or found it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedPolled {
    pub source: PollSource,
    /// The HTTP status: 304 when unchanged (nothing was parsed), else the 2xx of the body.
    pub status: u16,
    /// The validators kept for the next conditional GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// Items the feed holds (0 on a 304).
    pub items_seen: u32,
    /// Posts discovered and changed by this poll (their own events follow).
    pub new: u32,
    pub changed: u32,
    pub next_poll_at: DateTime<Utc>,
    /// Which rule decided the next poll.
    pub next_poll_reason: PollReason,
    /// What the feed says of itself, when it differs from what was recorded before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<FeedDetails>,
}

/// A poll failed. The subscription shows it as failing until a poll succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedPollFailed {
    /// When the poll failed.
    pub failed_at: DateTime<Utc>,
    pub source: PollSource,
    /// The stable error name (`Lector.NotFound`, `Lector.Transient`, ...).
    pub error: String,
    /// Why, in words.
    pub cause: String,
    /// How the failure counts for scheduling.
    pub kind: FailureKind,
    /// The HTTP status, when there was an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Failures in a row, this one included.
    pub consecutive_failures: u32,
    pub next_try_at: DateTime<Utc>,
}

/// A post the subscription had not seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostDiscovered {
    /// The post's stable key in the feed (guid, else link, else a hash of title and date).
    pub post_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A hash of what would be read (the full text, else title and summary).
    pub content_hash: String,
    /// The post's full text as the feed carries it, stored as an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<ObjectKey>,
    /// Whether it is to be converted: a new post of a subscription that converts new posts, or
    /// one of the `backfill` newest at the first poll.
    pub convert: bool,
    /// Found by the first poll, as a post that was already there.
    pub existing: bool,
    /// How it is to be read (the subscription's settings when it was found).
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    pub feed_url: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_language: Option<String>,
}

/// A post seen before changed: its text, or its updated date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostChanged {
    pub post_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub content_hash: String,
    pub previous_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ref: Option<ObjectKey>,
    /// Whether its conversion gets a new revision (the subscription's `regenerate_on_edit`).
    pub regenerate: bool,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    pub feed_url: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_language: Option<String>,
}

/// Settings of the subscription changed; only the changed ones are set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedSettingsChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<VoiceEngine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_convert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regenerate_on_edit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<PodcastOwner>,
    pub changed_by: String,
}

/// The subscription stopped polling, by hand or because a failure is permanent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedPaused {
    pub reason: String,
    /// True when Lector paused it (a permanent failure), false when a person did.
    pub automatic: bool,
    pub by: String,
}

/// The subscription polls again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedResumed {
    pub by: String,
}

/// The subscription ended: no more polls. Its conversions and their audio stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedUnsubscribed {
    pub by: String,
}

/// The deployed stack asked the feed's WebSub hub to push the feed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSubscriptionRequested {
    pub hub: Url,
    /// The topic (the feed's self address).
    pub topic: Url,
    pub callback: Url,
    pub lease_seconds: u32,
    pub requested_at: DateTime<Utc>,
}

/// The hub checked the subscription's intent and the callback confirmed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSubscriptionVerified {
    pub hub: Url,
    pub lease_seconds: u32,
    pub expires_at: DateTime<Utc>,
}

/// Every event of a feed subscription's stream, serialized with its type name beside its
/// data: `{"type": "PostDiscovered", "data": {...}}`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum FeedEvent {
    FeedSubscribed(FeedSubscribed),
    FeedPolled(FeedPolled),
    FeedPollFailed(FeedPollFailed),
    PostDiscovered(PostDiscovered),
    PostChanged(PostChanged),
    FeedSettingsChanged(FeedSettingsChanged),
    FeedPaused(FeedPaused),
    FeedResumed(FeedResumed),
    FeedUnsubscribed(FeedUnsubscribed),
    HubSubscriptionRequested(HubSubscriptionRequested),
    HubSubscriptionVerified(HubSubscriptionVerified),
    /// The subscription's pronunciation rules were replaced.
    PronunciationsChanged(PronunciationsChanged),
}

impl FeedEvent {
    /// Every event type with its current schema version.
    pub const TYPES: [EventType; 12] = [
        EventType { name: "FeedSubscribed", schema_version: 1 },
        EventType { name: "FeedPolled", schema_version: 1 },
        EventType { name: "FeedPollFailed", schema_version: 1 },
        EventType { name: "PostDiscovered", schema_version: 1 },
        EventType { name: "PostChanged", schema_version: 1 },
        EventType { name: "FeedSettingsChanged", schema_version: 1 },
        EventType { name: "FeedPaused", schema_version: 1 },
        EventType { name: "FeedResumed", schema_version: 1 },
        EventType { name: "FeedUnsubscribed", schema_version: 1 },
        EventType { name: "HubSubscriptionRequested", schema_version: 1 },
        EventType { name: "HubSubscriptionVerified", schema_version: 1 },
        EventType { name: "PronunciationsChanged", schema_version: 1 },
    ];

    pub fn event_type(&self) -> &'static str {
        match self {
            FeedEvent::FeedSubscribed(_) => "FeedSubscribed",
            FeedEvent::FeedPolled(_) => "FeedPolled",
            FeedEvent::FeedPollFailed(_) => "FeedPollFailed",
            FeedEvent::PostDiscovered(_) => "PostDiscovered",
            FeedEvent::PostChanged(_) => "PostChanged",
            FeedEvent::FeedSettingsChanged(_) => "FeedSettingsChanged",
            FeedEvent::FeedPaused(_) => "FeedPaused",
            FeedEvent::FeedResumed(_) => "FeedResumed",
            FeedEvent::FeedUnsubscribed(_) => "FeedUnsubscribed",
            FeedEvent::HubSubscriptionRequested(_) => "HubSubscriptionRequested",
            FeedEvent::HubSubscriptionVerified(_) => "HubSubscriptionVerified",
            FeedEvent::PronunciationsChanged(_) => "PronunciationsChanged",
        }
    }

    pub fn schema_version(&self) -> u32 {
        crate::event::schema_version_of(self.event_type()).unwrap_or(1)
    }

    /// The event's data without its type tag, as stored in the log.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self).unwrap_or(serde_json::Value::Null) {
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
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
            .map_err(|e| DecodeError::Invalid { event_type: event_type.to_owned(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_events_round_trip_through_their_parts() {
        let event =
            FeedEvent::FeedPaused(FeedPaused { reason: "gone".into(), automatic: true, by: "lector".into() });
        assert_eq!(FeedEvent::from_parts("FeedPaused", 1, event.data()).unwrap(), event);
        assert!(matches!(
            FeedEvent::from_parts(
                "ConversionStarted",
                1,
                serde_json::json!({"execution_id": "e", "attempt": 1})
            ),
            Err(DecodeError::Invalid { .. })
        ));
        for t in FeedEvent::TYPES {
            assert_eq!(crate::event::schema_version_of(t.name), Some(t.schema_version));
        }
    }
}

//! What the front-end sees of a subscription, as a pure fold of its stream: its state
//! (`active`, `paused`, `failing`), its last and next poll, why it fails, what it found.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::envelope::RecordedEvent;
use crate::event::DecodeError;
use crate::feed::event::{FeedDetails, FeedEvent, PodcastOwner, PollSource};
use crate::id::FeedId;
use crate::schedule::{FailureKind, PollReason};
use crate::voice::{VoiceEngine, VoiceId};

/// The coarse state of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Polled on schedule; the last poll succeeded (or none was made yet).
    Active,
    /// Polled on schedule, but the last poll failed: it is retried with backoff.
    Failing,
    /// Not polled, by hand or because a failure was permanent (the reason says which).
    Paused,
    /// Ended. Its conversions stay.
    Unsubscribed,
}

impl FeedState {
    pub const ALL: [FeedState; 4] =
        [FeedState::Active, FeedState::Failing, FeedState::Paused, FeedState::Unsubscribed];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Active => "active",
            FeedState::Failing => "failing",
            FeedState::Paused => "paused",
            FeedState::Unsubscribed => "unsubscribed",
        }
    }

    /// Whether a subscription in this state is polled.
    pub fn is_polled(self) -> bool {
        matches!(self, FeedState::Active | FeedState::Failing)
    }
}

impl std::str::FromStr for FeedState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state '{s}': expected active, failing, paused or unsubscribed"))
    }
}

/// Why the last poll failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PollFailureInfo {
    pub error: String,
    pub cause: String,
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub at: DateTime<Utc>,
}

/// Why the next poll is when it is: a rule of the schedule, or a retry after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextPollReason {
    /// Subscribed (or resumed) and not polled yet: due at once.
    FirstPoll,
    /// After a failure, with backoff.
    Retry,
    /// After a good poll, by the rule named.
    #[serde(untagged)]
    Schedule(PollReason),
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeedStatus {
    pub feed_id: FeedId,
    pub url: Url,
    /// The feed's title, once read.
    pub title: Option<String>,
    pub state: FeedState,
    /// Why it is paused, while it is.
    pub paused_reason: Option<String>,
    /// Paused by Lector (a permanent failure) rather than by a person.
    pub paused_automatically: bool,
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    pub auto_convert: bool,
    pub regenerate_on_edit: bool,
    pub backfill: u32,
    pub interval_minutes: u32,
    /// The podcast feed's owner, when set for this subscription.
    pub owner: Option<PodcastOwner>,
    /// The podcast's `podcast:guid`, fixed at subscription.
    pub podcast_guid: Option<uuid::Uuid>,
    /// What the feed says of itself.
    pub details: FeedDetails,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last poll that got an answer.
    pub last_status: Option<u16>,
    pub last_poll_source: Option<PollSource>,
    pub next_poll_at: DateTime<Utc>,
    pub next_poll_reason: NextPollReason,
    pub consecutive_failures: u32,
    /// The last failure, while the subscription is failing (or paused by one).
    pub last_error: Option<PollFailureInfo>,
    /// Posts the subscription has seen.
    pub posts_seen: u32,
    /// Conversions it asked for: new posts to convert, and revisions of edited ones.
    pub conversions_requested: u32,
    /// The WebSub hub pushing this feed, and until when.
    pub hub: Option<Url>,
    pub hub_expires_at: Option<DateTime<Utc>>,
    pub subscribed_by: String,
    /// The subscription's pronunciation rules (`GET /feeds/{feed_id}/pronunciations`).
    #[serde(default)]
    pub pronunciations: Vec<crate::pronunciation::Rule>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The stream version this status was folded up to.
    pub version: u64,
}

impl FeedStatus {
    /// Fold a subscription's stream. `None` for an empty stream or one that does not start
    /// with a subscription.
    pub fn fold(events: &[RecordedEvent]) -> Result<Option<Self>, DecodeError> {
        let mut status = None;
        for recorded in events {
            status = Self::apply(status, recorded)?;
        }
        Ok(status)
    }

    /// Apply one more event (for the projection that follows the log).
    pub fn apply(status: Option<Self>, recorded: &RecordedEvent) -> Result<Option<Self>, DecodeError> {
        let event =
            FeedEvent::from_parts(&recorded.event_type, recorded.schema_version, recorded.data.clone())?;
        Ok(apply(status, &event, recorded))
    }
}

fn apply(status: Option<FeedStatus>, event: &FeedEvent, recorded: &RecordedEvent) -> Option<FeedStatus> {
    let at = recorded.occurred_at;
    if let FeedEvent::FeedSubscribed(s) = event {
        let mut next = status.unwrap_or_else(|| FeedStatus {
            feed_id: s.feed_id.clone(),
            url: s.url.clone(),
            title: None,
            state: FeedState::Active,
            paused_reason: None,
            paused_automatically: false,
            voice: s.voice.clone(),
            engine: s.engine,
            auto_convert: s.auto_convert,
            regenerate_on_edit: s.regenerate_on_edit,
            backfill: s.backfill,
            interval_minutes: s.interval_minutes,
            owner: s.owner.clone(),
            podcast_guid: s.podcast_guid,
            details: FeedDetails::default(),
            last_poll_at: None,
            last_status: None,
            last_poll_source: None,
            next_poll_at: at,
            next_poll_reason: NextPollReason::FirstPoll,
            consecutive_failures: 0,
            last_error: None,
            posts_seen: 0,
            conversions_requested: 0,
            hub: None,
            hub_expires_at: None,
            subscribed_by: s.subscribed_by.clone(),
            pronunciations: Vec::new(),
            created_at: at,
            updated_at: at,
            version: recorded.version,
        });
        // Subscribed again after unsubscribing: the new settings, polled at once.
        next.state = FeedState::Active;
        next.voice = s.voice.clone();
        next.engine = s.engine;
        next.auto_convert = s.auto_convert;
        next.regenerate_on_edit = s.regenerate_on_edit;
        next.backfill = s.backfill;
        next.interval_minutes = s.interval_minutes;
        next.owner = s.owner.clone().or(next.owner);
        next.podcast_guid = next.podcast_guid.or(s.podcast_guid);
        next.paused_reason = None;
        next.next_poll_at = at;
        next.next_poll_reason = NextPollReason::FirstPoll;
        next.updated_at = at;
        next.version = recorded.version;
        return Some(next);
    }
    let mut s = status?;
    s.updated_at = at;
    s.version = recorded.version;
    match event {
        FeedEvent::FeedSubscribed(_) => {}
        FeedEvent::FeedPolled(p) => {
            if let Some(details) = &p.details {
                s.title = details.title.clone().or(s.title);
                s.details = details.clone();
            }
            s.last_poll_at = Some(at);
            s.last_status = Some(p.status);
            s.last_poll_source = Some(p.source);
            s.next_poll_at = p.next_poll_at;
            s.next_poll_reason = NextPollReason::Schedule(p.next_poll_reason);
            s.consecutive_failures = 0;
            s.last_error = None;
            if s.state == FeedState::Failing {
                s.state = FeedState::Active;
            }
        }
        FeedEvent::FeedPollFailed(f) => {
            s.last_poll_at = Some(f.failed_at);
            s.last_status = f.status.or(s.last_status);
            s.last_poll_source = Some(f.source);
            s.next_poll_at = f.next_try_at;
            s.next_poll_reason = NextPollReason::Retry;
            s.consecutive_failures = f.consecutive_failures;
            s.last_error = Some(PollFailureInfo {
                error: f.error.clone(),
                cause: f.cause.clone(),
                kind: f.kind,
                status: f.status,
                at: f.failed_at,
            });
            if s.state == FeedState::Active {
                s.state = FeedState::Failing;
            }
        }
        FeedEvent::PostDiscovered(d) => {
            s.posts_seen += 1;
            if d.convert {
                s.conversions_requested += 1;
            }
        }
        FeedEvent::PostChanged(c) => {
            if c.regenerate {
                s.conversions_requested += 1;
            }
        }
        FeedEvent::FeedSettingsChanged(c) => {
            if let Some(v) = &c.voice {
                s.voice = v.clone();
            }
            if let Some(e) = c.engine {
                s.engine = e;
            }
            if let Some(a) = c.auto_convert {
                s.auto_convert = a;
            }
            if let Some(r) = c.regenerate_on_edit {
                s.regenerate_on_edit = r;
            }
            if let Some(i) = c.interval_minutes {
                s.interval_minutes = i;
            }
            if let Some(o) = &c.owner {
                s.owner = Some(o.clone());
            }
        }
        FeedEvent::FeedPaused(p) => {
            s.state = FeedState::Paused;
            s.paused_reason = Some(p.reason.clone());
            s.paused_automatically = p.automatic;
        }
        FeedEvent::FeedResumed(_) => {
            s.state = FeedState::Active;
            s.paused_reason = None;
            s.paused_automatically = false;
            s.consecutive_failures = 0;
            s.last_error = None;
            s.next_poll_at = at;
            s.next_poll_reason = NextPollReason::FirstPoll;
        }
        FeedEvent::FeedUnsubscribed(_) => s.state = FeedState::Unsubscribed,
        FeedEvent::HubSubscriptionRequested(_) => {}
        FeedEvent::PronunciationsChanged(p) => s.pronunciations = p.rules.clone(),
        FeedEvent::HubSubscriptionVerified(v) => {
            s.hub = Some(v.hub.clone());
            s.hub_expires_at = Some(v.expires_at);
        }
    }
    Some(s)
}

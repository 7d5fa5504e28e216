//! The `Subscription` aggregate: every rule about a subscribed feed, in [`decide`] (what a
//! poll found new or changed, when the next poll is, when a failure pauses it); how each event
//! changes it, in [`evolve`], which checks nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use url::Url;

use crate::feed::event::{
    FeedDetails, FeedEvent, FeedPaused, FeedPollFailed, FeedPolled, FeedResumed, FeedSettingsChanged,
    FeedSubscribed, FeedUnsubscribed, HubSubscriptionRequested, HubSubscriptionVerified, PodcastOwner,
    PollSource, PostChanged, PostDiscovered,
};
use crate::id::{EventId, FeedId};
use crate::object::ObjectKey;
use crate::pronunciation::{Pronunciations, PronunciationsChanged};
use crate::schedule::{self, FailureKind, PollReason};
use crate::voice::{VoiceEngine, VoiceId};

/// The most posts a subscription converts from what its feed already holds when it starts.
pub const MAX_BACKFILL: u32 = 50;

/// Where a subscription is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Lifecycle {
    /// Nothing was subscribed: the stream is empty.
    #[default]
    New,
    Active,
    Paused {
        reason: String,
        automatic: bool,
    },
    Unsubscribed,
}

/// How the subscription narrates, as last set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub voice: VoiceId,
    pub engine: VoiceEngine,
    pub auto_convert: bool,
    pub regenerate_on_edit: bool,
    pub interval_minutes: u32,
    pub owner: Option<PodcastOwner>,
}

/// What the subscription remembers of a post it has seen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KnownPost {
    pub content_hash: String,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The state [`decide`] needs, folded from the stream by [`evolve`]. Serialized only as a
/// snapshot ([`crate::feed::service::load_feed_snapshot`]): a change of its fields or of
/// [`evolve`] bumps [`crate::feed::service::SNAPSHOT_FORMAT`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subscription {
    pub feed_id: Option<FeedId>,
    pub url: Option<Url>,
    pub lifecycle: Lifecycle,
    pub settings: Option<Settings>,
    /// FeedSubscribed events so far (a feed may be subscribed again after unsubscribing).
    pub subscriptions: u32,
    /// How many existing posts the first poll converts.
    pub backfill: u32,
    /// Polls that read the feed or found it unchanged.
    pub polls: u32,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub details: FeedDetails,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub first_failure_at: Option<DateTime<Utc>>,
    pub posts: BTreeMap<String, KnownPost>,
    pub hub: Option<HubSubscriptionVerified>,
    /// The last request made of a hub, awaiting (or past) its verification.
    pub hub_requested: Option<HubSubscriptionRequested>,
    /// The subscription's pronunciation rules (over the global default's).
    pub pronunciations: Pronunciations,
    /// The number of events folded: the version an append must expect.
    pub version: u64,
}

/// One item of the feed as a poll read it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub key: String,
    pub url: Option<Url>,
    pub title: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub author: Option<String>,
    pub content_hash: String,
    /// The full text, stored, when the feed carries it.
    pub content_ref: Option<ObjectKey>,
}

/// What a poll (or a push) read.
#[derive(Debug, Clone, PartialEq)]
pub struct PollResult {
    pub at: DateTime<Utc>,
    pub source: PollSource,
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The feed's items, in its order; `None` when it was unchanged (304).
    pub items: Option<Vec<FeedItem>>,
    pub details: Option<FeedDetails>,
    pub next_poll_at: DateTime<Utc>,
    pub next_poll_reason: PollReason,
}

/// A poll that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct PollFailure {
    pub at: DateTime<Utc>,
    pub source: PollSource,
    pub error: String,
    pub cause: String,
    pub kind: FailureKind,
    pub status: Option<u16>,
    /// When the server asked to be tried again (`Retry-After`).
    pub retry_after: Option<DateTime<Utc>>,
}

/// What a user, a poll or a hub asks to happen.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FeedCommand {
    Subscribe(FeedSubscribed),
    RecordPoll(PollResult),
    RecordFailure(PollFailure),
    ChangeSettings(FeedSettingsChanged),
    Pause {
        reason: String,
        by: String,
    },
    Resume {
        by: String,
        at: DateTime<Utc>,
    },
    Unsubscribe {
        by: String,
    },
    RequestHub(HubSubscriptionRequested),
    VerifyHub(HubSubscriptionVerified),
    /// Replace the subscription's pronunciation rules.
    SetPronunciations {
        rules: Pronunciations,
        by: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The feed was never subscribed to (or the id is wrong).
    #[error("the feed is not subscribed to")]
    NotSubscribed,
    /// The subscription is paused or ended: nothing is polled.
    #[error("the subscription is {0}")]
    NotActive(&'static str),
    /// The command is not acceptable as it is.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// A decided event with the id that makes it unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub event_id: EventId,
    pub event: FeedEvent,
}

impl Subscription {
    /// Fold a whole stream.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a FeedEvent>) -> Self {
        events.into_iter().fold(Self::default(), evolve)
    }

    /// Whether polls are being made.
    pub fn is_active(&self) -> bool {
        self.lifecycle == Lifecycle::Active
    }

    /// Whether a poll is due at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.is_active() && self.next_poll_at.is_none_or(|at| at <= now)
    }

    fn id(&self, parts: &[&str]) -> EventId {
        let feed = self.feed_id.as_ref().map(FeedId::as_str).unwrap_or_default();
        let mut all = vec![feed];
        all.extend_from_slice(parts);
        EventId::derive(&all)
    }

    fn active(&self) -> Result<&Settings, FeedError> {
        match (&self.lifecycle, &self.settings) {
            (Lifecycle::New, _) | (_, None) => Err(FeedError::NotSubscribed),
            (Lifecycle::Paused { .. }, _) => Err(FeedError::NotActive("paused")),
            (Lifecycle::Unsubscribed, _) => Err(FeedError::NotActive("unsubscribed")),
            (Lifecycle::Active, Some(settings)) => Ok(settings),
        }
    }

    fn subscribed(&self) -> Result<&Settings, FeedError> {
        match (&self.lifecycle, &self.settings) {
            (Lifecycle::New, _) | (_, None) => Err(FeedError::NotSubscribed),
            (Lifecycle::Unsubscribed, _) => Err(FeedError::NotActive("unsubscribed")),
            (_, Some(settings)) => Ok(settings),
        }
    }
}

/// Every rule: what `command` makes happen to a subscription in `state`. An empty list means
/// nothing is to be recorded (the same subscription again, a setting already so).
pub fn decide(state: &Subscription, command: FeedCommand) -> Result<Vec<Decided>, FeedError> {
    let at_version = |kind: &str| state.id(&[kind, &(state.version + 1).to_string()]);
    match command {
        FeedCommand::Subscribe(subscribed) => {
            if matches!(state.lifecycle, Lifecycle::Active | Lifecycle::Paused { .. }) {
                return Ok(vec![]);
            }
            if subscribed.subscribed_by.trim().is_empty() {
                return Err(FeedError::Invalid("subscribed_by is empty".into()));
            }
            if subscribed.backfill > MAX_BACKFILL {
                return Err(FeedError::Invalid(format!("backfill is at most {MAX_BACKFILL}")));
            }
            if u64::from(subscribed.interval_minutes) * 60 < schedule::MIN_INTERVAL.as_secs() {
                return Err(FeedError::Invalid(format!(
                    "the interval is at least {} minutes",
                    schedule::MIN_INTERVAL.as_secs() / 60
                )));
            }
            let nth = (state.subscriptions + 1).to_string();
            let event_id = EventId::derive(&[subscribed.feed_id.as_str(), "subscribed", &nth]);
            Ok(vec![Decided { event_id, event: FeedEvent::FeedSubscribed(subscribed) }])
        }
        FeedCommand::RecordPoll(poll) => {
            let settings = state.active()?;
            let url = state.url.clone().ok_or(FeedError::NotSubscribed)?;
            let details =
                poll.details.clone().filter(|d| *d != state.details).map(|d| merged(&state.details, d));
            let feed_title = details.as_ref().unwrap_or(&state.details).title.clone();
            let feed_language = details.as_ref().unwrap_or(&state.details).language.clone();
            let items = poll.items.as_deref().unwrap_or(&[]);
            let first = state.polls == 0;
            let backfilled = if first { newest(items, settings_backfill(state)) } else { Vec::new() };
            let mut out = Vec::new();
            let (mut new, mut changed) = (0u32, 0u32);
            let mut seen = std::collections::HashSet::new();
            for item in items {
                // A feed that lists one post twice has one post.
                if !seen.insert(item.key.as_str()) {
                    continue;
                }
                match state.posts.get(&item.key) {
                    None => {
                        new += 1;
                        let convert = if first {
                            backfilled.contains(&item.key.as_str())
                        } else {
                            settings.auto_convert
                        };
                        out.push(Decided {
                            event_id: state.id(&["discovered", &item.key]),
                            event: FeedEvent::PostDiscovered(PostDiscovered {
                                post_key: item.key.clone(),
                                url: item.url.clone(),
                                title: item.title.clone(),
                                published_at: item.published_at,
                                updated_at: item.updated_at,
                                summary: item.summary.clone(),
                                author: item.author.clone(),
                                content_hash: item.content_hash.clone(),
                                content_ref: item.content_ref.clone(),
                                convert,
                                existing: first,
                                voice: settings.voice.clone(),
                                engine: settings.engine,
                                feed_url: url.clone(),
                                feed_title: feed_title.clone(),
                                feed_language: feed_language.clone(),
                            }),
                        });
                    }
                    Some(known) => {
                        let text_changed = known.content_hash != item.content_hash;
                        let redated = item.updated_at.is_some() && item.updated_at != known.updated_at;
                        if !text_changed && !redated {
                            continue;
                        }
                        changed += 1;
                        let updated = item.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default();
                        out.push(Decided {
                            event_id: state.id(&["changed", &item.key, &item.content_hash, &updated]),
                            event: FeedEvent::PostChanged(PostChanged {
                                post_key: item.key.clone(),
                                url: item.url.clone(),
                                title: item.title.clone(),
                                content_hash: item.content_hash.clone(),
                                previous_hash: known.content_hash.clone(),
                                updated_at: item.updated_at,
                                previous_updated_at: known.updated_at,
                                published_at: item.published_at,
                                summary: item.summary.clone(),
                                content_ref: item.content_ref.clone(),
                                regenerate: settings.regenerate_on_edit,
                                voice: settings.voice.clone(),
                                engine: settings.engine,
                                feed_url: url.clone(),
                                feed_title: feed_title.clone(),
                                feed_language: feed_language.clone(),
                            }),
                        });
                    }
                }
            }
            let source = match poll.source {
                PollSource::Poll => "poll",
                PollSource::Push => "push",
            };
            out.push(Decided {
                event_id: state.id(&["polled", source, &poll.at.to_rfc3339()]),
                event: FeedEvent::FeedPolled(FeedPolled {
                    source: poll.source,
                    status: poll.status,
                    etag: poll.etag,
                    last_modified: poll.last_modified,
                    items_seen: poll.items.as_ref().map_or(0, |i| i.len() as u32),
                    new,
                    changed,
                    next_poll_at: poll.next_poll_at,
                    next_poll_reason: poll.next_poll_reason,
                    details,
                }),
            });
            Ok(out)
        }
        FeedCommand::RecordFailure(failure) => {
            state.active()?;
            let feed = state.feed_id.as_ref().map(FeedId::as_str).unwrap_or_default();
            let failures = state.consecutive_failures + 1;
            let next_try_at = schedule::backoff(failure.at, failures, failure.retry_after, feed);
            let first_failure_at = state.first_failure_at.unwrap_or(failure.at);
            let permanent = schedule::is_permanent(failure.kind, first_failure_at, failure.at, failures);
            let reason = format!("{}: {}", failure.error, failure.cause);
            let mut out = vec![Decided {
                event_id: state.id(&["poll-failed", &failure.at.to_rfc3339()]),
                event: FeedEvent::FeedPollFailed(FeedPollFailed {
                    failed_at: failure.at,
                    source: failure.source,
                    error: failure.error,
                    cause: failure.cause,
                    kind: failure.kind,
                    status: failure.status,
                    consecutive_failures: failures,
                    next_try_at,
                }),
            }];
            if permanent {
                out.push(Decided {
                    event_id: state.id(&["paused-by-failure", &failure.at.to_rfc3339()]),
                    event: FeedEvent::FeedPaused(FeedPaused { reason, automatic: true, by: "lector".into() }),
                });
            }
            Ok(out)
        }
        FeedCommand::ChangeSettings(change) => {
            let settings = state.subscribed()?;
            if change.changed_by.trim().is_empty() {
                return Err(FeedError::Invalid("changed_by is empty".into()));
            }
            if let Some(minutes) = change.interval_minutes
                && u64::from(minutes) * 60 < schedule::MIN_INTERVAL.as_secs()
            {
                return Err(FeedError::Invalid(format!(
                    "the interval is at least {} minutes",
                    schedule::MIN_INTERVAL.as_secs() / 60
                )));
            }
            // Only what differs is recorded.
            let effective = FeedSettingsChanged {
                voice: differs(&change.voice, settings.voice.clone()),
                engine: differs(&change.engine, settings.engine),
                auto_convert: differs(&change.auto_convert, settings.auto_convert),
                regenerate_on_edit: differs(&change.regenerate_on_edit, settings.regenerate_on_edit),
                interval_minutes: differs(&change.interval_minutes, settings.interval_minutes),
                owner: change.owner.clone().filter(|o| Some(o) != settings.owner.as_ref()),
                changed_by: change.changed_by,
            };
            if effective
                == (FeedSettingsChanged { changed_by: effective.changed_by.clone(), ..Default::default() })
            {
                return Ok(vec![]);
            }
            Ok(vec![Decided {
                event_id: at_version("settings"),
                event: FeedEvent::FeedSettingsChanged(effective),
            }])
        }
        FeedCommand::Pause { reason, by } => {
            match state.subscribed()? {
                _ if matches!(state.lifecycle, Lifecycle::Paused { .. }) => return Ok(vec![]),
                _ => {}
            }
            Ok(vec![Decided {
                event_id: at_version("paused"),
                event: FeedEvent::FeedPaused(FeedPaused { reason, automatic: false, by }),
            }])
        }
        FeedCommand::Resume { by, at: _ } => {
            state.subscribed()?;
            if state.lifecycle == Lifecycle::Active {
                return Ok(vec![]);
            }
            Ok(vec![Decided {
                event_id: at_version("resumed"),
                event: FeedEvent::FeedResumed(FeedResumed { by }),
            }])
        }
        FeedCommand::Unsubscribe { by } => {
            match state.lifecycle {
                Lifecycle::New => return Err(FeedError::NotSubscribed),
                Lifecycle::Unsubscribed => return Ok(vec![]),
                _ => {}
            }
            Ok(vec![Decided {
                event_id: at_version("unsubscribed"),
                event: FeedEvent::FeedUnsubscribed(FeedUnsubscribed { by }),
            }])
        }
        FeedCommand::RequestHub(request) => {
            state.active()?;
            Ok(vec![Decided {
                event_id: state.id(&[
                    "hub-requested",
                    request.hub.as_str(),
                    &(state.version + 1).to_string(),
                ]),
                event: FeedEvent::HubSubscriptionRequested(request),
            }])
        }
        FeedCommand::SetPronunciations { rules, by } => {
            state.subscribed()?;
            if by.trim().is_empty() {
                return Err(FeedError::Invalid("changed_by is empty".into()));
            }
            rules.validate().map_err(|e| FeedError::Invalid(e.to_string()))?;
            if rules == state.pronunciations {
                return Ok(vec![]);
            }
            Ok(vec![Decided {
                event_id: at_version("pronunciations"),
                event: FeedEvent::PronunciationsChanged(PronunciationsChanged {
                    rules: rules.rules,
                    changed_by: by,
                }),
            }])
        }
        FeedCommand::VerifyHub(verified) => {
            state.subscribed()?;
            if state.hub.as_ref() == Some(&verified) {
                return Ok(vec![]);
            }
            Ok(vec![Decided {
                event_id: state.id(&["hub-verified", &verified.expires_at.to_rfc3339()]),
                event: FeedEvent::HubSubscriptionVerified(verified),
            }])
        }
    }
}

/// `new`, when it is set and differs from `old`.
fn differs<T: PartialEq + Clone>(new: &Option<T>, old: T) -> Option<T> {
    new.as_ref().filter(|n| **n != old).cloned()
}

fn settings_backfill(state: &Subscription) -> u32 {
    state.settings.as_ref().map_or(0, |_| state.backfill)
}

/// The keys of the `n` newest items: by publication date, newest first, items without a date
/// after those with one, in the feed's order.
fn newest(items: &[FeedItem], n: u32) -> Vec<&str> {
    let mut ranked: Vec<(usize, &FeedItem)> = items.iter().enumerate().collect();
    ranked.sort_by(|(ia, a), (ib, b)| b.published_at.cmp(&a.published_at).then(ia.cmp(ib)));
    let mut keys: Vec<&str> = Vec::new();
    for (_, item) in ranked {
        if keys.len() as u32 >= n {
            break;
        }
        if !keys.contains(&item.key.as_str()) {
            keys.push(item.key.as_str());
        }
    }
    keys
}

/// The details recorded, with what a poll said in place of what it changed.
fn merged(old: &FeedDetails, new: FeedDetails) -> FeedDetails {
    FeedDetails {
        title: new.title.or_else(|| old.title.clone()),
        description: new.description.or_else(|| old.description.clone()),
        link: new.link.or_else(|| old.link.clone()),
        language: new.language.or_else(|| old.language.clone()),
        author: new.author.or_else(|| old.author.clone()),
        image: new.image.or_else(|| old.image.clone()),
        hub: new.hub,
        self_url: new.self_url.or_else(|| old.self_url.clone()),
    }
}

/// Apply one event. Checks nothing: events are facts that already happened.
pub fn evolve(mut state: Subscription, event: &FeedEvent) -> Subscription {
    state.version += 1;
    match event {
        FeedEvent::FeedSubscribed(s) => {
            state.feed_id = Some(s.feed_id.clone());
            state.url = Some(s.url.clone());
            state.lifecycle = Lifecycle::Active;
            state.subscriptions += 1;
            state.backfill = s.backfill;
            state.settings = Some(Settings {
                voice: s.voice.clone(),
                engine: s.engine,
                auto_convert: s.auto_convert,
                regenerate_on_edit: s.regenerate_on_edit,
                interval_minutes: s.interval_minutes,
                owner: s.owner.clone(),
            });
            // Due at once: the first poll runs as soon as a poller looks.
            state.next_poll_at = None;
            state.consecutive_failures = 0;
            state.first_failure_at = None;
        }
        FeedEvent::FeedPolled(p) => {
            state.polls += 1;
            state.etag = p.etag.clone();
            state.last_modified = p.last_modified.clone();
            if let Some(details) = &p.details {
                state.details = details.clone();
            }
            state.next_poll_at = Some(p.next_poll_at);
            state.consecutive_failures = 0;
            state.first_failure_at = None;
        }
        FeedEvent::FeedPollFailed(f) => {
            state.consecutive_failures = f.consecutive_failures;
            if state.first_failure_at.is_none() {
                state.first_failure_at = Some(f.failed_at);
            }
            state.next_poll_at = Some(f.next_try_at);
        }
        FeedEvent::PostDiscovered(d) => {
            state.posts.insert(
                d.post_key.clone(),
                KnownPost { content_hash: d.content_hash.clone(), updated_at: d.updated_at },
            );
        }
        FeedEvent::PostChanged(c) => {
            state.posts.insert(
                c.post_key.clone(),
                KnownPost { content_hash: c.content_hash.clone(), updated_at: c.updated_at },
            );
        }
        FeedEvent::FeedSettingsChanged(c) => {
            if let Some(settings) = &mut state.settings {
                if let Some(v) = &c.voice {
                    settings.voice = v.clone();
                }
                if let Some(e) = c.engine {
                    settings.engine = e;
                }
                if let Some(a) = c.auto_convert {
                    settings.auto_convert = a;
                }
                if let Some(r) = c.regenerate_on_edit {
                    settings.regenerate_on_edit = r;
                }
                if let Some(i) = c.interval_minutes {
                    settings.interval_minutes = i;
                }
                if let Some(o) = &c.owner {
                    settings.owner = Some(o.clone());
                }
            }
        }
        FeedEvent::FeedPaused(p) => {
            state.lifecycle = Lifecycle::Paused { reason: p.reason.clone(), automatic: p.automatic };
        }
        FeedEvent::FeedResumed(_) => {
            state.lifecycle = Lifecycle::Active;
            // Polled again at once, failures forgotten.
            state.next_poll_at = None;
            state.consecutive_failures = 0;
            state.first_failure_at = None;
        }
        FeedEvent::FeedUnsubscribed(_) => state.lifecycle = Lifecycle::Unsubscribed,
        FeedEvent::HubSubscriptionRequested(r) => state.hub_requested = Some(r.clone()),
        FeedEvent::HubSubscriptionVerified(v) => state.hub = Some(v.clone()),
        FeedEvent::PronunciationsChanged(p) => state.pronunciations = Pronunciations::new(p.rules.clone()),
    }
    state
}

//! Polling subscribed feeds: the Task states of `statemachines/poll-feeds.asl.json`, and the
//! rule that turns what a poll found into conversions.
//!
//! - [`ListDueFeeds`] reads the feeds due for a poll from the list of subscriptions (or takes
//!   the ones a user asked to poll now);
//! - [`PollFeed`] polls one: a conditional GET with the validators of the last answer (a 304 is
//!   not parsed), the feed read with feed-rs, the full text of new and edited posts stored, and
//!   what was found, or why it failed, appended to the subscription's stream. A feed's failure
//!   is recorded, never thrown: one feed cannot stop the others;
//! - [`request_conversions`] is the bus rule on `PostDiscovered` and `PostChanged`: it submits
//!   the post (a new conversion, or a revision of the converted one) with the event as its
//!   causation.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use lector_core::event::{PostInfo, RevisionReason};
use lector_core::feed::FeedEvent;
use lector_core::feed::event::{FeedDetails, FeedImage, PollSource};
use lector_core::feed::service::{
    FeedExecuteError, FeedExecuted, SnapshotLoaded, execute_feed_on, load_feed_folded, save_feed_snapshot,
};
use lector_core::feed::subscription::{FeedCommand, FeedItem, PollFailure, PollResult, Subscription};
use lector_core::schedule::{PollReason, next_poll};
use lector_core::{ErrorKind, EventMeta, FeedId, ObjectKey, RecordedEvent, StepError};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::feed::{Feed, PollError, Polled, poll_feed_typed, poll_hints};
use crate::fetch::{FetchError, Resource, Validators};
use crate::steps::{Step, StepPorts};
use crate::submit::{Submission, Submitted, submit};

/// Who the conversions a subscription asks for are requested by.
pub const SUBSCRIPTION_REQUESTER: &str = "feed-subscription";

/// The most feeds one execution of the polling workflow polls; the rest are due at the next.
pub const MAX_FEEDS_PER_RUN: u32 = 1_000;

/// The functions of the polling workflow, as `(state, function, substitution)`.
pub const POLL_STEPS: [(&str, &str, &str); 2] = [
    (ListDueFeeds::STATE, ListDueFeeds::FUNCTION, ListDueFeeds::SUBSTITUTION),
    (PollFeed::STATE, PollFeed::FUNCTION, PollFeed::SUBSTITUTION),
];

/// The input of the polling workflow, as the schedule or a user starts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRequest {
    /// Poll these feeds now, due or not; when absent, the feeds that are due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_ids: Option<Vec<FeedId>>,
    /// At most this many due feeds ([`MAX_FEEDS_PER_RUN`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The input of [`ListDueFeeds`]: the workflow's input, whole.
#[derive(Debug, Clone, Deserialize)]
pub struct ListDueFeedsInput {
    #[serde(default)]
    pub request: PollRequest,
}

/// The feeds to poll, and whether they were asked for by name (polled due or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueFeeds {
    pub feeds: Vec<FeedId>,
    pub force: bool,
}

/// List the feeds to poll: the ones asked for, else the due ones, soonest due first.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListDueFeeds;

#[async_trait]
impl Step for ListDueFeeds {
    const STATE: &'static str = "ListDueFeeds";
    const FUNCTION: &'static str = "list-due-feeds";
    const SUBSTITUTION: &'static str = "ListDueFeedsFunctionArn";
    type Input = ListDueFeedsInput;
    type Output = DueFeeds;

    async fn run(&self, ports: &StepPorts, input: ListDueFeedsInput) -> Result<DueFeeds, StepError> {
        if let Some(ids) = input.request.feed_ids {
            if let Some(bad) = ids.iter().find(|id| !id.is_valid()) {
                return Err(StepError::new(ErrorKind::InvalidInput, format!("'{bad}' is not a feed id")));
            }
            return Ok(DueFeeds { feeds: ids, force: true });
        }
        let limit = input.request.limit.unwrap_or(MAX_FEEDS_PER_RUN).clamp(1, MAX_FEEDS_PER_RUN);
        let due =
            ports.feeds(Self::STATE)?.due(ports.clock.now(), limit as usize).await.map_err(|e| {
                StepError::new(ErrorKind::Transient, format!("the list of subscriptions: {e}"))
            })?;
        Ok(DueFeeds { feeds: due.into_iter().map(|s| s.feed_id).collect(), force: false })
    }
}

/// The input of [`PollFeed`]: one Map item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollFeedInput {
    pub feed_id: FeedId,
    /// Poll even when not due (a user asked).
    #[serde(default)]
    pub force: bool,
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// The feed was read (or found unchanged).
    Polled,
    /// The poll failed; the subscription says why and when it tries again.
    Failed,
    /// Nothing was done: not subscribed, paused, or not due.
    Skipped,
}

/// What [`PollFeed`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollFeedOutput {
    pub feed_id: FeedId,
    pub outcome: PollOutcome,
    pub new: u32,
    pub changed: u32,
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Why nothing was done, or why the poll failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Poll one subscribed feed and record what it found, or why it failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollFeed;

#[async_trait]
impl Step for PollFeed {
    const STATE: &'static str = "PollFeed";
    const FUNCTION: &'static str = "poll-feed";
    const SUBSTITUTION: &'static str = "PollFeedFunctionArn";
    type Input = PollFeedInput;
    type Output = PollFeedOutput;

    async fn run(&self, ports: &StepPorts, input: PollFeedInput) -> Result<PollFeedOutput, StepError> {
        let id = &input.feed_id;
        let skipped = |reason: String| PollFeedOutput {
            feed_id: id.clone(),
            outcome: PollOutcome::Skipped,
            new: 0,
            changed: 0,
            next_poll_at: None,
            reason: Some(reason),
        };
        let loaded = load_feed_folded(&*ports.events, &*ports.objects, &ports.folded_feeds, id).await?;
        let (state, snapshot_version) = (loaded.state, loaded.snapshot_version);
        let now = ports.clock.now();
        let not_polled = match &state.url {
            None => Some("the feed is not subscribed to".to_string()),
            Some(_) if !state.is_active() => Some(format!("the subscription is {:?}", state.lifecycle)),
            Some(_) if !input.force && !state.is_due(now) => Some("not due".into()),
            Some(_) => None,
        };
        let url = match (not_polled, state.url.clone()) {
            (None, Some(url)) => url,
            (reason, _) => {
                let reason = reason.unwrap_or_default();
                ports.folded_feeds.keep(id, SnapshotLoaded { state, snapshot_version });
                return Ok(skipped(reason));
            }
        };
        let validators = Validators { etag: state.etag.clone(), last_modified: state.last_modified.clone() };
        let fetcher = ports.fetcher(Self::STATE)?;
        let command = match poll_feed_typed(fetcher, url.as_str(), &validators).await {
            Ok(polled) => {
                FeedCommand::RecordPoll(read_poll(ports, &state, polled, now, PollSource::Poll).await?)
            }
            Err(e) => FeedCommand::RecordFailure(failure(&e, now, PollSource::Poll)),
        };
        let (outcome, executed) = record(ports, id, state, command, now).await?;
        if let Some(executed) = executed {
            let snapshot_version = match save_feed_snapshot(&*ports.objects, id, &executed, snapshot_version)
                .await
            {
                Ok(saved) => {
                    tracing::debug!(feed_id = %id, saved, version = executed.state.version, "snapshot");
                    if saved { executed.state.version } else { snapshot_version }
                }
                // A cache: the next poll reads a little more of the stream.
                Err(e) => {
                    tracing::warn!(feed_id = %id, error = %e, "the subscription's snapshot was not stored");
                    snapshot_version
                }
            };
            if outcome.outcome == PollOutcome::Polled {
                request_hub(ports, id, &executed.state, now).await;
            }
            // What a hub request appended is read and folded at the next poll.
            ports.folded_feeds.keep(id, SnapshotLoaded { state: executed.state, snapshot_version });
        }
        Ok(outcome)
    }
}

/// Ask the feed's WebSub hub to push it, when this deployment can be reached and no lease is
/// held (or the one held ends within a day), unless it was asked within the hour. A hub that
/// refuses is logged; polling goes on.
async fn request_hub(ports: &StepPorts, id: &FeedId, state: &Subscription, now: DateTime<Utc>) {
    let (Some(websub), Some(fetcher)) = (ports.websub.as_deref(), ports.fetcher.as_deref()) else { return };
    let Some((hub, topic)) = crate::websub::hub_to_request(state, now) else { return };
    let asked_lately = state.hub_requested.as_ref().is_some_and(|r| {
        r.hub == hub && r.topic == topic && now - r.requested_at < chrono::Duration::hours(1)
    });
    if asked_lately {
        return;
    }
    let callback = websub.callback(id);
    let secret = websub.feed_secret(id);
    let lease = crate::websub::LEASE_SECONDS.to_string();
    let form = [
        ("hub.mode", "subscribe"),
        ("hub.topic", topic.as_str()),
        ("hub.callback", callback.as_str()),
        ("hub.secret", secret.as_str()),
        ("hub.lease_seconds", lease.as_str()),
    ];
    match fetcher.post_form(hub.as_str(), &form).await {
        Ok(status) if (200..300).contains(&status) => {
            let request = lector_core::feed::event::HubSubscriptionRequested {
                hub,
                topic,
                callback,
                lease_seconds: crate::websub::LEASE_SECONDS,
                requested_at: now,
            };
            let meta = EventMeta { occurred_at: now, correlation_id: id.to_string(), causation_id: None };
            let command = FeedCommand::RequestHub(request);
            if let Err(e) = execute_feed_on(&*ports.events, id, state.clone(), command, &meta).await {
                tracing::warn!(feed_id = %id, error = %e, "the hub request was made but not recorded");
            }
        }
        Ok(status) => tracing::warn!(feed_id = %id, %hub, status, "the WebSub hub refused the subscription"),
        Err(e) => tracing::warn!(feed_id = %id, %hub, error = %e, "the WebSub hub could not be reached"),
    }
}

/// Record a poll's (or a push's) outcome, decided on `state` (the subscription as loaded before
/// the fetch), and say what it did; with what was appended and the subscription as it then is,
/// unless the subscription refused it.
pub async fn record(
    ports: &StepPorts,
    id: &FeedId,
    state: Subscription,
    command: FeedCommand,
    now: DateTime<Utc>,
) -> Result<(PollFeedOutput, Option<FeedExecuted>), StepError> {
    let failed = match &command {
        FeedCommand::RecordFailure(f) => Some(format!("{}: {}", f.error, f.cause)),
        _ => None,
    };
    let meta = EventMeta { occurred_at: now, correlation_id: id.to_string(), causation_id: None };
    let done = match execute_feed_on(&*ports.events, id, state, command, &meta).await {
        Ok(done) => done,
        // Paused or unsubscribed while the poll ran: what it found is not recorded.
        Err(FeedExecuteError::Rejected(e)) => {
            let skipped = PollFeedOutput {
                feed_id: id.clone(),
                outcome: PollOutcome::Skipped,
                new: 0,
                changed: 0,
                next_poll_at: None,
                reason: Some(e.to_string()),
            };
            return Ok((skipped, None));
        }
        Err(e) => return Err(e.into()),
    };
    let count = |t: &str| done.appended.iter().filter(|e| e.event_type == t).count() as u32;
    let output = PollFeedOutput {
        feed_id: id.clone(),
        outcome: if failed.is_some() { PollOutcome::Failed } else { PollOutcome::Polled },
        new: count("PostDiscovered"),
        changed: count("PostChanged"),
        next_poll_at: done.state.next_poll_at,
        reason: failed,
    };
    Ok((output, Some(done)))
}

/// What a poll read, as the command that records it: the new and changed posts' full text
/// stored first, so the log never names an object that is not there.
pub async fn read_poll(
    ports: &StepPorts,
    state: &Subscription,
    polled: Polled,
    now: DateTime<Utc>,
    source: PollSource,
) -> Result<PollResult, StepError> {
    let pushed = crate::websub::is_pushed(state, now);
    let interval =
        state.settings.as_ref().map(|s| std::time::Duration::from_secs(u64::from(s.interval_minutes) * 60));
    // A feed its hub pushes is still polled, daily.
    let schedule = |hints: &lector_core::schedule::Hints| {
        if pushed {
            let daily = chrono::Duration::seconds(lector_core::schedule::MAX_DELAY.as_secs() as i64);
            (now + daily, PollReason::Pushed)
        } else {
            next_poll(now, interval, hints)
        }
    };
    let (feed, meta) = match polled {
        Polled::NotModified(meta) => {
            let (next_poll_at, next_poll_reason) = schedule(&poll_hints(None, &meta, now));
            return Ok(PollResult {
                at: now,
                source,
                status: meta.status,
                // A 304 may leave out validators that still hold.
                etag: meta.etag.clone().or_else(|| state.etag.clone()),
                last_modified: meta.last_modified.clone().or_else(|| state.last_modified.clone()),
                items: None,
                details: None,
                next_poll_at,
                next_poll_reason,
            });
        }
        Polled::Feed(feed, meta) => (feed, meta),
    };
    let (next_poll_at, next_poll_reason) = schedule(&poll_hints(Some(&feed), &meta, now));
    let feed_id = state
        .feed_id
        .clone()
        .ok_or_else(|| StepError::new(ErrorKind::Internal, "a subscription without its id"))?;
    let mut items = Vec::with_capacity(feed.posts.len());
    for post in &feed.posts {
        let known = state.posts.get(&post.id).is_some_and(|k| k.content_hash == post.content_hash);
        let content_ref = match (&post.content_html, post.full_text, known) {
            (Some(html), true, false) => {
                Some(store_content(ports, &feed_id, &post.content_hash, html).await?)
            }
            _ => None,
        };
        items.push(FeedItem {
            key: post.id.clone(),
            url: post.url.clone(),
            title: post.title.clone(),
            published_at: post.published,
            updated_at: post.updated,
            summary: post.summary.clone(),
            author: post.author.clone(),
            content_hash: post.content_hash.clone(),
            content_ref,
        });
    }
    let details = details(ports, state, &feed, meta.hub.clone()).await;
    Ok(PollResult {
        at: now,
        source,
        status: meta.status,
        etag: meta.etag.clone(),
        last_modified: meta.last_modified.clone(),
        items: Some(items),
        details: Some(details),
        next_poll_at,
        next_poll_reason,
    })
}

/// A post's full text, stored once per text.
async fn store_content(
    ports: &StepPorts,
    feed: &FeedId,
    hash: &str,
    html: &str,
) -> Result<ObjectKey, StepError> {
    let key = ObjectKey::feed_post(feed, hash);
    if ports.objects.head(&key).await?.is_none() {
        ports.objects.put(&key, Bytes::from(html.to_owned()), "text/html; charset=utf-8").await?;
    }
    Ok(key)
}

/// What the feed says of itself; its image looked at when it is new: a podcast's artwork must
/// be square, 1400 to 3000 pixels, JPEG or PNG, which feeds rarely state.
async fn details(
    ports: &StepPorts,
    state: &Subscription,
    feed: &Feed,
    header_hub: Option<Url>,
) -> FeedDetails {
    let image = match &feed.image {
        None => None,
        Some(found) => Some(match state.details.image.as_ref().filter(|known| known.url == found.url) {
            Some(known) => known.clone(),
            None => measured_image(ports, &found.url, found.width, found.height).await,
        }),
    };
    FeedDetails {
        title: feed.title.clone(),
        description: feed.description.clone(),
        link: feed.link.clone(),
        language: feed.language.clone(),
        author: feed.author.clone(),
        image,
        hub: header_hub.or_else(|| feed.hub.clone()),
        self_url: feed.self_url.clone(),
    }
}

/// The feed's image with its size and whether it can be a podcast's artwork; when it cannot be
/// fetched, what the feed says of it, not usable as artwork.
async fn measured_image(ports: &StepPorts, url: &Url, width: Option<u32>, height: Option<u32>) -> FeedImage {
    let unmeasured = FeedImage { url: url.clone(), width, height, artwork: false };
    let Some(fetcher) = ports.fetcher.as_deref() else { return unmeasured };
    let Ok(fetched) = fetcher.fetch(url.as_str(), Resource::Image).await else { return unmeasured };
    match crate::cover::artwork_choice(Some((url.as_str(), &fetched.body))) {
        crate::cover::ArtworkChoice::Source { width, height, .. } => {
            FeedImage { url: url.clone(), width: Some(width), height: Some(height), artwork: true }
        }
        crate::cover::ArtworkChoice::Drawn(_) => match crate::cover::image_size(&fetched.body) {
            Some((w, h)) => FeedImage { url: url.clone(), width: Some(w), height: Some(h), artwork: false },
            None => unmeasured,
        },
    }
}

/// A failed poll, as the command that records it.
pub fn failure(e: &PollError, now: DateTime<Utc>, source: PollSource) -> PollFailure {
    let step = match e {
        PollError::Fetch(e) => StepError::from(e.clone()),
        PollError::Feed(e) => StepError::from(e.clone()),
    };
    let (status, retry_after) = match e {
        PollError::Fetch(FetchError::Unavailable { status, retry_after, .. }) => {
            (Some(*status), retry_after.map(|r| r.at(now)))
        }
        PollError::Fetch(FetchError::NotFound { status, .. } | FetchError::Refused { status, .. }) => {
            (Some(*status), None)
        }
        _ => (None, None),
    };
    PollFailure {
        at: now,
        source,
        error: step.name().to_owned(),
        cause: step.cause,
        kind: e.failure_kind(),
        status,
        retry_after,
    }
}

// ---------------------------------------------------------------------------------------------

/// The event types [`request_conversions`] acts on.
pub const CONVERTING_EVENTS: [&str; 2] = ["PostDiscovered", "PostChanged"];

/// The bus rule on `PostDiscovered` and `PostChanged`: submit the post to be converted (a new
/// post the subscription converts) or revised (an edited post, when the subscription
/// regenerates on edit), with the event as the causation. Repeated deliveries change nothing:
/// the submission is idempotent.
pub async fn request_conversions(
    ports: &StepPorts,
    event: &RecordedEvent,
) -> Result<Option<Submitted>, StepError> {
    if !CONVERTING_EVENTS.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let decoded = FeedEvent::from_parts(&event.event_type, event.schema_version, event.data.clone())
        .map_err(|e| StepError::new(ErrorKind::InvalidInput, e.to_string()))?;
    let (submission, content_ref) = match decoded {
        FeedEvent::PostDiscovered(d) if d.convert => {
            let mut s = Submission::new(
                post_address(d.url, &d.feed_url, &d.post_key),
                d.voice,
                d.engine,
                SUBSCRIPTION_REQUESTER,
            );
            s.title = d.title;
            s.feed_url = Some(d.feed_url);
            s.feed_title = d.feed_title;
            s.feed_language = d.feed_language;
            s.post = Some(PostInfo {
                key: Some(d.post_key),
                published_at: d.published_at,
                updated_at: d.updated_at,
                summary: d.summary,
                author: d.author,
            });
            (s, d.content_ref)
        }
        FeedEvent::PostChanged(c) if c.regenerate => {
            let mut s = Submission::new(
                post_address(c.url, &c.feed_url, &c.post_key),
                c.voice,
                c.engine,
                SUBSCRIPTION_REQUESTER,
            );
            s.title = c.title;
            s.feed_url = Some(c.feed_url);
            s.feed_title = c.feed_title;
            s.feed_language = c.feed_language;
            s.revision_reason = RevisionReason::PostChanged;
            s.post = Some(PostInfo {
                key: Some(c.post_key),
                published_at: c.published_at,
                updated_at: c.updated_at,
                summary: c.summary,
                author: None,
            });
            (s, c.content_ref)
        }
        _ => return Ok(None),
    };
    let mut submission = submission;
    // The subscription's rules over the global default's, as they are now.
    if let Some(feed_url) = &submission.feed_url {
        let feed = lector_core::FeedId::derive(feed_url);
        let rules = lector_core::pronunciation::in_force(&*ports.events, Some(&feed)).await.map_err(|e| {
            let kind = if e.is_transient() { ErrorKind::Transient } else { ErrorKind::Internal };
            StepError::new(kind, format!("the pronunciation rules of {feed}: {e}"))
        })?;
        submission.pronunciations = Some(rules);
    }
    if let Some(key) = content_ref {
        let html = ports.objects.get(&key).await?;
        submission.content_html = Some(String::from_utf8_lossy(&html).into_owned());
    }
    submission.causation_id = Some(event.event_id.to_string());
    Ok(Some(submit(&*ports.events, &*ports.objects, &*ports.clock, submission).await?))
}

/// A post's address; a post without one is known by its feed and its key.
fn post_address(url: Option<Url>, feed_url: &Url, key: &str) -> Url {
    url.unwrap_or_else(|| {
        let mut url = feed_url.clone();
        url.query_pairs_mut().append_pair("lector-post", key);
        url
    })
}

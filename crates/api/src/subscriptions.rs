//! Feed subscriptions: subscribe, list, read (folded from the subscription's own stream),
//! change, pause and resume, unsubscribe, poll now, and the stream's events.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lector_core::feed::event::{FeedSettingsChanged, FeedSubscribed, PodcastOwner};
use lector_core::feed::index::FeedQuery;
use lector_core::feed::service::{FeedExecuteError, execute_feed};
use lector_core::feed::subscription::{FeedCommand, FeedError};
use lector_core::feed::{FeedState, FeedStatus};
use lector_core::index::IndexError;
use lector_core::response::ResponseStatus;
use lector_core::schedule::DEFAULT_INTERVAL;
use lector_core::{EventMeta, FeedId, RecordedEvent, VoiceEngine};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::AppState;
use crate::conversions::resolve_voice;
use crate::error::{ApiError, envelope, success};
use crate::extract::{BaseUrl, Body, web_url};

/// `POST /feeds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    pub url: String,
    pub voice: Option<String>,
    pub engine: Option<String>,
    pub auto_convert: Option<bool>,
    pub regenerate_on_edit: Option<bool>,
    /// Existing posts to convert at the first poll (0 to 50).
    pub backfill: Option<u32>,
    pub interval_minutes: Option<u32>,
    /// The podcast feed's owner, as Apple Podcasts asks for it.
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
}

/// `PATCH /feeds/{feed_id}`: only what is given changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    pub paused: Option<bool>,
    pub voice: Option<String>,
    pub engine: Option<String>,
    pub auto_convert: Option<bool>,
    pub regenerate_on_edit: Option<bool>,
    pub interval_minutes: Option<u32>,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
}

/// A subscription with the links a client needs, and what keeps its podcast out of Apple's
/// directory.
#[derive(Debug, Clone, Serialize)]
pub struct FeedView {
    #[serde(flatten)]
    pub status: FeedStatus,
    pub status_url: String,
    pub events_url: String,
    pub poll_url: String,
    pub podcast_url: String,
    /// The conversions the subscription asked for (`GET /conversions?feed_url=`).
    pub conversions_url: String,
    /// Whether its podcast feed has what Apple Podcasts requires.
    pub apple_ready: bool,
    /// What is missing for Apple Podcasts, in words.
    pub apple_issues: Vec<String>,
}

impl FeedView {
    pub fn new(status: FeedStatus, base: &BaseUrl, global_owner: Option<&PodcastOwner>) -> Self {
        let id = &status.feed_id;
        let mut feed_url = base.0.join("/conversions").map(|u| u.to_string()).unwrap_or_default();
        if let Ok(mut u) = Url::parse(&feed_url) {
            u.query_pairs_mut().append_pair("feed_url", status.url.as_str());
            feed_url = u.to_string();
        }
        let mut issues = Vec::new();
        if status.owner.is_none() && global_owner.is_none() {
            issues.push(
                "no owner: Apple Podcasts will not accept the podcast feed until an owner name and email are set \
                 (owner_name and owner_email here, or LECTOR_PODCAST_OWNER_NAME and _EMAIL for every feed)"
                    .to_owned(),
            );
        }
        Self {
            status_url: base.join(&format!("/feeds/{id}")),
            events_url: base.join(&format!("/feeds/{id}/events")),
            poll_url: base.join(&format!("/feeds/{id}/poll")),
            podcast_url: base.join(&format!("/feeds/{id}/podcast.xml")),
            conversions_url: feed_url,
            apple_ready: issues.is_empty(),
            apple_issues: issues,
            status,
        }
    }
}

/// The owner a request names: both or neither.
fn owner(name: Option<String>, email: Option<String>) -> Result<Option<PodcastOwner>, ApiError> {
    let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    match (clean(name), clean(email)) {
        (None, None) => Ok(None),
        (Some(name), Some(email)) => {
            let at = email.find('@');
            if at.is_none_or(|i| i == 0 || i == email.len() - 1) || email.contains(char::is_whitespace) {
                return Err(ApiError::bad_request(format!("owner_email '{email}' is not an email address")));
            }
            if name.len() > 255 || email.len() > 255 {
                return Err(ApiError::bad_request("owner_name and owner_email are at most 255 characters"));
            }
            Ok(Some(PodcastOwner { name, email }))
        }
        _ => Err(ApiError::bad_request("owner_name and owner_email go together")),
    }
}

pub(crate) fn feed_error(e: FeedExecuteError) -> ApiError {
    match e {
        FeedExecuteError::Rejected(FeedError::NotSubscribed) => ApiError::not_found("no such subscription"),
        FeedExecuteError::Rejected(FeedError::NotActive(state)) => {
            ApiError::new(ResponseStatus::Conflict, format!("the subscription is {state}"))
        }
        FeedExecuteError::Rejected(FeedError::Invalid(why)) => ApiError::bad_request(why),
        FeedExecuteError::Log(e) => ApiError::internal(e.to_string()),
    }
}

fn who(headers: &axum::http::HeaderMap) -> String {
    crate::conversions::requester(headers)
}

/// A feed id from the path.
pub fn feed_id(raw: &str) -> Result<FeedId, ApiError> {
    raw.parse::<FeedId>().map_err(ApiError::bad_request)
}

/// One subscription's status, folded from its own stream.
pub async fn load_feed_status(api: &AppState, id: &FeedId) -> Result<FeedStatus, ApiError> {
    let events =
        api.events.read_stream(&id.stream(), 0).await.map_err(|e| ApiError::internal(e.to_string()))?;
    FeedStatus::fold(&events)
        .map_err(|e| ApiError::internal(format!("subscription {id}: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("no subscription {id}")))
}

fn meta(api: &AppState, id: &FeedId) -> EventMeta {
    EventMeta { occurred_at: api.clock.now(), correlation_id: id.to_string(), causation_id: None }
}

/// `POST /feeds`: `201 success` for a new subscription, `skipped` (with the same id) for a feed
/// already subscribed to. The feed is read once first, so that what is not a feed is refused
/// at once; the first poll then runs at once.
pub async fn subscribe(
    State(api): State<AppState>,
    base: BaseUrl,
    headers: axum::http::HeaderMap,
    Body(request): Body<SubscribeRequest>,
) -> Result<Response, ApiError> {
    let url = web_url("url", &request.url)?;
    let (voice, engine) = resolve_voice(&api, request.voice.as_deref(), request.engine.as_deref()).await?;
    let backfill = request.backfill.unwrap_or(0);
    if backfill > lector_core::feed::subscription::MAX_BACKFILL {
        return Err(ApiError::bad_request(format!(
            "backfill is at most {}, not {backfill}",
            lector_core::feed::subscription::MAX_BACKFILL
        )));
    }
    let interval_minutes = request.interval_minutes.unwrap_or((DEFAULT_INTERVAL.as_secs() / 60) as u32);
    let owner = owner(request.owner_name, request.owner_email)?;
    let id = FeedId::derive(&url);
    // A feed that does not read is refused now rather than failing at every poll; one that is
    // briefly unreachable is subscribed to and retried.
    if let Err(e) = api.load_feed(&url).await
        && !e.kind.is_transient()
    {
        return Err(ApiError::bad_request(format!("cannot subscribe to {url}: {}", e.cause)));
    }
    let podcast_url = base.join(&format!("/feeds/{id}/podcast.xml"));
    let subscribed = FeedSubscribed {
        feed_id: id.clone(),
        url,
        voice,
        engine,
        auto_convert: request.auto_convert.unwrap_or(true),
        regenerate_on_edit: request.regenerate_on_edit.unwrap_or(true),
        backfill,
        interval_minutes,
        owner,
        podcast_guid: Some(lector_pipeline::podcast::podcast_guid(&podcast_url)),
        subscribed_by: who(&headers),
    };
    let done = execute_feed(&*api.events, &id, FeedCommand::Subscribe(subscribed), &meta(&api, &id))
        .await
        .map_err(feed_error)?;
    let created = !done.appended.is_empty();
    if created && let Err(e) = api.polls.poll_now(std::slice::from_ref(&id)).await {
        // The poller picks it up: a new subscription is due at once.
        tracing::warn!(feed_id = %id, error = %e, "first poll not started at once");
    }
    let status = load_feed_status(&api, &id).await?;
    let view = FeedView::new(status, &base, api.settings.podcast_owner.as_ref());
    Ok(if created {
        let mut response = success("subscribed", view);
        *response.status_mut() = StatusCode::CREATED;
        response
    } else {
        envelope(ResponseStatus::Skipped, "this feed is already subscribed to", Some(view))
    })
}

/// `GET /feeds?state=&limit=&cursor=`: a page of subscriptions, newest first.
pub async fn list(
    State(api): State<AppState>,
    base: BaseUrl,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut query = FeedQuery { limit: 20, ..FeedQuery::default() };
    for (key, value) in &params {
        match key.as_str() {
            "state" => query.state = Some(value.parse::<FeedState>().map_err(ApiError::bad_request)?),
            "limit" => {
                query.limit =
                    value.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                        ApiError::bad_request(format!("limit must be a number from 1 to 100, not '{value}'"))
                    })?;
            }
            "cursor" => query.cursor = Some(value.clone()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}': use state, limit or cursor"
                )));
            }
        }
    }
    let page = api.feeds.list(&query).await.map_err(|e| match e {
        IndexError::InvalidCursor => ApiError::bad_request("the cursor is not one this API gave"),
        other => ApiError::internal(other.to_string()),
    })?;
    #[derive(Serialize)]
    struct Page {
        feeds: Vec<FeedView>,
        next_cursor: Option<String>,
    }
    let owner = api.settings.podcast_owner.as_ref();
    let feeds: Vec<FeedView> = page.feeds.into_iter().map(|s| FeedView::new(s, &base, owner)).collect();
    Ok(success(format!("{} subscriptions", feeds.len()), Page { feeds, next_cursor: page.next_cursor }))
}

/// `GET /feeds/{feed_id}`.
pub async fn get_one(
    State(api): State<AppState>,
    base: BaseUrl,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let status = load_feed_status(&api, &id).await?;
    Ok(success(
        format!("subscription is {}", status.state.as_str()),
        FeedView::new(status, &base, api.settings.podcast_owner.as_ref()),
    ))
}

/// `PATCH /feeds/{feed_id}`.
pub async fn change(
    State(api): State<AppState>,
    base: BaseUrl,
    headers: axum::http::HeaderMap,
    Path(raw): Path<String>,
    Body(request): Body<ChangeRequest>,
) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let current = load_feed_status(&api, &id).await?;
    let by = who(&headers);
    let engine = match request.engine.as_deref() {
        Some(e) => Some(e.parse::<VoiceEngine>().map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    let voice = match (&request.voice, engine) {
        (None, None) => None,
        (voice, engine) => {
            let engine = engine.unwrap_or(current.engine).as_str().to_owned();
            let voice = voice.clone().unwrap_or_else(|| current.voice.to_string());
            Some(resolve_voice(&api, Some(&voice), Some(&engine)).await?)
        }
    };
    let change = FeedSettingsChanged {
        voice: voice.as_ref().map(|v| v.0.clone()),
        engine: voice.as_ref().map(|v| v.1),
        auto_convert: request.auto_convert,
        regenerate_on_edit: request.regenerate_on_edit,
        interval_minutes: request.interval_minutes,
        owner: owner(request.owner_name, request.owner_email)?,
        changed_by: by.clone(),
    };
    let mut changed = 0;
    let run = |command| {
        let api = api.clone();
        let id = id.clone();
        async move { execute_feed(&*api.events, &id, command, &meta(&api, &id)).await.map_err(feed_error) }
    };
    changed += run(FeedCommand::ChangeSettings(change)).await?.appended.len();
    match request.paused {
        Some(true) => {
            changed += run(FeedCommand::Pause { reason: format!("paused by {by}"), by: by.clone() })
                .await?
                .appended
                .len();
        }
        Some(false) => {
            changed += run(FeedCommand::Resume { by: by.clone(), at: api.clock.now() }).await?.appended.len();
        }
        None => {}
    }
    let status = load_feed_status(&api, &id).await?;
    let view = FeedView::new(status, &base, api.settings.podcast_owner.as_ref());
    Ok(if changed > 0 {
        success("subscription changed", view)
    } else {
        envelope(ResponseStatus::Skipped, "nothing to change", Some(view))
    })
}

/// `DELETE /feeds/{feed_id}`: no more polls; the conversions and their audio stay.
pub async fn unsubscribe(
    State(api): State<AppState>,
    base: BaseUrl,
    headers: axum::http::HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let done =
        execute_feed(&*api.events, &id, FeedCommand::Unsubscribe { by: who(&headers) }, &meta(&api, &id))
            .await
            .map_err(feed_error)?;
    let status = load_feed_status(&api, &id).await?;
    let view = FeedView::new(status, &base, api.settings.podcast_owner.as_ref());
    Ok(if done.appended.is_empty() {
        envelope(ResponseStatus::Skipped, "already unsubscribed", Some(view))
    } else {
        success("unsubscribed", view)
    })
}

/// `POST /feeds/{feed_id}/poll`: poll now, due or not (`202`).
pub async fn poll_now(
    State(api): State<AppState>,
    base: BaseUrl,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let status = load_feed_status(&api, &id).await?;
    if !status.state.is_polled() {
        return Err(ApiError::new(
            ResponseStatus::Conflict,
            format!("the subscription is {}: resume it to poll", status.state.as_str()),
        ));
    }
    let execution =
        api.polls.poll_now(std::slice::from_ref(&id)).await.map_err(|e| ApiError::internal(e.to_string()))?;
    #[derive(Serialize)]
    struct Started {
        feed_id: FeedId,
        execution_id: String,
        status_url: String,
    }
    Ok(envelope(
        ResponseStatus::Accepted,
        "poll started",
        Some(Started {
            status_url: base.join(&format!("/feeds/{id}")),
            feed_id: id,
            execution_id: execution,
        }),
    ))
}

/// `GET /feeds/{feed_id}/events`: the subscription's stream.
pub async fn events(State(api): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let events: Vec<RecordedEvent> =
        api.events.read_stream(&id.stream(), 0).await.map_err(|e| ApiError::internal(e.to_string()))?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!("no subscription {id}")));
    }
    Ok(success(format!("{} events", events.len()), events))
}

/// `GET /feeds/{feed_id}/cover.png`: the cover Lector draws for a podcast whose source feed has
/// no usable artwork: 3000 × 3000, the feed's title.
pub async fn cover(State(api): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let title = crate::feeds::podcast_title(&api, &id).await?;
    let png = tokio::task::spawn_blocking(move || lector_pipeline::cover::draw_cover(&title))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = (StatusCode::OK, png).into_response();
    let h = response.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("image/png"));
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(response)
}

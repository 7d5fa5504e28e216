//! The WebSub callback (`/websub/{feed_id}`): a hub checks the subscription's intent with a
//! `GET` whose challenge is echoed back, then `POST`s the feed on every change. A push whose
//! `X-Hub-Signature` does not verify with the feed's secret is ignored (WebSub asks that it be
//! acknowledged all the same); one that verifies is recorded as a poll would be.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use lector_core::EventMeta;
use lector_core::feed::event::{HubSubscriptionVerified, PollSource};
use lector_core::feed::service::{execute_feed, load_feed};
use lector_core::feed::subscription::FeedCommand;
use lector_core::response::ResponseStatus;
use lector_pipeline::feed::{Polled, parse_feed};
use lector_pipeline::fetch::ResponseMeta;
use lector_pipeline::poll::{read_poll, record};
use lector_pipeline::steps::StepPorts;

use crate::AppState;
use crate::error::{ApiError, envelope, success};
use crate::subscriptions::feed_id;

fn websub(api: &AppState) -> Result<&lector_pipeline::websub::WebSubConfig, ApiError> {
    api.settings.websub.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "WebSub is not set up here: no hub can reach this server (set a public address and a secret)",
        )
    })
}

/// `GET /websub/{feed_id}`: a hub verifies a subscription's intent; the challenge is echoed
/// only for a subscription this server asked for.
pub async fn verify(
    State(api): State<AppState>,
    Path(raw): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    websub(&api)?;
    let id = feed_id(&raw)?;
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let (mode, topic, challenge) = (param("hub.mode"), param("hub.topic"), param("hub.challenge"));
    if challenge.is_empty() {
        return Err(ApiError::bad_request("hub.challenge is missing"));
    }
    let (_, state) = load_feed(&*api.events, &id).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let asked = state.hub_requested.as_ref().filter(|r| r.topic.as_str() == topic);
    let answer = match mode {
        "subscribe" => {
            let (Some(request), true) = (asked, state.is_active()) else {
                return Err(ApiError::not_found(format!(
                    "no subscription to {topic} was asked for feed {id}"
                )));
            };
            let lease = params
                .get("hub.lease_seconds")
                .and_then(|l| l.parse::<u32>().ok())
                .unwrap_or(request.lease_seconds);
            let verified = HubSubscriptionVerified {
                hub: request.hub.clone(),
                lease_seconds: lease,
                expires_at: api.clock.now() + Duration::seconds(i64::from(lease)),
            };
            let meta = EventMeta {
                occurred_at: api.clock.now(),
                correlation_id: id.to_string(),
                causation_id: None,
            };
            execute_feed(&*api.events, &id, FeedCommand::VerifyHub(verified), &meta)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            challenge.to_owned()
        }
        // The hub confirms an unsubscription: only one this server wants.
        "unsubscribe" if !state.is_active() => challenge.to_owned(),
        "denied" => {
            tracing::warn!(feed_id = %id, reason = param("hub.reason"), "the WebSub hub denied the subscription");
            return Ok(success("denial noted", ()));
        }
        other => {
            return Err(ApiError::not_found(format!("hub.mode '{other}' is not expected for feed {id}")));
        }
    };
    let mut response = (StatusCode::OK, answer).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(response)
}

/// `POST /websub/{feed_id}`: a hub pushes the feed.
pub async fn push(
    State(api): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = websub(&api)?;
    let id = feed_id(&raw)?;
    let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok());
    if let Err(e) = config.verify(&id, signature, &body) {
        // Acknowledged, as WebSub asks, and ignored: a forged push changes nothing.
        tracing::warn!(feed_id = %id, error = %e, "a WebSub push was refused");
        return Ok(envelope::<()>(ResponseStatus::Skipped, format!("ignored: {e}"), None));
    }
    let (_, state) = load_feed(&*api.events, &id).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let Some(url) = state.url.clone().filter(|_| state.is_active()) else {
        return Ok(envelope::<()>(
            ResponseStatus::Skipped,
            format!("ignored: feed {id} is not subscribed to"),
            None,
        ));
    };
    let charset = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|ct| {
        ct.split(';').find_map(|p| p.trim().strip_prefix("charset=").map(|c| c.trim_matches('"').to_owned()))
    });
    let now = api.clock.now();
    let ports = StepPorts {
        events: api.events.clone(),
        objects: api.objects.clone(),
        voice: api.voice.clone(),
        fetcher: Some(api.fetcher.clone()),
        clock: api.clock.clone(),
        feeds: Some(api.feeds.clone()),
        websub: None,
        folded_feeds: Default::default(),
    };
    let command = match parse_feed(&body, Some(&url), charset.as_deref()) {
        Ok(feed) => {
            let meta = ResponseMeta::pushed(url.clone());
            let read = read_poll(&ports, &state, Polled::Feed(Box::new(feed), meta), now, PollSource::Push)
                .await
                .map_err(ApiError::from_step)?;
            FeedCommand::RecordPoll(read)
        }
        Err(e) => {
            FeedCommand::RecordFailure(lector_pipeline::poll::failure(&e.into(), now, PollSource::Push))
        }
    };
    let (outcome, _) = record(&ports, &id, state, command, now).await.map_err(ApiError::from_step)?;
    Ok(success("push recorded", outcome))
}

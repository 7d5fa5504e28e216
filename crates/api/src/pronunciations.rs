//! Pronunciation rules: a subscription's (`/feeds/{feed_id}/pronunciations`) and the global
//! default (`/pronunciations`), read and replaced whole. A rule that does not fit is refused
//! naming its index and why.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use lector_core::EventMeta;
use lector_core::feed::service::execute_feed;
use lector_core::feed::subscription::FeedCommand;
use lector_core::pronunciation::{Pronunciations, Rule, RulesError, load_global, set_global};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, success};
use crate::extract::Body;
use crate::subscriptions::{feed_error, feed_id, load_feed_status};

/// `PUT` body: the whole rule set. Each rule is read on its own, so a rule that does not fit
/// is named by its index.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesRequest {
    pub rules: Vec<serde_json::Value>,
}

impl RulesRequest {
    /// The rules, read and checked.
    pub fn parse(self) -> Result<Pronunciations, ApiError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, value) in self.rules.into_iter().enumerate() {
            let rule: Rule = serde_json::from_value(value)
                .map_err(|e| ApiError::bad_request(format!("rule {index}: {e}")))?;
            rules.push(rule);
        }
        let set = Pronunciations::new(rules);
        set.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(set)
    }
}

fn rules_error(e: RulesError) -> ApiError {
    match e {
        RulesError::Invalid(e) => ApiError::bad_request(e.to_string()),
        RulesError::Feed(e) => feed_error(e),
        other => ApiError::internal(other.to_string()),
    }
}

fn answer(what: &str, rules: Pronunciations) -> Response {
    let n = rules.rules.len();
    success(format!("{n} pronunciation rule{} {what}", if n == 1 { "" } else { "s" }), rules)
}

/// `GET /pronunciations`: the global default rules.
pub async fn get_global(State(api): State<AppState>) -> Result<Response, ApiError> {
    let (rules, _) = load_global(&*api.events).await.map_err(rules_error)?;
    Ok(answer("by default", rules))
}

/// `PUT /pronunciations`: replace the global default rules.
pub async fn put_global(
    State(api): State<AppState>,
    headers: HeaderMap,
    Body(request): Body<RulesRequest>,
) -> Result<Response, ApiError> {
    let rules = request.parse()?;
    let by = crate::conversions::requester(&headers);
    let stored = set_global(&*api.events, rules, &by, api.clock.now()).await.map_err(rules_error)?;
    Ok(answer("by default", stored))
}

/// `GET /feeds/{feed_id}/pronunciations`: the subscription's own rules.
pub async fn get_feed(State(api): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let status = load_feed_status(&api, &id).await?;
    Ok(answer("for this feed", Pronunciations::new(status.pronunciations)))
}

/// `PUT /feeds/{feed_id}/pronunciations`: replace the subscription's rules.
pub async fn put_feed(
    State(api): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    Body(request): Body<RulesRequest>,
) -> Result<Response, ApiError> {
    let id = feed_id(&raw)?;
    let rules = request.parse()?;
    let meta = EventMeta { occurred_at: api.clock.now(), correlation_id: id.to_string(), causation_id: None };
    let by = crate::conversions::requester(&headers);
    let command = FeedCommand::SetPronunciations { rules, by };
    let done = execute_feed(&*api.events, &id, command, &meta).await.map_err(feed_error)?;
    Ok(answer("for this feed", done.state.pronunciations))
}

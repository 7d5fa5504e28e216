//! Conversions: submit one or a batch, read one (folded from its own stream), its events, and
//! pages of the list projection.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use lector_core::event::PostInfo;
use lector_core::index::{IndexError, ListQuery};
use lector_core::response::ResponseStatus;
use lector_core::{ConversionState, ConversionStatus, EventEnvelope, FeedId, VoiceEngine, VoiceId};
use lector_pipeline::article::extract_article;
use lector_pipeline::feed::{Feed, Post};
use lector_pipeline::fetch::{Resource, decode_html};
use lector_pipeline::submit::{Outcome, Submission, submit};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::AppState;
use crate::error::{ApiError, envelope, success};
use crate::extract::{BaseUrl, Body, IdPath, web_url};
use crate::views::ConversionView;

/// `POST /conversions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionRequest {
    pub url: String,
    pub feed_url: Option<String>,
    pub title: Option<String>,
    pub voice: Option<String>,
    pub engine: Option<String>,
}

/// `POST /conversions/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub feed_url: Option<String>,
    pub voice: Option<String>,
    pub engine: Option<String>,
    pub posts: Vec<BatchPost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPost {
    pub url: String,
    pub title: Option<String>,
}

/// The most posts one batch may carry.
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Serialize)]
struct Submitted {
    conversion_id: lector_core::ConversionId,
    status_url: String,
    created: bool,
    /// The revision requested, when the post changed since it was converted.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u32>,
}

#[derive(Debug, Serialize)]
struct BatchItem {
    url: String,
    conversion_id: Option<lector_core::ConversionId>,
    status_url: Option<String>,
    created: Option<bool>,
    error: Option<String>,
}

/// The voice and engine a request asks for, checked against what the voice service offers.
pub async fn resolve_voice(
    api: &AppState,
    voice: Option<&str>,
    engine: Option<&str>,
) -> Result<(VoiceId, VoiceEngine), ApiError> {
    let engine = match engine {
        Some(e) => e.parse::<VoiceEngine>().map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => api.settings.default_engine,
    };
    if !api.settings.engines.contains(&engine) {
        let offered: Vec<_> = api.settings.engines.iter().map(|e| e.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "engine '{engine}' is not offered here; use one of {}",
            offered.join(", ")
        )));
    }
    let voice = match voice {
        None => api.settings.default_voice.clone(),
        Some(name) => VoiceId::new(name.trim()),
    };
    // `auto`: the voice of the engine that speaks each article's language, chosen when its
    // language is known.
    if voice.is_auto() {
        return Ok((VoiceId::auto(), engine));
    }
    let voices = api.voices().await.map_err(|e| ApiError::internal(format!("the voice service: {e}")))?;
    let voice = voices
        .iter()
        .find(|v| v.id.as_str().eq_ignore_ascii_case(voice.as_str()))
        .map(|v| v.id.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!("unsupported voice '{voice}': GET /voices lists the voices"))
        })?;
    match voices.iter().find(|v| v.id == voice) {
        Some(info) if info.engines.contains(&engine) => Ok((voice, engine)),
        Some(_) => {
            Err(ApiError::bad_request(format!("voice '{voice}' does not speak on the {engine} engine")))
        }
        None => Err(ApiError::internal(format!(
            "the default voice '{voice}' is not offered by the voice service"
        ))),
    }
}

/// The feed's posts by address, so a post the feed carries whole is not fetched again. A feed
/// that cannot be read only means the pages will be fetched.
struct FeedPosts {
    title: Option<String>,
    language: Option<String>,
    posts: HashMap<Url, Post>,
}

async fn feed_posts(api: &AppState, feed_url: Option<&Url>) -> FeedPosts {
    let empty = FeedPosts { title: None, language: None, posts: HashMap::new() };
    let Some(url) = feed_url else { return empty };
    match api.load_feed(url).await {
        Ok(Feed { posts, title, language, .. }) => FeedPosts {
            title,
            language,
            posts: posts.into_iter().filter_map(|p| p.url.clone().map(|u| (u, p))).collect(),
        },
        Err(e) => {
            tracing::info!(feed = %url, error = %e, "feed not read at submission; the pages will be fetched");
            empty
        }
    }
}

async fn submit_post(
    api: &AppState,
    post_url: Url,
    title: Option<String>,
    feed_url: Option<&Url>,
    feed: &FeedPosts,
    voice: &(VoiceId, VoiceEngine),
    requested_by: &str,
) -> Result<lector_pipeline::submit::Submitted, ApiError> {
    let from_feed = feed.posts.get(&post_url);
    let mut submission = Submission::new(post_url, voice.0.clone(), voice.1, requested_by);
    submission.title = title.or_else(|| from_feed.and_then(|p| p.title.clone()));
    submission.content_html = from_feed.filter(|p| p.full_text).and_then(|p| p.content_html.clone());
    submission.post = from_feed.map(post_info);
    submission.feed_url = feed_url.cloned();
    submission.feed_title = feed.title.clone();
    submission.feed_language = feed.language.clone();
    if submission.content_html.is_none() {
        submission.text_hash = page_text_hash_if_converted(api, &submission).await;
    }
    submit(&*api.events, &*api.objects, &*api.clock, submission).await.map_err(ApiError::from_step)
}

/// What the feed says of a post, as a conversion keeps it.
pub fn post_info(post: &Post) -> PostInfo {
    PostInfo {
        key: Some(post.id.clone()),
        published_at: post.published,
        updated_at: post.updated,
        summary: post.summary.clone(),
        author: post.author.clone(),
    }
}

/// The hash of the page's text, read again, when the post was converted before: a resubmitted
/// post whose page changed gets a new revision, an unchanged one stays as it is. `None` (no
/// revision) for a post not converted yet, or a page that cannot be read now.
async fn page_text_hash_if_converted(api: &AppState, submission: &Submission) -> Option<String> {
    let id = lector_core::ConversionId::derive(&submission.post_url, &submission.voice, submission.engine);
    let existing = api.index.get(&id).await.ok().flatten()?;
    if existing.state != ConversionState::Completed {
        return None;
    }
    let url = submission.post_url.as_str();
    let page = match api.fetcher.fetch(url, Resource::Page).await {
        Ok(page) => page,
        Err(e) => {
            tracing::info!(%url, error = %e, "resubmitted page not read: kept as it is");
            return None;
        }
    };
    let html = decode_html(&page.body, page.charset.as_deref());
    let article = extract_article(&html, Some(&page.url)).ok()?;
    Some(article.document.content_hash())
}

pub(crate) fn requester(headers: &axum::http::HeaderMap) -> String {
    // Behind API Gateway the authorizer's subject would go here; locally it is the API.
    headers
        .get("x-lector-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty() && v.len() <= 200)
        .unwrap_or("api")
        .to_owned()
}

pub async fn submit_one(
    State(api): State<AppState>,
    base: BaseUrl,
    headers: axum::http::HeaderMap,
    Body(request): Body<ConversionRequest>,
) -> Result<Response, ApiError> {
    let post_url = web_url("url", &request.url)?;
    let feed_url = request.feed_url.as_deref().map(|f| web_url("feed_url", f)).transpose()?;
    let voice = resolve_voice(&api, request.voice.as_deref(), request.engine.as_deref()).await?;
    let feed = feed_posts(&api, feed_url.as_ref()).await;
    let title = request.title.filter(|t| !t.trim().is_empty());
    let done =
        submit_post(&api, post_url, title, feed_url.as_ref(), &feed, &voice, &requester(&headers)).await?;
    let data = Submitted {
        status_url: base.join(&format!("/conversions/{}", done.conversion_id)),
        conversion_id: done.conversion_id.clone(),
        created: done.created,
        revision: match done.outcome {
            Outcome::Revised { revision } => Some(revision),
            _ => None,
        },
    };
    Ok(match done.outcome {
        Outcome::Created => envelope(ResponseStatus::Accepted, "conversion accepted", Some(data)),
        Outcome::Revised { revision } => envelope(
            ResponseStatus::Accepted,
            format!("the post changed: revision {revision} accepted"),
            Some(data),
        ),
        Outcome::Unchanged => envelope(
            ResponseStatus::Skipped,
            "this post was already submitted with this voice, and its text is unchanged",
            Some(data),
        ),
    })
}

pub async fn submit_batch(
    State(api): State<AppState>,
    base: BaseUrl,
    headers: axum::http::HeaderMap,
    Body(request): Body<BatchRequest>,
) -> Result<Response, ApiError> {
    if request.posts.is_empty() || request.posts.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "posts must hold 1 to {MAX_BATCH} posts, not {}",
            request.posts.len()
        )));
    }
    let feed_url = request.feed_url.as_deref().map(|f| web_url("feed_url", f)).transpose()?;
    let voice = resolve_voice(&api, request.voice.as_deref(), request.engine.as_deref()).await?;
    let feed = feed_posts(&api, feed_url.as_ref()).await;
    let who = requester(&headers);
    let mut items = Vec::with_capacity(request.posts.len());
    let (mut created, mut again, mut refused) = (0, 0, 0);
    for post in request.posts {
        let result = match web_url("url", &post.url) {
            Ok(url) => submit_post(&api, url, post.title, feed_url.as_ref(), &feed, &voice, &who).await,
            Err(e) => Err(e),
        };
        items.push(match result {
            Ok(done) => {
                if done.created {
                    created += 1
                } else {
                    again += 1
                }
                BatchItem {
                    url: post.url,
                    status_url: Some(base.join(&format!("/conversions/{}", done.conversion_id))),
                    conversion_id: Some(done.conversion_id),
                    created: Some(done.created),
                    error: None,
                }
            }
            Err(e) => {
                refused += 1;
                BatchItem {
                    url: post.url,
                    conversion_id: None,
                    status_url: None,
                    created: None,
                    error: Some(e.message),
                }
            }
        });
    }
    #[derive(Serialize)]
    struct Batch {
        conversions: Vec<BatchItem>,
    }
    let message = format!("{created} accepted, {again} already submitted, {refused} refused");
    let status = if created > 0 {
        ResponseStatus::Accepted
    } else if again > 0 {
        ResponseStatus::Skipped
    } else {
        ResponseStatus::BadRequest
    };
    Ok(envelope(status, message, Some(Batch { conversions: items })))
}

/// One conversion's status, folded from its own stream.
pub async fn load_status(
    api: &AppState,
    id: &lector_core::ConversionId,
) -> Result<ConversionStatus, ApiError> {
    let events =
        api.events.read_stream(&id.stream(), 0).await.map_err(|e| ApiError::internal(e.to_string()))?;
    ConversionStatus::fold(&events)
        .map_err(|e| ApiError::internal(format!("conversion {id}: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("no conversion {id}")))
}

pub async fn get_one(
    State(api): State<AppState>,
    base: BaseUrl,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let status = load_status(&api, &id).await?;
    Ok(success(format!("conversion is {}", status.state.as_str()), ConversionView::new(status, &base)))
}

pub async fn events(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let events =
        api.events.read_stream(&id.stream(), 0).await.map_err(|e| ApiError::internal(e.to_string()))?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!("no conversion {id}")));
    }
    let envelopes = events
        .iter()
        .map(EventEnvelope::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("conversion {id}: {e}")))?;
    Ok(success(format!("{} events", envelopes.len()), envelopes))
}

pub async fn list(
    State(api): State<AppState>,
    base: BaseUrl,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut query = ListQuery { limit: 20, ..ListQuery::default() };
    for (key, value) in &params {
        match key.as_str() {
            "feed_url" => query.feed_id = Some(FeedId::derive(&web_url("feed_url", value)?)),
            "state" => {
                query.state = Some(value.parse::<ConversionState>().map_err(ApiError::bad_request)?);
            }
            "limit" => {
                query.limit =
                    value.parse::<usize>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                        ApiError::bad_request(format!("limit must be a number from 1 to 100, not '{value}'"))
                    })?;
            }
            "cursor" => query.cursor = Some(value.clone()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}': use feed_url, state, limit or cursor"
                )));
            }
        }
    }
    let page = api.index.list(&query).await.map_err(|e| match e {
        IndexError::InvalidCursor => ApiError::bad_request("the cursor is not one this API gave"),
        other => ApiError::internal(other.to_string()),
    })?;
    #[derive(Serialize)]
    struct Page {
        conversions: Vec<ConversionView>,
        next_cursor: Option<String>,
    }
    let conversions: Vec<_> = page.conversions.into_iter().map(|s| ConversionView::new(s, &base)).collect();
    Ok(success(
        format!("{} conversions", conversions.len()),
        Page { conversions, next_cursor: page.next_cursor },
    ))
}

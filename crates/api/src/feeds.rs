//! Feeds: a preview of what converting each post would take, and the podcast feed of a feed's
//! completed conversions.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lector_core::feed::FeedStatus;
use lector_core::index::ListQuery;
use lector_core::voice::SpeechLimits;
use lector_core::{ConversionId, ConversionState, ConversionStatus, FeedId, VoiceEngine, VoiceId};
use lector_pipeline::article::extract_article;
use lector_pipeline::document::Document;
use lector_pipeline::feed::Post;
use lector_pipeline::fetch::{Resource, decode_html};
use lector_pipeline::podcast::{
    self, Category, Channel, Enclosure, Episode, Owner, ShowType, TranscriptLink, podcast_guid,
};
use lector_pipeline::speech::prepare;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::AppState;
use crate::conversions::resolve_voice;
use crate::error::{ApiError, success};
use crate::extract::{BaseUrl, Body, web_url};

/// `POST /feeds/preview`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub url: String,
    pub voice: Option<String>,
    pub engine: Option<String>,
}

#[derive(Debug, Serialize)]
struct FeedView {
    feed_url: String,
    feed_id: FeedId,
    podcast_url: String,
    title: Option<String>,
    link: Option<String>,
    description: Option<String>,
    language: Option<String>,
    format: String,
}

#[derive(Debug, Serialize)]
struct PreviewPost {
    id: String,
    title: Option<String>,
    url: Option<String>,
    published: Option<DateTime<Utc>>,
    author: Option<String>,
    words: usize,
    full_text: bool,
    characters: Option<u64>,
    estimated_cost_usd: Option<f64>,
    measure_error: Option<String>,
    conversion_id: Option<ConversionId>,
    state: Option<ConversionState>,
}

#[derive(Debug, Serialize)]
struct Preview {
    feed: FeedView,
    voice: VoiceId,
    engine: VoiceEngine,
    posts: Vec<PreviewPost>,
}

/// How many pages are fetched at once to measure posts.
const MEASURE_CONCURRENCY: usize = 4;

/// A preview answers within this time, whatever the servers of the feed and of its posts do:
/// the feed's fetch has its own deadline, and posts not measured by this one are listed with
/// the reason.
const PREVIEW_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

/// The characters that would be spoken (and billed) for a document.
fn spoken(document: &Document, language: Option<&str>, limits: SpeechLimits) -> Result<u64, String> {
    prepare(document, language, limits).map(|s| s.billed_chars()).map_err(|e| e.to_string())
}

/// What was measured of a post: characters spoken, and words of the text that would be read.
type Measured = Option<(u64, usize)>;

async fn measure(api: &AppState, post: &Post, limits: SpeechLimits, fetch: bool) -> Result<Measured, String> {
    if let Some(document) = post.document() {
        return spoken(&document, None, limits).map(|c| Some((c, document.words())));
    }
    let Some(url) = &post.url else { return Err("the post has no address".into()) };
    if !fetch {
        return Ok(None);
    }
    let page = api.fetcher.fetch(url.as_str(), Resource::Page).await.map_err(|e| e.to_string())?;
    // Off the async workers, so that the preview's deadline can leave a slow page behind.
    let article = tokio::task::spawn_blocking(move || {
        let html = decode_html(&page.body, page.charset.as_deref());
        extract_article(&html, Some(&page.url)).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the page could not be read: {e}"))??;
    spoken(&article.document, article.language.as_deref(), limits).map(|c| Some((c, article.words)))
}

pub async fn preview(
    State(api): State<AppState>,
    base: BaseUrl,
    Body(request): Body<PreviewRequest>,
) -> Result<Response, ApiError> {
    let by = tokio::time::Instant::now() + PREVIEW_DEADLINE;
    let feed_url = web_url("url", &request.url)?;
    let (voice, engine) = resolve_voice(&api, request.voice.as_deref(), request.engine.as_deref()).await?;
    let feed = api.load_feed(&feed_url).await.map_err(ApiError::from_step)?;
    let limits = api.voice.limits(engine);
    let limit = api.settings.preview_measure_limit;
    // Owned posts: the futures must not borrow from this frame across the stream's awaits.
    let measured: Vec<Result<Measured, String>> =
        futures::stream::iter(feed.posts.clone().into_iter().enumerate())
            .map(|(i, post)| {
                let api = api.clone();
                async move {
                    tokio::time::timeout_at(by, measure(&api, &post, limits, i < limit)).await.unwrap_or_else(
                        |_| {
                            Err(format!("not measured within the preview's {} s", PREVIEW_DEADLINE.as_secs()))
                        },
                    )
                }
            })
            .buffered(MEASURE_CONCURRENCY)
            .collect()
            .await;
    let mut posts = Vec::with_capacity(feed.posts.len());
    for (post, measured) in feed.posts.iter().zip(measured) {
        let conversion_id = post.url.as_ref().map(|u| ConversionId::derive(u, &voice, engine));
        let state = match &conversion_id {
            Some(id) => {
                api.index.get(id).await.map_err(|e| ApiError::internal(e.to_string()))?.map(|s| s.state)
            }
            None => None,
        };
        let (characters, words, measure_error) = match measured {
            Ok(Some((c, w))) => (Some(c), w, None),
            // Not measured: the feed's own count (of its summary).
            Ok(None) => (None, post.words, None),
            Err(e) => (None, post.words, Some(e)),
        };
        posts.push(PreviewPost {
            id: post.id.clone(),
            title: post.title.clone(),
            url: post.url.as_ref().map(Url::to_string),
            published: post.published,
            author: post.author.clone(),
            words,
            full_text: post.full_text,
            estimated_cost_usd: characters.map(|c| cost(c, engine)),
            characters,
            measure_error,
            conversion_id,
            state,
        });
    }
    let feed_id = FeedId::derive(&feed_url);
    let view = FeedView {
        podcast_url: base.join(&format!("/feeds/{feed_id}/podcast.xml")),
        feed_url: feed_url.to_string(),
        feed_id,
        title: feed.title.clone(),
        link: feed.link.as_ref().map(Url::to_string),
        description: feed.description.clone(),
        language: feed.language.clone(),
        format: feed.format.clone(),
    };
    Ok(success(format!("{} posts", posts.len()), Preview { feed: view, voice, engine, posts }))
}

/// US dollars for synthesizing `characters` on `engine`, rounded to a tenth of a cent.
pub fn cost(characters: u64, engine: VoiceEngine) -> f64 {
    let usd = characters as f64 * engine.usd_per_million_chars() / 1_000_000.0;
    (usd * 1000.0).round() / 1000.0
}

/// The most episodes one podcast feed lists (the newest).
const MAX_EPISODES: usize = 300;

/// A feed's subscription (folded from its own stream), when it is subscribed to.
async fn subscription(api: &AppState, id: &FeedId) -> Result<Option<FeedStatus>, ApiError> {
    let events =
        api.events.read_stream(&id.stream(), 0).await.map_err(|e| ApiError::internal(e.to_string()))?;
    FeedStatus::fold(&events).map_err(|e| ApiError::internal(format!("subscription {id}: {e}")))
}

/// The conversions of a feed that have audio, newest post first.
async fn episodes_of(api: &AppState, id: &FeedId) -> Result<Vec<ConversionStatus>, ApiError> {
    let mut episodes = Vec::new();
    let mut cursor = None;
    while episodes.len() < MAX_EPISODES {
        let page = api
            .index
            .list(&ListQuery { feed_id: Some(id.clone()), state: None, limit: 100, cursor })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        // A conversion being revised keeps its episode: the previous revision's audio.
        episodes.extend(page.conversions.into_iter().filter(ConversionStatus::has_audio));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    episodes.truncate(MAX_EPISODES);
    episodes.sort_by_key(|e| std::cmp::Reverse(episode_date(e)));
    Ok(episodes)
}

fn episode_date(status: &ConversionStatus) -> DateTime<Utc> {
    status.published_at.or(status.completed_at).unwrap_or(status.created_at)
}

/// The title a feed's podcast is known by: the subscription's feed title, else the one its
/// conversions carry, else the feed's host.
pub async fn podcast_title(api: &AppState, id: &FeedId) -> Result<String, ApiError> {
    if let Some(title) = subscription(api, id).await?.and_then(|s| s.title) {
        return Ok(title);
    }
    let any = api
        .index
        .list(&ListQuery { feed_id: Some(id.clone()), limit: 1, ..ListQuery::default() })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let sample =
        any.conversions.first().ok_or_else(|| ApiError::not_found(format!("no podcast of feed {id}")))?;
    Ok(sample
        .feed_title
        .clone()
        .or_else(|| sample.feed_url.as_ref().and_then(|u| u.host_str().map(str::to_owned)))
        .unwrap_or_else(|| "Narrated posts".into()))
}

/// `GET /feeds/{feed_id}/podcast.xml`: one podcast per feed (subscribed to, or whose posts were
/// converted), episodes being the feed's conversions that have audio.
pub async fn podcast(
    State(api): State<AppState>,
    base: BaseUrl,
    Path(feed_id): Path<String>,
) -> Result<Response, ApiError> {
    let feed_id: FeedId = feed_id.parse().map_err(ApiError::bad_request)?;
    let subscribed = subscription(&api, &feed_id).await?;
    let episodes = episodes_of(&api, &feed_id).await?;
    if subscribed.is_none() && episodes.is_empty() {
        return Err(ApiError::not_found(format!("no conversions of feed {feed_id}")));
    }
    let title = podcast_title(&api, &feed_id).await?;
    let details = subscribed.as_ref().map(|s| s.details.clone()).unwrap_or_default();
    let source_url = subscribed
        .as_ref()
        .map(|s| s.url.clone())
        .or_else(|| episodes.iter().find_map(|e| e.feed_url.clone()));
    let self_url = base.join(&format!("/feeds/{feed_id}/podcast.xml"));
    let image_url = match details.image.as_ref().filter(|i| i.artwork) {
        Some(image) => image.url.to_string(),
        None => base.join(&format!("/feeds/{feed_id}/cover.png")),
    };
    let owner =
        subscribed.as_ref().and_then(|s| s.owner.clone()).or_else(|| api.settings.podcast_owner.clone());
    let language = details
        .language
        .clone()
        .or_else(|| episodes.iter().find_map(|e| e.language.clone()))
        .unwrap_or_else(|| "en".into());
    let channel = Channel {
        title: format!("{title} (narrated)"),
        description: details
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| format!("Posts of {title}, read aloud by Lector.")),
        language,
        link: details
            .link
            .as_ref()
            .or(source_url.as_ref())
            .map(Url::to_string)
            .unwrap_or_else(|| base.join("/")),
        // Fixed when the feed was subscribed to, so that it never changes.
        guid: subscribed.as_ref().and_then(|s| s.podcast_guid).unwrap_or_else(|| podcast_guid(&self_url)),
        self_url,
        image_url,
        category: Category::new("News"),
        explicit: false,
        author: details.author.clone().unwrap_or_else(|| title.clone()),
        owner: owner.map(|o| Owner { name: o.name, email: o.email }),
        show_type: ShowType::Episodic,
        locked: true,
        generator: Some("Lector".into()),
    };
    let episodes: Vec<Episode> = episodes.iter().map(|status| episode(status, &base, &title)).collect();
    let xml = podcast::render(&channel, &episodes);
    let mut response = (StatusCode::OK, xml).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/rss+xml; charset=utf-8"));
    Ok(response)
}

/// One episode of the podcast feed from a conversion with audio: the post's own title, date
/// and summary, a guid that never changes (the conversion's id is the same in every revision),
/// and the audio of the latest revision at an address of its own.
fn episode(status: &ConversionStatus, base: &BaseUrl, feed_title: &str) -> Episode {
    let id = &status.conversion_id;
    let title = status.title.clone().unwrap_or_else(|| "Untitled post".into());
    let summary =
        status.summary.clone().unwrap_or_else(|| format!("{title}, from {feed_title}, read aloud."));
    let at = |path: &str| base.join(&format!("/conversions/{id}/{path}"));
    let timed = status.timings_ref.is_some();
    Episode {
        guid: format!("lector:{id}"),
        title,
        link: Some(status.post_url.to_string()),
        published: episode_date(status),
        summary: Some(summary),
        author: status.byline.clone(),
        enclosure: Enclosure {
            url: match status.audio_revision {
                Some(revision) => base.join(&crate::views::revision_audio_path(id, revision)),
                None => at("audio"),
            },
            length: status.audio_bytes.unwrap_or(0),
            mime: "audio/mpeg".into(),
        },
        duration_seconds: status.duration_seconds.unwrap_or_default(),
        transcripts: if timed {
            vec![TranscriptLink::vtt(at("transcript.vtt")), TranscriptLink::json(at("transcript.json"))]
        } else {
            vec![]
        },
        chapters_url: (timed && status.chapters.unwrap_or(0) > 0).then(|| at("chapters.json")),
    }
}

/// `HH:MM:SS`, the form every podcast app reads for `itunes:duration`.
pub fn itunes_duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    format!("{:02}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_engine_price() {
        assert_eq!(cost(1_000_000, VoiceEngine::Neural), 16.0);
        assert_eq!(cost(2_500, VoiceEngine::Standard), 0.01);
        assert_eq!(cost(10_000, VoiceEngine::Espeak), 0.0);
    }

    #[test]
    fn itunes_durations_are_hours_minutes_seconds() {
        assert_eq!(itunes_duration(23.2), "00:00:23");
        assert_eq!(itunes_duration(3725.0), "01:02:05");
    }
}

//! A conversion's transcripts and chapters, made from the timings its stitching recorded:
//! WebVTT, SRT, the Podcasting 2.0 JSON transcript and chapters, and the timeline itself (the
//! read-along player's: sentences grouped into the post's blocks).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lector_core::ports::ObjectError;
use lector_pipeline::timeline::Timeline;

use crate::AppState;
use crate::conversions::load_status;
use crate::error::ApiError;
use crate::extract::IdPath;

/// The timeline of the conversion's served audio.
async fn timeline(api: &AppState, id: &lector_core::ConversionId) -> Result<Timeline, ApiError> {
    let status = load_status(api, id).await?;
    let key = status.timings_ref.ok_or_else(|| {
        ApiError::not_found(format!("conversion {id} has no timings: it is {}", status.state.as_str()))
    })?;
    let bytes = api.objects.get(&key).await.map_err(|e| match e {
        ObjectError::NotFound(_) => {
            ApiError::not_found(format!("the timings of {id} are missing from storage"))
        }
        other => ApiError::internal(other.to_string()),
    })?;
    Timeline::from_json(&bytes).map_err(|e| ApiError::internal(format!("the timings of {id}: {e}")))
}

fn text(content_type: &'static str, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Players on other origins (a podcast app's web view, an embed) read these.
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

fn written(result: Result<String, lector_pipeline::timeline::TimelineError>) -> Result<String, ApiError> {
    result.map_err(|e| ApiError::internal(format!("the timings cannot be written: {e}")))
}

/// `GET /conversions/{id}/transcript.vtt`.
pub async fn vtt(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    Ok(text("text/vtt; charset=utf-8", written(timeline(&api, &id).await?.to_webvtt())?))
}

/// `GET /conversions/{id}/transcript.srt`.
pub async fn srt(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    Ok(text("application/x-subrip; charset=utf-8", written(timeline(&api, &id).await?.to_srt())?))
}

/// `GET /conversions/{id}/transcript.json`: the Podcasting 2.0 JSON transcript.
pub async fn json(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    Ok(text("application/json", written(timeline(&api, &id).await?.to_json_transcript())?))
}

/// `GET /conversions/{id}/chapters.json`: the Podcasting 2.0 chapters.
pub async fn chapters(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    Ok(text("application/json+chapters", written(timeline(&api, &id).await?.to_json_chapters())?))
}

/// `GET /conversions/{id}/timeline.json`: the timeline itself, for the read-along player.
pub async fn timeline_json(State(api): State<AppState>, IdPath(id): IdPath) -> Result<Response, ApiError> {
    Ok(text("application/json", timeline(&api, &id).await?.to_json()))
}

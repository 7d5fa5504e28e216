//! `GET /health` and `GET /voices`.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, success};

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

pub async fn health() -> Response {
    success("ok", Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

#[derive(Serialize)]
struct Voices<'a> {
    default_voice: &'a lector_core::VoiceId,
    default_engine: lector_core::VoiceEngine,
    voices: Vec<&'a lector_core::voice::VoiceInfo>,
}

pub async fn voices(State(api): State<AppState>) -> Result<Response, ApiError> {
    let all = api.voices().await.map_err(|e| ApiError::internal(format!("the voice service: {e}")))?;
    let voices: Vec<_> =
        all.iter().filter(|v| v.engines.iter().any(|e| api.settings.engines.contains(e))).collect();
    Ok(success(
        format!("{} voices", voices.len()),
        Voices {
            default_voice: &api.settings.default_voice,
            default_engine: api.settings.default_engine,
            voices,
        },
    ))
}

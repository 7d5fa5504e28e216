//! Request extraction that refuses bad input with an envelope saying what is wrong: bodies
//! that are not JSON or do not fit, ids that are not ids, the base address for links.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use lector_core::ConversionId;
use serde::de::DeserializeOwned;
use url::Url;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body of type `T`; a body that is not JSON, or not of that shape, is a `badRequest`
/// naming the problem (the field, the line and column).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::bad_request(describe(&rejection))),
        }
    }
}

fn describe(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the body must be JSON, sent with Content-Type: application/json".into()
        }
        JsonRejection::JsonSyntaxError(e) => format!("the body is not valid JSON: {}", inner(e.body_text())),
        JsonRejection::JsonDataError(e) => format!("the body does not fit: {}", inner(e.body_text())),
        JsonRejection::BytesRejection(e) => format!("the body could not be read: {}", e.body_text()),
        other => other.body_text(),
    }
}

/// axum prefixes serde's message with its own sentence; keep serde's, which names the field.
fn inner(text: String) -> String {
    match text.split_once(": ") {
        Some((_, rest)) => rest.to_owned(),
        None => text,
    }
}

/// A conversion id from the path.
#[derive(Debug)]
pub struct IdPath(pub ConversionId);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        raw.parse()
            .map(IdPath)
            .map_err(|e: lector_core::id::InvalidConversionId| ApiError::bad_request(e.to_string()))
    }
}

/// The address links in answers start with: the configured public address, else the one the
/// client used.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub Url);

impl BaseUrl {
    /// `base` joined with an absolute path (`/conversions/...`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0.as_str().trim_end_matches('/'))
    }
}

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.settings.public_url {
            return Ok(BaseUrl(url.clone()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let host = header("x-forwarded-host")
            .or_else(|| header("host"))
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .ok_or_else(|| ApiError::bad_request("the request has no Host header"))?;
        let scheme = header("x-forwarded-proto").unwrap_or("http");
        let scheme = if scheme == "https" { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{host}/"))
            .map(BaseUrl)
            .map_err(|_| ApiError::bad_request(format!("the Host header '{host}' is not a host")))
    }
}

/// An http(s) address from user input.
pub fn web_url(field: &str, raw: &str) -> Result<Url, ApiError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| ApiError::bad_request(format!("{field} '{raw}' is not an address: {e}")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(ApiError::bad_request(format!("{field} '{raw}' has no host"))),
        other => {
            Err(ApiError::bad_request(format!("{field} must be an http or https address, not {other}:")))
        }
    }
}

//! Errors as envelopes: every refusal says what was wrong in words, with the status that maps
//! to exactly one HTTP code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use lector_core::response::{Response, ResponseStatus};
use lector_core::{ErrorKind, StepError};
use serde::Serialize;

/// An answer that is not a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: ResponseStatus,
    pub message: String,
}

impl ApiError {
    pub fn new(status: ResponseStatus, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ResponseStatus::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ResponseStatus::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ResponseStatus::Error, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ResponseStatus::NotImplemented, message)
    }

    /// A failure of the work behind a request (fetching a feed, the store): what the user named
    /// is at fault for permanent errors, the service for the rest.
    pub fn from_step(e: StepError) -> Self {
        let status = match e.kind {
            ErrorKind::InvalidInput
            | ErrorKind::NotAllowed
            | ErrorKind::TooLarge
            | ErrorKind::Unsupported
            | ErrorKind::NoArticle
            | ErrorKind::NotFound => ResponseStatus::BadRequest,
            ErrorKind::Superseded => ResponseStatus::Conflict,
            ErrorKind::Transient | ErrorKind::Internal | ErrorKind::ConversionFailed => ResponseStatus::Error,
        };
        // The stable name is for workflows and logs; people read the cause.
        Self::new(status, e.cause)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        if self.status == ResponseStatus::Error {
            tracing::error!(message = %self.message, "request failed");
        }
        envelope::<()>(self.status, self.message, None)
    }
}

/// An envelope answer with the HTTP code of its status.
pub fn envelope<T: Serialize>(
    status: ResponseStatus,
    message: impl Into<String>,
    data: Option<T>,
) -> HttpResponse {
    let code = StatusCode::from_u16(status.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(Response::new(status, message, data))).into_response()
}

/// `success` with data.
pub fn success<T: Serialize>(message: impl Into<String>, data: T) -> HttpResponse {
    envelope(ResponseStatus::Success, message, Some(data))
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such resource: {}", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpResponse {
    let mut response = envelope::<()>(
        ResponseStatus::BadRequest,
        format!("{method} is not allowed on {}", uri.path()),
        None,
    );
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

//! Writes need the bearer token when one is configured.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lector_core::response::ResponseStatus;

use crate::AppState;
use crate::error::ApiError;

/// Let reads through; let writes through only with `Authorization: Bearer <token>` when a token
/// is set. No header is `notAuthenticated` (401), a wrong one `unauthorized` (403).
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.settings.token.as_deref() else { return next.run(request).await };
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    // A WebSub hub holds no token: its pushes are authenticated by their signature.
    if request.uri().path().starts_with("/websub/") {
        return next.run(request).await;
    }
    let given = request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match given.and_then(|v| v.strip_prefix("Bearer ")) {
        None => ApiError::new(
            ResponseStatus::NotAuthenticated,
            "this request needs Authorization: Bearer <token>",
        )
        .into_response(),
        Some(candidate) if constant_time_eq(candidate.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(ResponseStatus::Unauthorized, "the token is not valid").into_response(),
    }
}

/// Compare without returning early, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

//! The response envelope: every JSON answer of the API is `{status, message, data}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of a request, each mapped to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ResponseStatus {
    Success,
    Accepted,
    Skipped,
    BadRequest,
    NotAuthenticated,
    Unauthorized,
    NotFound,
    Conflict,
    Error,
    NotImplemented,
}

impl ResponseStatus {
    pub const ALL: [ResponseStatus; 10] = [
        ResponseStatus::Success,
        ResponseStatus::Accepted,
        ResponseStatus::Skipped,
        ResponseStatus::BadRequest,
        ResponseStatus::NotAuthenticated,
        ResponseStatus::Unauthorized,
        ResponseStatus::NotFound,
        ResponseStatus::Conflict,
        ResponseStatus::Error,
        ResponseStatus::NotImplemented,
    ];

    /// The HTTP status code of this outcome.
    pub fn http_status(self) -> u16 {
        match self {
            ResponseStatus::Success => 200,
            ResponseStatus::Accepted => 202,
            // The request was valid and nothing needed doing (it was done before).
            ResponseStatus::Skipped => 200,
            ResponseStatus::BadRequest => 400,
            ResponseStatus::NotAuthenticated => 401,
            ResponseStatus::Unauthorized => 403,
            ResponseStatus::NotFound => 404,
            ResponseStatus::Conflict => 409,
            ResponseStatus::Error => 500,
            ResponseStatus::NotImplemented => 501,
        }
    }
}

/// `{"status": ..., "message": ..., "data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Response<T> {
    pub status: ResponseStatus,
    pub message: String,
    pub data: Option<T>,
}

impl<T> Response<T> {
    pub fn new(status: ResponseStatus, message: impl Into<String>, data: Option<T>) -> Self {
        Self { status, message: message.into(), data }
    }

    pub fn success(message: impl Into<String>, data: T) -> Self {
        Self::new(ResponseStatus::Success, message, Some(data))
    }

    pub fn accepted(message: impl Into<String>, data: T) -> Self {
        Self::new(ResponseStatus::Accepted, message, Some(data))
    }
}

impl Response<()> {
    /// An answer with no data, such as an error.
    pub fn failure(status: ResponseStatus, message: impl Into<String>) -> Self {
        Self::new(status, message, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn statuses_serialize_in_camel_case_and_map_to_their_codes() {
        assert_eq!(serde_json::to_value(ResponseStatus::BadRequest).unwrap(), "badRequest");
        assert_eq!(serde_json::to_value(ResponseStatus::NotImplemented).unwrap(), "notImplemented");
        // Every error has a code of its own; only the two kinds of 200 share one.
        let codes: HashSet<u16> = ResponseStatus::ALL.iter().map(|s| s.http_status()).collect();
        assert_eq!(codes.len(), ResponseStatus::ALL.len() - 1);
        assert_eq!(ResponseStatus::Skipped.http_status(), 200);
        assert_eq!(ResponseStatus::Accepted.http_status(), 202);
        assert_eq!(ResponseStatus::NotAuthenticated.http_status(), 401);
    }

    #[test]
    fn envelope_has_exactly_three_fields() {
        let json =
            serde_json::to_value(Response::failure(ResponseStatus::NotFound, "no such conversion")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "notFound", "message": "no such conversion", "data": null})
        );
    }
}

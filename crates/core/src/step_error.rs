//! Step errors with stable names. The workflow's `Retry` and `Catch` match on these names, in
//! `statemachines/conversion.asl.json` and in the local engine alike, so they never change.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::conversion::DomainError;
use crate::ports::{ObjectError, VoiceError};
use crate::service::ExecuteError;
use crate::store::StoreError;

/// The kind of a step failure. Only [`ErrorKind::Transient`] is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Throttling, timeouts, 5xx, a store that could not be reached: retry with backoff.
    Transient,
    /// The input cannot be used as it is (bad URL, not a feed, malformed page).
    InvalidInput,
    /// The post or an object it needs does not exist (HTTP 404/410).
    NotFound,
    /// The address is not allowed (private, loopback, link-local, metadata, not http(s)).
    NotAllowed,
    /// A body or text over the limits.
    TooLarge,
    /// Not something Lector can narrate (content type, language, voice).
    Unsupported,
    /// The page has no readable article.
    NoArticle,
    /// The conversion moved on without this step (completed, restarted, taken by another
    /// execution): the step stops and changes nothing.
    Superseded,
    /// A bug or damaged data.
    Internal,
    /// The failure of a step was recorded and the execution ends failed: raised by the
    /// workflow's `RecordFailure` state, so the execution's own error names the outcome.
    ConversionFailed,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Transient,
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::NotAllowed,
        ErrorKind::TooLarge,
        ErrorKind::Unsupported,
        ErrorKind::NoArticle,
        ErrorKind::Superseded,
        ErrorKind::Internal,
        ErrorKind::ConversionFailed,
    ];

    /// The stable error name the workflow matches on.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Transient => "Lector.Transient",
            ErrorKind::InvalidInput => "Lector.InvalidInput",
            ErrorKind::NotFound => "Lector.NotFound",
            ErrorKind::NotAllowed => "Lector.NotAllowed",
            ErrorKind::TooLarge => "Lector.TooLarge",
            ErrorKind::Unsupported => "Lector.Unsupported",
            ErrorKind::NoArticle => "Lector.NoArticle",
            ErrorKind::Superseded => "Lector.Superseded",
            ErrorKind::Internal => "Lector.Internal",
            ErrorKind::ConversionFailed => "Lector.ConversionFailed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn is_transient(self) -> bool {
        self == ErrorKind::Transient
    }
}

/// A step's failure: a stable name and a cause in words, as a Lambda function error carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StepError {
    pub kind: ErrorKind,
    pub cause: String,
}

impl StepError {
    pub fn new(kind: ErrorKind, cause: impl Into<String>) -> Self {
        Self { kind, cause: cause.into() }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.cause)
    }
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> Self {
        let kind = match &e {
            DomainError::AlreadyCompleted
            | DomainError::AlreadyStarted { .. }
            | DomainError::WrongAttempt { .. } => ErrorKind::Superseded,
            DomainError::NotRequested => ErrorKind::NotFound,
            DomainError::Invalid(_) => ErrorKind::InvalidInput,
            DomainError::EmptyAudio => ErrorKind::InvalidInput,
            DomainError::OutOfOrder { .. }
            | DomainError::ChunkOutOfRange { .. }
            | DomainError::MissingChunks { .. }
            | DomainError::NotFailed { .. }
            | DomainError::NotRunning => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        let kind = if e.is_transient() || matches!(e, StoreError::Conflict { .. }) {
            ErrorKind::Transient
        } else {
            ErrorKind::Internal
        };
        Self::new(kind, e.to_string())
    }
}

impl From<ExecuteError> for StepError {
    fn from(e: ExecuteError) -> Self {
        match e {
            ExecuteError::Domain(d) => d.into(),
            ExecuteError::Store(s) => s.into(),
            other if other.is_transient() => Self::new(ErrorKind::Transient, other.to_string()),
            other => Self::new(ErrorKind::Internal, other.to_string()),
        }
    }
}

impl From<crate::feed::service::FeedExecuteError> for StepError {
    fn from(e: crate::feed::service::FeedExecuteError) -> Self {
        match e {
            crate::feed::service::FeedExecuteError::Rejected(e) => {
                Self::new(ErrorKind::InvalidInput, e.to_string())
            }
            crate::feed::service::FeedExecuteError::Log(e) => e.into(),
        }
    }
}

impl From<ObjectError> for StepError {
    fn from(e: ObjectError) -> Self {
        let kind = match &e {
            ObjectError::NotFound(_) => ErrorKind::NotFound,
            ObjectError::Unavailable(_) => ErrorKind::Transient,
            ObjectError::Failed(_) => ErrorKind::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<VoiceError> for StepError {
    fn from(e: VoiceError) -> Self {
        let kind = match &e {
            VoiceError::Unavailable(_) => ErrorKind::Transient,
            VoiceError::UnsupportedVoice(_) | VoiceError::UnsupportedLanguage(_) => ErrorKind::Unsupported,
            VoiceError::Refused(_) => ErrorKind::InvalidInput,
        };
        Self::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_round_trip() {
        for kind in ErrorKind::ALL {
            assert!(kind.name().starts_with("Lector."));
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ErrorKind::Transient.name(), "Lector.Transient");
        assert_eq!(ErrorKind::ALL.iter().filter(|k| k.is_transient()).count(), 1);
    }

    #[test]
    fn only_transient_failures_are_transient() {
        assert!(StepError::from(VoiceError::Unavailable("throttled".into())).kind.is_transient());
        assert!(!StepError::from(VoiceError::UnsupportedVoice("x".into())).kind.is_transient());
        assert_eq!(StepError::from(DomainError::AlreadyCompleted).kind, ErrorKind::Superseded);
    }
}

//! A step's error as Lambda reports it: `errorType` is the stable error name
//! (`Lector.Transient`, `Lector.NotFound`, ...), which Step Functions' `Retry` and `Catch`
//! match on; `errorMessage` is the cause in words. The runtime's own default would put a Rust
//! type name there, which no state machine can match reliably.

use lambda_runtime::Diagnostic;
use lector_core::{ErrorKind, StepError};

/// The Lambda error of a step error.
pub fn diagnostic(error: &StepError) -> Diagnostic {
    Diagnostic { error_type: error.name().to_owned(), error_message: error.cause.clone() }
}

/// A step error on its way out of a handler (`Into<Diagnostic>`, as `lambda_runtime::run`
/// asks of a handler's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure(pub StepError);

impl From<StepError> for StepFailure {
    fn from(e: StepError) -> Self {
        Self(e)
    }
}

impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Self {
        diagnostic(&failure.0)
    }
}

/// A failure of the function's own wiring (an adapter it could not build, settings it could
/// not read), in the step error vocabulary: transient ones are retried by the workflow.
pub fn wiring(kind: ErrorKind, what: impl std::fmt::Display) -> StepFailure {
    StepFailure(StepError::new(kind, what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_is_the_stable_name() {
        for kind in ErrorKind::ALL {
            let d: Diagnostic = StepFailure(StepError::new(kind, "why")).into();
            assert_eq!(d.error_type, kind.name());
            assert_eq!(d.error_message, "why");
        }
        let wire =
            serde_json::to_value(diagnostic(&StepError::new(ErrorKind::NotFound, "HTTP 404"))).unwrap();
        assert_eq!(wire, serde_json::json!({"errorType": "Lector.NotFound", "errorMessage": "HTTP 404"}));
    }
}

//! The steps of a Lector function's init, in the order a function takes them, for the
//! `init-ladder` bench function (`crates/lambda/init-ladder`): told to stop after one of them, it
//! shows what the steps up to it cost over the hello-world function.

use std::fmt;

/// The variable naming the last step the `init-ladder` function takes before serving.
pub const STEP_VAR: &str = "LECTOR_INIT_LADDER_STEP";

/// One step of init; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `lambda_runtime` alone, in a Lector-sized binary.
    Runtime,
    /// JSON logs ([`crate::telemetry::init`]).
    Telemetry,
    /// The SDK config ([`lector_aws::sdk::load_in_lambda`]).
    SdkConfig,
    /// A DynamoDB client: the first SDK client.
    DynamoDb,
    /// And an S3 client.
    S3,
    /// And an SSM client.
    Ssm,
    /// And a Polly client: the `api` function's four.
    Polly,
}

/// Every step, in order.
pub const STEPS: [Step; 7] =
    [Step::Runtime, Step::Telemetry, Step::SdkConfig, Step::DynamoDb, Step::S3, Step::Ssm, Step::Polly];

impl Step {
    /// The step's name in [`STEP_VAR`] and in the benchmark's table.
    pub fn name(self) -> &'static str {
        match self {
            Step::Runtime => "runtime",
            Step::Telemetry => "telemetry",
            Step::SdkConfig => "sdk-config",
            Step::DynamoDb => "dynamodb",
            Step::S3 => "s3",
            Step::Ssm => "ssm",
            Step::Polly => "polly",
        }
    }

    /// The step [`STEP_VAR`] names; every step when it is unset.
    pub fn from_env(value: Option<&str>) -> Result<Step, UnknownStep> {
        match value {
            None => Ok(Step::Polly),
            Some(name) => {
                STEPS.into_iter().find(|s| s.name() == name).ok_or_else(|| UnknownStep(name.to_owned()))
            }
        }
    }
}

/// A [`STEP_VAR`] value that names no step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStep(pub String);

impl fmt::Display for UnknownStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name()).collect();
        write!(f, "{STEP_VAR}={} names no init step; the steps are {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownStep {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_found_by_its_name_and_steps_are_in_init_order() {
        for step in STEPS {
            assert_eq!(Step::from_env(Some(step.name())), Ok(step));
        }
        assert!(STEPS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Step::from_env(None), Ok(Step::Polly));
    }

    #[test]
    fn steps_lists_every_step_in_its_place() {
        // Exhaustive: a new step does not compile until it has its place here and in STEPS.
        let place = |step: Step| match step {
            Step::Runtime => 0,
            Step::Telemetry => 1,
            Step::SdkConfig => 2,
            Step::DynamoDb => 3,
            Step::S3 => 4,
            Step::Ssm => 5,
            Step::Polly => 6,
        };
        for (i, step) in STEPS.into_iter().enumerate() {
            assert_eq!(place(step), i, "{step:?}");
        }
    }

    #[test]
    fn an_unknown_step_is_refused_naming_the_known_ones() {
        let err = Step::from_env(Some("s4")).unwrap_err();
        assert_eq!(err, UnknownStep("s4".into()));
        assert!(
            err.to_string().contains("runtime, telemetry, sdk-config, dynamodb, s3, ssm, polly"),
            "{err}"
        );
    }
}

//! The steps of a Lector function's init, in the order a function takes them, for the
//! `init-ladder` bench function (`crates/lambda/init-ladder`): told to stop after one of them, it
//! shows what the steps up to it cost over the hello-world function. Told instead which SDK
//! clients to build ([`CLIENTS_VAR`]), it is the hello-world function that builds the same
//! clients with the same configuration as a Lector function: the baseline that leaves a
//! function's init only Lector's own share.

use std::fmt;

/// The variable naming the last step the `init-ladder` function takes before serving.
pub const STEP_VAR: &str = "LECTOR_INIT_LADDER_STEP";

/// The variable listing the SDK clients (comma-separated [`Client::name`]s) the `init-ladder`
/// function builds as a hello-world function with clients: no logs, no settings, no handler
/// state, only the SDK config of the functions and those clients.
pub const CLIENTS_VAR: &str = "LECTOR_INIT_CLIENTS";

/// An AWS SDK client a function builds at init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Client {
    DynamoDb,
    S3,
    Ssm,
    Polly,
    EventBridge,
    StepFunctions,
}

/// Every client, in the order the bench function builds them.
pub const CLIENTS: [Client; 6] =
    [Client::DynamoDb, Client::S3, Client::Ssm, Client::Polly, Client::EventBridge, Client::StepFunctions];

impl Client {
    /// The client's name in [`CLIENTS_VAR`].
    pub fn name(self) -> &'static str {
        match self {
            Client::DynamoDb => "dynamodb",
            Client::S3 => "s3",
            Client::Ssm => "ssm",
            Client::Polly => "polly",
            Client::EventBridge => "eventbridge",
            Client::StepFunctions => "sfn",
        }
    }

    /// The clients a [`CLIENTS_VAR`] value lists.
    pub fn parse_list(value: &str) -> Result<Vec<Client>, UnknownClient> {
        value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| CLIENTS.into_iter().find(|c| c.name() == n).ok_or_else(|| UnknownClient(n.to_owned())))
            .collect()
    }
}

/// The SDK clients each Lector function builds at init (`crate::step::run_step`,
/// `crate::api`, `crate::project`, `crate::start` and the publisher), by function name.
pub fn clients_of(function: &str) -> Option<&'static [Client]> {
    use Client::*;
    Some(match function {
        // Every step: the event log and the objects; fetching adds the settings, speaking Polly.
        "fetch-article" => &[DynamoDb, S3, Ssm],
        "record-failure" | "list-due-feeds" | "request-conversions" => &[DynamoDb, S3],
        "poll-feed" => &[DynamoDb, S3, Ssm],
        // Choosing the voice (DescribeVoices) and re-making a missing unit speak too.
        "prepare-speech" | "synthesize-chunk" | "stitch-audio" => &[DynamoDb, S3, Polly],
        "api" => &[DynamoDb, S3, Ssm, Polly],
        "api-preview" => &[DynamoDb, Ssm, Polly],
        "project-conversions" => &[DynamoDb],
        "publish-events" => &[EventBridge],
        "start-conversion" => &[StepFunctions],
        _ => return None,
    })
}

/// A [`CLIENTS_VAR`] value that names no client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClient(pub String);

impl fmt::Display for UnknownClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = CLIENTS.iter().map(|c| c.name()).collect();
        write!(f, "{CLIENTS_VAR} names '{}', not a client; the clients are {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownClient {}

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
    fn client_lists_read_back_and_unknown_clients_are_named() {
        assert_eq!(
            Client::parse_list("dynamodb, s3,sfn"),
            Ok(vec![Client::DynamoDb, Client::S3, Client::StepFunctions])
        );
        assert_eq!(Client::parse_list(""), Ok(vec![]));
        let err = Client::parse_list("dynamodb,sqs").unwrap_err();
        assert!(
            err.to_string()
                .contains("'sqs', not a client; the clients are dynamodb, s3, ssm, polly, eventbridge, sfn")
        );
    }

    #[test]
    fn the_step_functions_clients_follow_their_wiring() {
        use crate::step::StepWiring;
        use lector_pipeline::poll::{ListDueFeeds, PollFeed};
        use lector_pipeline::steps::{
            FetchArticle, PrepareSpeech, RecordFailure, StitchAudio, SynthesizeChunk,
        };
        fn expected<S: StepWiring>() -> Vec<Client> {
            let mut clients = vec![Client::DynamoDb, Client::S3];
            if S::FETCHES {
                clients.push(Client::Ssm);
            }
            if S::SPEAKS {
                clients.push(Client::Polly);
            }
            clients
        }
        for (function, clients) in [
            ("fetch-article", expected::<FetchArticle>()),
            ("prepare-speech", expected::<PrepareSpeech>()),
            ("synthesize-chunk", expected::<SynthesizeChunk>()),
            ("stitch-audio", expected::<StitchAudio>()),
            ("record-failure", expected::<RecordFailure>()),
            ("list-due-feeds", expected::<ListDueFeeds>()),
            ("poll-feed", expected::<PollFeed>()),
        ] {
            assert_eq!(clients_of(function), Some(clients.as_slice()), "{function}");
        }
        // Not a step: crate::request::run builds the log's and the bucket's clients.
        assert_eq!(clients_of("request-conversions"), Some([Client::DynamoDb, Client::S3].as_slice()));
        assert_eq!(clients_of("hello-lambda"), None);
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

//! The wiring every Lector Lambda function shares, so that each `functions/<name>/src/main.rs`
//! is a few lines that name its handler.
//!
//! - [`config`]: what the deployment names (tables, bucket, state machine, settings path,
//!   metrics namespace) from the environment; a missing variable stops the function at init,
//!   named;
//! - [`telemetry`]: JSON logs at the level Lambda's `LoggingConfig` asks for;
//! - [`metrics`]: CloudWatch Embedded Metric Format lines on stdout (conversions started,
//!   completed and failed by error name, characters synthesized by engine, chunk synthesis
//!   latency, cold starts);
//! - [`settings`]: the runtime settings from SSM Parameter Store, cached five minutes, and the
//!   guarded fetcher that follows their allowed hosts;
//! - [`diagnostic`]: a [`lector_core::StepError`] as a Lambda error whose type is the stable
//!   error name Step Functions' `Retry` and `Catch` match on;
//! - [`step`]: [`run_step`], one workflow step as a Lambda function (the conversion workflow's
//!   and the polling workflow's: `list-due-feeds`, `poll-feed`);
//! - [`start`], [`request`], [`project`], [`api`]: the `start-conversion`,
//!   `request-conversions`, `project-conversions` and `api` functions' handlers;
//! - [`voice`]: the Polly voice, measured;
//! - [`runtime_api`]: a stub of Lambda's Runtime API, to drive a built function in tests and
//!   to time its init;
//! - [`init_ladder`]: the steps of a function's init, for the bench function that prices each.
//!
//! Handlers are plain async functions over ports, tested here with doubles and real local
//! parts; the binaries add only the AWS adapters and `lambda_runtime::run`.

pub mod api;
pub mod config;
pub mod diagnostic;
pub mod init_ladder;
pub mod metrics;
pub mod project;
pub mod request;
pub mod runtime_api;
pub mod settings;
pub mod start;
pub mod step;
pub mod telemetry;
pub mod voice;

pub use config::{ConfigError, Env};
pub use diagnostic::diagnostic;
pub use metrics::Metrics;
pub use step::{StepWiring, run_step};

/// The error a function's `main` ends with: init failures and runtime failures, in words.
pub type Error = lambda_runtime::Error;

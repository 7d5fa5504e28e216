//! Lector's adapters on the AWS SDKs. Each module implements one port of `lector-core` (or
//! wraps one AWS service the operators' tools need) and maps the service's errors onto the
//! port's named errors, transient or permanent:
//!
//! - [`event_store`] is the event log on DynamoDB ([`event_store::DynamoEventStore`]), with the
//!   conversion of a DynamoDB Stream image back into a [`lector_core::RecordedEvent`];
//! - [`index`] and [`feed_index`] are the read models on DynamoDB: the list of conversions and
//!   the list of subscriptions (with the feeds due for a poll);
//! - [`eventbridge`] holds [`eventbridge::EventBridgePublisher`], the bus other teams read;
//! - [`publish`] is the `publish-events` Lambda's handler, from the table's stream to the bus;
//! - [`objects`] holds [`objects::S3ObjectStore`];
//! - [`polly`] holds [`polly::PollyVoice`];
//! - [`workflow`] holds [`workflow::StepFunctions`]: starting, finding and redriving executions;
//!   [`polls`] holds [`polls::StepFunctionsPolls`], polls on demand on the polling workflow;
//! - [`settings`] reads configuration from the environment and settings from SSM Parameter Store;
//! - [`sdk`] builds SDK configs with a lean HTTPS client and tells transient SDK errors apart.
//!
//! Nothing here decides anything: the rules live in `lector-core`, the work in the pipeline.

pub mod archive;
pub mod event_store;
pub mod eventbridge;
pub mod feed_index;
pub mod index;
pub mod objects;
pub mod polls;
pub mod polly;
pub mod publish;
pub mod sdk;
pub mod settings;
pub mod workflow;
pub mod workflows;

mod backoff;
mod table;

pub use event_store::DynamoEventStore;
pub use eventbridge::EventBridgePublisher;
pub use objects::S3ObjectStore;
pub use polly::PollyVoice;
pub use settings::Config;
pub use workflow::StepFunctions;

//! The adapters against moto server: EventBridge (with an SQS target to see what was
//! published), S3, Polly, Step Functions and SSM. Each test makes its own resources.

mod archive;
mod capture;
mod machines;
mod polls;
mod polly;
mod publish;
mod s3;
mod settings;
mod workflow;

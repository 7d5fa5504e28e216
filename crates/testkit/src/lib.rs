//! Test support shared by the crates' test suites: the port contract suites that every adapter
//! must pass, and the real services (DynamoDB Local, moto) the AWS adapters are tested against.

pub mod audio;
pub mod contract;
pub mod http;
pub mod memory;
pub mod podcast_rules;
pub mod schema;
pub mod services;

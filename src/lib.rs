//! Lector's command line and local server: the embedded default wired from the adapters of
//! `lector-local`, the steps of `lector-pipeline` and the engine of `lector-states`.
//!
//! `main.rs` only calls [`cli::main`]; the end-to-end tests in `tests/` use the same modules.

pub mod aws_ops;
pub mod cli;
pub mod cmd;
pub mod data;
pub mod local;
pub mod serve;
pub mod voices;

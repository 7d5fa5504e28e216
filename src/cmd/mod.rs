//! One module per subcommand.

pub mod article;
pub mod asl;
pub mod convert;
pub mod events;
pub mod feed;
pub mod feeds;
pub mod projections;
pub mod pronunciations;
pub mod replay;
pub mod schemas;
pub mod serve;
pub mod status;

//! One module per subcommand.

pub mod article;
pub mod asl;
pub mod feed;

//! The command line: parse the arguments and run the subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Turn written posts into narrated audio.
#[derive(Debug, Parser)]
#[command(name = "lector", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a feed and its posts.
    Feed(cmd::feed::Args),
    /// Print the readable text of a post.
    Article(cmd::article::Args),
    /// Amazon States Language tools: validate, run and test state machines.
    #[command(subcommand)]
    Asl(cmd::asl::Command),
    /// Print a conversion's events.
    Events(cmd::events::Args),
    /// Print a conversion's status.
    Status(cmd::status::Args),
    /// Write the JSON Schemas of the events to schemas/, or check them.
    Schemas(cmd::schemas::Args),
}

/// Run the command line and return the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Feed(args) => cmd::feed::run(args),
        Command::Article(args) => cmd::article::run(args),
        Command::Asl(command) => cmd::asl::run(command),
        Command::Events(args) => cmd::events::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Schemas(args) => cmd::schemas::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

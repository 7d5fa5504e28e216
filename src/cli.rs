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
    /// Run the API, the web page, the workflow and the event log on this machine.
    Serve(cmd::serve::Args),
    /// Convert a feed's posts (or one post) to MP3 on this machine.
    Convert(cmd::convert::Args),
    /// Print a conversion's events.
    Events(cmd::events::Args),
    /// Print a conversion's status.
    Status(cmd::status::Args),
    /// Subscribe to feeds, list, show, poll, pause, resume and end subscriptions.
    Feeds(cmd::feeds::Args),
    /// Find failed conversions and redrive or restart them.
    Replay(cmd::replay::Args),
    /// Rebuild or check the read models folded from the event log.
    #[command(subcommand)]
    Projections(cmd::projections::Command),
    /// Write the JSON Schemas of the events to schemas/, or check them.
    Schemas(cmd::schemas::Args),
    /// Show or set the pronunciation rules of a subscription or the global default.
    #[command(subcommand)]
    Pronunciations(cmd::pronunciations::Command),
}

/// Run the command line and return the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Feed(args) => cmd::feed::run(args),
        Command::Article(args) => cmd::article::run(args),
        Command::Asl(command) => cmd::asl::run(command),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Feeds(args) => cmd::feeds::run(args),
        Command::Schemas(args) => cmd::schemas::run(args),
        Command::Projections(command) => cmd::projections::run(command),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Pronunciations(command) => cmd::pronunciations::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, warnings and errors unless `RUST_LOG` says otherwise.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

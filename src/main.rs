//! `lector`: the command line and the local server of Lector.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Feed(args) => cmd::feed::run(args),
        Command::Article(args) => cmd::article::run(args),
        Command::Asl(command) => cmd::asl::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

//! `lector pronunciations show|set [--feed ID]`: the pronunciation rules of a subscription or
//! the global default, on the local data folder, as the JSON `{"rules": [...]}` the API takes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lector_core::feed::service::{execute_feed, load_feed};
use lector_core::feed::subscription::FeedCommand;
use lector_core::pronunciation::{Pronunciations, load_global, set_global};
use lector_core::{EventMeta, FeedId};

use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the rules as JSON.
    Show(ShowArgs),
    /// Replace the rules with those of a JSON file (`{"rules": [...]}`; `-` reads stdin).
    Set(SetArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The subscription's rules (its feed id), rather than the global default.
    #[arg(long)]
    feed: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The subscription's rules (its feed id), rather than the global default.
    #[arg(long)]
    feed: Option<String>,
    /// The rules: a JSON file, or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    data: DataArgs,
}

fn feed_id(raw: &str) -> anyhow::Result<FeedId> {
    raw.parse::<FeedId>().map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Show(args) => show(args),
        Command::Set(args) => set(args),
    }
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let data = DataDir::open(&args.data.dir)?;
    let rules = runtime()?.block_on(async {
        match &args.feed {
            None => Ok::<_, anyhow::Error>(load_global(&data.events).await?.0),
            Some(raw) => {
                let id = feed_id(raw)?;
                let (events, state) = load_feed(&data.events, &id).await?;
                anyhow::ensure!(!events.is_empty(), "no subscription {id} in {}", args.data.dir.display());
                Ok(state.pronunciations)
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&rules)?);
    Ok(ExitCode::SUCCESS)
}

fn set(args: SetArgs) -> anyhow::Result<ExitCode> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the rules from stdin")?
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?
    };
    let request: lector_api::pronunciations::RulesRequest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not {{\"rules\": [...]}}", args.file.display()))?;
    let rules = request.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = DataDir::open(&args.data.dir)?;
    let now = chrono::Utc::now();
    let stored: Pronunciations = runtime()?.block_on(async {
        match &args.feed {
            None => Ok::<_, anyhow::Error>(set_global(&data.events, rules, "cli", now).await?),
            Some(raw) => {
                let id = feed_id(raw)?;
                let meta = EventMeta { occurred_at: now, correlation_id: id.to_string(), causation_id: None };
                let command = FeedCommand::SetPronunciations { rules, by: "cli".into() };
                Ok(execute_feed(&data.events, &id, command, &meta).await?.state.pronunciations)
            }
        }
    })?;
    let n = stored.rules.len();
    eprintln!("{n} pronunciation rule{} stored", if n == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

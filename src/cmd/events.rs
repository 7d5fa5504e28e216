//! `lector events`: print a conversion's stream.

use std::process::ExitCode;

use anyhow::Context;
use lector_core::{ConversionId, EventEnvelope, EventStore};

use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    /// The conversion id.
    #[arg(required = true)]
    conversion_id: Option<String>,
    /// Print JSON lines of envelopes.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish stored events to the bus again, for subscribers that missed them.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Events that occurred at or after: an RFC 3339 time, or an age such as 6h.
    #[arg(long, value_name = "TIME")]
    since: String,
    /// Only events of this type (repeat for several).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    types: Vec<String>,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Command::Replay(replay)) = args.command {
        return run_replay(replay);
    }
    let id: ConversionId = args.conversion_id.unwrap_or_default().parse()?;
    let data = DataDir::open_existing(&args.data.dir)?;
    let events =
        runtime()?.block_on(data.events.read_stream(&id.stream(), 0)).context("reading the stream")?;
    if events.is_empty() {
        eprintln!("no conversion {id} in {}", args.data.dir.display());
        return Ok(ExitCode::FAILURE);
    }
    for recorded in &events {
        if args.json {
            let envelope = EventEnvelope::try_from(recorded)
                .with_context(|| format!("event {} of {}", recorded.version, recorded.stream_id))?;
            println!("{}", serde_json::to_string(&envelope)?);
        } else {
            println!(
                "{:>4}  {}  {:<20}  {}",
                recorded.version,
                recorded.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                recorded.event_type,
                summarize(&recorded.data)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The data's fields on one line, long values cut.
fn summarize(data: &serde_json::Value) -> String {
    let Some(map) = data.as_object() else { return data.to_string() };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let v = if v.chars().count() > 60 {
                format!("{}…", v.chars().take(59).collect::<String>())
            } else {
                v
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let since = crate::cmd::replay::parse_time(&args.since, chrono::Utc::now())?;
    for t in &args.types {
        anyhow::ensure!(
            lector_core::event::schema_version_of(t).is_some(),
            "unknown event type '{t}'; the types are {}",
            lector_core::ConversionEvent::TYPES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        );
    }
    DataDir::open_existing(&args.data.dir)?;
    runtime()?.block_on(async {
        let options = crate::local::LocalOptions {
            resume: false,
            ..crate::local::LocalOptions::new(lector_pipeline::fetch::AllowList::default())
        };
        let system = crate::local::LocalSystem::start(&args.data.dir, options).await?;
        let (delivered, started) = system.replay_events(since, &args.types).await?;
        system.shutdown().await;
        println!("delivered {delivered} events again since {}", since.to_rfc3339());
        for execution in started {
            println!("started and finished {execution}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

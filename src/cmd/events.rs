//! `lector events`: print a conversion's stream.

use std::process::ExitCode;

use anyhow::Context;
use lector_core::{ConversionId, EventEnvelope, EventStore};

use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The conversion id.
    conversion_id: String,
    /// Print JSON lines of envelopes.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let id: ConversionId = args.conversion_id.parse()?;
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

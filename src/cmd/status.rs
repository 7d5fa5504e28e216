//! `lector status`: print a conversion's status, folded from its stream.

use std::process::ExitCode;

use anyhow::Context;
use lector_core::{ConversionId, ConversionStatus, EventStore};

use crate::data::{DataArgs, DataDir, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The conversion id.
    conversion_id: String,
    /// Print the status as JSON.
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
    let Some(status) = ConversionStatus::fold(&events).context("folding the stream")? else {
        eprintln!("no conversion {id} in {}", args.data.dir.display());
        return Ok(ExitCode::FAILURE);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The status as aligned lines for a terminal.
pub fn render(s: &ConversionStatus) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    line("conversion", s.conversion_id.to_string());
    line("state", format!("{} ({:?})", s.state.as_str(), s.stage).to_lowercase());
    line("post", s.post_url.to_string());
    if let Some(title) = &s.title {
        line("title", title.clone());
    }
    line("voice", format!("{} ({})", s.voice, s.engine));
    if let Some(used) = &s.voice_used {
        let language = s.language.as_deref().map(|l| format!(", language {l}")).unwrap_or_default();
        line("spoken by", format!("{used}{language}"));
    }
    if let Some(note) = &s.language_note {
        line("note", note.clone());
    }
    if s.revision > 1 {
        let served = s.audio_revision.map(|r| format!(" (revision {r} is served)")).unwrap_or_default();
        line("revision", format!("{}{served}", s.revision));
    }
    if s.progress.chunks_total > 0 {
        line("progress", format!("{}/{} chunks", s.progress.chunks_done, s.progress.chunks_total));
    }
    if let (Some(audio), Some(duration)) = (&s.audio_ref, s.duration_seconds) {
        line("audio", format!("{audio} ({duration:.1} s)"));
    }
    if let Some(synthesis) = &s.synthesis {
        line("cost", synthesis.describe());
    }
    if let Some(e) = &s.error {
        line("error", format!("{} in {}: {}", e.error, e.state, e.cause));
    }
    line("attempt", format!("{} (redriven {} times)", s.attempt, s.redrives));
    line("created", s.created_at.to_rfc3339());
    line("updated", s.updated_at.to_rfc3339());
    line("version", s.version.to_string());
    out
}

//! `lector events`: print a conversion's stream; `events replay` delivers stored events to the
//! bus again, locally through the outbox or, with `--aws`, as an EventBridge archive replay.

use std::process::ExitCode;

#[cfg(feature = "aws")]
use std::time::Duration;

use anyhow::Context;
#[cfg(feature = "aws")]
use chrono::{DateTime, DurationRound, Utc};
#[cfg(feature = "aws")]
use lector_aws::archive::{Archive, Replay, ReplayState, Started, Window};
use lector_core::{ConversionId, EventEnvelope, EventStore};

use crate::aws_ops::{ARCHIVE_VAR, BUS_VAR};

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
    /// Only events of this type (repeat for several). Local only: an archive replay cannot be
    /// narrowed by type (see --rule).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    types: Vec<String>,
    /// Start an EventBridge archive replay on the deployed stack: the archived events of the
    /// window go back to the bus they came from.
    #[arg(long)]
    aws: bool,
    /// With --aws: the bus's archive (the stack's EventArchiveName output).
    #[arg(long, env = ARCHIVE_VAR, value_name = "NAME", hide_env_values = true)]
    archive: Option<String>,
    /// With --aws: the bus the archive must be of (the stack's EventBusName output); replays go
    /// back to the archive's own bus, so this only guards against the wrong archive.
    #[arg(long, env = BUS_VAR, value_name = "NAME", hide_env_values = true)]
    bus: Option<String>,
    /// With --aws: events that occurred before this (default: now). Ages and the default are cut
    /// to the whole minute, so the same command run again names the same replay.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// With --aws: deliver to this rule of the bus only (repeat for several; default: every
    /// rule). The way to reach only the subscribers of some event types.
    #[arg(long = "rule", value_name = "NAME")]
    rules: Vec<String>,
    /// With --aws: wait until the replay has ended, describing it every few seconds.
    #[arg(long)]
    wait: bool,
    /// With --aws: the replay as JSON lines instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

/// How often `--wait` describes a replay.
#[cfg(feature = "aws")]
const REPLAY_POLL: Duration = Duration::from_secs(5);

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
    if args.aws {
        #[cfg(feature = "aws")]
        return runtime()?.block_on(run_archive_replay(&args));
        #[cfg(not(feature = "aws"))]
        return Err(crate::aws_ops::without_aws());
    }
    let aws_only: Vec<&str> = [
        (args.until.is_some(), "--until"),
        (!args.rules.is_empty(), "--rule"),
        (args.wait, "--wait"),
        (args.json, "--json"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    anyhow::ensure!(
        aws_only.is_empty(),
        "{} only apply to an archive replay (--aws); locally every stored event since --since is \
         delivered again through the outbox",
        aws_only.join(", ")
    );
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

#[cfg(feature = "aws")]
/// One end of the replayed window: an RFC 3339 time as given, or an age (or now) cut down to
/// the whole minute, so that running the same command again names the same replay.
fn window_edge(text: Option<&str>, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    match text {
        Some(t) if DateTime::parse_from_rfc3339(t).is_ok() => crate::cmd::replay::parse_time(t, now),
        Some(t) => Ok(floor_minute(crate::cmd::replay::parse_time(t, now)?)),
        None => Ok(floor_minute(now)),
    }
}

#[cfg(feature = "aws")]
fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(t)
}

#[cfg(feature = "aws")]
/// `lector events replay --aws`: start (or find) the archive replay of the window and report it.
async fn run_archive_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.types.is_empty(),
        "--type cannot narrow an archive replay: EventBridge replays an archive by time and by rule, \
         never by event type. Name the rules whose subscribers should get the events again with \
         --rule NAME (repeat it); each rule receives only the events its pattern matches, so a rule \
         on detail-type {} receives only those",
        args.types.join(", ")
    );
    let now = Utc::now();
    let since = window_edge(Some(&args.since), now)?;
    let until = window_edge(args.until.as_deref(), now)?;
    let window = Window::new(since, until)?;
    let replays = crate::aws_ops::archive_replays(args.archive.as_deref()).await?;
    let archive = replays.describe_archive().await?;
    if let Some(bus) = args.bus.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        anyhow::ensure!(
            bus == archive.bus_name() || bus == archive.source_arn,
            "archive {} is of bus {}, not {bus} ({BUS_VAR} or --bus): an archive replays only to its \
             own bus; check {} (the stack's EventArchiveName output)",
            archive.name,
            archive.bus_name(),
            ARCHIVE_VAR
        );
    }
    if !args.json {
        print_archive_plan(&archive, &window, &args.rules, now);
    }
    let started = replays.start(&archive, &window, &args.rules).await?;
    let new = matches!(started, Started::New(_));
    let mut replay = started.replay().clone();
    report_replay(&replay, new, args.json, true)?;
    if args.wait && !replay.state.is_final() {
        let mut first = true;
        let mut failed = None;
        replay = replays
            .wait(&replay.name, REPLAY_POLL, |r| {
                // The state just printed is seen again first.
                if !std::mem::take(&mut first)
                    && let Err(e) = report_replay(r, new, args.json, false)
                {
                    failed = Some(e);
                }
            })
            .await?;
        if let Some(e) = failed {
            return Err(e);
        }
    } else if !args.wait && !replay.state.is_final() && !args.json {
        println!("not waited for: run the same command with --wait to follow it (it starts nothing twice)");
    }
    Ok(match replay.state {
        ReplayState::Failed | ReplayState::Cancelled => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

#[cfg(feature = "aws")]
fn print_archive_plan(archive: &Archive, window: &Window, rules: &[String], now: DateTime<Utc>) {
    let to = if rules.is_empty() { "every rule".to_owned() } else { format!("rules {}", rules.join(", ")) };
    println!(
        "archive {} ({}): events from {} to {} back to bus {}, {to}",
        archive.name,
        archive.state,
        window.since().to_rfc3339(),
        window.until().to_rfc3339(),
        archive.bus_name(),
    );
    if archive.retention_days > 0
        && window.since() < now - chrono::Duration::days(archive.retention_days.into())
    {
        println!(
            "note: the archive keeps events {} days; older ones are gone and are not replayed",
            archive.retention_days
        );
    }
}

#[cfg(feature = "aws")]
/// One line about the replay: its name and state, whether this command started it.
fn report_replay(replay: &Replay, new: bool, json: bool, first: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(replay)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("started_now".into(), serde_json::Value::Bool(new));
        }
        println!("{value}");
        return Ok(());
    }
    let reason = replay.state_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    let head = match (first, new) {
        (true, true) => "started replay".to_owned(),
        (true, false) => format!(
            "replay already started{}; not started again:",
            replay.replay_start_time.map(|t| format!(" at {}", t.to_rfc3339())).unwrap_or_default()
        ),
        (false, _) => "replay".to_owned(),
    };
    println!("{head} {} {}{reason}", replay.name, replay.state.as_str());
    Ok(())
}

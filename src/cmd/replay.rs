//! `lector replay`: find failed conversions, see why, and redrive or restart them — a dry run
//! unless `--yes`, bounded by `--max` and `--rate`, each replay recorded in the log first —
//! on the local data folder or, with `--aws`, on the deployed stack.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lector_core::event::RetryMethod;
use lector_core::index::ConversionIndex;
use lector_core::ports::{Clock, Workflows};
use lector_core::{ConversionId, ConversionState, ConversionStatus, EventStore, FeedId};
use lector_pipeline::fetch::AllowList;
use lector_pipeline::replay::{Candidate, Operator, Outcome, ReplayFilter, find_failed, replay};
use serde::Serialize;

#[cfg(feature = "aws")]
use crate::aws_ops::ReplayPorts;
use crate::aws_ops::ReplayStackArgs;
use crate::cmd::feed::FetchArgs;
use crate::data::{DataArgs, runtime};
use crate::local::{LocalOptions, LocalSystem};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List failed conversions (what is listed when no conversion is named).
    #[arg(long)]
    pub failed: bool,
    /// Only this conversion (repeat for several).
    #[arg(long = "id", value_name = "CONVERSION_ID")]
    pub ids: Vec<ConversionId>,
    /// Failed at or after: an RFC 3339 time, or an age such as 30m, 6h, 2d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Failed before: an RFC 3339 time, or an age.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only failures with this error name (Lector.Transient, Lector.NotFound, ...).
    #[arg(long, value_name = "NAME")]
    pub error: Option<String>,
    /// Only conversions of this feed (its address).
    #[arg(long, value_name = "FEED_URL")]
    pub feed: Option<url::Url>,
    /// Resume each failed execution from the state that failed, keeping the work done.
    #[arg(long, conflicts_with = "restart")]
    pub redrive: bool,
    /// Start a new attempt of each conversion from the beginning.
    #[arg(long)]
    pub restart: bool,
    /// Act; without it nothing changes and the plan is printed.
    #[arg(long)]
    pub yes: bool,
    /// Replay at most this many.
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,
    /// At most this many replays per second (`10/s`, `30/m`, or a number per second), so a replay
    /// cannot throttle the voice service again.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Why, recorded in each ConversionRetried.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who, recorded in each ConversionRetried (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Do not wait for the replayed conversions to finish.
    #[arg(long, conflicts_with = "wait_for")]
    pub no_wait: bool,
    /// Wait at most this long (`90s`, `15m`, `2h`) for the replayed conversions to finish. Locally
    /// the default is to wait until they have; with --aws it is not to wait.
    #[arg(long, value_name = "DURATION")]
    pub wait_for: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Boxed: it is the largest part of the command line's arguments.
    #[command(flatten)]
    pub stack: Box<ReplayStackArgs>,
}

/// Whether, and how long, to wait for the replayed conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all; `hint` says how to wait next time, if anything.
    No { hint: Option<&'static str> },
    /// Until each is completed or failed again, or the time is up.
    Until(Option<Duration>),
}

impl Wait {
    /// From the flags: `--no-wait`, `--wait-for`, and where the replay runs.
    pub fn of(args: &Args) -> anyhow::Result<Self> {
        Ok(match (args.no_wait, args.wait_for.as_deref()) {
            (true, _) => Wait::No { hint: None },
            (false, Some(text)) => Wait::Until(Some(parse_duration(text)?)),
            // A deployed workflow may take minutes per conversion, or wait on throttling: an
            // operator's command must not hang on it unasked.
            (false, None) if args.stack.tables.aws => {
                Wait::No { hint: Some("add --wait-for 15m to wait for them") }
            }
            (false, None) => Wait::Until(None),
        })
    }
}

/// One line of output.
#[derive(Debug, Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    candidate: &'a Candidate,
    age_seconds: Option<i64>,
    action: &'static str,
    #[serde(flatten)]
    outcome: Option<&'a Outcome>,
    final_state: Option<ConversionState>,
    final_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestion: Option<String>,
}

/// An RFC 3339 time, or an age (`90s`, `30m`, `6h`, `2d`) before `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let age =
        parse_duration(text).with_context(|| format!("'{text}' is neither an RFC 3339 time nor an age"))?;
    chrono::Duration::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .with_context(|| format!("'{text}' reaches before any time Lector can tell"))
}

/// A duration such as `90s`, `30m`, `6h` or `2d`.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().with_context(|| format!("'{text}' is not a duration like 90s, 30m or 6h"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => anyhow::bail!("'{text}': a duration ends in s, m, h or d"),
    };
    seconds.map(Duration::from_secs).with_context(|| format!("'{text}' is too long"))
}

/// The pause between two replays for a rate such as `10/s`.
pub fn parse_rate(text: &str) -> anyhow::Result<Duration> {
    let (number, per) = text.split_once('/').unwrap_or((text, "s"));
    let n: f64 = number.trim().parse().with_context(|| format!("'{text}' is not a rate like 10/s"))?;
    anyhow::ensure!(n > 0.0 && n.is_finite(), "a rate must be positive");
    let window = match per.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => anyhow::bail!("'{other}': a rate is per s, m or h"),
    };
    Ok(Duration::from_secs_f64(window / n))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    if args.stack.tables.aws {
        #[cfg(feature = "aws")]
        return rt.block_on(run_aws(&args));
        #[cfg(not(feature = "aws"))]
        return Err(crate::aws_ops::without_aws());
    }
    rt.block_on(async {
        let allow = AllowList::parse(&args.fetch.allow_host.join(","))?;
        let system =
            LocalSystem::start(&args.data.dir, LocalOptions { resume: false, ..LocalOptions::new(allow) })
                .await?;
        let result =
            run_with(&args, &system.ports.events, &*system.index, &*system.workflows, &*system.ports.clock)
                .await;
        system.shutdown().await;
        result
    })
}

/// The replay on the deployed stack: the event log and the list projection on DynamoDB, the
/// executions on Step Functions (`RedriveExecution` to redrive).
#[cfg(feature = "aws")]
async fn run_aws(args: &Args) -> anyhow::Result<ExitCode> {
    let acting = args.redrive || args.restart;
    let ports = ReplayPorts::connect(&args.stack, acting).await?;
    run_with(args, &ports.events, &ports.index, &*ports.workflows, &lector_local::clock::SystemClock).await
}

/// The replay over any adapters: the local system's or AWS's.
pub async fn run_with(
    args: &Args,
    events: &std::sync::Arc<dyn EventStore>,
    index: &dyn ConversionIndex,
    workflows: &dyn Workflows,
    clock: &dyn Clock,
) -> anyhow::Result<ExitCode> {
    let now = clock.now();
    let filter = ReplayFilter {
        ids: args.ids.clone(),
        since: args.since.as_deref().map(|t| parse_time(t, now)).transpose()?,
        until: args.until.as_deref().map(|t| parse_time(t, now)).transpose()?,
        error: args.error.clone(),
        feed: args.feed.as_ref().map(FeedId::derive),
    };
    let pause = args.rate.as_deref().map(parse_rate).transpose()?;
    let wait = Wait::of(args)?;
    let how = match (args.redrive, args.restart) {
        (true, _) => Some(RetryMethod::Redrive),
        (_, true) => Some(RetryMethod::Restart),
        _ => None,
    };
    let mut candidates = find_failed(index, &**events, &filter).await?;
    candidates.truncate(args.max.unwrap_or(usize::MAX));
    let action = match (how, args.yes) {
        (None, _) => "list",
        (Some(RetryMethod::Redrive), false) => "would redrive",
        (Some(RetryMethod::Restart), false) => "would restart",
        (Some(RetryMethod::Redrive), true) => "redrive",
        (Some(RetryMethod::Restart), true) => "restart",
    };
    if !args.json {
        eprintln!(
            "{:<20}  {:<10}  {:<22}  {:<16}  {:>3}  {:>6}  CAUSE",
            "CONVERSION", "STATE", "ERROR", "FAILED IN", "TRY", "AGE"
        );
    }
    let operator = Operator {
        by: args
            .by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "operator".into()),
        reason: args.reason.clone(),
    };
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(candidates.len());
    for (i, candidate) in candidates.iter().enumerate() {
        let outcome = match (how, args.yes) {
            (Some(how), true) => {
                if let (Some(pause), true) = (pause, i > 0) {
                    tokio::time::sleep(pause).await;
                }
                Some(replay(&**events, workflows, clock, candidate, how, &operator).await?)
            }
            _ => None,
        };
        if !args.json {
            print_row(candidate, now, action, outcome.as_ref(), how);
        }
        outcomes.push(outcome);
    }
    let replayed: Vec<ConversionId> = candidates
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Some(Outcome::Replayed { .. })))
        .map(|(c, _)| c.conversion_id.clone())
        .collect();
    let (finals, unfinished) = match wait {
        Wait::Until(limit) if !replayed.is_empty() => wait_final(&**events, &replayed, limit).await?,
        _ => (Vec::new(), Vec::new()),
    };
    let final_of = |id: &ConversionId| finals.iter().find(|s: &&ConversionStatus| s.conversion_id == *id);
    if args.json {
        for (candidate, outcome) in candidates.iter().zip(&outcomes) {
            let done = final_of(&candidate.conversion_id);
            let line = Line {
                candidate,
                age_seconds: candidate.failed_at.map(|t| (now - t).num_seconds()),
                action,
                outcome: outcome.as_ref(),
                final_state: done.map(|s| s.state),
                final_error: done.and_then(|s| s.error.as_ref()).map(|e| format!("{}: {}", e.error, e.cause)),
                suggestion: outcome.as_ref().and_then(|o| suggestion(o, how)),
            };
            println!("{}", serde_json::to_string(&line)?);
        }
    } else {
        for status in &finals {
            let detail =
                status.error.as_ref().map(|e| format!(" ({}: {})", e.error, e.cause)).unwrap_or_default();
            println!("{}  now {}{detail}", status.conversion_id, status.state.as_str());
        }
        for id in &unfinished {
            println!("{id}  still running");
        }
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().flatten().filter(|o| f(o)).count();
    let completed = finals.iter().filter(|s| s.state == ConversionState::Completed).count();
    let summary = match (how, args.yes) {
        (None, _) => format!("{} failed conversions", candidates.len()),
        (Some(how), false) => format!(
            "dry run: {} conversions would be {}; nothing changed (add --yes to act)",
            candidates.len(),
            if how == RetryMethod::Redrive { "redriven" } else { "restarted" }
        ),
        (Some(_), true) => {
            let replayed_count = count(|o| matches!(o, Outcome::Replayed { .. }));
            let waited = match wait {
                _ if replayed_count == 0 => String::new(),
                Wait::No { hint: None } => " (not waited for)".to_owned(),
                Wait::No { hint: Some(hint) } => format!(" (not waited for: {hint})"),
                Wait::Until(Some(limit)) if !unfinished.is_empty() => {
                    format!(
                        ", {} still running after {}",
                        unfinished.len(),
                        human_age(chrono::Duration::from_std(limit).unwrap_or_default())
                    )
                }
                Wait::Until(_) => String::new(),
            };
            format!(
                "{replayed_count} replayed, {} skipped, {} refused; {completed} completed{waited}",
                count(|o| matches!(o, Outcome::Skipped { .. })),
                count(|o| matches!(o, Outcome::Failed { .. })),
            )
        }
    };
    eprintln!("{summary}");
    let all_done = finals.iter().all(|s| s.state == ConversionState::Completed)
        && unfinished.is_empty()
        && count(|o| matches!(o, Outcome::Failed { .. })) == 0;
    Ok(if all_done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What to do about an outcome, if anything: a refused redrive can still be restarted.
fn suggestion(outcome: &Outcome, how: Option<RetryMethod>) -> Option<String> {
    match (outcome, how) {
        (Outcome::Failed { .. }, Some(RetryMethod::Redrive)) => {
            Some("use --restart to start a new attempt from the beginning".into())
        }
        _ => None,
    }
}

/// Characters of a refusal's reason a table row shows (SDK errors can carry a whole response;
/// `--json` gives all of it).
const MAX_WHY: usize = 200;

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn print_row(
    c: &Candidate,
    now: DateTime<Utc>,
    action: &str,
    outcome: Option<&Outcome>,
    how: Option<RetryMethod>,
) {
    let age = c.failed_at.map(|t| human_age(now - t)).unwrap_or_else(|| "-".into());
    let cause: String = c.cause.as_deref().unwrap_or("").chars().take(60).collect();
    let what = match outcome {
        None if action == "list" => String::new(),
        None => format!("  → {action}"),
        Some(Outcome::Replayed { execution_id }) => format!("  → {action}: {execution_id}"),
        Some(Outcome::Skipped { why }) => format!("  → skipped: {why}"),
        Some(o @ Outcome::Failed { why }) => match suggestion(o, how) {
            Some(hint) => format!("  → refused: {}; {hint}", cut(why, MAX_WHY)),
            None => format!("  → refused: {}", cut(why, MAX_WHY)),
        },
    };
    println!(
        "{:<20}  {:<10}  {:<22}  {:<16}  {:>3}  {:>6}  {cause}{what}",
        c.conversion_id,
        c.state.as_str(),
        c.error.as_deref().unwrap_or("-"),
        c.failed_state.as_deref().unwrap_or("-"),
        c.attempt,
        age
    );
}

fn human_age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Wait until every conversion is completed or failed again, or `limit` has passed: the
/// finished ones, and those still running.
async fn wait_final(
    events: &dyn EventStore,
    ids: &[ConversionId],
    limit: Option<Duration>,
) -> anyhow::Result<(Vec<ConversionStatus>, Vec<ConversionId>)> {
    let deadline = limit.map(|l| tokio::time::Instant::now() + l);
    let mut done: Vec<Option<ConversionStatus>> = vec![None; ids.len()];
    loop {
        for (slot, id) in done.iter_mut().zip(ids) {
            if slot.is_some() {
                continue;
            }
            let stream = events.read_stream(&id.stream(), 0).await?;
            if let Some(status) = ConversionStatus::fold(&stream)?
                && matches!(status.state, ConversionState::Completed | ConversionState::Failed)
            {
                *slot = Some(status);
            }
        }
        let timed_out = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if done.iter().all(Option::is_some) || timed_out {
            let unfinished =
                ids.iter().zip(&done).filter(|(_, d)| d.is_none()).map(|(id, _)| id.clone()).collect();
            return Ok((done.into_iter().flatten().collect(), unfinished));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_rates_parse() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_time("2h", now).unwrap(), now - chrono::Duration::hours(2));
        assert_eq!(
            parse_time("2026-11-20T00:00:00Z", now).unwrap().to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_time("99999999999d", now).is_err());
        assert_eq!(parse_rate("10/s").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_rate("30/m").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_rate("4").unwrap(), Duration::from_millis(250));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
    }
}

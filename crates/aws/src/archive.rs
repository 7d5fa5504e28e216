//! EventBridge archive replays: send the archived events of a time window back to the bus they
//! were archived from, optionally only to some of its rules, once per window.
//!
//! A replay is named from the archive, the window and the rules ([`replay_name`]), so a command
//! retried after a lost answer, or run twice, finds the replay it started instead of sending the
//! same events a second time. EventBridge narrows a replay only by time and by rule
//! (`Destination.FilterArns`); nothing narrows it by event type, so subscribers that want one
//! type get it from a rule that matches that type.

use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::SdkError;
use aws_sdk_eventbridge::operation::start_replay::StartReplayError;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::ReplayDestination;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::backoff::Backoff;
use crate::sdk::Failure;

/// The bus's archive, in the operators' environment (the stack's `EventArchiveName` output).
pub const ARCHIVE_VAR: &str = "LECTOR_EVENT_ARCHIVE";

/// Replay names are at most 64 characters.
const MAX_NAME: usize = 64;
/// Characters of the archive's name kept in a replay's name.
const NAME_ARCHIVE_PART: usize = 20;

const RETRY: Backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(3), attempts: 5 };

/// Why an archive call failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Throttled, timed out, or a 5xx, still so after retries: try again later.
    #[error("EventBridge unavailable: {0}")]
    Unavailable(String),
    /// No such archive, rule or replay.
    #[error("not found: {0}")]
    NotFound(String),
    /// The replay asked for cannot be made (an empty or reversed window, a rule of another bus).
    #[error("invalid replay: {0}")]
    Invalid(String),
    /// Anything else EventBridge refused (permissions, quotas); retrying will not help.
    #[error("EventBridge refused the call: {0}")]
    Refused(String),
}

impl ArchiveError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ArchiveError::Unavailable(_))
    }
}

fn error<E>(
    op: &str,
    err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> ArchiveError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = Failure::of(err);
    let reason = format!("{op}: {}", failure.message);
    match failure.code.as_deref() {
        _ if failure.transient => ArchiveError::Unavailable(reason),
        Some("ResourceNotFoundException") => ArchiveError::NotFound(reason),
        Some("ValidationException" | "InvalidEventPatternException") => ArchiveError::Invalid(reason),
        _ => ArchiveError::Refused(reason),
    }
}

/// An archive as `DescribeArchive` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archive {
    pub name: String,
    pub arn: String,
    /// The bus it archives, which is where its replays go.
    pub source_arn: String,
    /// `ENABLED`, `DISABLED`, `CREATING`, ...
    pub state: String,
    /// 0: kept for ever.
    pub retention_days: i32,
    pub event_count: i64,
}

impl Archive {
    /// The name of the bus it archives.
    pub fn bus_name(&self) -> &str {
        bus_name(&self.source_arn)
    }
}

/// The name in an event bus ARN (`arn:aws:events:REGION:ACCOUNT:event-bus/NAME`).
pub fn bus_name(bus_arn: &str) -> &str {
    bus_arn.rsplit_once("event-bus/").map_or(bus_arn, |(_, name)| name)
}

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplayState {
    Starting,
    Running,
    Cancelling,
    Completed,
    Cancelled,
    Failed,
}

impl ReplayState {
    /// Whether the replay has ended, one way or another.
    pub fn is_final(self) -> bool {
        matches!(self, ReplayState::Completed | ReplayState::Cancelled | ReplayState::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplayState::Starting => "STARTING",
            ReplayState::Running => "RUNNING",
            ReplayState::Cancelling => "CANCELLING",
            ReplayState::Completed => "COMPLETED",
            ReplayState::Cancelled => "CANCELLED",
            ReplayState::Failed => "FAILED",
        }
    }

    fn of(state: &aws_sdk_eventbridge::types::ReplayState) -> Result<Self, ArchiveError> {
        use aws_sdk_eventbridge::types::ReplayState as Eb;
        Ok(match state {
            Eb::Starting => ReplayState::Starting,
            Eb::Running => ReplayState::Running,
            Eb::Cancelling => ReplayState::Cancelling,
            Eb::Completed => ReplayState::Completed,
            Eb::Cancelled => ReplayState::Cancelled,
            Eb::Failed => ReplayState::Failed,
            other => return Err(ArchiveError::Refused(format!("unknown replay state {}", other.as_str()))),
        })
    }
}

/// A replay as `DescribeReplay` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    pub name: String,
    pub arn: Option<String>,
    pub state: ReplayState,
    pub state_reason: Option<String>,
    /// The archive replayed.
    pub event_source_arn: Option<String>,
    /// The bus the events go back to.
    pub destination_arn: Option<String>,
    /// The rules the events go to; empty: every rule of the bus.
    pub filter_arns: Vec<String>,
    pub event_start_time: Option<DateTime<Utc>>,
    pub event_end_time: Option<DateTime<Utc>>,
    /// How far the replay has got.
    pub event_last_replayed_time: Option<DateTime<Utc>>,
    pub replay_start_time: Option<DateTime<Utc>>,
    pub replay_end_time: Option<DateTime<Utc>>,
}

/// What [`ArchiveReplays::start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new replay.
    New(Replay),
    /// A replay of the same window and rules had been started before (it may have ended): no
    /// event is sent twice.
    Existing(Replay),
}

impl Started {
    pub fn replay(&self) -> &Replay {
        match self {
            Started::New(r) | Started::Existing(r) => r,
        }
    }
}

/// The events to replay: those that occurred at or after `since` and before `until`, in whole
/// seconds (what the name is made of).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl Window {
    /// The window, its ends cut to whole seconds; `since` must come before `until`.
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Self, ArchiveError> {
        let whole = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
        let (since, until) = (whole(since), whole(until));
        if since >= until {
            return Err(ArchiveError::Invalid(format!(
                "the window is empty: {} is not before {}",
                since.to_rfc3339(),
                until.to_rfc3339()
            )));
        }
        Ok(Self { since, until })
    }

    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub fn until(&self) -> DateTime<Utc> {
        self.until
    }
}

/// FNV-1a: a hash that stays the same across builds and versions, unlike std's.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The replay of `archive` over `window` to `rules` (names, any order; empty: every rule):
/// `<archive, cut>-<since>-<until>-<hash>`, at most 64 characters of `[A-Za-z0-9-]`. The same
/// archive, window and rules always give the same name, and any difference another one.
pub fn replay_name(archive: &str, window: &Window, rules: &[String]) -> String {
    let mut rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    rules.sort_unstable();
    rules.dedup();
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let (since, until) = (stamp(window.since), stamp(window.until));
    let key = format!("{archive}\n{since}\n{until}\n{}", rules.join("\n"));
    let short: String = archive
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(NAME_ARCHIVE_PART)
        .collect();
    let name = format!("{short}-{since}-{until}-{:08x}", fnv1a(&key) as u32);
    debug_assert!(name.len() <= MAX_NAME);
    name
}

fn aws_time(t: DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_secs(t.timestamp())
}

fn time(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Replays of one archive.
#[derive(Debug, Clone)]
pub struct ArchiveReplays {
    client: Client,
    archive: String,
}

impl ArchiveReplays {
    pub fn new(client: Client, archive: impl Into<String>) -> Self {
        Self { client, archive: archive.into() }
    }

    pub fn archive_name(&self) -> &str {
        &self.archive
    }

    /// Run `call` again while it fails transiently, with backoff.
    async fn retrying<T, F, Fut>(&self, call: F) -> Result<T, ArchiveError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ArchiveError>>,
    {
        RETRY
            .retry(call, |e: &ArchiveError| {
                let transient = e.is_transient();
                if transient {
                    tracing::warn!(archive = %self.archive, error = %e, "retrying");
                }
                transient
            })
            .await
    }

    /// The archive, and the bus it archives.
    pub async fn describe_archive(&self) -> Result<Archive, ArchiveError> {
        let out = self
            .retrying(|| async {
                self.client
                    .describe_archive()
                    .archive_name(&self.archive)
                    .send()
                    .await
                    .map_err(|e| error("DescribeArchive", &e))
            })
            .await
            .map_err(|e| match e {
                ArchiveError::NotFound(reason) => {
                    ArchiveError::NotFound(format!("archive {}: {reason}", self.archive))
                }
                other => other,
            })?;
        let source_arn = out.event_source_arn().unwrap_or_default().to_owned();
        if source_arn.is_empty() {
            return Err(ArchiveError::Refused(format!("archive {} names no bus", self.archive)));
        }
        Ok(Archive {
            name: out.archive_name().unwrap_or(&self.archive).to_owned(),
            arn: out.archive_arn().unwrap_or_default().to_owned(),
            source_arn,
            state: out.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            retention_days: out.retention_days().unwrap_or(0),
            event_count: out.event_count(),
        })
    }

    /// The ARNs of `rules` (names) on `bus`; a rule that is not there is named in the error.
    pub async fn rule_arns(&self, bus: &str, rules: &[String]) -> Result<Vec<String>, ArchiveError> {
        let mut arns = Vec::with_capacity(rules.len());
        for rule in rules {
            let out = self
                .retrying(|| async {
                    self.client
                        .describe_rule()
                        .name(rule)
                        .event_bus_name(bus)
                        .send()
                        .await
                        .map_err(|e| error("DescribeRule", &e))
                })
                .await
                .map_err(|e| match e {
                    ArchiveError::NotFound(_) => {
                        ArchiveError::NotFound(format!("rule {rule} on bus {bus}: there is no such rule"))
                    }
                    other => other,
                })?;
            let arn = out.arn().filter(|a| !a.is_empty()).ok_or_else(|| {
                ArchiveError::Refused(format!("DescribeRule gave no ARN for rule {rule} on bus {bus}"))
            })?;
            arns.push(arn.to_owned());
        }
        Ok(arns)
    }

    /// Start replaying `window` from `archive` (as [`Self::describe_archive`] told it) back to
    /// its bus, to `rules` only when some are named. A replay of the same window and rules
    /// started before is returned as [`Started::Existing`] and nothing is sent again.
    #[tracing::instrument(skip(self, archive), fields(archive = %archive.name))]
    pub async fn start(
        &self,
        archive: &Archive,
        window: &Window,
        rules: &[String],
    ) -> Result<Started, ArchiveError> {
        let filter_arns = self.rule_arns(archive.bus_name(), rules).await?;
        let name = replay_name(&archive.name, window, rules);
        let destination = ReplayDestination::builder()
            .arn(&archive.source_arn)
            .set_filter_arns((!filter_arns.is_empty()).then_some(filter_arns))
            .build()
            .map_err(|e| ArchiveError::Invalid(format!("replay destination: {e}")))?;
        let description = format!(
            "lector events replay: {} to {}{}",
            window.since.to_rfc3339(),
            window.until.to_rfc3339(),
            if rules.is_empty() { String::new() } else { format!(", rules {}", rules.join(", ")) }
        );
        // A start whose answer was lost and then finds its own replay is still a new one.
        let tries = std::cell::Cell::new(0u32);
        let existed = self
            .retrying(|| {
                tries.set(tries.get() + 1);
                let sent = self
                    .client
                    .start_replay()
                    .replay_name(&name)
                    .description(&description)
                    .event_source_arn(&archive.arn)
                    .event_start_time(aws_time(window.since))
                    .event_end_time(aws_time(window.until))
                    .destination(destination.clone())
                    .send();
                async move {
                    match sent.await {
                        Ok(_) => Ok(false),
                        Err(SdkError::ServiceError(ctx))
                            if matches!(ctx.err(), StartReplayError::ResourceAlreadyExistsException(_)) =>
                        {
                            Ok(true)
                        }
                        Err(e) => Err(error("StartReplay", &e)),
                    }
                }
            })
            .await?;
        let replay = self.describe(&name).await?;
        Ok(if existed && tries.get() == 1 { Started::Existing(replay) } else { Started::New(replay) })
    }

    /// The replay named `name`.
    pub async fn describe(&self, name: &str) -> Result<Replay, ArchiveError> {
        let out = self
            .retrying(|| async {
                self.client
                    .describe_replay()
                    .replay_name(name)
                    .send()
                    .await
                    .map_err(|e| error("DescribeReplay", &e))
            })
            .await?;
        let state = out
            .state()
            .map(ReplayState::of)
            .transpose()?
            .ok_or_else(|| ArchiveError::Refused(format!("DescribeReplay gave no state for {name}")))?;
        Ok(Replay {
            name: out.replay_name().unwrap_or(name).to_owned(),
            arn: out.replay_arn().map(str::to_owned),
            state,
            state_reason: out.state_reason().filter(|r| !r.is_empty()).map(str::to_owned),
            event_source_arn: out.event_source_arn().map(str::to_owned),
            destination_arn: out.destination().map(|d| d.arn().to_owned()),
            filter_arns: out.destination().map(|d| d.filter_arns().to_vec()).unwrap_or_default(),
            event_start_time: out.event_start_time().and_then(time),
            event_end_time: out.event_end_time().and_then(time),
            event_last_replayed_time: out.event_last_replayed_time().and_then(time),
            replay_start_time: out.replay_start_time().and_then(time),
            replay_end_time: out.replay_end_time().and_then(time),
        })
    }

    /// Describe the replay every `poll` until it has ended, calling `seen` with each state it
    /// moves to (the first one included).
    pub async fn wait(
        &self,
        name: &str,
        poll: Duration,
        mut seen: impl FnMut(&Replay),
    ) -> Result<Replay, ArchiveError> {
        let mut last: Option<ReplayState> = None;
        loop {
            let replay = self.describe(name).await?;
            if last != Some(replay.state) {
                seen(&replay);
                last = Some(replay.state);
            }
            if replay.state.is_final() {
                return Ok(replay);
            }
            tokio::time::sleep(poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn replay_names_follow_the_archive_the_window_and_the_rules() {
        let window = Window::new(at("2026-11-21T10:00:00.250Z"), at("2026-11-21T12:30:00Z")).unwrap();
        let name = replay_name("lector-events", &window, &[]);
        assert!(name.starts_with("lector-events-20261121T100000Z-20261121T123000Z-"), "{name}");
        assert_eq!(name, replay_name("lector-events", &window, &[]), "the same replay, the same name");
        let rules = ["b".to_owned(), "a".to_owned(), "a".to_owned()];
        assert_eq!(
            replay_name("lector-events", &window, &rules),
            replay_name("lector-events", &window, &rules[..2])
        );
        assert_ne!(replay_name("lector-events", &window, &rules), name, "other rules, another replay");
        let later = Window::new(at("2026-11-21T10:00:01Z"), at("2026-11-21T12:30:00Z")).unwrap();
        assert_ne!(replay_name("lector-events", &later, &[]), name);
        assert_ne!(replay_name("lector-archive", &window, &[]), name);

        let long = "a.very_long-archive.name.that-fills-all-48-chars";
        let name = replay_name(long, &window, &rules);
        assert!(name.len() <= MAX_NAME, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{name}");
    }

    #[test]
    fn windows_are_whole_seconds_and_not_empty() {
        let w = Window::new(at("2026-11-21T10:00:00.900Z"), at("2026-11-21T10:00:02.100Z")).unwrap();
        assert_eq!((w.since(), w.until()), (at("2026-11-21T10:00:00Z"), at("2026-11-21T10:00:02Z")));
        assert!(matches!(
            Window::new(at("2026-11-21T10:00:00.100Z"), at("2026-11-21T10:00:00.900Z")),
            Err(ArchiveError::Invalid(_))
        ));
        assert!(Window::new(at("2026-11-21T11:00:00Z"), at("2026-11-21T10:00:00Z")).is_err());
    }

    #[test]
    fn bus_names_come_from_their_arns() {
        assert_eq!(bus_name("arn:aws:events:us-east-1:123456789012:event-bus/lector"), "lector");
        assert_eq!(bus_name("lector"), "lector");
    }
}

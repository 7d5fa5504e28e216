//! When a subscribed feed is polled next: after a good poll, the latest of the configured
//! interval and what the feed and the server asked for; after a failure, an exponential
//! backoff with jitter; and when a failure is permanent enough to pause the subscription.
//!
//! Pure: the time comes in as a value, and the jitter is derived from a seed (the feed's id,
//! say) and the failure count, so the same inputs always give the same answer and many feeds
//! failing together still spread out.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The interval when none is configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// No feed is polled more often than this, whatever is configured.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// No feed waits longer than this for its next poll or retry, whatever it asks for.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The wait after the first failure; it doubles with each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// Jitter spreads each backoff over this fraction either side of it.
pub const JITTER: f64 = 0.25;
/// How long a feed may answer 404 or 410 before its subscription is paused.
pub const GONE_FOR: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many polls in a row may find something that is not a feed before the subscription is
/// paused: a site can serve an error page for a while.
pub const NOT_A_FEED_POLLS: u32 = 3;

/// What the feed and the server said about how often to poll. Every field is optional; the
/// caller fills in what the last answer carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// RSS `<ttl>`.
    pub ttl: Option<Duration>,
    /// The syndication module's `sy:updatePeriod` divided by `sy:updateFrequency`.
    pub syndication_period: Option<Duration>,
    /// `Cache-Control: max-age`.
    pub max_age: Option<Duration>,
    /// `Expires`, best corrected for the server's clock (`now + (Expires - Date)`).
    pub expires: Option<DateTime<Utc>>,
    /// `Retry-After`, as a time.
    pub retry_after: Option<DateTime<Utc>>,
}

/// Which rule decided the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollReason {
    /// The configured (or default) interval.
    Interval,
    /// The feed's RSS `<ttl>`.
    Ttl,
    /// The feed's `sy:updatePeriod`/`sy:updateFrequency`.
    SyndicationPeriod,
    /// The server's `Cache-Control: max-age`.
    MaxAge,
    /// The server's `Expires`.
    Expires,
    /// The server's `Retry-After`.
    RetryAfter,
    /// What was asked for lay beyond [`MAX_DELAY`], which was taken instead.
    MaxDelay,
    /// A WebSub hub pushes the feed: it is polled daily, to be sure.
    Pushed,
}

/// The configured interval as it is used: [`DEFAULT_INTERVAL`] when there is none, never
/// below [`MIN_INTERVAL`].
pub fn effective_interval(configured: Option<Duration>) -> Duration {
    configured.unwrap_or(DEFAULT_INTERVAL).max(MIN_INTERVAL)
}

/// The next poll after a good one (a feed read, or a 304): the latest of the interval and the
/// hints, at most [`MAX_DELAY`] after `now`, with the rule that decided it. On a tie the
/// interval wins, then the hints in the order of [`Hints`]' fields.
pub fn next_poll(
    now: DateTime<Utc>,
    configured: Option<Duration>,
    hints: &Hints,
) -> (DateTime<Utc>, PollReason) {
    let mut best = (after(now, effective_interval(configured)), PollReason::Interval);
    let candidates = [
        (hints.ttl.map(|d| after(now, d)), PollReason::Ttl),
        (hints.syndication_period.map(|d| after(now, d)), PollReason::SyndicationPeriod),
        (hints.max_age.map(|d| after(now, d)), PollReason::MaxAge),
        (hints.expires, PollReason::Expires),
        (hints.retry_after, PollReason::RetryAfter),
    ];
    for (at, reason) in candidates {
        if let Some(at) = at
            && at > best.0
        {
            best = (at, reason);
        }
    }
    let ceiling = after(now, MAX_DELAY);
    if best.0 > ceiling { (ceiling, PollReason::MaxDelay) } else { best }
}

/// When to try again after `consecutive_failures` failures in a row (the first failure is 1):
/// [`FIRST_BACKOFF`] doubled for each failure after the first, spread by ±[`JITTER`] with a
/// fraction derived from `seed` and the count, and never earlier than `retry_after` when the
/// server sent one; at most [`MAX_DELAY`] after `now` in any case.
pub fn backoff(
    now: DateTime<Utc>,
    consecutive_failures: u32,
    retry_after: Option<DateTime<Utc>>,
    seed: &str,
) -> DateTime<Utc> {
    let doublings = consecutive_failures.saturating_sub(1).min(20);
    let base = FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_DELAY);
    let spread = 1.0 - JITTER + 2.0 * JITTER * unit_fraction(seed, consecutive_failures);
    let delay = base.mul_f64(spread).min(MAX_DELAY);
    let mut at = after(now, delay);
    if let Some(asked) = retry_after
        && asked > at
    {
        at = asked;
    }
    at.min(after(now, MAX_DELAY))
}

/// What kind of failure a poll met, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Worth retrying: a timeout, a broken connection, HTTP 5xx, 429.
    Transient,
    /// HTTP 404 or 410: the feed may be gone, or moved without a redirect.
    Gone,
    /// The answer was not a feed (an HTML page, an image) or not a readable one.
    NotAFeed,
    /// A refusal that retrying cannot change: an address that may not be fetched, a redirect
    /// loop, a body over the limits, a content type that is no feed, HTTP 401/403.
    Refused,
}

/// Whether a failure that began at `first_failure_at` and has now been met
/// `consecutive_failures` times in a row should pause the subscription: 404/410 for
/// [`GONE_FOR`], something that is not a feed for [`NOT_A_FEED_POLLS`] polls, a refusal at
/// once; a transient failure never does.
pub fn is_permanent(
    kind: FailureKind,
    first_failure_at: DateTime<Utc>,
    now: DateTime<Utc>,
    consecutive_failures: u32,
) -> bool {
    match kind {
        FailureKind::Transient => false,
        FailureKind::Gone => now >= after(first_failure_at, GONE_FOR),
        FailureKind::NotAFeed => consecutive_failures >= NOT_A_FEED_POLLS,
        FailureKind::Refused => true,
    }
}

/// `at + d`, saturating at the latest time chrono represents.
fn after(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d).ok().and_then(|d| at.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A fraction in `0..1` fixed by `seed` and `n`: the same on every machine and every run.
fn unit_fraction(seed: &str, n: u32) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update([0]);
    h.update(n.to_be_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable in an f64.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn mins(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    fn minutes_after(at: DateTime<Utc>, n: i64) -> DateTime<Utc> {
        at + TimeDelta::minutes(n)
    }

    #[test]
    fn the_interval_defaults_to_15_minutes_and_is_at_least_5() {
        assert_eq!(next_poll(t0(), None, &Hints::default()), (minutes_after(t0(), 15), PollReason::Interval));
        assert_eq!(
            next_poll(t0(), Some(mins(1)), &Hints::default()),
            (minutes_after(t0(), 5), PollReason::Interval)
        );
        assert_eq!(
            next_poll(t0(), Some(mins(45)), &Hints::default()),
            (minutes_after(t0(), 45), PollReason::Interval)
        );
    }

    #[test]
    fn the_latest_hint_wins_and_names_itself() {
        let cases: [(Hints, i64, PollReason); 5] = [
            (Hints { ttl: Some(mins(60)), max_age: Some(mins(30)), ..Hints::default() }, 60, PollReason::Ttl),
            (
                Hints { ttl: Some(mins(60)), syndication_period: Some(mins(120)), ..Hints::default() },
                120,
                PollReason::SyndicationPeriod,
            ),
            (Hints { max_age: Some(mins(20)), ..Hints::default() }, 20, PollReason::MaxAge),
            (
                Hints { max_age: Some(mins(20)), expires: Some(minutes_after(t0(), 25)), ..Hints::default() },
                25,
                PollReason::Expires,
            ),
            (
                Hints { ttl: Some(mins(30)), retry_after: Some(minutes_after(t0(), 90)), ..Hints::default() },
                90,
                PollReason::RetryAfter,
            ),
        ];
        for (hints, want, reason) in cases {
            assert_eq!(next_poll(t0(), None, &hints), (minutes_after(t0(), want), reason), "{hints:?}");
        }
    }

    #[test]
    fn hints_shorter_than_the_interval_or_in_the_past_do_not_shorten_it() {
        let hints = Hints {
            ttl: Some(mins(1)),
            syndication_period: Some(mins(10)),
            max_age: Some(Duration::ZERO),
            expires: Some(minutes_after(t0(), -60)),
            retry_after: Some(minutes_after(t0(), 3)),
        };
        assert_eq!(next_poll(t0(), None, &hints), (minutes_after(t0(), 15), PollReason::Interval));
        // On a tie the interval is named.
        let tie = Hints { ttl: Some(mins(15)), ..Hints::default() };
        assert_eq!(next_poll(t0(), None, &tie).1, PollReason::Interval);
    }

    #[test]
    fn nothing_waits_longer_than_a_day() {
        let weekly = Hints { syndication_period: Some(mins(7 * 24 * 60)), ..Hints::default() };
        assert_eq!(next_poll(t0(), None, &weekly), (minutes_after(t0(), 24 * 60), PollReason::MaxDelay));
        assert_eq!(
            next_poll(t0(), Some(mins(3 * 24 * 60)), &Hints::default()),
            (minutes_after(t0(), 24 * 60), PollReason::MaxDelay)
        );
        let huge = Hints { ttl: Some(Duration::MAX), ..Hints::default() };
        assert_eq!(next_poll(t0(), None, &huge).0, minutes_after(t0(), 24 * 60));
        // Exactly a day is a day, decided by the hint.
        let day = Hints { ttl: Some(MAX_DELAY), ..Hints::default() };
        assert_eq!(next_poll(t0(), None, &day), (minutes_after(t0(), 24 * 60), PollReason::Ttl));
    }

    #[test]
    fn the_reason_serialises_in_snake_case() {
        assert_eq!(serde_json::to_string(&PollReason::SyndicationPeriod).unwrap(), "\"syndication_period\"");
        assert_eq!(serde_json::to_string(&PollReason::MaxDelay).unwrap(), "\"max_delay\"");
        assert_eq!(serde_json::to_string(&FailureKind::NotAFeed).unwrap(), "\"not_a_feed\"");
        let schema = serde_json::to_string(&schemars::schema_for!(PollReason)).unwrap();
        assert!(schema.contains("retry_after"), "{schema}");
    }

    #[test]
    fn backoff_doubles_from_a_minute_within_the_jitter() {
        let mut previous_base = Duration::ZERO;
        for failures in 1..=10u32 {
            let base = FIRST_BACKOFF * (1 << (failures - 1));
            assert!(base > previous_base);
            previous_base = base;
            let at = backoff(t0(), failures, None, "feed-1");
            let waited = (at - t0()).to_std().unwrap();
            assert!(
                waited >= base.mul_f64(1.0 - JITTER) && waited <= base.mul_f64(1.0 + JITTER),
                "{failures}: waited {waited:?} for a base of {base:?}"
            );
        }
        // The first failure waits about a minute.
        let first = (backoff(t0(), 1, None, "feed-1") - t0()).num_seconds();
        assert!((45..=75).contains(&first), "{first}");
    }

    #[test]
    fn backoff_is_deterministic_and_spreads_feeds_apart() {
        assert_eq!(backoff(t0(), 4, None, "feed-a"), backoff(t0(), 4, None, "feed-a"));
        let waits: std::collections::BTreeSet<i64> =
            (0..50).map(|i| (backoff(t0(), 4, None, &format!("feed-{i}")) - t0()).num_seconds()).collect();
        assert!(waits.len() > 40, "50 feeds failing together retry at only {} distinct times", waits.len());
        let (low, high) = (*waits.first().unwrap(), *waits.last().unwrap());
        // 8 minutes ± 25 %, and the spread uses most of that range.
        assert!(low >= 360 && high <= 600, "{low}..{high}");
        assert!(high - low > 180, "{low}..{high}");
    }

    #[test]
    fn backoff_stops_at_a_day_and_honours_retry_after() {
        for failures in [12, 30, 1000, u32::MAX] {
            let at = backoff(t0(), failures, None, "feed-1");
            assert!(at <= minutes_after(t0(), 24 * 60), "{failures}: {at}");
            assert!(at >= minutes_after(t0(), 18 * 60), "{failures}: {at}");
        }
        let later = minutes_after(t0(), 120);
        assert_eq!(backoff(t0(), 1, Some(later), "feed-1"), later);
        // A Retry-After sooner than the backoff does not shorten it.
        let sooner = minutes_after(t0(), 1);
        assert!(backoff(t0(), 6, Some(sooner), "feed-1") > minutes_after(t0(), 20));
        // Nor does one beyond a day lengthen it past a day.
        let far = minutes_after(t0(), 3 * 24 * 60);
        assert_eq!(backoff(t0(), 1, Some(far), "feed-1"), minutes_after(t0(), 24 * 60));
    }

    #[test]
    fn gone_pauses_after_a_week_and_not_a_feed_after_three_polls() {
        let start = t0();
        let almost = start + TimeDelta::days(7) - TimeDelta::seconds(1);
        assert!(!is_permanent(FailureKind::Gone, start, almost, 500));
        assert!(is_permanent(FailureKind::Gone, start, start + TimeDelta::days(7), 2));
        assert!(!is_permanent(FailureKind::NotAFeed, start, start + TimeDelta::days(30), 2));
        assert!(is_permanent(FailureKind::NotAFeed, start, start + TimeDelta::minutes(30), 3));
        assert!(is_permanent(FailureKind::Refused, start, start, 1));
        assert!(!is_permanent(FailureKind::Transient, start, start + TimeDelta::days(365), 10_000));
    }
}

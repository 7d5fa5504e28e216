//! Time for the engine: a real clock that sleeps, and a virtual clock on which `Wait` states,
//! retry intervals and task timeouts pass instantly, in deadline order.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::Notify;

/// The engine's source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// A future that resolves at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;

    /// A future that resolves after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let d = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let deadline = self.now().checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.sleep_until(deadline)
    }

    /// Whether time moves only when the execution's own futures all wait (a virtual clock),
    /// rather than by itself.
    fn is_virtual(&self) -> bool {
        false
    }
}

/// Wall-clock time; sleeping takes real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if !left.is_zero() {
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// Simulated time. A sleeper waits until every other runnable task has had a chance to run
/// and register its own sleep; then the earliest deadline fires and time jumps to it. A task
/// timeout of 5 s therefore beats a handler sleeping 60 s, and a one-year `Wait` ends at once.
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<Mutex<Virtual>>,
}

struct Virtual {
    now: DateTime<Utc>,
    seq: u64,
    sleepers: BTreeMap<(DateTime<Utc>, u64), Arc<Notify>>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.now();
        f.debug_struct("VirtualClock").field("now", &now).finish()
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::starting_at(Utc::now())
    }
}

/// How many times a sleeper yields to the scheduler before it may move time forward; enough
/// for the other futures of the same task (and ready tasks) to register their sleeps.
const SETTLE_YIELDS: usize = 16;

impl VirtualClock {
    /// A virtual clock that reads `start` until something sleeps.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        VirtualClock {
            inner: Arc::new(Mutex::new(Virtual { now: start, seq: 0, sleepers: BTreeMap::new() })),
        }
    }

    /// Moves time forward by `d`, waking every sleeper whose deadline passes.
    pub fn advance(&self, d: Duration) {
        let mut v = self.lock();
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        v.now = v.now.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let now = v.now;
        for ((deadline, _), n) in v.sleepers.iter() {
            if *deadline <= now {
                n.notify_one();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Virtual> {
        // A poisoned lock only means a sleeper panicked; the time value is still sound.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Registration {
    inner: Arc<Mutex<Virtual>>,
    key: (DateTime<Utc>, u64),
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut v = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let was_first = v.sleepers.keys().next() == Some(&self.key);
        v.sleepers.remove(&self.key);
        if was_first && let Some(n) = v.sleepers.values().next() {
            n.notify_one();
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let notify = Arc::new(Notify::new());
            let key = {
                let mut v = inner.lock().unwrap_or_else(|e| e.into_inner());
                if deadline <= v.now {
                    return;
                }
                v.seq += 1;
                let key = (deadline, v.seq);
                v.sleepers.insert(key, notify.clone());
                key
            };
            let _registration = Registration { inner: inner.clone(), key };
            loop {
                for _ in 0..SETTLE_YIELDS {
                    tokio::task::yield_now().await;
                }
                {
                    let mut v = inner.lock().unwrap_or_else(|e| e.into_inner());
                    if v.now >= deadline {
                        return;
                    }
                    if v.sleepers.keys().next() == Some(&key) {
                        v.now = deadline;
                        return;
                    }
                }
                notify.notified().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleeps_take_no_real_time_and_advance_the_clock() {
        let clock = VirtualClock::starting_at(DateTime::<Utc>::from_timestamp(1_000, 0).expect("valid"));
        let started = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(clock.now().timestamp(), 1_000 + 3600);
    }

    #[tokio::test]
    async fn the_earliest_deadline_wins_a_race() {
        let clock = VirtualClock::starting_at(DateTime::<Utc>::from_timestamp(0, 0).expect("valid"));
        let long = clock.sleep(Duration::from_secs(60));
        let short = clock.sleep(Duration::from_secs(5));
        let winner = tokio::select! {
            _ = long => "long",
            _ = short => "short",
        };
        assert_eq!(winner, "short");
        assert_eq!(clock.now().timestamp(), 5);
        // The dropped 60 s sleeper no longer holds time back.
        clock.sleep(Duration::from_secs(1)).await;
        assert_eq!(clock.now().timestamp(), 6);
    }

    #[tokio::test]
    async fn joined_sleepers_wake_in_deadline_order() {
        let clock = VirtualClock::starting_at(DateTime::<Utc>::from_timestamp(0, 0).expect("valid"));
        let order = Mutex::new(Vec::new());
        let sleeper = |secs: u64| {
            let (c, o) = (clock.clone(), &order);
            async move {
                c.sleep(Duration::from_secs(secs)).await;
                o.lock().expect("lock").push((secs, c.now().timestamp()));
            }
        };
        futures::join!(sleeper(30), sleeper(10), sleeper(20));
        assert_eq!(*order.lock().expect("lock"), vec![(10, 10), (20, 20), (30, 30)]);
    }

    #[tokio::test]
    async fn the_real_clock_sleeps() {
        let started = std::time::Instant::now();
        RealClock.sleep(Duration::from_millis(20)).await;
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}

//! Exponential backoff with full jitter, shared by the adapters' internal retries.

use std::time::Duration;

use rand::Rng;

/// How an adapter retries a transient failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
}

impl Backoff {
    /// A random delay in `0..=min(cap, base * 2^retry)`: full jitter spreads writers that failed
    /// together so they do not collide again in step.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << retry.min(16));
        let ceiling = exp.min(self.cap).as_micros() as u64;
        Duration::from_micros(rand::rng().random_range(0..=ceiling))
    }

    pub async fn sleep(&self, retry: u32) {
        tokio::time::sleep(self.delay(retry)).await;
    }

    /// Run `call` again, after a delay, while its failure is `transient`, up to `attempts` in
    /// all; the success, the permanent failure or the last transient one is returned. `call`
    /// makes the request anew each time.
    pub async fn retry<T, E, F, Fut>(&self, mut call: F, transient: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut retry = 0;
        loop {
            match call().await {
                Err(e) if transient(&e) && retry + 1 < self.attempts => {
                    retry += 1;
                    self.sleep(retry).await;
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let b = Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(300), attempts: 5 };
        for retry in 0..40 {
            let ceiling = (10u64 << retry.min(16)).min(300);
            for _ in 0..20 {
                assert!(b.delay(retry) <= Duration::from_millis(ceiling));
            }
        }
    }

    #[tokio::test]
    async fn retry_stops_at_success_at_a_permanent_failure_and_after_the_attempts() {
        let b = Backoff { base: Duration::from_micros(1), cap: Duration::from_micros(1), attempts: 4 };
        let calls = std::cell::Cell::new(0);
        let transient = |e: &&str| *e == "busy";

        let out: Result<u32, &str> = b
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { if calls.get() < 3 { Err("busy") } else { Ok(7) } }
                },
                transient,
            )
            .await;
        assert_eq!((out, calls.get()), (Ok(7), 3));

        calls.set(0);
        let out: Result<u32, &str> = b
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { Err("gone") }
                },
                transient,
            )
            .await;
        assert_eq!((out, calls.get()), (Err("gone"), 1));

        calls.set(0);
        let out: Result<u32, &str> = b
            .retry(
                || {
                    calls.set(calls.get() + 1);
                    async { Err("busy") }
                },
                transient,
            )
            .await;
        assert_eq!((out, calls.get()), (Err("busy"), 4));
    }
}

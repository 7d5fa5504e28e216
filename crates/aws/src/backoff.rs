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
}

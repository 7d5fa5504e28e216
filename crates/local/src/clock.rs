//! The real clock, for the embedded default.

use chrono::{DateTime, Utc};
use lector_core::ports::Clock;

/// Reads the system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

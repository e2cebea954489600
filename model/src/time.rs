//! Monotonic time as plain data, so decision cores take "now" as an argument
//! instead of reading a clock.
use std::ops::{Add, Sub};
use std::time::Duration;

/// Milliseconds on a monotonic clock whose origin belongs to the caller
/// (the master uses its own start). Only differences are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonoTime(pub u64);

impl MonoTime {
    /// The time `d` after `self`, saturating.
    pub fn after(self, d: Duration) -> MonoTime {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        MonoTime(self.0.saturating_add(ms))
    }
    /// Duration since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: MonoTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    fn add(self, d: Duration) -> MonoTime {
        self.after(d)
    }
}

impl Sub for MonoTime {
    type Output = Duration;
    fn sub(self, rhs: MonoTime) -> Duration {
        self.since(rhs)
    }
}

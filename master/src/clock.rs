//! The only place the master reads clocks. Decision code receives `MonoTime`.
use agora_model::MonoTime;
use std::time::{SystemTime, UNIX_EPOCH};

/// Monotonic time relative to the master's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }
    pub(crate) fn now(&self) -> MonoTime {
        MonoTime(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

/// Wall-clock seconds since the Unix epoch (for timestamps shown to people).
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The loop's timer clock (tokio's, so paused-time tests control it too).
pub(crate) fn instant_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

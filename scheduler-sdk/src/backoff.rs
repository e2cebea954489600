//! Capped, jittered exponential backoff for reconnecting to the masters.
//!
//! Mesos' scheduler guidance: reconnect with exponential backoff capped at
//! about 15 s. Jitter keeps many frameworks that lost the same master from
//! reconnecting in lock-step.
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Default first delay.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Default cap (Mesos guidance: about 15 s).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(15);

/// A delay schedule: attempt `n` waits a random time between half and all of
/// `min(max, min * 2^n)` ("equal jitter"), so delays grow geometrically, never
/// exceed `max`, and never fall below `min / 2`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    /// A schedule from `min` to `max` (`max` is raised to `min` if below it).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff::with_rng(min, max, SmallRng::from_os_rng())
    }

    /// A deterministic schedule, for tests.
    pub fn with_seed(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff::with_rng(min, max, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(min: Duration, max: Duration, rng: SmallRng) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
            rng,
        }
    }

    /// The un-jittered ceiling of the next delay.
    pub fn ceiling(&self) -> Duration {
        // Past 2^20 the cap has long been reached for any sane min/max; the
        // clamp keeps the shift from overflowing.
        let factor = 1u32 << self.attempt.min(20);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay; each call advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        let spread = (cap - half).as_nanos() as u64;
        half + Duration::from_nanos(if spread == 0 {
            0
        } else {
            self.rng.random_range(0..=spread)
        })
    }

    /// Back to the first delay, after a connection succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_half_ceiling_and_max() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(15));
        for seed in 0..50 {
            let mut b = Backoff::with_seed(min, max, seed);
            for n in 0..40u32 {
                let ceiling = b.ceiling();
                let d = b.next_delay();
                assert!(d <= max, "attempt {n}: {d:?} above max");
                assert!(
                    d <= ceiling && d >= ceiling / 2,
                    "attempt {n}: {d:?} outside [{ceiling:?}/2, {ceiling:?}]"
                );
                assert!(d >= min / 2, "attempt {n}: {d:?} below min/2");
            }
        }
    }

    #[test]
    fn ceiling_doubles_until_capped_and_reset_restarts() {
        let mut b = Backoff::with_seed(Duration::from_millis(500), Duration::from_secs(15), 7);
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling().as_millis() as u64;
                b.next_delay();
                c
            })
            .collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::with_seed(Duration::from_secs(1), Duration::from_secs(3), 1);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(3));
        }
        let mut zero = Backoff::with_seed(Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(zero.next_delay(), Duration::ZERO);
        let inverted = Backoff::with_seed(Duration::from_secs(2), Duration::from_secs(1), 1);
        assert_eq!(inverted.ceiling(), Duration::from_secs(2));
    }

    #[test]
    fn jitter_actually_varies() {
        let mut b = Backoff::with_seed(Duration::from_secs(8), Duration::from_secs(8), 3);
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}

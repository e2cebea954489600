//! The leader's auto-compaction policy (etcd's `--auto-compaction-mode`
//! and `--auto-compaction-retention`), as plain data: [`Compactor::decide`]
//! takes the time, the role and the revisions and answers the revision to
//! compact at, if any. The duty task (`duties.rs`) reads the clock and
//! proposes the `Compact`; every member applies it and trims in batches.
//!
//! The keyspace lives in the masters' memory, so unlike etcd (off by
//! default) history is compacted by default: [`AutoCompaction::default`]
//! keeps one hour of it, which covers a watcher resuming after a failover.

use std::collections::VecDeque;
use std::time::Duration;

use agora_kv::{Millis, Revision};

/// How much history the leader keeps before compacting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Never compacts on its own (etcd's default; clients compact).
    Off,
    /// Keeps the history of the last `retention` (etcd's `periodic` mode):
    /// compacts every `min(retention, 1h)` at the revision current
    /// `retention` ago, sampled every tenth of that interval.
    Periodic(Duration),
    /// Keeps the last `retention` revisions (etcd's `revision` mode):
    /// compacts at `current - retention` every [`REVISION_MODE_INTERVAL`].
    Revisions(i64),
}

impl Default for AutoCompaction {
    fn default() -> Self {
        AutoCompaction::Periodic(Duration::from_secs(3600))
    }
}

/// How often the `revision` mode compacts (etcd: every 5 minutes).
pub const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(300);
/// Longest interval between compactions in `periodic` mode (etcd's).
const MAX_PERIODIC_INTERVAL: Duration = Duration::from_secs(3600);
/// Samples per compaction interval in `periodic` mode (etcd's).
const SAMPLES_PER_INTERVAL: u32 = 10;
/// Shortest retention accepted: below it, sampling would spin.
const MIN_RETENTION: Duration = Duration::from_secs(1);

impl AutoCompaction {
    /// Parses etcd's flags: `mode` is `periodic` or `revision`; in periodic
    /// mode `retention` is a duration (`90s`, `30m`, `72h`) or a number of
    /// hours, in revision mode a number of revisions; `0` turns it off.
    pub fn parse(mode: &str, retention: &str) -> Result<AutoCompaction, String> {
        let retention = retention.trim();
        let off = retention == "0";
        match mode {
            "periodic" | "revision" if off => Ok(AutoCompaction::Off),
            "periodic" => parse_period(retention).map(AutoCompaction::Periodic),
            "revision" => match retention.parse::<i64>() {
                Ok(count) if count > 0 => Ok(AutoCompaction::Revisions(count)),
                _ => Err(format!(
                    "auto-compaction retention {retention:?}: a positive number of revisions"
                )),
            },
            other => Err(format!(
                "auto-compaction mode {other:?}: \"periodic\" or \"revision\""
            )),
        }
    }

    /// The setting given as etcd's two flags, either of which may be
    /// missing: `None` when neither is (keep the default); the mode alone
    /// is an error, the retention alone means `periodic` (etcd's default).
    pub fn from_flags(
        mode: Option<&str>,
        retention: Option<&str>,
    ) -> Result<Option<AutoCompaction>, String> {
        match (mode, retention) {
            (None, None) => Ok(None),
            (Some(_), None) => Err("auto-compaction mode given without a retention".to_string()),
            (mode, Some(retention)) => {
                AutoCompaction::parse(mode.unwrap_or("periodic"), retention).map(Some)
            }
        }
    }

    /// How often the duty task should call [`Compactor::decide`].
    pub fn check_interval(&self) -> Option<Duration> {
        match self {
            AutoCompaction::Off => None,
            AutoCompaction::Periodic(retention) => {
                Some((*retention).min(MAX_PERIODIC_INTERVAL) / SAMPLES_PER_INTERVAL)
            }
            AutoCompaction::Revisions(_) => Some(REVISION_MODE_INTERVAL),
        }
    }
}

/// `72h`, `30m`, `90s`, `1h30m`, or a bare number of hours (etcd's form).
fn parse_period(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("auto-compaction retention {text:?}: a duration such as 90s, 30m, 72h, or hours")
    };
    let period = if let Ok(hours) = text.parse::<u64>() {
        Duration::from_secs(hours.checked_mul(3600).ok_or_else(bad)?)
    } else {
        parse_units(text).ok_or_else(bad)?
    };
    if period < MIN_RETENTION {
        return Err(format!(
            "auto-compaction retention {text:?}: at least {}s",
            MIN_RETENTION.as_secs()
        ));
    }
    Ok(period)
}

/// A sum of `<number><h|m|s>` parts, each unit at most once, in order.
fn parse_units(text: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut rest = text;
    let mut units = ["h", "m", "s"].into_iter();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        let unit = rest.get(digits..digits + 1)?;
        let scale = match units.by_ref().find(|u| *u == unit)? {
            "h" => 3600,
            "m" => 60,
            _ => 1,
        };
        total = total.checked_add(number.checked_mul(scale)?)?;
        rest = rest.get(digits + 1..)?;
    }
    (total > 0).then(|| Duration::from_secs(total))
}

/// The policy's memory: revisions sampled while leading, and when the
/// last compaction was.
#[derive(Debug, Clone)]
pub struct Compactor {
    policy: AutoCompaction,
    /// (time, revision) samples, oldest first, while this member leads.
    samples: VecDeque<(Millis, Revision)>,
    /// When this member last compacted (or started leading).
    since: Option<Millis>,
}

impl Compactor {
    /// A compactor for `policy` that has seen nothing yet.
    pub fn new(policy: AutoCompaction) -> Compactor {
        Compactor {
            policy,
            samples: VecDeque::new(),
            since: None,
        }
    }

    /// Drops the samples and the last compaction time: this member no
    /// longer leads, and when it leads again it samples afresh (as etcd's
    /// compactor pauses and resumes), so its first compaction of a term
    /// comes one interval after it began.
    pub fn forget(&mut self) {
        self.samples.clear();
        self.since = None;
    }

    /// Called every [`AutoCompaction::check_interval`] while this member
    /// leads (call [`Compactor::forget`] when it does not): the revision to
    /// compact at now, if any.
    pub fn decide(
        &mut self,
        now: Millis,
        current: Revision,
        compacted: Revision,
    ) -> Option<Revision> {
        let since = *self.since.get_or_insert(now);
        let target = match self.policy {
            AutoCompaction::Off => return None,
            AutoCompaction::Revisions(keep) => {
                let due = elapsed(since, now) >= REVISION_MODE_INTERVAL;
                due.then(|| current.saturating_sub(keep))?
            }
            AutoCompaction::Periodic(retention) => self.periodic(now, since, current, retention)?,
        };
        self.since = Some(now);
        (target > compacted).then_some(target)
    }

    /// Periodic mode: sample, then compact at the newest sample at least
    /// `retention` old once an interval has passed since the last one.
    fn periodic(
        &mut self,
        now: Millis,
        since: Millis,
        current: Revision,
        retention: Duration,
    ) -> Option<Revision> {
        self.samples.push_back((now, current));
        let old_enough = |(at, _): &(Millis, Revision)| elapsed(*at, now) >= retention;
        // Keep the newest sample that is old enough, and everything newer.
        while self.samples.get(1).is_some_and(old_enough) {
            self.samples.pop_front();
        }
        let (_, revision) = *self.samples.front().filter(|s| old_enough(s))?;
        let interval = retention.min(MAX_PERIODIC_INTERVAL);
        (elapsed(since, now) >= interval).then_some(revision)
    }
}

fn elapsed(from: Millis, to: Millis) -> Duration {
    Duration::from_millis(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;

    #[test]
    fn flags_parse_as_etcds() {
        let parse = AutoCompaction::parse;
        let hours = |h: u64| AutoCompaction::Periodic(Duration::from_secs(h * 3600));
        assert_eq!(parse("periodic", "1"), Ok(hours(1)));
        assert_eq!(parse("periodic", "72h"), Ok(hours(72)));
        assert_eq!(
            parse("periodic", "1h30m"),
            Ok(AutoCompaction::Periodic(Duration::from_secs(5400)))
        );
        assert_eq!(
            parse("periodic", "90s"),
            Ok(AutoCompaction::Periodic(Duration::from_secs(90)))
        );
        assert_eq!(parse("periodic", "0"), Ok(AutoCompaction::Off));
        assert_eq!(parse("revision", "0"), Ok(AutoCompaction::Off));
        assert_eq!(
            parse("revision", "1000"),
            Ok(AutoCompaction::Revisions(1000))
        );
        for (mode, retention) in [
            ("periodic", "m"),
            ("periodic", "5x"),
            ("periodic", "30s1h"),
            ("periodic", "-1"),
            ("periodic", ""),
            ("periodic", "0s"),
            ("revision", "1h"),
            ("revision", "-5"),
            ("hourly", "1"),
            ("hourly", "0"),
            ("periodic", "99999999999999999999"),
        ] {
            let error = parse(mode, retention).unwrap_err();
            assert!(
                error.contains("auto-compaction"),
                "{mode} {retention}: {error}"
            );
        }
    }

    #[test]
    fn check_intervals_follow_etcd() {
        let periodic = |secs| AutoCompaction::Periodic(Duration::from_secs(secs)).check_interval();
        assert_eq!(periodic(72 * 3600), Some(Duration::from_secs(360)));
        assert_eq!(periodic(600), Some(Duration::from_secs(60)));
        assert_eq!(
            AutoCompaction::Revisions(5).check_interval(),
            Some(REVISION_MODE_INTERVAL)
        );
        assert_eq!(AutoCompaction::Off.check_interval(), None);
    }

    /// Ten-minute retention, checked every minute while the revision grows
    /// by 100 a minute: the first compaction comes once ten minutes of
    /// samples exist, at the revision of ten minutes before; then every ten
    /// minutes, never at or below what is already compacted.
    #[test]
    fn periodic_keeps_the_retention_window() {
        let policy = AutoCompaction::Periodic(Duration::from_secs(600));
        let mut compactor = Compactor::new(policy);
        let mut compacted = 0;
        let mut decisions = Vec::new();
        for minute in 0..=30 {
            let revision = 1 + 100 * minute;
            if let Some(at) = compactor.decide(minute * MINUTE, revision, compacted) {
                decisions.push((minute, at));
                compacted = at;
            }
        }
        assert_eq!(decisions, [(10, 1), (20, 1001), (30, 2001)]);
    }

    #[test]
    fn revision_mode_keeps_the_last_revisions() {
        let mut compactor = Compactor::new(AutoCompaction::Revisions(500));
        let five_minutes = 5 * MINUTE;
        assert_eq!(compactor.decide(0, 100, 0), None, "starts the clock");
        assert_eq!(
            compactor.decide(five_minutes, 400, 0),
            None,
            "nothing old enough"
        );
        assert_eq!(compactor.decide(2 * five_minutes, 2_000, 0), Some(1_500));
        assert_eq!(
            compactor.decide(2 * five_minutes + MINUTE, 3_000, 1_500),
            None
        );
        assert_eq!(
            compactor.decide(3 * five_minutes, 3_000, 1_500),
            Some(2_500)
        );
    }

    /// Losing leadership forgets the samples: a new term starts over, so a
    /// leader never compacts on what another member's clock saw.
    #[test]
    fn a_new_leader_starts_sampling_afresh() {
        let mut compactor = Compactor::new(AutoCompaction::Periodic(Duration::from_secs(600)));
        for minute in 0..10 {
            assert_eq!(compactor.decide(minute * MINUTE, 10 * minute, 0), None);
        }
        compactor.forget();
        for minute in 11..21 {
            assert_eq!(compactor.decide(minute * MINUTE, 10 * minute, 0), None);
        }
        assert_eq!(compactor.decide(21 * MINUTE, 210, 0), Some(110));
    }

    #[test]
    fn off_never_compacts() {
        let mut compactor = Compactor::new(AutoCompaction::Off);
        for minute in 0..100 {
            assert_eq!(compactor.decide(minute * MINUTE, 1_000 * minute, 0), None);
        }
    }
}

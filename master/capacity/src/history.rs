//! Utilisation history without Prometheus: the leading master samples the
//! capacity model every 10 s ([`sample`]) and replicates each sample, and
//! [`History::record`] folds it into three downsampled rings — 10 s for an
//! hour, 1 min for a day, 1 h for 30 days — on every member alike, so the
//! history survives a change of leader.
//!
//! Deterministic: the time is data in the sample, the averages are computed
//! in the same order everywhere, and nothing reads a clock.
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::breakdown::{Breakdown, Capacity};
use crate::shapes::Fragmentation;

/// The rings: (step in ms, points kept).
pub const TIERS: [(u64, usize); 3] = [(10_000, 360), (60_000, 1_440), (3_600_000, 720)];

/// How often the leader samples, ms (the finest tier's step).
pub const SAMPLE_PERIOD_MS: u64 = TIERS[0].0;

/// Scopes kept per sample: the cluster, then roles, then attribute values,
/// in that order, up to this many (attribute values can be unbounded, and
/// every scope costs ~20 series × 2,520 points in the replicated state).
pub const MAX_HISTORY_SCOPES: usize = 48;

/// The scope of the whole cluster.
pub const CLUSTER_SCOPE: &str = "cluster";

/// One sample: per scope (`cluster`, `role:web`, `attr:rack=r1`), per
/// series (`cpus.allocated`, `mem.free`, `placeable.small`, ...), a value
/// in thousandths. Integers, not floats, so that every replica — whether it
/// applied the entry, decoded it from the log or restored a snapshot —
/// holds exactly the same numbers (the resource model is fixed-point with
/// three decimals anyway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistorySample {
    /// When it was taken, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// Scope → series → value × 1000.
    pub scopes: BTreeMap<String, BTreeMap<String, i64>>,
}

/// `v` in thousandths.
pub fn milli(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

/// The series of one breakdown row: per dimension, total, allocated,
/// offered, free and reserved (mem and disk in MB, as everywhere in the
/// capacity model).
fn row_series(b: &Breakdown, out: &mut BTreeMap<String, i64>) {
    let reserved = b.reserved_total();
    for (state, amount) in [
        ("total", &b.total),
        ("allocated", &b.allocated),
        ("offered", &b.offered),
        ("free", &b.free),
        ("reserved", &reserved),
    ] {
        dims(amount, state, out);
    }
}

fn dims(a: &Amount, state: &str, out: &mut BTreeMap<String, i64>) {
    for (dim, v) in [
        ("cpus", a.cpus.as_f64()),
        ("mem", a.mem.as_f64()),
        ("disk", a.disk.as_f64()),
        ("gpus", a.gpus.as_f64()),
    ] {
        out.insert(format!("{dim}.{state}"), milli(v));
    }
}

/// The sample of one snapshot's capacity and fragmentation; `role_held`
/// is what each role's frameworks hold in tasks and outstanding offers
/// (the master's DRF tallies), sampled as the role's `held` series beside
/// its reservations.
pub fn sample(
    cap: &Capacity,
    frag: &Fragmentation,
    role_held: &BTreeMap<String, Amount>,
    at_unix_ms: u64,
) -> HistorySample {
    let mut scopes = BTreeMap::new();
    let mut cluster = BTreeMap::new();
    row_series(&cap.cluster, &mut cluster);
    cluster.insert("agents".into(), milli(cap.agents.len() as f64));
    for s in &frag.shapes {
        cluster.insert(
            format!("placeable.{}", s.shape.name),
            milli(f64::from(s.cluster)),
        );
    }
    scopes.insert(CLUSTER_SCOPE.to_string(), cluster);
    let mut roles: Vec<&String> = cap.roles.keys().chain(role_held.keys()).collect();
    roles.sort();
    roles.dedup();
    for role in roles {
        if scopes.len() >= MAX_HISTORY_SCOPES {
            break;
        }
        let mut series = BTreeMap::new();
        let none = Amount::default();
        dims(
            cap.roles.get(role).unwrap_or(&none),
            "reserved",
            &mut series,
        );
        dims(role_held.get(role).unwrap_or(&none), "held", &mut series);
        scopes.insert(format!("role:{role}"), series);
    }
    'attrs: for (name, values) in &cap.by_attribute {
        for (value, row) in values {
            if scopes.len() >= MAX_HISTORY_SCOPES {
                break 'attrs;
            }
            let mut series = BTreeMap::new();
            row_series(row, &mut series);
            scopes.insert(format!("attr:{name}={value}"), series);
        }
    }
    HistorySample { at_unix_ms, scopes }
}

/// The bucket a tier is filling: sums and counts per scope and series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct OpenBucket {
    start_ms: u64,
    sums: BTreeMap<String, BTreeMap<String, (i64, i64)>>,
}

impl OpenBucket {
    /// Rounded integer averages (the same on every replica).
    fn averages(&self) -> BTreeMap<String, BTreeMap<String, i64>> {
        self.sums
            .iter()
            .map(|(scope, series)| {
                let avg = series
                    .iter()
                    .map(|(name, (sum, n))| {
                        let n = (*n).max(1);
                        (name.clone(), (2 * sum + n).div_euclid(2 * n))
                    })
                    .collect();
                (scope.clone(), avg)
            })
            .collect()
    }
}

/// One ring: bucket start times and, per scope and series, one value per
/// time (`None` where the series had no sample in that bucket).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tier {
    step_ms: u64,
    keep: usize,
    times: VecDeque<u64>,
    series: BTreeMap<String, BTreeMap<String, VecDeque<Option<i64>>>>,
    open: Option<OpenBucket>,
}

impl Tier {
    fn new(step_ms: u64, keep: usize) -> Tier {
        Tier {
            step_ms,
            keep,
            ..Tier::default()
        }
    }

    /// Adds a sample; returns false (and changes nothing) if it is older
    /// than the bucket being filled (a new leader whose clock is behind).
    fn record(&mut self, s: &HistorySample) -> bool {
        let start = s.at_unix_ms - s.at_unix_ms % self.step_ms.max(1);
        if let Some(open) = &self.open {
            if start < open.start_ms {
                return false;
            }
            if start > open.start_ms {
                let done = self.open.take().unwrap_or_default();
                self.close(&done);
            }
        }
        let open = self.open.get_or_insert_with(|| OpenBucket {
            start_ms: start,
            sums: BTreeMap::new(),
        });
        for (scope, series) in &s.scopes {
            let sums = open.sums.entry(scope.clone()).or_default();
            for (name, v) in series {
                let e = sums.entry(name.clone()).or_insert((0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        true
    }

    /// Appends a finished bucket as one point and trims the ring.
    fn close(&mut self, bucket: &OpenBucket) {
        let len = self.times.len();
        self.times.push_back(bucket.start_ms);
        let avg = bucket.averages();
        for (scope, series) in &avg {
            let known = self.series.entry(scope.clone()).or_default();
            for name in series.keys() {
                known
                    .entry(name.clone())
                    .or_insert_with(|| std::iter::repeat_n(None, len).collect());
            }
        }
        for (scope, known) in &mut self.series {
            for (name, values) in known.iter_mut() {
                values.push_back(avg.get(scope).and_then(|s| s.get(name)).copied());
            }
        }
        while self.times.len() > self.keep {
            self.times.pop_front();
            for known in self.series.values_mut() {
                for values in known.values_mut() {
                    values.pop_front();
                }
                known.retain(|_, v| v.iter().any(Option::is_some));
            }
            self.series.retain(|_, known| !known.is_empty());
        }
    }

    /// The earliest time this ring holds, ms.
    fn earliest(&self) -> Option<u64> {
        self.times
            .front()
            .copied()
            .or(self.open.as_ref().map(|o| o.start_ms))
    }
}

/// The three rings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    tiers: Vec<Tier>,
}

impl Default for History {
    fn default() -> History {
        History {
            tiers: TIERS.iter().map(|(s, k)| Tier::new(*s, *k)).collect(),
        }
    }
}

/// What [`History::query`] is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The scope (`cluster` when empty).
    pub scope: String,
    /// From this time, ms (inclusive; default: everything kept).
    pub from_ms: Option<u64>,
    /// Up to this time, ms (inclusive; default: now).
    pub to_ms: Option<u64>,
    /// The finest step wanted, ms (the answer's step is the finest tier at
    /// least this coarse that reaches back to `from_ms`).
    pub step_ms: Option<u64>,
}

/// One scope's points from one tier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistorySeries {
    /// The scope.
    pub scope: String,
    /// The tier's step, seconds.
    pub step_seconds: u64,
    /// Bucket start times, seconds since the Unix epoch; the last point may
    /// be the bucket still filling (an average of the samples so far).
    pub times: Vec<u64>,
    /// Series → one value per time (`null`: no sample in that bucket).
    pub series: BTreeMap<String, Vec<Option<f64>>>,
    /// Every scope the history holds.
    pub scopes: Vec<String>,
}

impl History {
    /// Folds a sample into every ring. Returns false if it was refused
    /// (older than what the finest ring is filling).
    pub fn record(&mut self, s: &HistorySample) -> bool {
        let Some(finest) = self.tiers.first() else {
            return false;
        };
        if finest
            .open
            .as_ref()
            .is_some_and(|o| s.at_unix_ms < o.start_ms)
        {
            return false;
        }
        for t in &mut self.tiers {
            t.record(s);
        }
        true
    }

    /// Every scope any ring holds.
    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tiers
            .iter()
            .flat_map(|t| {
                t.series
                    .keys()
                    .chain(t.open.iter().flat_map(|o| o.sums.keys()))
            })
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The points of one scope.
    pub fn query(&self, q: &HistoryQuery) -> HistorySeries {
        let scope = if q.scope.is_empty() {
            CLUSTER_SCOPE
        } else {
            &q.scope
        };
        let want_step = q.step_ms.unwrap_or(0);
        let from = q.from_ms.unwrap_or(0);
        let to = q.to_ms.unwrap_or(u64::MAX);
        let tier = self
            .tiers
            .iter()
            .filter(|t| t.step_ms >= want_step)
            .find(|t| t.earliest().is_some_and(|e| e <= from) || t.times.len() < t.keep)
            .or(self.tiers.last());
        let mut out = HistorySeries {
            scope: scope.to_string(),
            step_seconds: tier.map_or(0, |t| t.step_ms / 1000),
            times: Vec::new(),
            series: BTreeMap::new(),
            scopes: self.scopes(),
        };
        let Some(t) = tier else {
            return out;
        };
        let open = t.open.as_ref().map(|o| (o.start_ms, o.averages()));
        let open_scope = open.as_ref().and_then(|(_, a)| a.get(scope));
        let mut names: Vec<&String> = t
            .series
            .get(scope)
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        names.extend(open_scope.into_iter().flat_map(|s| s.keys()));
        names.sort();
        names.dedup();
        let picked: Vec<usize> = (0..t.times.len())
            .filter(|i| (from..=to).contains(&t.times[*i]))
            .collect();
        let open_in = open
            .as_ref()
            .is_some_and(|(start, _)| (from..=to).contains(start));
        out.times = picked.iter().map(|i| t.times[*i] / 1000).collect();
        if let (true, Some((start, _))) = (open_in, &open) {
            out.times.push(start / 1000);
        }
        for name in names {
            let stored = t.series.get(scope).and_then(|s| s.get(name));
            let mut values: Vec<Option<f64>> = picked
                .iter()
                .map(|i| {
                    stored
                        .and_then(|v| v.get(*i).copied().flatten())
                        .map(unmilli)
                })
                .collect();
            if open_in {
                values.push(open_scope.and_then(|s| s.get(name)).copied().map(unmilli));
            }
            out.series.insert(name.clone(), values);
        }
        out
    }
}

fn unmilli(v: i64) -> f64 {
    v as f64 / 1000.0
}

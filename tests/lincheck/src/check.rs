//! `check`: partition by key, search each key, explain a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::history::{Call, History, Key, Operation, Outcome, Value};
use crate::model::{ABSENT, ICall, IRet, Interner, State, UNREAD, step, why_not};
use crate::search::{self, KeyOp, KeyRun, Stop};

/// How to run a check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Give up (with [`Verdict::TimedOut`]) after this long; `None`: never.
    pub time_budget: Option<Duration>,
    /// Keys are checked on this many threads (at least 1).
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        CheckOptions {
            time_budget: Some(Duration::from_secs(300)),
            threads,
        }
    }
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history is linearizable, hence (keys being
    /// independent) the whole history is.
    Linearizable,
    /// Some key's history is not linearizable.
    NotLinearizable(Box<Violation>),
    /// The time budget ran out before every key was decided.
    TimedOut,
}

/// An explanation of a non-linearizable key: the search's deepest
/// linearization and the ops none of which could extend it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: Key,
    /// How many of the key's ops the deepest linearization placed.
    pub linearized: usize,
    /// Its last few ops, in order (the writes that set the state).
    pub linearized_tail: Vec<Operation>,
    /// The key's value after them.
    pub state: Option<Value>,
    /// Each op that could have come next, with why it could not.
    pub stuck: Vec<(Operation, String)>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable.", self.key)?;
        writeln!(
            f,
            "Deepest linearization: {} ops, ending (value then {:?}):",
            self.linearized, self.state
        )?;
        for op in &self.linearized_tail {
            writeln!(f, "  {op}")?;
        }
        writeln!(f, "None of these can come next:")?;
        for (op, why) in &self.stuck {
            writeln!(f, "  {op}: {why}")?;
        }
        Ok(())
    }
}

/// Counters from one check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Operations in the history.
    pub ops: usize,
    /// Of them, with an unknown outcome.
    pub unknown: usize,
    /// Unknown reads, dropped because a read has no effect.
    pub dropped_unknown_reads: usize,
    /// Unknown writes given a finite return time because a completed op
    /// observed their value.
    pub bounded_unknown_writes: usize,
    /// Writes of a value that no op read or compared with, merged into one
    /// state.
    pub unread_writes: usize,
    /// Distinct keys (independent sub-histories).
    pub keys: usize,
    /// Ops of the largest sub-history.
    pub max_key_ops: usize,
    /// Search steps over all keys.
    pub steps: u64,
    /// Memo entries over all keys.
    pub memo_entries: usize,
    /// Wall time of the check.
    pub elapsed: Duration,
}

/// A verdict and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The answer.
    pub verdict: Verdict,
    /// What it took.
    pub stats: CheckStats,
}

impl CheckResult {
    /// True only for [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        self.verdict == Verdict::Linearizable
    }
}

/// Checks `history` with [`CheckOptions::default`].
pub fn check(history: &History) -> CheckResult {
    check_with(history, &CheckOptions::default())
}

/// One key's ops, interned.
struct KeyHistory<'h> {
    key: &'h str,
    ops: Vec<KeyOp>,
    // ops[i] came from history.ops[origin[i]]
    origin: Vec<usize>,
    names: Interner,
    /// The calls before [`merge_unread`], to explain with real values.
    real_calls: Vec<ICall>,
}

/// Splits the history by key. Keys are independent registers, so the
/// history is linearizable iff every key's is (P-compositionality;
/// Herlihy & Wing's locality).
fn partition<'h>(history: &'h History, stats: &mut CheckStats) -> Vec<KeyHistory<'h>> {
    let mut by_key: BTreeMap<&'h str, KeyHistory<'h>> = BTreeMap::new();
    for (idx, op) in history.ops.iter().enumerate() {
        if matches!(op.call, Call::Get { .. }) && op.outcome == Outcome::Unknown {
            stats.dropped_unknown_reads += 1;
            continue;
        }
        let key = op.call.key();
        let kh = by_key.entry(key).or_insert_with(|| KeyHistory {
            key,
            ops: Vec::new(),
            origin: Vec::new(),
            names: Interner::default(),
            real_calls: Vec::new(),
        });
        let (call, ret) = kh.names.op(&op.call, &op.outcome);
        kh.ops.push(KeyOp {
            call,
            ret,
            invoked_ns: op.invoked_ns,
            // A return before the invocation would break the event list's
            // invariant (a call precedes its return); see the crate docs.
            returned_ns: op.returned_ns().map(|r| r.max(op.invoked_ns)),
        });
        kh.origin.push(idx);
    }
    let mut keys: Vec<KeyHistory<'h>> = by_key.into_values().collect();
    for kh in &mut keys {
        stats.bounded_unknown_writes += bound_unknown_writes(&mut kh.ops);
        kh.real_calls = kh.ops.iter().map(|op| op.call).collect();
        stats.unread_writes += merge_unread(&mut kh.ops);
    }
    keys
}

/// Gives an unknown write a finite return time when a completed op saw
/// its value: if `v` is written by that op only, any op that read `v`
/// (Get, prev_kv, a failed CAS's read) or compared equal to it (a
/// successful CAS) proves the write took effect before that op returned.
/// So no linearization is lost, and the search no longer carries the
/// write as a candidate to the end of the history (the cost of unknown
/// ops). Returns how many writes were bounded.
fn bound_unknown_writes(ops: &mut [KeyOp]) -> usize {
    use std::collections::HashMap;
    let written = |op: &KeyOp| match op.call {
        ICall::Put(v) | ICall::Cas { new: v, .. } => Some(v),
        ICall::Get | ICall::Delete => None,
    };
    let mut writers: HashMap<State, usize> = HashMap::new();
    for v in ops.iter().filter_map(written) {
        *writers.entry(v).or_default() += 1;
    }
    // The earliest return of a completed op that observed each value.
    let mut first_seen: HashMap<State, u64> = HashMap::new();
    for op in ops.iter() {
        let Some(returned) = op.returned_ns else {
            continue;
        };
        let seen = match (op.call, op.ret) {
            (_, IRet::Get(v) | IRet::PutPrev(v) | IRet::CasFailed(v)) => v,
            (ICall::Cas { expected, .. }, IRet::CasOk) => expected,
            _ => continue,
        };
        let t = first_seen.entry(seen).or_insert(returned);
        *t = (*t).min(returned);
    }
    let mut bounded = 0;
    for op in ops.iter_mut().filter(|op| op.returned_ns.is_none()) {
        let Some(v) = written(op) else { continue };
        if v == ABSENT || writers.get(&v) != Some(&1) {
            continue;
        }
        if let Some(&t) = first_seen.get(&v) {
            // A read before the write's invocation is an anomaly anyway;
            // keep the interval well formed so the search reports it.
            op.returned_ns = Some(t.max(op.invoked_ns));
            bounded += 1;
        }
    }
    bounded
}

/// Rewrites every written value that no op read (Get, prev_kv, a failed
/// CAS's read) or compared with (a CAS's expected value) to [`UNREAD`].
/// Sound because the model looks at a value only to compare it with a
/// read or an expected value. Runs after [`bound_unknown_writes`], which
/// needs the real values. Returns how many writes changed.
fn merge_unread(ops: &mut [KeyOp]) -> usize {
    let mut read = std::collections::HashSet::new();
    for op in ops.iter() {
        if let ICall::Cas { expected, .. } = op.call {
            read.insert(expected);
        }
        if let IRet::Get(v) | IRet::PutPrev(v) | IRet::CasFailed(v) = op.ret {
            read.insert(v);
        }
    }
    let mut merged = 0;
    for op in ops.iter_mut() {
        if let ICall::Put(v) | ICall::Cas { new: v, .. } = &mut op.call
            && !read.contains(v)
        {
            *v = UNREAD;
            merged += 1;
        }
    }
    merged
}

/// Checks `history`: partitions it by key and searches the keys on
/// `options.threads` threads, largest first; stops at the first failure.
pub fn check_with(history: &History, options: &CheckOptions) -> CheckResult {
    let started = Instant::now();
    let mut stats = CheckStats {
        ops: history.ops.len(),
        unknown: history.unknown(),
        ..CheckStats::default()
    };
    let mut keys = partition(history, &mut stats);
    keys.sort_by_key(|k| std::cmp::Reverse(k.ops.len()));
    stats.keys = keys.len();
    stats.max_key_ops = keys.first().map_or(0, |k| k.ops.len());
    let failed = AtomicBool::new(false);
    let stop = Stop {
        deadline: options.time_budget.map(|b| started + b),
        failed: &failed,
    };
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<(usize, KeyRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..options.threads.clamp(1, keys.len().max(1)) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(kh) = keys.get(k) else { break };
                    let run = search::check_key(&kh.ops, &stop);
                    if matches!(run.outcome, search::Outcome::NotLinearizable(_)) {
                        failed.store(true, Ordering::Relaxed);
                    }
                    // A poisoned lock means another worker panicked; the
                    // scope re-raises that panic, so nothing is lost here.
                    if let Ok(mut runs) = runs.lock() {
                        runs.push((k, run));
                    }
                }
            });
        }
    });
    let mut runs = runs.into_inner().unwrap_or_default();
    runs.sort_by(|a, b| keys[a.0].key.cmp(keys[b.0].key));
    let mut verdict = Verdict::Linearizable;
    for (k, run) in runs {
        stats.steps += run.steps;
        stats.memo_entries += run.memo_entries;
        match run.outcome {
            search::Outcome::Linearizable => {}
            search::Outcome::NotLinearizable(deepest)
                if !matches!(verdict, Verdict::NotLinearizable(_)) =>
            {
                verdict = Verdict::NotLinearizable(Box::new(explain(history, &keys[k], deepest)));
            }
            search::Outcome::NotLinearizable(_) => {}
            search::Outcome::Stopped if verdict == Verdict::Linearizable => {
                verdict = Verdict::TimedOut
            }
            search::Outcome::Stopped => {}
        }
    }
    // Keys that were never started (a failure stopped the workers) leave
    // the verdict as decided by the keys that ran.
    stats.elapsed = started.elapsed();
    CheckResult { verdict, stats }
}

/// How many linearized ops an explanation shows.
const TAIL: usize = 8;

fn explain(history: &History, kh: &KeyHistory<'_>, deepest: search::Deepest) -> Violation {
    let original = |i: usize| history.ops[kh.origin[i]].clone();
    // The search ran on merged values; replaying its path with the real
    // ones gives the same steps (the merge hides nothing any op compares)
    // and a state worth printing.
    let state = deepest.path.iter().fold(ABSENT, |st, &i| {
        step(st, kh.real_calls[i], kh.ops[i].ret).unwrap_or(st)
    });
    let tail_from = deepest.path.len().saturating_sub(TAIL);
    let stuck = deepest
        .candidates
        .iter()
        .map(|&i| {
            let (call, ret) = (kh.real_calls[i], kh.ops[i].ret);
            let why = if step(state, call, ret).is_some() {
                "it fits here, but no linearization of the rest follows it".to_string()
            } else {
                why_not(state, call, ret, &kh.names)
            };
            (original(i), why)
        })
        .collect();
    Violation {
        key: kh.key.to_string(),
        linearized: deepest.path.len(),
        linearized_tail: deepest.path[tail_from..]
            .iter()
            .map(|&i| original(i))
            .collect(),
        state: kh.names.name(state),
        stuck,
    }
}

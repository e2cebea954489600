//! A linearizability checker for single-key etcd-v3 KV operations, and a
//! recorder of concurrent histories against etcd-v3 endpoints (a real
//! etcd or Agora's masters).
//!
//! Use: `let h = record(&endpoints, RecordConfig::default()).await;` while
//! injecting faults, then `check(&h)`; a failure names the key and ops.
//!
//! # Model
//! Every key is an independent register holding a value or nothing, and
//! starts absent. Operations, with etcd's semantics:
//! - `Get(k)` returns the value or `None`;
//! - `Put(k, v)` returns ok, or ok and the previous value (`prev_kv`);
//! - `Delete(k)` returns the number of keys deleted (0 or 1);
//! - `Cas(k, expected, new)`, a single-key txn: if the value equals
//!   `expected` (`None`: the key is absent, etcd's `version == 0`) put
//!   `new` and succeed, else fail and return the value read by the
//!   else-branch. (etcd's value compare fails on an absent key, which is why
//!   "expect absent" is a version compare.)
//!
//! Revisions are not modelled: a history is checked on values only. That is
//! sound (no false alarm: ignoring an output only accepts more) but weaker
//! than a revision-aware model, which could also catch revision anomalies
//! and order ops across keys. Multi-key transactions, ranges, leases and
//! watches are out of scope: they break the per-key partitioning.
//!
//! Outcomes: an op whose outcome is unknown (timeout, lost connection, an
//! error that does not rule out that it was applied) gets a return time of
//! +∞ and accepts any result, as in Porcupine and Jepsen: it may take
//! effect at any point after its invocation, or never (placed last). An
//! unknown read is dropped (reads have no effect), as is an op that
//! certainly failed. An unknown write whose value (written by it alone) a
//! completed op observed gets that op's return time instead of +∞: it
//! must have taken effect by then, and an open-ended op is what makes the
//! search expensive.
//!
//! # Algorithm
//! P-compositional Wing & Gong search with Lowe's just-in-time
//! linearization and memoisation, as in Porcupine (Athalye): the history is
//! split by key (linearizability is local, Herlihy & Wing, so the whole is
//! linearizable iff each key is); each key's call/return events form a
//! time-ordered linked list; the search tries to linearize a pending call,
//! backtracks at a return whose op it has not placed, and never revisits a
//! (set of linearized ops, state) pair. Open-ended ops cost the most (one
//! can be placed anywhere after its invocation), so: the search succeeds
//! once every op with a finite return is placed (open ones go last, where
//! any result is fine); it tries finite candidates before open ones; and a
//! pair is skipped if a visited pair has the same state and the same
//! finite ops but a subset of the open ones (whatever completes the
//! larger completes the smaller, with the extra open ops appended). With
//! that, the 10 %-unknown rejection proptest runs 3,000 cases in ~8 s;
//! with equality memoisation only, it did not finish in 15 minutes.
//! Values are interned per key, so a state is a `u32` and the memo key
//! bitsets plus a `u32`. Written values that no op read or compared with
//! are merged into one state (no op can tell them apart), which makes all
//! open puts of such values interchangeable: only the earliest-invoked
//! candidate among them is tried. Unknown puts that never took effect were
//! the costly case: 10,000 generated ops with 3 % of them unknown took
//! 6.4 s before this and 0.3 s after; 100,000 ops with 0.3 % unknown 119 s
//! and 3 s (debug build, busy 2-core machine). Keys run in
//! parallel on [`CheckOptions::threads`]. Ops touching in time (one's
//! return time equals another's invocation) count as concurrent.
//!
//! Why our own checker: on crates.io (checked with `cargo info`, Nov 2026)
//! `stateright` 0.31's `LinearizabilityTester` is an unmemoised recursive
//! search that clones the per-thread history at each step and has no key
//! partitioning: exponential, fine for model-checking small actor systems,
//! not for 10,000 recorded ops. `todc-utils` 0.1.1 has a memoised WGL
//! checker but no partitioning, only a bool (no explanation), and unwraps;
//! one release. No Porcupine port was found. The search here is ~300 lines.
//!
//! # Limits
//! - Cost is exponential in the worst case (many concurrent ops; many
//!   unknown deletes or CASes on one key, which stay candidates to the
//!   end and are not interchangeable like unread puts);
//!   [`CheckOptions::time_budget`] bounds it ([`Verdict::TimedOut`]).
//! - Memory: one memo entry is a bitset over the key's ops, so a key with
//!   n ops can cost O(n²/8) bytes; 2,500 ops per key use a few MB. Spread
//!   larger runs over more keys.
//! - Times must satisfy `invoked_ns <= returned_ns`; a return before its
//!   invocation is taken as equal to it.
//! - The explanation is the search's deepest linearization and the ops
//!   none of which could extend it; it is not minimised further.
//! - The recorder assumes its keys are absent at the start (fresh prefix)
//!   and that nobody else writes them.
//!
//! # Layout
//! - `history.rs`: [`History`], [`Operation`], [`Call`], [`Ret`], [`Outcome`].
//! - `model.rs`: one key's sequential model over interned values.
//! - `search.rs`: the per-key search.
//! - `check.rs`: [`check`], partitioning, threads, the explanation.
//! - `record.rs`: [`record`] with etcd-client.
#![forbid(unsafe_code)]

mod check;
mod history;
mod model;
mod record;
mod search;

pub use check::{CheckOptions, CheckResult, CheckStats, Verdict, Violation, check, check_with};
pub use history::{Call, History, Key, Operation, Outcome, Ret, Value};
pub use record::{RecordConfig, record};

#[cfg(test)]
mod tests;

//! The per-key search: Wing & Gong's algorithm with Lowe's just-in-time
//! linearization and memoisation, in the shape of Porcupine's
//! `checkSingle`.
//!
//! The history's call and return events sit in one doubly linked list
//! ordered by time. The search walks it from the front: a call event is a
//! candidate for the next linearization point; a return event means the
//! op it ends must already have been linearized, so the search backtracks.
//! Linearizing an op lifts both of its events out of the list (dancing
//! links); backtracking puts them back. A (linearized set, state) pair that
//! was already explored is never explored again, which is what makes
//! histories of thousands of ops per key tractable.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::model::{ABSENT, ICall, IRet, State, step};

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// One op of one key, interned, with its real-time interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyOp {
    pub(crate) call: ICall,
    pub(crate) ret: IRet,
    pub(crate) invoked_ns: u64,
    /// `None`: unknown outcome, returns at +∞.
    pub(crate) returned_ns: Option<u64>,
}

/// Where the search got furthest, for the explanation of a failure.
#[derive(Debug, Default)]
pub(crate) struct Deepest {
    /// Indices of the ops linearized, in linearization order.
    pub(crate) path: Vec<usize>,
    /// The key's state after them.
    pub(crate) state: State,
    /// The ops that could have come next; none of them could.
    pub(crate) candidates: Vec<usize>,
}

/// How one key's search ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Linearizable,
    NotLinearizable(Deepest),
    /// The time budget ran out or another key already failed.
    Stopped,
}

/// What one key's search did.
#[derive(Debug)]
pub(crate) struct KeyRun {
    pub(crate) outcome: Outcome,
    pub(crate) steps: u64,
    pub(crate) memo_entries: usize,
}

/// The event list: node 0 is the head; node `1 + 2i` is op i's call and
/// `2 + 2i` its return.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Self {
        let mut order: Vec<usize> = (1..=2 * ops.len()).collect();
        // Calls sort before returns at equal times, so ops that touch in
        // time count as concurrent: the lenient reading, so a coarse clock
        // can cause a missed anomaly but never a false alarm.
        order.sort_by_key(|&node| {
            let op = &ops[(node - 1) / 2];
            if node % 2 == 1 {
                (op.invoked_ns, 0, node)
            } else {
                (op.returned_ns.unwrap_or(u64::MAX), 1, node)
            }
        });
        let mut next = vec![NIL; 2 * ops.len() + 1];
        let mut prev = vec![NIL; 2 * ops.len() + 1];
        let mut last = HEAD;
        for node in order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Events { next, prev }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    /// Lifts op `i` (call then return) out of the list.
    fn lift(&mut self, i: usize) {
        self.unlink(1 + 2 * i);
        self.unlink(2 + 2 * i);
    }

    /// Undoes `lift(i)`; valid because lifts are undone in reverse order.
    fn unlift(&mut self, i: usize) {
        self.relink(2 + 2 * i);
        self.relink(1 + 2 * i);
    }

    /// The calls before the first return: the ops that may come next.
    fn candidates(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut node = self.next[HEAD];
        while node != NIL && node % 2 == 1 {
            out.push((node - 1) / 2);
            node = self.next[node];
        }
        out
    }
}

/// A set of op indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Stop conditions shared by all keys of one check.
pub(crate) struct Stop<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) failed: &'a AtomicBool,
}

impl Stop<'_> {
    fn now(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Tracks the deepest linearization reached, copying only the part of
/// the path that changed since the last record (amortised linear).
struct DeepestTracker {
    best: Deepest,
    /// The stack depth below which `best.path` still equals the stack.
    low_water: usize,
}

impl DeepestTracker {
    fn popped(&mut self, depth: usize) {
        self.low_water = self.low_water.min(depth);
    }

    fn pushed(&mut self, stack: &[(usize, State)], state: State, events: &Events) {
        if stack.len() <= self.best.path.len() {
            return;
        }
        self.best.path.truncate(self.low_water);
        self.best
            .path
            .extend(stack[self.low_water..].iter().map(|(i, _)| *i));
        self.low_water = stack.len();
        self.best.state = state;
        self.best.candidates = events.candidates();
    }
}

/// Checks one key's ops against the register model from [`ABSENT`].
pub(crate) fn check_key(ops: &[KeyOp], stop: &Stop<'_>) -> KeyRun {
    let mut events = Events::new(ops);
    let mut linearized = Bits::new(ops.len());
    let mut memo: HashSet<(Bits, State)> = HashSet::new();
    // (op linearized, state before it)
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut deepest = DeepestTracker {
        best: Deepest::default(),
        low_water: 0,
    };
    let mut state = ABSENT;
    let mut steps: u64 = 0;
    let mut node = events.next[HEAD];
    let run = |outcome, steps, memo: &HashSet<(Bits, State)>| KeyRun {
        outcome,
        steps,
        memo_entries: memo.len(),
    };
    while events.next[HEAD] != NIL {
        steps += 1;
        // Every 4096 steps, starting with the first, so a spent budget
        // stops even a small key.
        if steps % 4096 == 1 && stop.now() {
            return run(Outcome::Stopped, steps, &memo);
        }
        if node != NIL && node % 2 == 1 {
            let i = (node - 1) / 2;
            if let Some(next_state) = step(state, ops[i].call, ops[i].ret) {
                let mut tried = linearized.clone();
                tried.set(i);
                if memo.insert((tried, next_state)) {
                    stack.push((i, state));
                    linearized.set(i);
                    state = next_state;
                    events.lift(i);
                    deepest.pushed(&stack, state, &events);
                    node = events.next[HEAD];
                    continue;
                }
            }
            node = events.next[node];
        } else {
            // A return (or the end): its op must come before anything
            // later, and every candidate before it failed; backtrack.
            let Some((i, before)) = stack.pop() else {
                if deepest.best.candidates.is_empty() {
                    deepest.best.candidates = events.candidates();
                }
                return run(Outcome::NotLinearizable(deepest.best), steps, &memo);
            };
            deepest.popped(stack.len());
            linearized.clear(i);
            state = before;
            events.unlift(i);
            node = events.next[1 + 2 * i];
        }
    }
    run(Outcome::Linearizable, steps, &memo)
}

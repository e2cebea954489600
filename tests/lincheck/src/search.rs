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
//! histories of thousands of ops per key tractable. Open-ended ops (unknown
//! outcome, return at +∞) get three more rules, see [`check_key`] and
//! `Memo`: they need not be placed at all; a pair that only adds open ops
//! to a visited pair with the same state is skipped; and of the open puts
//! of unread values (interchangeable), only the earliest is tried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::model::{ABSENT, ICall, IRet, State, UNREAD, step};

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
    fn is_subset(&self, of: &Bits) -> bool {
        self.0.iter().zip(of.0.iter()).all(|(a, b)| a & !b == 0)
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

    fn pushed(&mut self, stack: &[(usize, State)], events: &Events) {
        if stack.len() <= self.best.path.len() {
            return;
        }
        self.best.path.truncate(self.low_water);
        self.best
            .path
            .extend(stack[self.low_water..].iter().map(|(i, _)| *i));
        self.low_water = stack.len();
        self.best.candidates = events.candidates();
    }
}

/// The memo: every (linearized set, state) visited, with the set split
/// into ops with a finite return and open-ended ops. A new pair is
/// skipped if a visited pair has the same finite part and state and a
/// subset of its open part: an open op can always be placed last instead
/// (it returns at +∞ and accepts any result), so whatever completes the
/// new pair completes the visited one too, and that one is (being)
/// explored.
#[derive(Default)]
struct Memo {
    seen: HashMap<(Bits, State), Vec<Bits>>,
    entries: usize,
}

impl Memo {
    /// True, and remembered, if no visited pair covers this one.
    fn visit(&mut self, finite: Bits, open: &Bits, state: State) -> bool {
        let opens = self.seen.entry((finite, state)).or_default();
        if opens.iter().any(|o| o.is_subset(open)) {
            return false;
        }
        opens.push(open.clone());
        self.entries += 1;
        true
    }
}

/// The search's position: linearized ops, state and the undo stack.
struct Search<'o> {
    ops: &'o [KeyOp],
    events: Events,
    /// `slot[i]`: op i's index among the finite or among the open ops.
    slot: Vec<usize>,
    finite: Bits,
    open: Bits,
    finite_left: usize,
    state: State,
    /// (op linearized, state before it)
    stack: Vec<(usize, State)>,
    memo: Memo,
}

impl Search<'_> {
    fn is_open(&self, i: usize) -> bool {
        self.ops[i].returned_ns.is_none()
    }

    /// An open put of an unread value. All such puts are interchangeable
    /// (same effect, any result, no return to respect), so at any point
    /// only the earliest-invoked candidate among them needs trying: a
    /// linearization that uses another can use that one instead.
    fn is_unread_open_put(&self, i: usize) -> bool {
        self.is_open(i) && matches!(self.ops[i].call, ICall::Put(UNREAD))
    }

    /// Linearizes op i next if the model allows it and the resulting
    /// pair is not covered by the memo.
    fn try_push(&mut self, i: usize) -> bool {
        let Some(next) = step(self.state, self.ops[i].call, self.ops[i].ret) else {
            return false;
        };
        let (mut finite, mut open) = (self.finite.clone(), self.open.clone());
        if self.is_open(i) {
            open.set(self.slot[i]);
        } else {
            finite.set(self.slot[i]);
        }
        if !self.memo.visit(finite.clone(), &open, next) {
            return false;
        }
        (self.finite, self.open) = (finite, open);
        self.finite_left -= usize::from(!self.is_open(i));
        self.stack.push((i, self.state));
        self.state = next;
        self.events.lift(i);
        true
    }

    /// Undoes the last push; returns its op.
    fn pop(&mut self) -> Option<usize> {
        let (i, before) = self.stack.pop()?;
        if self.is_open(i) {
            self.open.clear(self.slot[i]);
        } else {
            self.finite.clear(self.slot[i]);
            self.finite_left += 1;
        }
        self.state = before;
        self.events.unlift(i);
        Some(i)
    }
}

/// Checks one key's ops against the register model from [`ABSENT`].
///
/// Three changes to Porcupine's loop, all for open-ended ops: the search
/// succeeds once every op with a finite return is placed (the open ones
/// go last); at each point it tries the finite candidates before the open
/// ones, so that the memo sees the pair without an open op before the
/// pairs with it, which it then skips; and it tries one unread open put
/// per point (see `is_unread_open_put`).
pub(crate) fn check_key(ops: &[KeyOp], stop: &Stop<'_>) -> KeyRun {
    let mut counts = [0usize; 2];
    let slot: Vec<usize> = ops
        .iter()
        .map(|op| {
            let class = usize::from(op.returned_ns.is_none());
            counts[class] += 1;
            counts[class] - 1
        })
        .collect();
    let mut s = Search {
        ops,
        events: Events::new(ops),
        slot,
        finite: Bits::new(counts[0]),
        open: Bits::new(counts[1]),
        finite_left: counts[0],
        state: ABSENT,
        stack: Vec::new(),
        memo: Memo::default(),
    };
    let mut deepest = DeepestTracker {
        best: Deepest::default(),
        low_water: 0,
    };
    let mut steps: u64 = 0;
    let mut node = s.events.next[HEAD];
    // Which candidates this pass tries: finite ones, then open ones.
    let mut open_pass = false;
    // Whether this open pass already tried an unread open put.
    let mut unread_put_tried = false;
    let run = |outcome, steps, memo: &Memo| KeyRun {
        outcome,
        steps,
        memo_entries: memo.entries,
    };
    while s.finite_left > 0 {
        steps += 1;
        // Every 4096 steps, starting with the first, so a spent budget
        // stops even a small key.
        if steps % 4096 == 1 && stop.now() {
            return run(Outcome::Stopped, steps, &s.memo);
        }
        if node != NIL && node % 2 == 1 {
            let i = (node - 1) / 2;
            let skip = s.is_open(i) != open_pass || (s.is_unread_open_put(i) && unread_put_tried);
            unread_put_tried |= open_pass && s.is_unread_open_put(i);
            if !skip && s.try_push(i) {
                deepest.pushed(&s.stack, &s.events);
                (node, open_pass) = (s.events.next[HEAD], false);
            } else {
                node = s.events.next[node];
            }
        } else if !open_pass {
            (node, open_pass, unread_put_tried) = (s.events.next[HEAD], true, false);
        } else {
            // A return (or the end): its op must come before anything
            // later, and every candidate before it failed; backtrack.
            let Some(i) = s.pop() else {
                if deepest.best.candidates.is_empty() {
                    deepest.best.candidates = s.events.candidates();
                }
                return run(Outcome::NotLinearizable(deepest.best), steps, &s.memo);
            };
            deepest.popped(s.stack.len());
            unread_put_tried = s.is_unread_open_put(i);
            (node, open_pass) = (s.events.next[1 + 2 * i], s.is_open(i));
        }
    }
    run(Outcome::Linearizable, steps, &s.memo)
}

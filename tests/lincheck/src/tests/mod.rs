//! Tests: hand-made histories (`unit.rs`), generated histories against a
//! brute-force oracle (`props.rs`), and the helpers both use.

mod props;
mod unit;

use crate::history::{Call, History, Operation, Outcome, Ret};

pub(super) fn get(k: &str) -> Call {
    Call::Get { key: k.to_string() }
}

pub(super) fn put(k: &str, v: &str) -> Call {
    Call::Put {
        key: k.to_string(),
        value: v.to_string(),
    }
}

pub(super) fn del(k: &str) -> Call {
    Call::Delete { key: k.to_string() }
}

pub(super) fn cas(k: &str, expected: Option<&str>, new: &str) -> Call {
    Call::Cas {
        key: k.to_string(),
        expected: expected.map(str::to_string),
        new: new.to_string(),
    }
}

pub(super) fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// A completed op on `[from, to]`.
pub(super) fn ok(from: u64, to: u64, call: Call, ret: Ret) -> Operation {
    Operation {
        client: 0,
        invoked_ns: from,
        call,
        outcome: Outcome::Ok {
            returned_ns: to,
            ret,
        },
    }
}

/// An op invoked at `from` whose outcome is unknown.
pub(super) fn unknown(from: u64, call: Call) -> Operation {
    Operation {
        client: 0,
        invoked_ns: from,
        call,
        outcome: Outcome::Unknown,
    }
}

pub(super) fn history(ops: Vec<Operation>) -> History {
    History { ops }
}

/// The next state and result of `call` in `state`: an independent
/// reference model on plain strings, for the oracle and the generator.
pub(super) fn apply(state: &Option<String>, call: &Call) -> (Option<String>, Ret) {
    match call {
        Call::Get { .. } => (state.clone(), Ret::Get(state.clone())),
        Call::Put { value, .. } => (Some(value.clone()), Ret::PutPrev(state.clone())),
        Call::Delete { .. } => (None, Ret::Delete(u64::from(state.is_some()))),
        Call::Cas { expected, new, .. } if expected == state => (Some(new.clone()), Ret::CasOk),
        Call::Cas { .. } => (state.clone(), Ret::CasFailed(state.clone())),
    }
}

/// Whether `ret` is what `apply` gives, allowing a plain `Put` for `PutPrev`.
fn matches(expected: &Ret, got: &Ret) -> bool {
    matches!((expected, got), (Ret::PutPrev(_), Ret::Put)) || expected == got
}

/// Brute force: is there an order of the ops, respecting real time, in
/// which every completed op returns what it returned? Unknown ops may be
/// left out (equivalent to placing them last). Exponential; small
/// histories only. Keys are not partitioned, so it also cross-checks the
/// partitioning.
pub(super) fn oracle(h: &History) -> bool {
    let n = h.ops.len();
    assert!(n <= 12, "oracle is for small histories");
    let mut placed = vec![false; n];
    search(h, &mut placed, &mut std::collections::BTreeMap::new())
}

fn search(
    h: &History,
    placed: &mut [bool],
    state: &mut std::collections::BTreeMap<String, Option<String>>,
) -> bool {
    let pending: Vec<usize> = (0..h.ops.len()).filter(|&i| !placed[i]).collect();
    if pending
        .iter()
        .all(|&i| h.ops[i].outcome == Outcome::Unknown)
    {
        return true;
    }
    for &i in &pending {
        let op = &h.ops[i];
        // i may go next only if no pending op returned strictly before i began.
        let blocked = pending
            .iter()
            .any(|&j| h.ops[j].returned_ns().is_some_and(|r| r < op.invoked_ns));
        if blocked {
            continue;
        }
        let key = op.call.key().to_string();
        let before = state.get(&key).cloned().unwrap_or(None);
        let (after, ret) = apply(&before, &op.call);
        let fits = match &op.outcome {
            Outcome::Unknown => true,
            Outcome::Ok { ret: got, .. } => matches(&ret, got),
        };
        if !fits {
            continue;
        }
        placed[i] = true;
        state.insert(key.clone(), after);
        let found = search(h, placed, state);
        placed[i] = false;
        state.insert(key, before);
        if found {
            return true;
        }
    }
    false
}

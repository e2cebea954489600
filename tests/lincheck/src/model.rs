//! The sequential model of one etcd key, over interned values.
//!
//! A key's state is the id of its current value, with [`ABSENT`] for "no
//! such key". Interning makes the state a `u32`, so the search's memo key
//! is a bitset plus four bytes and a state is copied, never cloned.

use std::collections::HashMap;

use crate::history::{Call, Outcome, Ret, Value};

/// The state of one key: an interned value id, or [`ABSENT`].
pub(crate) type State = u32;

/// The key does not exist (the initial state of every key).
pub(crate) const ABSENT: State = 0;

/// Any value that no op read or compared with: such values cannot be told
/// apart by any op, so one state stands for all of them, and states that
/// differ only in which unread value the key holds merge in the memo.
pub(crate) const UNREAD: State = State::MAX;

/// A call with its values interned.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ICall {
    Get,
    Put(State),
    Delete,
    Cas { expected: State, new: State },
}

/// A result with its values interned; `Unknown` accepts any result.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IRet {
    Get(State),
    Put,
    PutPrev(State),
    Delete(u64),
    CasOk,
    CasFailed(State),
    Unknown,
}

/// Maps one key's values to ids and back.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<Value, State>,
    // names[id - 1] is the value of id; ABSENT has no name.
    names: Vec<Value>,
}

impl Interner {
    fn id(&mut self, v: &Option<Value>) -> State {
        let Some(v) = v else { return ABSENT };
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        self.names.push(v.clone());
        // Ids start at 1; a key sees far fewer than u32::MAX values, since
        // a history of that size could not be checked anyway.
        let id = State::try_from(self.names.len()).unwrap_or(UNREAD - 1);
        self.ids.insert(v.clone(), id);
        id
    }

    /// The value an id stands for (`None` for [`ABSENT`]).
    pub(crate) fn name(&self, id: State) -> Option<Value> {
        if id == UNREAD {
            return Some("<a value no op read>".to_string());
        }
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.names.get(i).cloned()
    }

    /// Interns one operation's call and result.
    pub(crate) fn op(&mut self, call: &Call, outcome: &Outcome) -> (ICall, IRet) {
        let icall = match call {
            Call::Get { .. } => ICall::Get,
            Call::Put { value, .. } => ICall::Put(self.id(&Some(value.clone()))),
            Call::Delete { .. } => ICall::Delete,
            Call::Cas { expected, new, .. } => ICall::Cas {
                expected: self.id(expected),
                new: self.id(&Some(new.clone())),
            },
        };
        let iret = match outcome {
            Outcome::Unknown => IRet::Unknown,
            Outcome::Ok { ret, .. } => match ret {
                Ret::Get(v) => IRet::Get(self.id(v)),
                Ret::Put => IRet::Put,
                Ret::PutPrev(v) => IRet::PutPrev(self.id(v)),
                Ret::Delete(n) => IRet::Delete(*n),
                Ret::CasOk => IRet::CasOk,
                Ret::CasFailed(v) => IRet::CasFailed(self.id(v)),
            },
        };
        (icall, iret)
    }
}

/// Applies `call` in `state`: the next state if the model can return
/// `ret` there, `None` if it cannot. An unknown result is whatever the
/// model would return, so an unknown op is deterministic once placed; an
/// unknown op that never took effect is placed after everything else,
/// where no later result can see it.
pub(crate) fn step(state: State, call: ICall, ret: IRet) -> Option<State> {
    match (call, ret) {
        (ICall::Get, IRet::Get(v)) => (v == state).then_some(state),
        (ICall::Get, IRet::Unknown) => Some(state),
        (ICall::Put(v), IRet::Put | IRet::Unknown) => Some(v),
        (ICall::Put(v), IRet::PutPrev(prev)) => (prev == state).then_some(v),
        (ICall::Delete, IRet::Delete(n)) => (n == u64::from(state != ABSENT)).then_some(ABSENT),
        (ICall::Delete, IRet::Unknown) => Some(ABSENT),
        (ICall::Cas { expected, new }, IRet::CasOk) => (state == expected).then_some(new),
        (ICall::Cas { expected, .. }, IRet::CasFailed(v)) => {
            (state != expected && v == state).then_some(state)
        }
        (ICall::Cas { expected, new }, IRet::Unknown) => {
            Some(if state == expected { new } else { state })
        }
        _ => None,
    }
}

/// Why `step(state, call, ret)` is `None`, in words, for explanations.
pub(crate) fn why_not(state: State, call: ICall, ret: IRet, names: &Interner) -> String {
    let cur = names.name(state);
    match (call, ret) {
        (ICall::Get, IRet::Get(v)) => format!("read {:?} but the value is {cur:?}", names.name(v)),
        (ICall::Put(_), IRet::PutPrev(p)) => {
            format!("prev_kv {:?} but the value is {cur:?}", names.name(p))
        }
        (ICall::Delete, IRet::Delete(n)) => format!("deleted {n} but the value is {cur:?}"),
        (ICall::Cas { .. }, IRet::CasOk) => format!("succeeded but the value is {cur:?}"),
        (ICall::Cas { expected, .. }, IRet::CasFailed(v)) if state == expected => {
            format!(
                "failed (else-read {:?}) but the value {cur:?} matches",
                names.name(v)
            )
        }
        (ICall::Cas { .. }, IRet::CasFailed(v)) => {
            format!(
                "failed and read {:?} but the value is {cur:?}",
                names.name(v)
            )
        }
        _ => "the result does not belong to the call".to_string(),
    }
}

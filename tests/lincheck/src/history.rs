//! The recorded history: what each client asked, when, and what it was told.

use std::fmt;

/// A key of the etcd keyspace. Keys are checked independently.
pub type Key = String;

/// A value. The recorder writes a unique value per write so that a read
/// names the write it observed; the checker does not rely on uniqueness.
pub type Value = String;

/// One request to a single key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// A linearizable range read of exactly `key`.
    Get {
        /// The key read.
        key: Key,
    },
    /// A put of `value` to `key`.
    Put {
        /// The key written.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// A delete of exactly `key`.
    Delete {
        /// The key deleted.
        key: Key,
    },
    /// A single-key compare-and-set transaction: if the key's value equals
    /// `expected` (`None`: the key is absent, etcd's `version == 0`) then
    /// put `new`, else get the key.
    Cas {
        /// The key compared and written.
        key: Key,
        /// The value compared with; `None` means "the key does not exist".
        expected: Option<Value>,
        /// The value put when the compare holds.
        new: Value,
    },
}

impl Call {
    /// The one key this call touches.
    pub fn key(&self) -> &str {
        match self {
            Call::Get { key }
            | Call::Put { key, .. }
            | Call::Delete { key }
            | Call::Cas { key, .. } => key,
        }
    }
}

/// What a completed call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// A `Get` found this value (`None`: the key did not exist).
    Get(Option<Value>),
    /// A `Put` succeeded; the previous value was not asked for.
    Put,
    /// A `Put` with `prev_kv` succeeded and reported the previous value.
    PutPrev(Option<Value>),
    /// A `Delete` succeeded and deleted this many keys (0 or 1).
    Delete(u64),
    /// A `Cas` whose compare held: `new` was put.
    CasOk,
    /// A `Cas` whose compare failed; its else-branch read this value.
    CasFailed(Option<Value>),
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned at `returned_ns` with `ret`.
    Ok {
        /// Return time on the history's clock, in nanoseconds.
        returned_ns: u64,
        /// What the server answered.
        ret: Ret,
    },
    /// The outcome is unknown (timeout, lost connection, an ambiguous
    /// error): the call may have taken effect at any time after its
    /// invocation, or never. The checker gives it a return time of +∞ and
    /// accepts any result for it, as Porcupine and Jepsen do.
    Unknown,
}

/// One call with its real-time interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The recording client (diagnostics only: the checker orders
    /// operations by real time, not by client).
    pub client: usize,
    /// Invocation time on the history's clock, in nanoseconds.
    pub invoked_ns: u64,
    /// The request.
    pub call: Call,
    /// Its end.
    pub outcome: Outcome,
}

impl Operation {
    /// Return time in nanoseconds, `None` for an unknown outcome (+∞).
    pub fn returned_ns(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Ok { returned_ns, .. } => Some(*returned_ns),
            Outcome::Unknown => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match &self.call {
            Call::Get { key } => format!("get({key})"),
            Call::Put { key, value } => format!("put({key}, {value:?})"),
            Call::Delete { key } => format!("delete({key})"),
            Call::Cas { key, expected, new } => format!("cas({key}, {expected:?} -> {new:?})"),
        };
        let ret = match &self.outcome {
            Outcome::Ok { ret, .. } => format!("{ret:?}"),
            Outcome::Unknown => "unknown".to_string(),
        };
        let end = match self.returned_ns() {
            Some(t) => t.to_string(),
            None => "inf".to_string(),
        };
        write!(
            f,
            "client {} [{}, {}] {call} -> {ret}",
            self.client, self.invoked_ns, end
        )
    }
}

/// A concurrent history. Operations may be in any order; all times come
/// from one monotonic clock. Precondition: every key is absent at the
/// start (the recorder uses a fresh key prefix per run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The operations, in no particular order.
    pub ops: Vec<Operation>,
}

impl History {
    /// Operations that completed with a result.
    pub fn completed(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.returned_ns().is_some())
            .count()
    }

    /// Operations whose outcome is unknown.
    pub fn unknown(&self) -> usize {
        self.ops.len() - self.completed()
    }
}

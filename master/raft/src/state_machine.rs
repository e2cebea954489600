//! What the log replicates into: the [`StateMachine`] trait, and
//! [`Register`], a tiny append-only state machine the engine's tests use.

/// Encodes a copy of a state machine into snapshot bytes (see
/// [`StateMachine::snapshot_task`]).
pub type SnapshotTask = Box<dyn FnOnce() -> Vec<u8> + Send>;

/// A deterministic state machine fed with committed log entries.
///
/// Every member applies the same entries in the same order, so `apply`
/// must depend only on the state and the entry: no clock, no randomness,
/// no IO whose result can differ between members. The engine calls `apply`
/// only for non-empty normal entries; leader no-op entries and membership
/// changes are handled by the engine and never reach the state machine, so
/// `applied_index` may lag the engine's applied index by such entries.
pub trait StateMachine {
    /// The error `restore` reports for a snapshot it cannot read.
    type Error: std::fmt::Display;

    /// Applies the committed entry at `index` and returns the answer for
    /// whoever proposed it. Must not fail: an entry that makes no sense is
    /// answered with an error *value* inside the returned bytes.
    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8>;

    /// The whole state, including [`StateMachine::applied_index`].
    fn snapshot(&self) -> Vec<u8>;

    /// The same bytes as [`StateMachine::snapshot`], produced later on
    /// another thread: the returned closure holds a copy of the state as it
    /// is now. A replica with `background_snapshots` takes its periodic
    /// snapshots this way, so the Raft thread only pays for the copy, not
    /// the encoding and the store write. The default encodes right away.
    fn snapshot_task(&self) -> SnapshotTask {
        let bytes = self.snapshot();
        Box::new(move || bytes)
    }

    /// Replaces the state with a [`StateMachine::snapshot`] output. The bytes
    /// may come from another member: garbage must give an error, not a panic.
    fn restore(&mut self, data: &[u8]) -> Result<(), Self::Error>;

    /// The index of the last entry `apply` was called with (0 if none). A
    /// state machine that survives restarts lets the engine skip entries it
    /// already holds.
    fn applied_index(&self) -> u64;

    /// A digest of the state, equal on members at the same applied index
    /// (for divergence checks). Must not depend on `std::hash` (its
    /// algorithm may change between builds while members upgrade one by one).
    fn hash(&self) -> u64;

    /// Called by the runner after every `drive` (outside the deterministic
    /// part): a state machine hands newly applied watch events to watchers
    /// here, on the thread that applied them. The default does nothing.
    fn after_drive(&mut self) {}

    /// Whether [`StateMachine::background_work`] has something to do.
    fn has_background_work(&self) -> bool {
        false
    }

    /// One bounded step of work that may wait but not forever (the
    /// keyspace trims a compaction's versions here). The runner calls it
    /// while [`StateMachine::has_background_work`] says so, between its
    /// inputs, so a step must be short. Outside the deterministic part: it
    /// must not change what `hash`, `snapshot` or any answer gives.
    fn background_work(&mut self) {}
}

/// FNV-1a, 64 bit: a stable hash for [`StateMachine::hash`] implementations.
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// FNV-1a's starting value.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// An append-only register: the state is the list of every applied payload.
///
/// Because it keeps the whole history, tests can check that members'
/// histories are prefixes of each other and that every acknowledged
/// proposal is in them. `apply` answers with the payload's 1-based
/// position in the history (8 bytes, big endian).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Register {
    applied: u64,
    history: Vec<Vec<u8>>,
}

/// Why a [`Register`] snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad register snapshot: {0}")]
pub struct RegisterSnapshotError(&'static str);

impl Register {
    /// An empty register.
    pub fn new() -> Self {
        Register::default()
    }

    /// Every applied payload, in log order.
    pub fn history(&self) -> &[Vec<u8>] {
        &self.history
    }

    /// Decodes an [`StateMachine::apply`] answer into the 1-based position.
    pub fn position(response: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(response.try_into().ok()?))
    }
}

impl StateMachine for Register {
    type Error = RegisterSnapshotError;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        self.applied = index;
        self.history.push(data.to_vec());
        (self.history.len() as u64).to_be_bytes().to_vec()
    }

    /// Layout: applied (u64), count (u64), then per payload its length (u32)
    /// and bytes; all integers big endian.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.applied.to_be_bytes());
        out.extend_from_slice(&(self.history.len() as u64).to_be_bytes());
        for payload in &self.history {
            // Payloads come from proposals, far below 4 GiB; saturate rather than wrap.
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        let mut reader = Reader(data);
        let applied = reader.u64()?;
        let count = reader.u64()?;
        let mut history = Vec::new();
        for _ in 0..count {
            let len = reader.u32()? as usize;
            history.push(reader.bytes(len)?.to_vec());
        }
        if !reader.0.is_empty() {
            return Err(RegisterSnapshotError("trailing bytes"));
        }
        *self = Register { applied, history };
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn hash(&self) -> u64 {
        self.history.iter().fold(FNV_OFFSET, |h, payload| {
            let h = fnv1a(h, &(payload.len() as u64).to_be_bytes());
            fnv1a(h, payload)
        })
    }
}

/// A cursor over snapshot bytes that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], RegisterSnapshotError> {
        if self.0.len() < n {
            return Err(RegisterSnapshotError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, RegisterSnapshotError> {
        let bytes = self.bytes(8)?;
        let array = bytes
            .try_into()
            .map_err(|_| RegisterSnapshotError("truncated"))?;
        Ok(u64::from_be_bytes(array))
    }

    fn u32(&mut self) -> Result<u32, RegisterSnapshotError> {
        let bytes = self.bytes(4)?;
        let array = bytes
            .try_into()
            .map_err(|_| RegisterSnapshotError("truncated"))?;
        Ok(u32::from_be_bytes(array))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn snapshot_round_trips() {
        let mut register = Register::new();
        assert_eq!(register.apply(3, b"a"), 1u64.to_be_bytes().to_vec());
        register.apply(5, b"bc");
        let mut copy = Register::new();
        copy.restore(&register.snapshot()).unwrap();
        assert_eq!(copy, register);
        assert_eq!(copy.hash(), register.hash());
        assert_eq!(copy.applied_index(), 5);
    }

    proptest! {
        #[test]
        fn garbage_snapshots_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut register = Register::new();
            let _ = register.restore(&bytes);
        }
    }
}

//! agora-kv's keyspace as a [`StateMachine`]: log entries are
//! `agora_kv::LogEntry` bytes, answers are [`KvAnswer`] bytes.

use agora_kv::{ErrorCategory, KvError, KvState, Response, Revision};
use serde::{Deserialize, Serialize};

use crate::state_machine::{FNV_OFFSET, StateMachine, fnv1a};

/// The keyspace plus the index of the last entry applied to it.
#[derive(Debug, Clone, Default)]
pub struct KvMachine {
    state: KvState,
    applied: u64,
}

/// What a keyspace entry answered, as its proposer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvAnswer {
    /// The command's response.
    Done(Response),
    /// The command failed (changing nothing, on every member alike).
    Failed {
        /// The gRPC category to answer with.
        category: ErrorCategory,
        /// etcd's error text.
        message: String,
        /// For `Compacted`: where history starts now.
        compact_revision: Option<Revision>,
    },
}

/// `KvAnswer` on the wire (between the state machine and the proposer).
#[derive(Serialize, Deserialize)]
enum WireAnswer {
    Done(Response),
    Failed {
        category: u8,
        message: String,
        compact_revision: Option<Revision>,
    },
}

const CATEGORIES: [ErrorCategory; 5] = [
    ErrorCategory::InvalidArgument,
    ErrorCategory::OutOfRange,
    ErrorCategory::NotFound,
    ErrorCategory::FailedPrecondition,
    ErrorCategory::Internal,
];

impl KvMachine {
    /// An empty keyspace.
    pub fn new() -> Self {
        KvMachine::default()
    }

    /// The keyspace, for reads (after a ReadIndex, for linearizable ones).
    pub fn state(&self) -> &KvState {
        &self.state
    }

    /// Decodes an answer produced by [`StateMachine::apply`]; `None` for
    /// bytes that are not one (empty for a leader's no-op).
    pub fn decode_answer(bytes: &[u8]) -> Option<KvAnswer> {
        let answer = match serde_json::from_slice(bytes).ok()? {
            WireAnswer::Done(response) => KvAnswer::Done(response),
            WireAnswer::Failed {
                category,
                message,
                compact_revision,
            } => KvAnswer::Failed {
                category: *CATEGORIES.get(usize::from(category))?,
                message,
                compact_revision,
            },
        };
        Some(answer)
    }

    fn encode_answer(result: Result<Response, KvError>) -> Vec<u8> {
        let wire = match result {
            Ok(response) => WireAnswer::Done(response),
            Err(error) => WireAnswer::Failed {
                category: CATEGORIES
                    .iter()
                    .position(|c| *c == error.category())
                    .and_then(|i| u8::try_from(i).ok())
                    .unwrap_or(4),
                message: error.to_string(),
                compact_revision: match error {
                    KvError::Compacted { compact_revision } => Some(compact_revision),
                    _ => None,
                },
            },
        };
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

impl StateMachine for KvMachine {
    type Error = KvError;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        self.applied = index;
        KvMachine::encode_answer(self.state.apply_entry(data))
    }

    /// The applied index (8 bytes, big endian), then the keyspace's snapshot.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = self.applied.to_be_bytes().to_vec();
        out.extend_from_slice(&self.state.snapshot());
        out
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), KvError> {
        let corrupt = |reason: &str| KvError::Corrupt {
            what: "snapshot",
            reason: reason.to_string(),
        };
        let (head, body) = data
            .split_at_checked(8)
            .ok_or_else(|| corrupt("truncated"))?;
        let applied = u64::from_be_bytes(head.try_into().map_err(|_| corrupt("truncated"))?);
        self.state = KvState::restore(body)?;
        self.applied = applied;
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn hash(&self) -> u64 {
        fnv1a(FNV_OFFSET, &self.state.hash().to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use agora_kv::{Command, LogEntry, PutRequest, RangeRequest};

    use super::*;
    use crate::SimCluster;
    use crate::tests::{converge, elect};

    fn put(key: &str, value: &str) -> Vec<u8> {
        LogEntry::V1(Command::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..PutRequest::default()
        }))
        .encode()
    }

    #[test]
    fn a_replicated_keyspace_answers_the_proposer_and_agrees_everywhere() {
        let mut cluster =
            SimCluster::new(&[1, 2, 3], 81, crate::tests::config(81), KvMachine::new).unwrap();
        let leader = elect(&mut cluster);
        let ok = cluster.propose(leader, put("a", "1")).unwrap();
        let bad = cluster.propose(leader, put("", "1")).unwrap();
        converge(&mut cluster, 100);
        let answer = |token| match cluster.completions().get(&token) {
            Some(Ok(applied)) => KvMachine::decode_answer(&applied.response),
            _ => None,
        };
        assert!(matches!(answer(ok), Some(KvAnswer::Done(Response::Put(_)))));
        assert!(matches!(
            answer(bad),
            Some(KvAnswer::Failed {
                category: ErrorCategory::InvalidArgument,
                ..
            })
        ));
        let request = RangeRequest {
            key: b"a".to_vec(),
            ..RangeRequest::default()
        };
        for id in cluster.ids() {
            let state = cluster.replica(id).unwrap().state_machine().state();
            assert_eq!(state.range(&request).unwrap().kvs.len(), 1, "member {id}");
        }
        let hashes: Vec<u64> = (cluster.ids().iter())
            .map(|id| cluster.replica(*id).unwrap().state_machine().hash())
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn snapshots_round_trip_and_garbage_is_an_error() {
        let mut machine = KvMachine::new();
        machine.apply(7, &put("k", "v"));
        let mut copy = KvMachine::new();
        copy.restore(&machine.snapshot()).unwrap();
        assert_eq!(copy.applied_index(), 7);
        assert_eq!(copy.hash(), machine.hash());
        assert!(copy.restore(b"junk").is_err());
        assert!(copy.restore(b"").is_err());
    }
}

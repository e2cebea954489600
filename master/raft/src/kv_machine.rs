//! agora-kv's keyspace as a [`StateMachine`]: log entries are
//! `agora_kv::LogEntry` bytes, answers are [`KvAnswer`] bytes.
//!
//! Beside the replicated keyspace it holds this member's watchers
//! ([`Watchers`], not replicated): the runner calls `after_drive` after
//! every `drive`, and the newly applied events go to the watch streams
//! from the thread that applied them. A snapshot install (`restore`)
//! keeps the watchers: agora-kv's hub continues each from its next
//! revision out of the restored history, or cancels it with etcd's
//! compacted semantics (resume revision, compact revision) when that
//! history is gone, so a watcher neither misses nor repeats an event.
//!
//! [`KvHost`] is how a backend reaches the keyspace inside a bigger state
//! machine (the master's, which embeds a `KvMachine` beside its registry).

mod watchers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use agora_kv::{
    ErrorCategory, KvError, KvState, LogEntry, Response, Revision, WatchId, WatchRequest,
};
use serde::{Deserialize, Serialize};

pub use watchers::{WatchMessage, WatchSink, Watchers};

use crate::state_machine::{FNV_OFFSET, SnapshotTask, StateMachine, fnv1a};

/// [`KvMachine`]'s snapshot bytes: `applied` (8 bytes, big endian), then
/// the keyspace's own snapshot.
fn encode_snapshot(applied: u64, state: &KvState) -> Vec<u8> {
    let mut out = applied.to_be_bytes().to_vec();
    out.extend_from_slice(&state.snapshot());
    out
}

/// A state machine that holds a [`KvMachine`], as the etcd API's Raft
/// backend needs it: the backend reaches the keyspace only through these
/// methods, proposes `encode_kv_entry` bytes and decodes the answers with
/// [`KvMachine::decode_answer`]. An embedding machine must apply its kv
/// entries with [`StateMachine::apply`] of the inner `KvMachine` (so the
/// answer bytes are a `KvAnswer`) and call its `after_drive`.
pub trait KvHost: StateMachine + Send + 'static {
    /// The keyspace.
    fn kv(&self) -> &KvMachine;
    /// The keyspace, for watch registration and delivery (never for
    /// replicated changes: those go through the log).
    fn kv_mut(&mut self) -> &mut KvMachine;
    /// The log entry bytes that carry `entry` to this machine's `apply`.
    fn encode_kv_entry(entry: &LogEntry) -> Vec<u8>;
}

/// The store's current revision, the bytes it holds and whether NOSPACE is
/// raised, published by the replica's thread for what other threads read
/// without a round trip: response headers, and the space quota's check
/// before a write is proposed.
#[derive(Debug, Clone, Default)]
pub struct PublishedKv {
    revision: Arc<AtomicI64>,
    held_bytes: Arc<AtomicU64>,
    nospace: Arc<AtomicBool>,
}

impl PublishedKv {
    /// The revision as of the last apply or restore.
    pub fn get(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    /// [`KvState::stored_bytes`] as of the last apply, restore or trim.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes.load(Ordering::Acquire)
    }

    /// Whether a NOSPACE alarm is raised, as of the last apply or restore.
    pub fn nospace(&self) -> bool {
        self.nospace.load(Ordering::Acquire)
    }

    fn set(&self, state: &KvState) {
        self.nospace.store(state.nospace(), Ordering::Release);
        self.revision
            .store(state.current_revision(), Ordering::Release);
        self.held_bytes
            .store(state.stored_bytes(), Ordering::Release);
    }
}

/// The keyspace plus the index of the last entry applied to it, and this
/// member's watchers.
#[derive(Debug)]
pub struct KvMachine {
    state: KvState,
    applied: u64,
    /// Not replicated: this member's watch streams.
    watchers: Watchers,
    /// Not replicated: the revision for other threads' headers.
    published: PublishedKv,
}

impl Default for KvMachine {
    fn default() -> Self {
        KvMachine::with_watcher_buffer(agora_kv::WATCHER_BUFFER_LIMIT)
    }
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

/// Compacted changes removed per `background_work` step (see
/// [`KvState::trim_compacted`]): etcd's `compactionBatchLimit`. The runner
/// serves its inputs between steps, so this bounds how long a compaction
/// can hold the Raft thread at once (BENCHMARKS.md, "Compaction").
pub const TRIM_BATCH: usize = 1000;

/// Wire codes of the categories: a category's index. New ones go last, so
/// members of different releases read each other's answers alike.
const CATEGORIES: [ErrorCategory; 6] = [
    ErrorCategory::InvalidArgument,
    ErrorCategory::OutOfRange,
    ErrorCategory::NotFound,
    ErrorCategory::FailedPrecondition,
    ErrorCategory::Internal,
    ErrorCategory::ResourceExhausted,
];

impl KvMachine {
    /// An empty keyspace.
    pub fn new() -> Self {
        KvMachine::default()
    }

    /// An empty keyspace whose watchers may each hold `limit`
    /// unacknowledged events (tests shrink it).
    pub fn with_watcher_buffer(limit: usize) -> Self {
        let state = KvState::new();
        let published = PublishedKv::default();
        published.set(&state);
        KvMachine {
            state,
            applied: 0,
            watchers: Watchers::with_buffer_limit(limit),
            published,
        }
    }

    /// The keyspace, for reads (after a ReadIndex, for linearizable ones).
    pub fn state(&self) -> &KvState {
        &self.state
    }

    /// A handle on the current revision that other threads can read.
    pub fn published_revision(&self) -> PublishedKv {
        self.published.clone()
    }

    /// This member's watchers.
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    /// Registers a watcher whose updates go to `sink` (from the next
    /// `after_drive` on); answers its id and the store's revision.
    pub fn watch(
        &mut self,
        request: WatchRequest,
        sink: WatchSink,
    ) -> Result<(WatchId, Revision), KvError> {
        self.watchers.watch(&self.state, request, sink)
    }

    /// Removes a watcher.
    pub fn cancel_watch(&mut self, id: WatchId) {
        self.watchers.cancel(id);
    }

    /// The stream passed `count` events of `id` on to its client.
    pub fn acknowledge(&mut self, id: WatchId, count: usize) {
        self.watchers.acknowledge(id, count);
    }

    /// Sends a progress message on `sink` once the watchers in `ids` caught up.
    pub fn request_progress(&mut self, ids: Vec<WatchId>, sink: WatchSink) {
        self.watchers.request_progress(ids, sink);
    }

    /// Progress notices for idle watchers that asked for them.
    pub fn progress_notices(&mut self) {
        self.watchers.progress_notices(&self.state);
    }

    /// Hands the watchers what they may take now (what `after_drive` does).
    pub fn deliver(&mut self) {
        self.watchers.deliver(&self.state);
    }

    /// Decodes an answer produced by [`StateMachine::apply`]; `None` for
    /// bytes that are not one (empty for a leader's no-op).
    pub fn decode_answer(bytes: &[u8]) -> Option<KvAnswer> {
        let answer = match postcard::from_bytes(bytes).ok()? {
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
        postcard::to_stdvec(&wire).unwrap_or_default()
    }
}

impl StateMachine for KvMachine {
    type Error = KvError;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        self.applied = index;
        let answer = KvMachine::encode_answer(self.state.apply_entry(data));
        self.watchers.mark_dirty();
        self.published.set(&self.state);
        answer
    }

    /// The applied index (8 bytes, big endian), then the keyspace's snapshot.
    fn snapshot(&self) -> Vec<u8> {
        encode_snapshot(self.applied, &self.state)
    }

    /// A copy of the keyspace (its versions and leases), encoded later.
    fn snapshot_task(&self) -> SnapshotTask {
        let (applied, state) = (self.applied, self.state.clone());
        Box::new(move || encode_snapshot(applied, &state))
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
        // The watchers stay: the next delivery continues each from its
        // next revision in the restored history, or cancels it as compacted.
        self.watchers.mark_dirty();
        self.published.set(&self.state);
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn hash(&self) -> u64 {
        fnv1a(FNV_OFFSET, &self.state.hash().to_be_bytes())
    }

    fn after_drive(&mut self) {
        self.deliver();
    }

    fn has_background_work(&self) -> bool {
        self.state.is_trimming()
    }

    fn background_work(&mut self) {
        self.state.trim_compacted(TRIM_BATCH);
        self.published.set(&self.state);
    }
}

impl KvHost for KvMachine {
    fn kv(&self) -> &KvMachine {
        self
    }

    fn kv_mut(&mut self) -> &mut KvMachine {
        self
    }

    fn encode_kv_entry(entry: &LogEntry) -> Vec<u8> {
        entry.encode()
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

    /// A compaction is applied at once; its versions leave memory one
    /// `TRIM_BATCH` per background step, and no hash shows the difference.
    #[test]
    fn compacted_versions_are_trimmed_a_batch_per_step() {
        let mut machine = KvMachine::new();
        let writes = 2 * TRIM_BATCH + 10;
        for index in 1..=writes {
            machine.apply(index as u64, &put(&format!("k{}", index % 7), "v"));
        }
        let revision = machine.state().current_revision();
        let compact = LogEntry::V1(Command::Compact(agora_kv::CompactRequest { revision }));
        machine.apply(writes as u64 + 1, &compact.encode());
        let hash = machine.hash();
        let mut steps = 0;
        while machine.has_background_work() {
            machine.background_work();
            steps += 1;
            assert_eq!(machine.hash(), hash);
        }
        assert_eq!(
            steps, 3,
            "{writes} changes below the line, {TRIM_BATCH} a step"
        );
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

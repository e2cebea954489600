//! [`MasterMachine`]: everything the masters replicate, as one
//! deterministic state machine fed by the Raft log: the registry (agents,
//! frameworks, weights), the etcd keyspace, and the members' published
//! addresses.
//!
//! Log entries are a one-byte tag and a body, so the keyspace's entries
//! pass through without being decoded and encoded again:
//! `KV` + agora-kv's entry bytes, `REGISTRY` + a JSON batch of registry
//! entries (one batch per proposal: the core's group commit),
//! `MEMBER` + a JSON [`MemberInfo`].
use std::collections::BTreeMap;

use agora_raft::{FNV_OFFSET, KvHost, KvMachine, SnapshotTask, StateMachine, fnv1a};
use serde::{Deserialize, Serialize};

use crate::registry::{LogEntry, Registry};

const TAG_KV: u8 = 1;
const TAG_REGISTRY: u8 = 2;
const TAG_MEMBER: u8 = 3;

/// The snapshot layout this version writes (first byte).
const SNAPSHOT_FORMAT: u8 = 1;

/// What a member publishes about itself once it has joined (as etcd
/// members publish their client URLs through the log), so every member
/// can redirect clients to the leader and list the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Raft member id.
    pub id: u64,
    /// Name shown in member lists.
    pub name: String,
    /// Where agents, frameworks and operators reach it (`host:port`).
    pub api_addr: String,
    /// Where its etcd v3 API listens (`host:port`).
    pub etcd_addr: String,
}

/// A log entry of the masters' group.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterEntry {
    /// A keyspace command (agora-kv's entry bytes).
    Kv(Vec<u8>),
    /// Registry changes the leading core made durable together.
    Registry(Vec<LogEntry>),
    /// A member's addresses.
    Member(MemberInfo),
}

impl MasterEntry {
    /// The entry's log bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: JSON encoding cannot fail.
        let (tag, body) = match self {
            MasterEntry::Kv(bytes) => (TAG_KV, bytes.clone()),
            MasterEntry::Registry(batch) => {
                (TAG_REGISTRY, serde_json::to_vec(batch).unwrap_or_default())
            }
            MasterEntry::Member(info) => (TAG_MEMBER, serde_json::to_vec(info).unwrap_or_default()),
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum MachineSnapshotError {
    /// Bytes missing or a part does not decode.
    #[error("master snapshot: {0}")]
    Corrupt(String),
}

/// The replicated state of the masters.
#[derive(Debug, Default)]
pub struct MasterMachine {
    registry: Registry,
    members: BTreeMap<u64, MemberInfo>,
    kv: KvMachine,
    applied: u64,
    /// Registry entries that were refused when applied (they change
    /// nothing, on every member alike), for the metrics.
    refused: u64,
}

impl MasterMachine {
    /// An empty state.
    pub fn new() -> Self {
        MasterMachine::default()
    }

    /// The registry as of the last applied entry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The members that have published their addresses.
    pub fn members(&self) -> &BTreeMap<u64, MemberInfo> {
        &self.members
    }

    /// Drops every member's published addresses. A group founded from a
    /// backup does this on every member alike: its members' addresses
    /// come from its own peer list (and later publications), not from the
    /// group the backup was taken from.
    pub fn forget_published_members(&mut self) {
        self.members.clear();
    }

    fn apply_registry(&mut self, body: &[u8]) {
        let Ok(batch) = serde_json::from_slice::<Vec<LogEntry>>(body) else {
            // Only our own leaders propose; a newer format than this binary
            // knows would be a mixed-version group, which is refused at
            // upgrade time. Counting it keeps members identical.
            self.refused += 1;
            return;
        };
        for entry in &batch {
            if self.registry.apply(entry).is_err() {
                self.refused += 1;
            }
        }
    }
}

/// [`MasterMachine`]'s snapshot bytes: format byte, applied index, then
/// three length-prefixed parts: registry (JSON), members (JSON), keyspace
/// (its own snapshot).
fn encode_snapshot(
    applied: u64,
    registry: &Registry,
    members: &BTreeMap<u64, MemberInfo>,
    keyspace: Vec<u8>,
) -> Vec<u8> {
    let mut out = vec![SNAPSHOT_FORMAT];
    out.extend_from_slice(&applied.to_be_bytes());
    let registry = serde_json::to_vec(registry).unwrap_or_default();
    let members = serde_json::to_vec(members).unwrap_or_default();
    for part in [registry, members, keyspace] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(&part);
    }
    out
}

impl StateMachine for MasterMachine {
    type Error = MachineSnapshotError;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        self.applied = index;
        let Some((&tag, body)) = data.split_first() else {
            return Vec::new();
        };
        match tag {
            TAG_KV => self.kv.apply(index, body),
            TAG_REGISTRY => {
                self.apply_registry(body);
                Vec::new()
            }
            TAG_MEMBER => {
                if let Ok(info) = serde_json::from_slice::<MemberInfo>(body) {
                    self.members.insert(info.id, info);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Format byte, applied index, then three length-prefixed parts:
    /// registry (JSON), members (JSON), keyspace (its own snapshot).
    fn snapshot(&self) -> Vec<u8> {
        encode_snapshot(
            self.applied,
            &self.registry,
            &self.members,
            self.kv.snapshot(),
        )
    }

    /// Copies of the registry and members, and the keyspace's own task.
    fn snapshot_task(&self) -> SnapshotTask {
        let (applied, registry, members) =
            (self.applied, self.registry.clone(), self.members.clone());
        let keyspace = self.kv.snapshot_task();
        Box::new(move || encode_snapshot(applied, &registry, &members, keyspace()))
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        let corrupt = |what: &str| MachineSnapshotError::Corrupt(what.to_string());
        let mut cursor = Cursor(data);
        if cursor.take(1)? != [SNAPSHOT_FORMAT] {
            return Err(corrupt("unknown format"));
        }
        let applied = cursor.u64()?;
        let registry: Registry = serde_json::from_slice(cursor.part()?)
            .map_err(|e| corrupt(&format!("registry: {e}")))?;
        let members: BTreeMap<u64, MemberInfo> = serde_json::from_slice(cursor.part()?)
            .map_err(|e| corrupt(&format!("members: {e}")))?;
        let keyspace = cursor.part()?;
        if !cursor.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        // Last, so a bad snapshot leaves everything as it was; the keyspace
        // keeps its watchers across the restore.
        self.kv
            .restore(keyspace)
            .map_err(|e| corrupt(&format!("keyspace: {e}")))?;
        self.registry = registry;
        self.members = members;
        self.applied = applied;
        Ok(())
    }

    fn applied_index(&self) -> u64 {
        self.applied
    }

    fn hash(&self) -> u64 {
        let registry = serde_json::to_vec(&self.registry).unwrap_or_default();
        let members = serde_json::to_vec(&self.members).unwrap_or_default();
        let hash = fnv1a(FNV_OFFSET, &registry);
        let hash = fnv1a(hash, &members);
        fnv1a(hash, &self.kv.hash().to_be_bytes())
    }

    fn after_drive(&mut self) {
        self.kv.after_drive();
    }

    fn has_background_work(&self) -> bool {
        self.kv.has_background_work()
    }

    fn background_work(&mut self) {
        self.kv.background_work();
    }
}

impl KvHost for MasterMachine {
    fn kv(&self) -> &KvMachine {
        &self.kv
    }

    fn kv_mut(&mut self) -> &mut KvMachine {
        &mut self.kv
    }

    fn encode_kv_entry(entry: &agora_kv::LogEntry) -> Vec<u8> {
        MasterEntry::Kv(entry.encode()).encode()
    }
}

/// Reads a snapshot without panicking on short input.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MachineSnapshotError> {
        let (head, tail) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| MachineSnapshotError::Corrupt("truncated".to_string()))?;
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, MachineSnapshotError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    fn part(&mut self) -> Result<&'a [u8], MachineSnapshotError> {
        let len = usize::try_from(self.u64()?)
            .map_err(|_| MachineSnapshotError::Corrupt("part too long".to_string()))?;
        self.take(len)
    }
}

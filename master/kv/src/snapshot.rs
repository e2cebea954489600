//! Snapshots and the state hash.
//!
//! A snapshot holds the store's histories, its two revisions, the leases
//! and the raised alarms; the revision index and the lease→keys sets are derived on
//! restore, so a snapshot cannot contradict itself about them.
//!
//! The hash is FNV-1a over a canonical encoding of the same data, written
//! here rather than taken from `std::hash`, whose algorithm may change
//! between Rust releases while members upgrade one at a time.

use serde::{Deserialize, Serialize};

use crate::alarm::Alarms;
use crate::bytes::{ByteBuf, BytesRef};
use crate::lease::{Lease, Lessor};
use crate::mvcc::{MvccStore, Version};
use crate::{AlarmMember, KvError, KvState, LeaseId, Revision};

/// Snapshot format version, bumped when the layout changes meaning.
/// Format 2 is format 1 followed by the raised alarms. Format 1 is still
/// what a state with no alarm writes, so a member of the previous release
/// can take the snapshot while a group upgrades one member at a time.
const SNAPSHOT_FORMAT: u32 = 2;
const SNAPSHOT_FORMAT_NO_ALARMS: u32 = 1;

/// What [`KvState::snapshot`] writes: [`Snapshot`]'s layout over borrowed
/// data, so encoding does not first copy the whole history (serde writes a
/// slice exactly as the `Vec` it reads back).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    current_revision: Revision,
    compact_revision: Revision,
    keys: Vec<(BytesRef<'a>, &'a [Version])>,
    leases: Vec<&'a Lease>,
    highest_lease_id: LeaseId,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Snapshot {
    format: u32,
    current_revision: Revision,
    compact_revision: Revision,
    keys: Vec<(ByteBuf, Vec<Version>)>,
    leases: Vec<Lease>,
    highest_lease_id: LeaseId,
}

impl KvState {
    /// Serializes the whole state (history, revisions, leases).
    pub fn snapshot(&self) -> Vec<u8> {
        let alarms = self.alarms();
        let format = if alarms.is_empty() {
            SNAPSHOT_FORMAT_NO_ALARMS
        } else {
            SNAPSHOT_FORMAT
        };
        let snapshot = SnapshotRef {
            format,
            current_revision: self.store.current_revision(),
            compact_revision: self.store.compact_revision(),
            keys: (self.store.histories())
                .map(|(key, history)| (BytesRef(key), history))
                .collect(),
            leases: self.leases.all().collect(),
            highest_lease_id: self.leases.highest_id(),
        };
        // Plain data with string keys: serializing cannot fail.
        let mut bytes = postcard::to_stdvec(&snapshot).unwrap_or_default();
        if format == SNAPSHOT_FORMAT {
            bytes.extend(postcard::to_stdvec(&alarms).unwrap_or_default());
        }
        bytes
    }

    /// Rebuilds a state from [`KvState::snapshot`] output.
    pub fn restore(bytes: &[u8]) -> Result<KvState, KvError> {
        let corrupt = |reason: String| KvError::Corrupt {
            what: "snapshot",
            reason,
        };
        // A snapshot holds no txn, so postcard's own decoder (which hands
        // back the bytes after the value) needs no nesting guard.
        let (snapshot, rest): (Snapshot, _) =
            postcard::take_from_bytes(bytes).map_err(|error| corrupt(error.to_string()))?;
        let alarms = match snapshot.format {
            SNAPSHOT_FORMAT_NO_ALARMS => Vec::new(),
            SNAPSHOT_FORMAT => postcard::from_bytes::<Vec<AlarmMember>>(rest)
                .map_err(|error| corrupt(error.to_string()))?,
            unknown => return Err(corrupt(format!("unknown format {unknown}"))),
        };
        let mut keys = imbl::OrdMap::new();
        for (ByteBuf(key), history) in snapshot.keys {
            if history.is_empty() || keys.insert(key, history).is_some() {
                return Err(corrupt("empty or duplicate key history".to_string()));
            }
        }
        let store =
            MvccStore::from_parts(keys, snapshot.current_revision, snapshot.compact_revision)
                .map_err(corrupt)?;
        let mut leases =
            Lessor::from_leases(snapshot.leases, snapshot.highest_lease_id).map_err(corrupt)?;
        let now = store.current_revision();
        for (key, _) in store.histories() {
            if let Some(kv) = store.get(key, now) {
                leases.attach(kv.lease, key);
            }
        }
        Ok(KvState {
            store,
            leases,
            alarms: Alarms::from_list(alarms),
        })
    }

    /// A 64-bit digest of the whole state. Members that applied the same
    /// commands have equal hashes; compare them to detect divergence.
    pub fn hash(&self) -> u64 {
        let mut hash = Fnv64::new();
        hash.write_i64(self.store.current_revision());
        hash.write_i64(self.store.compact_revision());
        for (key, history) in self.store.histories() {
            hash.write_bytes(key);
            hash.write_len(history.len());
            for version in history {
                hash.write_version(version);
            }
        }
        hash.write_i64(self.leases.highest_id());
        for lease in self.leases.all() {
            hash.write_i64(lease.id);
            hash.write_i64(lease.ttl_seconds);
            hash.write_i64(lease.expires_at_ms);
        }
        for alarm in self.alarms.iter() {
            hash.write_bytes(&alarm.member_id.to_le_bytes());
            hash.write_u8(alarm.alarm as u8);
        }
        hash.finish()
    }
}

/// What [`KvState::hash_kv`] answers (etcd's HashKV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyspaceHash {
    /// The digest.
    pub hash: u64,
    /// The revision it covers the keyspace up to.
    pub revision: Revision,
    /// History below this revision is gone.
    pub compact_revision: Revision,
}

impl KvState {
    /// A digest of the keyspace as of `revision` (0 or less: the current
    /// one), as etcd's HashKV: every version at or below it that
    /// compaction kept, and the compact revision; leases are not part of
    /// it. Members that applied the same log up to the same compaction
    /// answer the same hash for the same revision, whatever they applied
    /// after it, so members at different revisions can be compared at a
    /// revision they all have. A revision at or below the compaction is
    /// `Compacted`, one above the current `FutureRevision`, as etcd's.
    pub fn hash_kv(&self, revision: Revision) -> Result<KeyspaceHash, KvError> {
        let current = self.store.current_revision();
        let compact_revision = self.store.compact_revision();
        if revision > current {
            return Err(KvError::FutureRevision);
        }
        if revision > 0 && revision <= compact_revision {
            return Err(KvError::Compacted { compact_revision });
        }
        let at = if revision > 0 { revision } else { current };
        let mut hash = Fnv64::new();
        hash.write_i64(compact_revision);
        hash.write_i64(at);
        for (key, history) in self.store.histories() {
            let upto = history.partition_point(|version| version.rev.main <= at);
            if upto == 0 {
                continue;
            }
            hash.write_bytes(key);
            hash.write_len(upto);
            for version in &history[..upto] {
                hash.write_version(version);
            }
        }
        Ok(KeyspaceHash {
            hash: hash.finish(),
            revision: at,
            compact_revision,
        })
    }
}

/// 64-bit FNV-1a. Every variable-length field is length-prefixed so that
/// different states cannot encode to the same bytes.
struct Fnv64(u64);

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv64(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.write(&[value]);
    }

    fn write_i64(&mut self, value: i64) {
        self.write(&value.to_le_bytes());
    }

    fn write_len(&mut self, len: usize) {
        self.write(&u64::try_from(len).unwrap_or(u64::MAX).to_le_bytes());
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_len(bytes.len());
        self.write(bytes);
    }

    fn write_version(&mut self, version: &Version) {
        self.write_i64(version.rev.main);
        self.write_i64(version.rev.sub);
        match &version.live {
            None => self.write_u8(0),
            Some(live) => {
                self.write_u8(1);
                self.write_i64(live.create_revision);
                self.write_i64(live.version);
                self.write_i64(live.lease);
                self.write_bytes(&live.value);
            }
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod borrowed_layout {
    use super::*;
    use crate::{Command, PutRequest};

    /// Snapshots written by members that still encode the owned layout, and
    /// those written now, must be the same bytes.
    #[test]
    fn the_borrowed_layout_writes_the_owned_layouts_bytes() {
        let mut kv = KvState::new();
        kv.apply(&Command::LeaseGrant {
            id: 7,
            ttl_seconds: 30,
            now_ms: 5,
        })
        .unwrap();
        for (key, value, lease) in [("a", "1", 7), ("b", "22", 0), ("a", "333", 0)] {
            let put = PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                lease,
                ..PutRequest::default()
            };
            kv.apply(&Command::Put(put)).unwrap();
        }
        let written = kv.snapshot();
        let owned: Snapshot = postcard::from_bytes(&written).unwrap();
        assert_eq!(owned.keys.len(), 2);
        assert_eq!(postcard::to_stdvec(&owned).unwrap(), written);
    }
}

//! The multi-version key store: every version of every key since the last
//! compaction, addressed by revision.
//!
//! Layout, chosen so no operation is O(keyspace):
//! - `keys`: key bytes → that key's versions in revision order (puts and
//!   tombstones). A read at revision `r` is a binary search in one list.
//! - `changes`: (main, sub) revision → key. It orders all changes globally,
//!   which is what watch replay and compaction walk; the events themselves
//!   are rebuilt from `keys`, so nothing is stored twice.
//!
//! Both maps are persistent B-trees (`imbl::OrdMap`): a copy shares every
//! node with the original, and a later write copies only the nodes on its
//! path. A snapshot therefore copies the store in O(1) on the Raft thread
//! and encodes the copy elsewhere, however long the history.
//!
//! Compaction is logical at once and physical in batches, as etcd's
//! (`compactionBatchLimit`): `compact` only moves the compact revision, and
//! `trim` later takes the changes below it off the front of `changes` and
//! drops their versions from the key histories, a bounded number at a time;
//! then it visits the keys changed at the compact revision itself, whose
//! replaced versions an earlier compaction may have kept.
//! A compaction of a long history thus never holds the Raft thread for
//! more than one batch. Until then, `changes` and the histories still hold
//! entries no read can see (reads below the compact revision are refused);
//! [`MvccStore::histories`], which snapshots, the state hash and equality
//! go through, skips them, so how far trimming got never shows: members
//! that trimmed at different times stay equal.

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::{Event, EventType, KeyValue, KvError, LeaseId, Revision};

/// Position of one change: the transaction's main revision and the change's
/// index inside that transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Rev {
    pub(crate) main: Revision,
    pub(crate) sub: i64,
}

/// The fields of a live version; the key and mod revision live beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LiveVersion {
    pub(crate) create_revision: Revision,
    pub(crate) version: i64,
    /// Shared, so the versions a write copies out of a snapshot's shared
    /// nodes (see the module doc) count references, not bytes.
    #[serde(with = "crate::bytes")]
    pub(crate) value: Arc<[u8]>,
    pub(crate) lease: LeaseId,
}

/// One entry of a key's history: a put (`live`) or a delete (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Version {
    pub(crate) rev: Rev,
    pub(crate) live: Option<LiveVersion>,
}

impl Version {
    fn to_key_value(&self, key: &[u8]) -> Option<KeyValue> {
        let live = self.live.as_ref()?;
        Some(KeyValue {
            key: key.to_vec(),
            create_revision: live.create_revision,
            mod_revision: self.rev.main,
            version: live.version,
            value: live.value.to_vec(),
            lease: live.lease,
        })
    }
}

/// Bounds of a key interval, as `OrdMap::range` takes them.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// A key interval with etcd's `range_end` conventions already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyRange {
    /// `range_end` empty: exactly one key.
    Single(Vec<u8>),
    /// `range_end == "\0"`: every key `>= start`.
    From(Vec<u8>),
    /// `[start, end)`; empty when `end <= start`.
    Between(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    pub(crate) fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key.to_vec()),
            [0] => KeyRange::From(key.to_vec()),
            end => KeyRange::Between(key.to_vec(), end.to_vec()),
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Single(only) => key == only.as_slice(),
            KeyRange::From(start) => key >= start.as_slice(),
            KeyRange::Between(start, end) => key >= start.as_slice() && key < end.as_slice(),
        }
    }

    /// Bounds for `OrdMap::range`, or `None` for an empty interval (which
    /// `range` would panic on).
    fn bounds(&self) -> Option<KeyBounds<'_>> {
        match self {
            KeyRange::Single(only) => Some((Bound::Included(only), Bound::Included(only))),
            KeyRange::From(start) => Some((Bound::Included(start), Bound::Unbounded)),
            KeyRange::Between(start, end) if start < end => {
                Some((Bound::Included(start), Bound::Excluded(end)))
            }
            KeyRange::Between(..) => None,
        }
    }
}

/// The versioned keyspace. See the module doc for the layout.
#[derive(Debug, Clone)]
pub(crate) struct MvccStore {
    keys: OrdMap<Vec<u8>, Vec<Version>>,
    /// The key of every change by revision (one allocation per key, shared
    /// by its changes). Those below the compact revision await `trim`.
    changes: OrdMap<Rev, Arc<[u8]>>,
    current_revision: Revision,
    compact_revision: Revision,
    /// Where `trim` goes on with the changes made at exactly the compact
    /// revision (`None`: none left to visit). Those stay in `changes`, since
    /// watches from the compact revision replay them, but each may have
    /// superseded a version its key kept from an earlier compaction; that
    /// version's own change was trimmed then, so only this visit frees it.
    revisit: Option<Rev>,
    /// Approximate bytes held by the stored versions, trimmed or not
    /// (etcd's `dbSize`): not part of the replicated state, since it depends
    /// on how far trimming got.
    held_bytes: u64,
}

/// What one stored version holds besides its value: the version and its
/// entry in `changes` (B-tree nodes are not counted).
const VERSION_BYTES: u64 =
    (size_of::<Version>() + size_of::<Rev>() + size_of::<Arc<[u8]>>()) as u64;
/// What one key holds besides its bytes: its entry in `keys`.
const KEY_BYTES: u64 = (size_of::<Vec<u8>>() + size_of::<Vec<Version>>()) as u64;

/// Bytes [`MvccStore::held_bytes`] counts for one version.
fn version_bytes(version: &Version) -> u64 {
    let value = version.live.as_ref().map_or(0, |live| live.value.len());
    VERSION_BYTES.saturating_add(value as u64)
}

/// Bytes [`MvccStore::held_bytes`] counts for a key with this history.
fn key_bytes(key: &[u8], history: &[Version]) -> u64 {
    let versions: u64 = history.iter().map(version_bytes).sum();
    (KEY_BYTES + key.len() as u64).saturating_add(versions)
}

impl Default for MvccStore {
    fn default() -> Self {
        MvccStore {
            keys: OrdMap::new(),
            changes: OrdMap::new(),
            // etcd's empty store reports revision 1; the first write is 2.
            current_revision: 1,
            compact_revision: 0,
            revisit: None,
            held_bytes: 0,
        }
    }
}

/// Equal when every read, snapshot and hash is: same revisions and the
/// same visible histories, however far each store got with trimming.
impl PartialEq for MvccStore {
    fn eq(&self, other: &Self) -> bool {
        self.current_revision == other.current_revision
            && self.compact_revision == other.compact_revision
            && self.histories().eq(other.histories())
    }
}

impl Eq for MvccStore {}

impl MvccStore {
    pub(crate) fn current_revision(&self) -> Revision {
        self.current_revision
    }

    pub(crate) fn compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// Approximate bytes the stored versions hold, including compacted
    /// ones not yet trimmed.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Resolves a requested read revision (`<= 0` means now) and checks it
    /// lies inside the stored history.
    pub(crate) fn read_revision(&self, requested: Revision) -> Result<Revision, KvError> {
        if requested <= 0 {
            return Ok(self.current_revision);
        }
        if requested > self.current_revision {
            return Err(KvError::FutureRevision);
        }
        if requested < self.compact_revision {
            return Err(KvError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        Ok(requested)
    }

    /// The key's live version as of `at` (including writes of a transaction
    /// in progress when `at` is its main revision).
    pub(crate) fn get(&self, key: &[u8], at: Revision) -> Option<KeyValue> {
        let history = self.keys.get(key)?;
        version_at(history, at)?.to_key_value(key)
    }

    /// Every key in `range` that is live as of `at`, in key order.
    pub(crate) fn live_in(&self, range: &KeyRange, at: Revision) -> Vec<KeyValue> {
        let Some(bounds) = range.bounds() else {
            return Vec::new();
        };
        self.keys
            .range::<_, [u8]>(bounds)
            .filter_map(|(key, history)| version_at(history, at)?.to_key_value(key))
            .collect()
    }

    /// Records a put at `rev` and returns the new version. `rev` must be
    /// newer than every stored change (the writer guarantees it).
    pub(crate) fn put(&mut self, rev: Rev, key: &[u8], value: Vec<u8>, lease: LeaseId) -> KeyValue {
        let history = self.keys.entry(key.to_vec()).or_default();
        if history.is_empty() {
            self.held_bytes += KEY_BYTES + key.len() as u64;
        }
        let (create_revision, version) = match history.last().and_then(|v| v.live.as_ref()) {
            Some(live) => (live.create_revision, live.version.saturating_add(1)),
            None => (rev.main, 1),
        };
        let live = LiveVersion {
            create_revision,
            version,
            value: Arc::from(value),
            lease,
        };
        let entry = Version {
            rev,
            live: Some(live),
        };
        let kv = entry.to_key_value(key);
        self.held_bytes += version_bytes(&entry);
        history.push(entry);
        self.changes.insert(rev, Arc::from(key));
        kv.unwrap_or_else(|| tombstone(key, rev.main))
    }

    /// Records a delete at `rev`; returns the version deleted, or `None`
    /// (and records nothing) if the key was not live.
    pub(crate) fn delete(&mut self, rev: Rev, key: &[u8]) -> Option<KeyValue> {
        let history = self.keys.get_mut(key)?;
        let previous = history.last()?.to_key_value(key)?;
        history.push(Version { rev, live: None });
        self.held_bytes += VERSION_BYTES;
        self.changes.insert(rev, Arc::from(key));
        Some(previous)
    }

    /// Marks transaction `main` as committed: reads at "now" include it.
    pub(crate) fn commit(&mut self, main: Revision) {
        self.current_revision = main;
    }

    /// Every change with `from <= main revision <= to`, as watch events in
    /// revision order. The caller checks `from` against compaction.
    pub(crate) fn events(&self, from: Revision, to: Revision) -> Vec<Event> {
        self.events_iter(from, to).collect()
    }

    /// Lazy form of [`MvccStore::events`], so a reader can stop early.
    pub(crate) fn events_iter(
        &self,
        from: Revision,
        to: Revision,
    ) -> impl Iterator<Item = Event> + '_ {
        let start = Rev { main: from, sub: 0 };
        let end = Rev {
            main: to,
            sub: i64::MAX,
        };
        let window = if from > to {
            None
        } else {
            Some(self.changes.range(start..=end))
        };
        window
            .into_iter()
            .flatten()
            .filter_map(|(rev, key)| self.event_at(*rev, key))
    }

    fn event_at(&self, rev: Rev, key: &[u8]) -> Option<Event> {
        let history = self.keys.get(key)?;
        let index = history.binary_search_by(|v| v.rev.cmp(&rev)).ok()?;
        let entry = history.get(index)?;
        // Only a visible predecessor: one that compaction superseded is gone
        // for etcd too, which omits prev_kv for events at the compact revision.
        let prev_kv = index
            .checked_sub(1)
            .filter(|&i| i >= compacted_prefix(history, self.compact_revision))
            .and_then(|i| history.get(i))
            .and_then(|v| v.to_key_value(key));
        let (kind, kv) = match entry.to_key_value(key) {
            Some(kv) => (EventType::Put, kv),
            None => (EventType::Delete, tombstone(key, rev.main)),
        };
        Some(Event { kind, kv, prev_kv })
    }

    /// Compacts the history at `revision`: no read below it is served any
    /// more. The versions no read at `revision` or later can see (each key
    /// keeps its versions from `revision` on plus, if live and not replaced
    /// at `revision`, the last one before it) are left for
    /// [`MvccStore::trim`]. O(1): see the module doc.
    pub(crate) fn compact(&mut self, revision: Revision) -> Result<(), KvError> {
        if revision <= self.compact_revision {
            return Err(KvError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.current_revision {
            return Err(KvError::FutureRevision);
        }
        self.compact_revision = revision;
        self.revisit = Some(Rev {
            main: revision,
            sub: 0,
        });
        Ok(())
    }

    /// Removes up to `budget` changes below the compact revision, with the
    /// versions of their keys that no read can see any more, then visits
    /// the changes at the compact revision (see `revisit`). Returns
    /// whether any work is left. Invisible to every read, snapshot and
    /// hash (see the module doc); each step is O(log n).
    pub(crate) fn trim(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            if let Some(rev) = self.oldest_compacted_change() {
                if let Some(key) = self.changes.remove(&rev) {
                    self.trim_key(&key);
                }
            } else if let Some((rev, key)) = self.next_revisit() {
                self.revisit = Some(Rev {
                    main: rev.main,
                    sub: rev.sub.saturating_add(1),
                });
                self.trim_key(&key);
            } else {
                self.revisit = None;
                return false;
            }
        }
        self.is_trimming()
    }

    /// Whether compacted changes are still waiting for [`MvccStore::trim`].
    pub(crate) fn is_trimming(&self) -> bool {
        self.oldest_compacted_change().is_some() || self.next_revisit().is_some()
    }

    fn oldest_compacted_change(&self) -> Option<Rev> {
        let (rev, _) = self.changes.get_min()?;
        (rev.main < self.compact_revision).then_some(*rev)
    }

    /// The next change at the compact revision `trim` has not visited.
    fn next_revisit(&self) -> Option<(Rev, Arc<[u8]>)> {
        let from = self.revisit?;
        let (rev, key) = self.changes.range(from..).next()?;
        (rev.main == self.compact_revision).then(|| (*rev, Arc::clone(key)))
    }

    /// Drops the versions of `key` that no read can see any more. A key's
    /// changes may be dropped many times over; after the first, this only
    /// looks (no copy-on-write of a node a snapshot shares).
    fn trim_key(&mut self, key: &[u8]) {
        let Some(history) = self.keys.get(key) else {
            return;
        };
        let invisible = compacted_prefix(history, self.compact_revision);
        if invisible == 0 {
            return;
        }
        if invisible == history.len() {
            self.held_bytes = self.held_bytes.saturating_sub(key_bytes(key, history));
            self.keys.remove(key);
        } else if let Some(history) = self.keys.get_mut(key) {
            let freed: u64 = history.drain(..invisible).map(|v| version_bytes(&v)).sum();
            self.held_bytes = self.held_bytes.saturating_sub(freed);
        }
    }

    /// Every key's visible history (without versions compacted away but
    /// not yet trimmed), in key order: what snapshots, the hash and
    /// equality see. Keys with nothing visible are skipped.
    pub(crate) fn histories(&self) -> impl Iterator<Item = (&Vec<u8>, &[Version])> {
        let compact = self.compact_revision;
        self.keys.iter().filter_map(move |(key, history)| {
            let visible = history.get(compacted_prefix(history, compact)..)?;
            (!visible.is_empty()).then_some((key, visible))
        })
    }

    /// Versions in all histories and entries in `changes`, trimmed or not.
    #[cfg(test)]
    pub(crate) fn stored(&self) -> (usize, usize) {
        let versions = self.keys.values().map(Vec::len).sum();
        (versions, self.changes.len())
    }

    /// Rebuilds a store from snapshot parts, checking the invariants the
    /// rest of the code relies on (histories sorted, inside the revision
    /// window, no empty history).
    pub(crate) fn from_parts(
        keys: OrdMap<Vec<u8>, Vec<Version>>,
        current_revision: Revision,
        compact_revision: Revision,
    ) -> Result<Self, String> {
        if current_revision < 1 || compact_revision < 0 || compact_revision > current_revision {
            return Err(format!(
                "bad revisions: current {current_revision}, compact {compact_revision}"
            ));
        }
        let mut changes = OrdMap::new();
        let mut held_bytes = 0u64;
        for (key, history) in &keys {
            held_bytes = held_bytes.saturating_add(key_bytes(key, history));
            let sorted = history.windows(2).all(|pair| pair[0].rev < pair[1].rev);
            let last_ok = history
                .last()
                .is_some_and(|v| v.rev.main <= current_revision);
            if !sorted || !last_ok {
                return Err(format!("bad history for key {key:?}"));
            }
            let shared: Arc<[u8]> = Arc::from(key.as_slice());
            for version in history.iter().filter(|v| v.rev.main >= compact_revision) {
                changes.insert(version.rev, Arc::clone(&shared));
            }
        }
        Ok(MvccStore {
            keys,
            changes,
            current_revision,
            compact_revision,
            revisit: None,
            held_bytes,
        })
    }
}

/// How many of a history's oldest versions no read at `compact` or later
/// can see: those before `compact`, except the last of them if it is live
/// and no version at `compact` replaced it (then it is the key's value at
/// `compact`). As etcd's compaction, which keeps the last version at or
/// below the compact revision.
fn compacted_prefix(history: &[Version], compact: Revision) -> usize {
    let below = history.partition_point(|v| v.rev.main < compact);
    let replaced_at_compact = history.get(below).is_some_and(|v| v.rev.main == compact);
    let keep_last_below = !replaced_at_compact
        && below
            .checked_sub(1)
            .and_then(|last| history.get(last))
            .is_some_and(|v| v.live.is_some());
    below - usize::from(keep_last_below)
}

/// The version visible at `at`: the last one written at or before it.
fn version_at(history: &[Version], at: Revision) -> Option<&Version> {
    let visible = history.partition_point(|v| v.rev.main <= at);
    history.get(visible.checked_sub(1)?)
}

/// The key-value etcd reports for a delete: only key and mod revision.
fn tombstone(key: &[u8], main: Revision) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: 0,
        mod_revision: main,
        version: 0,
        value: Vec::new(),
        lease: 0,
    }
}

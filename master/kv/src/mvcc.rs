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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MvccStore {
    keys: OrdMap<Vec<u8>, Vec<Version>>,
    /// The key of every change by revision (one allocation per key, shared
    /// by its changes).
    changes: OrdMap<Rev, Arc<[u8]>>,
    current_revision: Revision,
    compact_revision: Revision,
}

impl Default for MvccStore {
    fn default() -> Self {
        MvccStore {
            keys: OrdMap::new(),
            changes: OrdMap::new(),
            // etcd's empty store reports revision 1; the first write is 2.
            current_revision: 1,
            compact_revision: 0,
        }
    }
}

impl MvccStore {
    pub(crate) fn current_revision(&self) -> Revision {
        self.current_revision
    }

    pub(crate) fn compact_revision(&self) -> Revision {
        self.compact_revision
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
        let prev_kv = index
            .checked_sub(1)
            .and_then(|i| history.get(i))
            .and_then(|v| v.to_key_value(key));
        let (kind, kv) = match entry.to_key_value(key) {
            Some(kv) => (EventType::Put, kv),
            None => (EventType::Delete, tombstone(key, rev.main)),
        };
        Some(Event { kind, kv, prev_kv })
    }

    /// Drops every version that no read at `revision` or later can see:
    /// each key keeps its versions from `revision` on plus, if live, the
    /// last one before it. Cost is proportional to the changes dropped.
    pub(crate) fn compact(&mut self, revision: Revision) -> Result<(), KvError> {
        if revision <= self.compact_revision {
            return Err(KvError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.current_revision {
            return Err(KvError::FutureRevision);
        }
        let first_kept = Rev {
            main: revision,
            sub: 0,
        };
        let (dropped, at, mut kept) = self.changes.split_lookup(&first_kept);
        if let Some(key) = at {
            kept.insert(first_kept, key);
        }
        self.changes = kept;
        let mut touched: Vec<Arc<[u8]>> = dropped.values().cloned().collect();
        touched.sort();
        touched.dedup();
        for key in touched {
            let Some(history) = self.keys.get_mut(&*key) else {
                continue;
            };
            let below = history.partition_point(|v| v.rev.main < revision);
            let keep_last_below =
                below > 0 && history.get(below - 1).is_some_and(|v| v.live.is_some());
            history.drain(..below.saturating_sub(usize::from(keep_last_below)));
            if history.is_empty() {
                self.keys.remove(&*key);
            }
        }
        self.compact_revision = revision;
        Ok(())
    }

    /// All stored histories in key order (for snapshots and hashing).
    pub(crate) fn histories(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<Version>)> {
        self.keys.iter()
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
        for (key, history) in &keys {
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
        })
    }
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

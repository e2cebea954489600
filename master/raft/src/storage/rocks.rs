//! [`RocksLogStore`]: the durable [`LogStore`], in one RocksDB database
//! per member (a directory of its own).
//!
//! Column families:
//! - `log`: key = entry index as big-endian u64 (so keys sort by index),
//!   value = the protobuf-encoded `Entry`;
//! - `state`: `hard_state` and `conf_state` (protobuf), and `compacted`
//!   (index and term of the entry just before the log, two big-endian u64);
//! - `snapshot`: `meta`, the newest snapshot's metadata (protobuf), and
//!   `data/` + its index (big-endian u64), the snapshot's data. Older
//!   stores kept the whole snapshot under `latest`; it is still read, and
//!   replaced by the two keys at the next snapshot.
//!
//! A snapshot encoded off the replica's thread has its data written by
//! [`LogStore::snapshot_stager`]: a table file (RocksDB's `SstFileWriter`)
//! ingested into `snapshot`, so the tens of MB of a large keyspace never
//! pass through the WAL that every log append waits on. The replica's
//! thread then writes only `meta` and the compaction. Data keys below the
//! one `meta` names are deleted with every new snapshot, so data that was
//! staged but never adopted (a crash, or a snapshot overtaken by the
//! leader's) goes with the next.
//!
//! Every write method makes exactly one `WriteBatch`, written with
//! `sync = true` (WAL fsync) before it returns, so each call is atomic and
//! durable; the one exception is a hard state that only moves the commit
//! index (not fsynced, as etcd does: see `persist_ready`). The WAL is a
//! rotation of recycled files, primed at open, so that those fsyncs overwrite
//! blocks instead of growing a file (`wal.rs`). Hard state, conf state, the log bounds and the snapshot are
//! cached in memory (loaded and checked at `open`), and so are the terms of
//! the newest entries as they are written (`recent_terms.rs`); entries, and
//! the terms of older ones, are read from RocksDB on demand. A value that does not decode is an error
//! naming its column family and key, never a panic.

use std::path::Path;
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction,
    IngestExternalFileOptions, IteratorMode, Options, SstFileWriter, WriteBatch, WriteOptions,
};

use super::{LogStore, SnapshotStager};

mod defrag;
mod recent_terms;
mod wal;
pub use defrag::{Defragmented, Defragmenter};
use recent_terms::RecentTerms;

const CF_LOG: &str = "log";
const CF_STATE: &str = "state";
const CF_SNAPSHOT: &str = "snapshot";
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_COMPACTED: &[u8] = b"compacted";
/// The whole snapshot, in stores written before `meta` and `data/`.
const KEY_OLD_SNAPSHOT: &[u8] = b"latest";
const KEY_SNAPSHOT_META: &[u8] = b"meta";
const DATA_PREFIX: &[u8] = b"data/";
/// Where staged snapshot tables are written before RocksDB ingests
/// (moves) them; inside the database directory, so on its file system.
const STAGING_DIR: &str = "staging";

/// Column family `name` of `db` (also for stagers, which hold only the database).
fn column_family<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily, StorageError> {
    db.cf_handle(name)
        .ok_or_else(|| StorageError::Inconsistent(format!("no column family {name}")))
}

fn data_key(index: u64) -> Vec<u8> {
    let mut key = DATA_PREFIX.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Why the RocksDB log store failed. Inside the [`raft::Storage`] and
/// [`LogStore`] methods it travels as `raft::StorageError::Other`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB itself failed (IO error, corruption it detected, lock held).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value (or key) does not decode.
    #[error("corrupt value in {cf}/{key}: {reason}")]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// The key, readable (an index, or the key's name).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stored log breaks the store's invariants (a gap, an entry under
    /// the wrong key, a log that does not start after the compaction point).
    #[error("inconsistent log: {0}")]
    Inconsistent(String),
    /// A write that would break the store's invariants (a gap, a snapshot
    /// or a compaction outside the log).
    #[error("refused: {0}")]
    Refused(String),
    /// The directory where snapshot tables are staged could not be
    /// created, cleared or written.
    #[error("snapshot staging: {0}")]
    Staging(std::io::Error),
    /// An entry or state could not be encoded.
    #[error("encode {what}: {reason}")]
    Encode {
        /// Which kind of value.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },
}

impl From<StorageError> for raft::Error {
    fn from(error: StorageError) -> Self {
        raft::Error::Store(raft::StorageError::Other(Box::new(error)))
    }
}

fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn index_of(key: &[u8]) -> Result<u64, StorageError> {
    let bytes = <[u8; 8]>::try_from(key).map_err(|_| StorageError::Corrupt {
        cf: CF_LOG,
        key: format!("{key:02x?}"),
        reason: format!("key is {} bytes, not 8", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn key_name(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn decode<M: protobuf::Message>(
    cf: &'static str,
    key: String,
    bytes: &[u8],
) -> Result<M, StorageError> {
    M::parse_from_bytes(bytes).map_err(|error| StorageError::Corrupt {
        cf,
        key,
        reason: error.to_string(),
    })
}

fn encode<M: protobuf::Message>(what: &'static str, message: &M) -> Result<Vec<u8>, StorageError> {
    message
        .write_to_bytes()
        .map_err(|error| StorageError::Encode {
            what,
            reason: error.to_string(),
        })
}

/// A Raft log in RocksDB: entries, hard state, conf state and the newest
/// snapshot. One store per member and directory; RocksDB's lock refuses a
/// second open of the same directory.
pub struct RocksLogStore {
    /// Shared with snapshot stagers running on other threads.
    db: Arc<DB>,
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before the first one in the log.
    offset_index: u64,
    offset_term: u64,
    /// Index of the last entry (`offset_index` when the log is empty).
    last: u64,
    /// The newest snapshot, also kept in memory (the engine sends it whole).
    snapshot: Snapshot,
    /// Terms of the newest entries, so most `term` calls read no entry.
    recent: RecentTerms,
}

impl std::fmt::Debug for RocksLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLogStore")
            .field("path", &self.db.path())
            .field("offset_index", &self.offset_index)
            .field("last", &self.last)
            .field("hard_state", &self.hard_state)
            .finish_non_exhaustive()
    }
}

impl RocksLogStore {
    /// Opens (or creates) the store in `dir` and loads its state; a value
    /// that does not decode or a log with a gap is an error.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(DBCompressionType::Lz4);
        // RocksDB's own info log: a few small files, not an unbounded pile.
        options.set_keep_log_file_num(4);
        options.set_max_log_file_size(4 << 20);
        wal::configure(&mut options);
        let families = [CF_LOG, CF_STATE, CF_SNAPSHOT].map(|name| {
            let mut cf_options = Options::default();
            cf_options.set_compression_type(DBCompressionType::Lz4);
            if name == CF_LOG {
                wal::configure_log_family(&mut cf_options);
            }
            ColumnFamilyDescriptor::new(name, cf_options)
        });
        let db = DB::open_cf_descriptors(&options, &dir, families)?;
        wal::prime(&db)?;
        // A table staged when the process died was never ingested.
        let staging = dir.as_ref().join(STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(StorageError::Staging)?;
        }
        let mut store = RocksLogStore {
            db: Arc::new(db),
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            offset_index: 0,
            offset_term: 0,
            last: 0,
            snapshot: Snapshot::default(),
            recent: RecentTerms::default(),
        };
        store.load()?;
        Ok(store)
    }

    /// A handle that defragments this store's files from another thread
    /// (etcd's `Defragment`).
    pub fn defragmenter(&self) -> Defragmenter {
        Defragmenter::new(&self.db)
    }

    /// The database's directory.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    fn load(&mut self) -> Result<(), StorageError> {
        if let Some(bytes) = self.db.get_cf(self.cf(CF_STATE)?, KEY_HARD_STATE)? {
            self.hard_state = decode(CF_STATE, key_name(KEY_HARD_STATE), &bytes)?;
        }
        if let Some(bytes) = self.db.get_cf(self.cf(CF_STATE)?, KEY_CONF_STATE)? {
            self.conf_state = decode(CF_STATE, key_name(KEY_CONF_STATE), &bytes)?;
        }
        self.snapshot = self.load_snapshot()?;
        if let Some(bytes) = self.db.get_cf(self.cf(CF_STATE)?, KEY_COMPACTED)? {
            let pair =
                <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| StorageError::Corrupt {
                    cf: CF_STATE,
                    key: key_name(KEY_COMPACTED),
                    reason: format!("{} bytes, not 16", bytes.len()),
                })?;
            let (index, term) = pair.split_at(8);
            self.offset_index = index_of(index)?;
            self.offset_term = index_of(term)?;
        }
        self.last = self.offset_index;
        let first = self.edge_entry(IteratorMode::Start)?;
        let last = self.edge_entry(IteratorMode::End)?;
        if let (Some(first), Some(last)) = (first, last) {
            if first != self.offset_index + 1 {
                return Err(StorageError::Inconsistent(format!(
                    "log starts at {first}, the compaction point is {}",
                    self.offset_index
                )));
            }
            self.last = last;
        }
        // raft-rs panics on a commit index past the log; refuse it here.
        if self.hard_state.commit > self.last {
            return Err(StorageError::Inconsistent(format!(
                "commit index {} past the last entry {}",
                self.hard_state.commit, self.last
            )));
        }
        if self.snapshot.get_metadata().index < self.offset_index {
            return Err(StorageError::Inconsistent(format!(
                "snapshot at {} before the compaction point {}",
                self.snapshot.get_metadata().index,
                self.offset_index
            )));
        }
        Ok(())
    }

    /// The stored snapshot, from `meta` and its `data/` key, or from an
    /// older store's `latest`; an empty one if there is none.
    fn load_snapshot(&self) -> Result<Snapshot, StorageError> {
        let cf = self.cf(CF_SNAPSHOT)?;
        let Some(bytes) = self.db.get_cf(cf, KEY_SNAPSHOT_META)? else {
            return match self.db.get_cf(cf, KEY_OLD_SNAPSHOT)? {
                Some(bytes) => decode(CF_SNAPSHOT, key_name(KEY_OLD_SNAPSHOT), &bytes),
                None => Ok(Snapshot::default()),
            };
        };
        let meta: SnapshotMetadata = decode(CF_SNAPSHOT, key_name(KEY_SNAPSHOT_META), &bytes)?;
        let key = data_key(meta.index);
        let data = self
            .db
            .get_cf(cf, &key)?
            .ok_or_else(|| StorageError::Corrupt {
                cf: CF_SNAPSHOT,
                key: key_name(KEY_SNAPSHOT_META),
                reason: format!(
                    "names the data of snapshot {}, which is missing",
                    meta.index
                ),
            })?;
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(meta);
        snapshot.set_data(data.into());
        Ok(snapshot)
    }

    /// The index of the first or last key in the log, if any.
    fn edge_entry(&self, mode: IteratorMode<'_>) -> Result<Option<u64>, StorageError> {
        match self.db.iterator_cf(self.cf(CF_LOG)?, mode).next() {
            None => Ok(None),
            Some(item) => {
                let (key, _) = item?;
                Ok(Some(index_of(&key)?))
            }
        }
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        column_family(&self.db, name)
    }

    fn first(&self) -> u64 {
        self.offset_index + 1
    }

    /// Writes `batch` with an fsync of the WAL.
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.commit_with(batch, true)
    }

    /// Writes `batch`, with an fsync of the WAL when `sync`.
    fn commit_with(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    /// Reads the entry stored at `index` (which must be in the log).
    fn read_entry(&self, index: u64) -> Result<Entry, StorageError> {
        let bytes = (self.db.get_cf(self.cf(CF_LOG)?, log_key(index))?).ok_or_else(|| {
            StorageError::Inconsistent(format!(
                "entry {index} missing from the log [{}, {}]",
                self.first(),
                self.last
            ))
        })?;
        let entry: Entry = decode(CF_LOG, index.to_string(), &bytes)?;
        if entry.index != index {
            return Err(StorageError::Corrupt {
                cf: CF_LOG,
                key: index.to_string(),
                reason: format!("holds entry {}", entry.index),
            });
        }
        Ok(entry)
    }

    /// Entries `low..high` (inside the log), at most `max_size` bytes but
    /// at least one, like `raft::util::limit_size`.
    fn read_entries(
        &self,
        low: u64,
        high: u64,
        max_size: Option<u64>,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut entries = Vec::new();
        if low >= high {
            return Ok(entries);
        }
        let limit = max_size.filter(|max| *max != raft::NO_LIMIT);
        let mut size = 0u64;
        let start = log_key(low);
        let mode = IteratorMode::From(&start, Direction::Forward);
        for (expected, item) in (low..high).zip(self.db.iterator_cf(self.cf(CF_LOG)?, mode)) {
            let (key, value) = item?;
            let index = index_of(&key)?;
            if index != expected {
                return Err(StorageError::Inconsistent(format!(
                    "entry {expected} missing (next key {index})"
                )));
            }
            let entry: Entry = decode(CF_LOG, index.to_string(), &value)?;
            if entry.index != index {
                return Err(StorageError::Corrupt {
                    cf: CF_LOG,
                    key: index.to_string(),
                    reason: format!("holds entry {}", entry.index),
                });
            }
            size += u64::from(entry.compute_size());
            if limit.is_some_and(|max| size > max) && !entries.is_empty() {
                return Ok(entries);
            }
            entries.push(entry);
        }
        if entries.len() as u64 != high - low {
            return Err(StorageError::Inconsistent(format!(
                "log ends at {}, expected entries up to {}",
                low + entries.len() as u64,
                high - 1
            )));
        }
        Ok(entries)
    }

    fn term_of(&self, index: u64) -> raft::Result<u64> {
        if index == self.offset_index {
            return Ok(self.offset_term);
        }
        if index < self.offset_index {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if index > self.last {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        match self.recent.get(index) {
            Some(term) => Ok(term),
            None => Ok(self.read_entry(index)?.term),
        }
    }

    /// Adds the append of `entries` to `batch`; returns the new last index.
    fn batch_append(&self, batch: &mut WriteBatch, entries: &[Entry]) -> Result<u64, StorageError> {
        let Some(first_new) = entries.first().map(|e| e.index) else {
            return Ok(self.last);
        };
        if first_new < self.first() || first_new > self.last + 1 {
            return Err(StorageError::Refused(format!(
                "append at {first_new} outside [{}, {}]",
                self.first(),
                self.last + 1
            )));
        }
        let log = self.cf(CF_LOG)?;
        for (expected, entry) in (first_new..).zip(entries) {
            if entry.index != expected {
                return Err(StorageError::Refused(format!(
                    "entries not contiguous: {} where {expected} was due",
                    entry.index
                )));
            }
            batch.put_cf(log, log_key(entry.index), encode("entry", entry)?);
        }
        let new_last = first_new + entries.len() as u64 - 1;
        // The conflicting tail beyond the new entries goes.
        if self.last > new_last {
            batch.delete_range_cf(log, log_key(new_last + 1), log_key(self.last + 1));
        }
        Ok(new_last)
    }

    fn put_hard_state(&self, batch: &mut WriteBatch, hs: &HardState) -> Result<(), StorageError> {
        batch.put_cf(
            self.cf(CF_STATE)?,
            KEY_HARD_STATE,
            encode("hard state", hs)?,
        );
        Ok(())
    }

    fn put_compacted(
        &self,
        batch: &mut WriteBatch,
        index: u64,
        term: u64,
    ) -> Result<(), StorageError> {
        let mut value = [0u8; 16];
        value[..8].copy_from_slice(&index.to_be_bytes());
        value[8..].copy_from_slice(&term.to_be_bytes());
        batch.put_cf(self.cf(CF_STATE)?, KEY_COMPACTED, value);
        Ok(())
    }

    /// Checks a snapshot this member took; adds it to `batch` if it is the
    /// newest. Returns whether it replaces the stored one.
    fn batch_save_snapshot(
        &self,
        batch: &mut WriteBatch,
        snapshot: &Snapshot,
        with_data: bool,
    ) -> Result<bool, StorageError> {
        let index = snapshot.get_metadata().index;
        if index > self.last || index < self.offset_index {
            return Err(StorageError::Refused(format!(
                "snapshot at {index} outside the log [{}, {}]",
                self.offset_index, self.last
            )));
        }
        if index < self.snapshot.get_metadata().index {
            return Ok(false);
        }
        self.batch_snapshot(batch, snapshot, with_data)?;
        Ok(true)
    }

    /// Adds `snapshot` as the stored one to `batch`: its metadata, its
    /// data unless a stager wrote it already, and the removal of older data.
    fn batch_snapshot(
        &self,
        batch: &mut WriteBatch,
        snapshot: &Snapshot,
        with_data: bool,
    ) -> Result<(), StorageError> {
        let cf = self.cf(CF_SNAPSHOT)?;
        let meta = snapshot.get_metadata();
        if with_data {
            batch.put_cf(cf, data_key(meta.index), snapshot.get_data());
        }
        batch.put_cf(cf, KEY_SNAPSHOT_META, encode("snapshot metadata", meta)?);
        batch.delete_cf(cf, KEY_OLD_SNAPSHOT);
        batch.delete_range_cf(cf, data_key(0), data_key(meta.index));
        Ok(())
    }

    /// Stores `snapshot` (with its data, or only the metadata when a stager
    /// wrote the data) if it is the newest, and compacts the log to
    /// `compact_to`, in one write. Returns whether the snapshot replaces
    /// the stored one; the caller keeps it in `self.snapshot` then.
    fn write_snapshot_and_compact(
        &mut self,
        snapshot: &Snapshot,
        compact_to: u64,
        with_data: bool,
    ) -> Result<bool, StorageError> {
        let mut batch = WriteBatch::default();
        let newer = self.batch_save_snapshot(&mut batch, snapshot, with_data)?;
        let stored = self.snapshot.get_metadata().index;
        let snapshot_index = stored.max(snapshot.get_metadata().index);
        let compacted = self.batch_compact(&mut batch, compact_to, snapshot_index)?;
        if !newer && compacted.is_none() {
            return Ok(false);
        }
        self.commit(batch)?;
        if let Some((index, term)) = compacted {
            self.offset_index = index;
            self.offset_term = term;
        }
        Ok(newer)
    }

    /// Checks a compaction to `index` given the snapshot index that will
    /// be stored; adds it to `batch`. Returns the new compaction point.
    fn batch_compact(
        &self,
        batch: &mut WriteBatch,
        index: u64,
        snapshot_index: u64,
    ) -> Result<Option<(u64, u64)>, StorageError> {
        if index <= self.offset_index {
            return Ok(None);
        }
        if index > snapshot_index || index > self.last {
            return Err(StorageError::Refused(format!(
                "compact to {index} past the snapshot ({snapshot_index}) or the log ({})",
                self.last
            )));
        }
        let term = self.read_entry(index)?.term;
        batch.delete_range_cf(self.cf(CF_LOG)?, log_key(0), log_key(index + 1));
        self.put_compacted(batch, index, term)?;
        Ok(Some((index, term)))
    }
}

/// Writes a snapshot's data as a table file in `staging` and has RocksDB
/// ingest it into the `snapshot` column family under its `data/` key: the
/// stager of [`RocksLogStore::snapshot_stager`]. The table is synced by the
/// writer and moved into the database by the ingestion, which records it
/// durably; nothing goes through the WAL, so log appends never queue behind it.
fn stage_snapshot(db: &DB, staging: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let index = snapshot.get_metadata().index;
    std::fs::create_dir_all(staging).map_err(StorageError::Staging)?;
    let table = staging.join(format!("snapshot-{index}.sst"));
    let mut options = Options::default();
    // Written once and read only by a restart or a lagging follower:
    // not worth the CPU the encoding thread would spend compressing.
    options.set_compression_type(DBCompressionType::None);
    let mut writer = SstFileWriter::create(&options);
    writer.open(&table)?;
    writer.put(data_key(index), snapshot.get_data())?;
    writer.finish()?;
    let cf = column_family(db, CF_SNAPSHOT)?;
    let mut ingest = IngestExternalFileOptions::default();
    ingest.set_move_files(true);
    let ingested = db.ingest_external_file_cf_opts(cf, &ingest, vec![&table]);
    // Moved on success; on failure the table is only litter. The empty
    // directory goes too, so a quiet member's directory holds only RocksDB's files.
    let _ = std::fs::remove_file(&table);
    let _ = std::fs::remove_dir(staging);
    Ok(ingested?)
}

impl raft::Storage for RocksLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(raft::StorageError::Compacted));
        }
        if high > self.last + 1 || low > high {
            return Err(raft::Error::Store(raft::StorageError::Unavailable));
        }
        Ok(self.read_entries(low, high, max_size.into())?)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.term_of(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let index = self.snapshot.get_metadata().index;
        if index == 0 || index < request_index {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

impl LogStore for RocksLogStore {
    fn append(&mut self, entries: &[Entry]) -> raft::Result<()> {
        self.persist_ready(entries, None)
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> raft::Result<()> {
        self.persist_ready(&[], Some(hard_state))
    }

    fn persist_ready(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> raft::Result<()> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        // Raft needs entries, term and vote on disk before it answers; the
        // commit index alone may be lost in a crash (it is learnt again from
        // the leader, and a member never applies past its durable log), so
        // a write that only moves it is not fsynced: etcd's `MustSync`
        // rule. It halves the fsyncs of a busy follower.
        let must_sync = !entries.is_empty()
            || hard_state
                .is_some_and(|h| h.term != self.hard_state.term || h.vote != self.hard_state.vote);
        let mut batch = WriteBatch::default();
        let last = self.batch_append(&mut batch, entries)?;
        if let Some(hard_state) = hard_state {
            self.put_hard_state(&mut batch, hard_state)?;
        }
        self.commit_with(batch, must_sync)?;
        self.last = last;
        self.recent.appended(entries);
        if let Some(hard_state) = hard_state {
            self.hard_state = hard_state.clone();
        }
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> raft::Result<()> {
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = commit;
        self.set_hard_state(&hard_state)
    }

    fn set_conf_state(&mut self, conf_state: &ConfState) -> raft::Result<()> {
        let mut batch = WriteBatch::default();
        let value = encode("conf state", conf_state)?;
        batch.put_cf(self.cf(CF_STATE)?, KEY_CONF_STATE, value);
        self.commit(batch)?;
        self.conf_state = conf_state.clone();
        Ok(())
    }

    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()> {
        let meta = snapshot.get_metadata();
        if meta.index < self.offset_index {
            return Err(raft::Error::Store(raft::StorageError::SnapshotOutOfDate));
        }
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = hard_state.commit.max(meta.index);
        hard_state.term = hard_state.term.max(meta.term);
        let conf_state = meta.get_conf_state().clone();
        let mut batch = WriteBatch::default();
        // The whole log goes (entries never sit at u64::MAX: raft-rs would overflow first).
        batch.delete_range_cf(self.cf(CF_LOG)?, log_key(0), log_key(u64::MAX));
        self.put_compacted(&mut batch, meta.index, meta.term)?;
        self.put_hard_state(&mut batch, &hard_state)?;
        let state = self.cf(CF_STATE)?;
        batch.put_cf(state, KEY_CONF_STATE, encode("conf state", &conf_state)?);
        self.batch_snapshot(&mut batch, snapshot, true)?;
        self.commit(batch)?;
        self.offset_index = meta.index;
        self.offset_term = meta.term;
        self.last = meta.index;
        self.recent.clear();
        self.hard_state = hard_state;
        self.conf_state = conf_state;
        self.snapshot = snapshot.clone();
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()> {
        let mut batch = WriteBatch::default();
        if self.batch_save_snapshot(&mut batch, snapshot, true)? {
            self.commit(batch)?;
            self.snapshot = snapshot.clone();
        }
        Ok(())
    }

    fn compact(&mut self, index: u64) -> raft::Result<()> {
        let mut batch = WriteBatch::default();
        let snapshot_index = self.snapshot.get_metadata().index;
        if let Some((index, term)) = self.batch_compact(&mut batch, index, snapshot_index)? {
            self.commit(batch)?;
            self.offset_index = index;
            self.offset_term = term;
        }
        Ok(())
    }

    fn save_snapshot_and_compact(
        &mut self,
        snapshot: &Snapshot,
        compact_to: u64,
    ) -> raft::Result<()> {
        if self.write_snapshot_and_compact(snapshot, compact_to, true)? {
            self.snapshot = snapshot.clone();
        }
        Ok(())
    }

    fn snapshot_stager(&self) -> Option<SnapshotStager> {
        let db = Arc::clone(&self.db);
        let staging = self.db.path().join(STAGING_DIR);
        Some(Box::new(move |snapshot: &Snapshot| {
            Ok(stage_snapshot(&db, &staging, snapshot)?)
        }))
    }

    fn save_staged_snapshot_and_compact(
        &mut self,
        snapshot: Snapshot,
        compact_to: u64,
    ) -> raft::Result<()> {
        if self.write_snapshot_and_compact(&snapshot, compact_to, false)? {
            self.snapshot = snapshot;
        }
        Ok(())
    }

    fn hard_state(&self) -> HardState {
        self.hard_state.clone()
    }

    fn conf_state(&self) -> ConfState {
        self.conf_state.clone()
    }

    fn stored_snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }
}

#[cfg(test)]
mod tests;

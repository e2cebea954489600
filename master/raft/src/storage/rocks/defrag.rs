//! Rewriting the store's files on demand: what etcd's `Defragment` does to
//! its bolt file, for RocksDB. Trimmed log entries and replaced snapshots
//! are deleted by range tombstones; RocksDB drops the data they cover only
//! when a compaction reaches the files holding it, which for a quiet log
//! may be never. A manual compaction of every column family, through the
//! bottommost level, rewrites the files without them.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use rocksdb::{BottommostLevelCompaction, CompactOptions, DB};

use super::{CF_LOG, CF_SNAPSHOT, CF_STATE, StorageError, column_family};

/// RocksDB's count of the bytes in a column family's live table files.
const LIVE_TABLE_BYTES: &str = "rocksdb.live-sst-files-size";

/// Defragments a [`super::RocksLogStore`]'s database from any thread, while
/// the store goes on serving (RocksDB compacts beside its writers).
#[derive(Clone)]
pub struct Defragmenter {
    /// Weak: the store closes when its replica ends (a restart in the same
    /// process reopens the directory), whoever still holds this.
    db: Weak<DB>,
    /// One rewrite at a time: a second would redo the first's work.
    running: Arc<Mutex<()>>,
}

/// What a defragmentation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defragmented {
    /// Bytes of live table files before.
    pub bytes_before: u64,
    /// Bytes of live table files after.
    pub bytes_after: u64,
}

impl Defragmenter {
    pub(super) fn new(db: &Arc<DB>) -> Defragmenter {
        Defragmenter {
            db: Arc::downgrade(db),
            running: Arc::new(Mutex::new(())),
        }
    }

    /// Flushes every column family's memtable and compacts its whole key
    /// range through the bottommost level. Blocks for as long as that
    /// takes (seconds for a large log): call it on a blocking thread.
    pub fn run(&self) -> Result<Defragmented, StorageError> {
        // Nothing is left half-done by a panic elsewhere: the lock guards no data.
        let _one = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let db = self.db()?;
        let bytes_before = live_table_bytes(&db)?;
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        for name in [CF_LOG, CF_STATE, CF_SNAPSHOT] {
            let family = column_family(&db, name)?;
            // Tombstones still in the memtable would not meet their data.
            db.flush_cf(family)?;
            db.compact_range_cf_opt(family, None::<&[u8]>, None::<&[u8]>, &options);
        }
        Ok(Defragmented {
            bytes_before,
            bytes_after: live_table_bytes(&db)?,
        })
    }

    fn db(&self) -> Result<Arc<DB>, StorageError> {
        (self.db.upgrade()).ok_or_else(|| StorageError::Refused("the store is closed".to_string()))
    }
}

/// Bytes of live table files over all column families.
fn live_table_bytes(db: &DB) -> Result<u64, StorageError> {
    let mut total = 0;
    for name in [CF_LOG, CF_STATE, CF_SNAPSHOT] {
        let family = column_family(db, name)?;
        total += db
            .property_int_value_cf(family, LIVE_TABLE_BYTES)?
            .unwrap_or(0);
    }
    Ok(total)
}

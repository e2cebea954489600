//! How the store keeps RocksDB's write-ahead log so that an fsync'd append
//! overwrites blocks of an old WAL file instead of growing a new one.
//!
//! Every acknowledged Raft append waits on `fdatasync` of the WAL. When the
//! write grows the file, the fdatasync must also commit the inode's new size
//! through the file system's journal; when it overwrites blocks the file
//! already has, it writes only the data. On the benchmark machine (ext4 on a
//! virtio disk) a 300-byte write + fdatasync took 120 µs p50 appending and
//! 78 µs overwriting; 164 µs and 133 µs each with three members syncing at
//! once (`benches/ha/results/2026-11-30f/probes/fsync_probe.py`). etcd gets
//! the cheaper kind by preallocating its 64 MB WAL segments.
//!
//! RocksDB's equivalent is WAL recycling (`recycle_log_file_num`): an
//! obsolete WAL file is renamed and written again from its start, with
//! records that carry the file's new number so that recovery stops where the
//! new data ends. Three things make it work for this store:
//! - RocksDB recycles only files written since this open, so [`prime`] writes
//!   throwaway WAL files at open, each larger than a log memtable, and flushes
//!   them out; from the first append on, the WAL is a recycled file.
//! - A WAL file is obsolete only once every column family's data in it is
//!   flushed. The `state` family takes a small write with nearly every append
//!   and would never fill its memtable, pinning every WAL; atomic flush
//!   flushes all families together whenever the log's memtable fills.
//! - The log's memtable is bounded ([`LOG_MEMTABLE_BYTES`]), so a WAL file is
//!   switched before it outgrows the primed size.

use rocksdb::{DB, FlushOptions, Options, WriteOptions};

use super::{CF_LOG, CF_SNAPSHOT, CF_STATE, StorageError, column_family};

/// Obsolete WAL files RocksDB keeps to write again: one in use while the
/// memtable that covers the previous one is flushed, one spare.
pub(super) const RECYCLED_WAL_FILES: usize = 2;

/// The `log` family's memtable size; with atomic flush, a WAL file is
/// switched when this fills, so it bounds a WAL file's size.
pub(super) const LOG_MEMTABLE_BYTES: usize = 8 << 20;

/// Bytes of throwaway records written into each primed WAL file: a margin
/// over a full log memtable, for the `state` family's writes beside it.
const PRIMED_WAL_BYTES: usize = LOG_MEMTABLE_BYTES + LOG_MEMTABLE_BYTES / 4;

/// Size of one throwaway record.
const PRIMER_CHUNK_BYTES: usize = 1 << 20;

/// The `state` key the throwaway records are written to, then deleted.
const KEY_PRIMER: &[u8] = b"wal_primer";

/// The database options for WAL recycling (see the module comment).
pub(super) fn configure(options: &mut Options) {
    options.set_recycle_log_file_num(RECYCLED_WAL_FILES);
    options.set_atomic_flush(true);
}

/// The `log` family's options for WAL recycling: its bounded memtable.
pub(super) fn configure_log_family(options: &mut Options) {
    options.set_write_buffer_size(LOG_MEMTABLE_BYTES);
}

/// Fills `RECYCLED_WAL_FILES` WAL files with throwaway records and flushes
/// each out, so that RocksDB holds them for recycling; the records go
/// unsynced and are deleted at the end (a store that dies part way may keep
/// the key, which nothing reads, until its next open deletes it).
pub(super) fn prime(db: &DB) -> Result<(), StorageError> {
    let state = column_family(db, CF_STATE)?;
    let families = [
        column_family(db, CF_LOG)?,
        state,
        column_family(db, CF_SNAPSHOT)?,
    ];
    let chunk = vec![0u8; PRIMER_CHUNK_BYTES];
    let mut unsynced = WriteOptions::default();
    unsynced.set_sync(false);
    let mut flush = FlushOptions::default();
    flush.set_wait(true);
    for _ in 0..RECYCLED_WAL_FILES {
        for _ in 0..PRIMED_WAL_BYTES.div_ceil(PRIMER_CHUNK_BYTES) {
            db.put_cf_opt(state, KEY_PRIMER, &chunk, &unsynced)?;
        }
        db.flush_cfs_opt(&families, &flush)?;
    }
    db.delete_cf_opt(state, KEY_PRIMER, &unsynced)?;
    Ok(())
}

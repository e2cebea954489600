//! Compaction of the coordination keyspace (`agora-kv`), at the history
//! kvbench leaves behind: 100,000 puts of 256-byte values over 1,000 keys.
//!
//! - `compact`: applying a `Compact` command, which the Raft thread does
//!   in line with every other entry. Before trimming was deferred this did
//!   all the work at once (and rebuilt the whole revision index).
//! - `trim_batch`: one `TRIM_BATCH`-sized call of `trim_compacted`, what a
//!   member does after each drive until the compaction's versions are gone.
//! - `trim_all`: every batch, the compaction's whole cost.
//!
//! Each iteration works on a copy of the state (O(1): persistent maps), so
//! the copy-on-write a member pays when a snapshot shares its nodes is in
//! the figure too.
//!
//! Run: `cargo bench -p agora-benches --bench kv_compaction`.
use std::hint::black_box;
use std::time::Duration;

use agora_kv::{Command, CompactRequest, KvState, PutRequest};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const PUTS: usize = 100_000;
const KEYS: usize = 1_000;
const VALUE_BYTES: usize = 256;
/// `agora_raft::TRIM_BATCH`, repeated to keep this bench off agora-raft.
const TRIM_BATCH: usize = 1_000;

fn history() -> KvState {
    let mut kv = KvState::new();
    for n in 0..PUTS {
        let put = PutRequest {
            key: format!("bench/put/k{:04}", n % KEYS).into_bytes(),
            value: vec![b'v'; VALUE_BYTES],
            ..PutRequest::default()
        };
        if let Err(error) = kv.apply(&Command::Put(put)) {
            panic!("put {n}: {error}");
        }
    }
    kv
}

fn compact(kv: &mut KvState) {
    let revision = kv.current_revision();
    if let Err(error) = kv.apply(&Command::Compact(CompactRequest { revision })) {
        panic!("compact: {error}");
    }
}

fn benches(c: &mut Criterion) {
    let full = history();
    let mut compacted = full.clone();
    compact(&mut compacted);
    let mut group = c.benchmark_group("kv_compaction");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("compact", |b| {
        b.iter_batched(
            || full.clone(),
            |mut kv| compact(black_box(&mut kv)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("trim_batch", |b| {
        b.iter_batched(
            || compacted.clone(),
            |mut kv| kv.trim_compacted(black_box(TRIM_BATCH)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("trim_all", |b| {
        b.iter_batched(
            || compacted.clone(),
            |mut kv| while kv.trim_compacted(black_box(TRIM_BATCH)) {},
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(kv, benches);
criterion_main!(kv);

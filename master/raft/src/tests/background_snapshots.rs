//! Periodic snapshots encoded off the replica's thread
//! (`background_snapshots`): the replica hands out a job, keeps serving,
//! and stores the result only if nothing newer was stored meanwhile.

use super::*;
use raft::Storage as _;

use crate::{LogStore as _, MemLogStore, Output, Replica};

fn single(config: ReplicaConfig) -> Replica<MemLogStore, Register> {
    let mut replica = Replica::new(1, &[1], MemLogStore::new(), Register::new(), config).unwrap();
    replica.campaign().unwrap();
    replica.drive().unwrap();
    replica
}

/// Proposes entries `from..to` one drive each; returns every output.
fn commit_range(replica: &mut Replica<MemLogStore, Register>, from: u64, to: u64) -> Vec<Output> {
    (from..to)
        .map(|n| {
            replica.propose(payload(n), n).unwrap();
            replica.drive().unwrap()
        })
        .collect()
}

fn background() -> ReplicaConfig {
    ReplicaConfig {
        background_snapshots: true,
        ..compacting_config(11)
    }
}

#[test]
fn a_due_snapshot_leaves_as_one_job_and_is_stored_when_finished() {
    let mut replica = single(background());
    let outputs = commit_range(&mut replica, 0, 30);
    let mut jobs: Vec<_> = outputs.into_iter().filter_map(|o| o.snapshot_job).collect();
    // One at a time: later due points wait for the first to finish.
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = jobs.remove(0);
    let index = job.index();
    assert!(index >= 8, "{index}");
    assert_eq!(replica.store().stored_snapshot().get_metadata().index, 1);
    let expected = {
        let mut copy = Register::new();
        // The job holds the state as of its index, not as of now.
        copy.restore(&job_bytes(job, &mut replica)).unwrap();
        copy
    };
    let stored = replica.store().stored_snapshot();
    assert_eq!(stored.get_metadata().index, index);
    assert_eq!(expected.applied_index(), index);
    assert!(
        replica.store().first_index().unwrap() > 2,
        "the log was compacted"
    );
    // The next one is due again from the new snapshot.
    let outputs = commit_range(&mut replica, 30, 60);
    let next: Vec<_> = outputs.into_iter().filter_map(|o| o.snapshot_job).collect();
    assert_eq!(next.len(), 1);
    assert!(next[0].index() > index);
}

/// Runs `job`, hands it to `finish_snapshot`, and answers the data stored.
fn job_bytes(job: crate::SnapshotJob, replica: &mut Replica<MemLogStore, Register>) -> Vec<u8> {
    let encoded = job.run();
    replica.finish_snapshot(encoded).unwrap();
    replica.store().stored_snapshot().get_data().to_vec()
}

#[test]
fn a_job_overtaken_by_a_newer_snapshot_is_dropped() {
    let mut replica = single(background());
    let outputs = commit_range(&mut replica, 0, 12);
    let old = outputs.into_iter().find_map(|o| o.snapshot_job).unwrap();
    let old_index = old.index();
    let encoded_old = old.run();
    // Meanwhile a newer one is stored: here the first is given up as if its
    // thread had failed, so the next due point starts another job.
    replica.abandon_snapshot();
    let outputs = commit_range(&mut replica, 12, 14);
    let newer = outputs.into_iter().find_map(|o| o.snapshot_job).unwrap();
    let newer_index = newer.index();
    assert!(newer_index > old_index);
    replica.finish_snapshot(newer.run()).unwrap();
    replica.finish_snapshot(encoded_old).unwrap();
    assert_eq!(
        replica.store().stored_snapshot().get_metadata().index,
        newer_index,
        "the older snapshot must not replace the newer one"
    );
}

#[test]
fn without_the_option_snapshots_are_stored_inside_drive() {
    let mut replica = single(compacting_config(11));
    let outputs = commit_range(&mut replica, 0, 12);
    assert!(outputs.iter().all(|o| o.snapshot_job.is_none()));
    assert!(replica.store().stored_snapshot().get_metadata().index >= 8);
}

//! Crashes, restarts, partitioned leaders and catching up from snapshots.

use super::*;
use crate::{LogStore, Role};
use raft::Storage;
use raft::eraftpb::MessageType;

#[test]
fn a_crashed_leader_is_replaced_within_bounded_ticks_and_nothing_committed_is_lost() {
    for seed in 0..5 {
        let mut cluster = cluster(5, seed);
        let acked: Vec<Vec<u8>> = (0..10)
            .map(|i| {
                commit(&mut cluster, payload(i));
                payload(i)
            })
            .collect();
        let old = cluster.leader().unwrap();
        cluster.crash(old);
        assert!(
            cluster.run_until(ELECTION_BOUND, |c| c.leader().is_some_and(|l| l != old)),
            "seed {seed}: no new leader"
        );
        // A follower may lag by what the crashed leader committed last;
        // the new leader's first commit brings everyone up to date.
        commit(&mut cluster, payload(100));
        converge(&mut cluster, 100);
        for (id, history) in histories(&cluster) {
            assert_eq!(&history[..10], &acked[..], "seed {seed} member {id}");
        }
        cluster.restart(old).unwrap();
        converge(&mut cluster, 100);
        assert_eq!(cluster.up_ids().len(), 5);
        assert_same_state(&cluster);
        assert!(
            cluster.violations().is_empty(),
            "{:?}",
            cluster.violations()
        );
    }
}

#[test]
fn a_partitioned_leader_steps_down_and_its_pending_proposals_fail() {
    let mut cluster = cluster(3, 31);
    commit(&mut cluster, payload(0));
    let old = cluster.leader().unwrap();
    let ids = cluster.ids();
    cluster.net_mut().isolate(old, &ids);
    let pending: Vec<Token> = (1..4)
        .map(|i| cluster.propose(old, payload(i)).unwrap())
        .collect();
    // check_quorum: after an election timeout without a quorum it steps down.
    assert!(
        cluster.run_until(40, |c| c
            .replica(old)
            .is_some_and(|r| r.leadership().role != Role::Leader)),
        "the isolated leader kept leading"
    );
    let refused = cluster.propose(old, payload(99));
    assert!(
        matches!(refused, Err(RaftError::NotLeader { .. })),
        "{refused:?}"
    );
    let new = elect(&mut cluster);
    assert_ne!(new, old);
    for i in 10..15 {
        cluster.propose(new, payload(i)).unwrap();
    }
    cluster.run(3);
    cluster.net_mut().heal();
    converge(&mut cluster, 100);
    for token in pending {
        assert!(
            matches!(outcome(&cluster, token), Some(Err(RaftError::Dropped))),
            "token {token}: {:?}",
            outcome(&cluster, token)
        );
    }
    for (id, history) in histories(&cluster) {
        for i in 1..4 {
            assert!(
                !history.contains(&payload(i)),
                "member {id} applied a failed proposal"
            );
        }
    }
    assert_same_state(&cluster);
}

#[test]
fn a_restarted_member_catches_up_from_the_log() {
    let mut cluster = cluster(3, 41);
    let leader = elect(&mut cluster);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    commit(&mut cluster, payload(0));
    cluster.crash(follower);
    for i in 1..6 {
        commit(&mut cluster, payload(i));
    }
    cluster.restart(follower).unwrap();
    converge(&mut cluster, 100);
    assert_same_state(&cluster);
    assert_eq!(histories(&cluster)[&follower].len(), 6);
}

#[test]
fn a_member_behind_the_compacted_log_catches_up_from_a_snapshot() {
    let mut cluster = cluster_with(3, 43, compacting_config(43));
    let leader = elect(&mut cluster);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    commit(&mut cluster, payload(0));
    cluster.crash(follower);
    for i in 1..40 {
        cluster.propose(leader, payload(i)).unwrap();
        cluster.tick();
    }
    converge(&mut cluster, 100);
    let leader_first = cluster
        .replica(leader)
        .unwrap()
        .store()
        .first_index()
        .unwrap();
    assert!(
        leader_first > 10,
        "the leader compacted its log (first index {leader_first})"
    );
    cluster.restart(follower).unwrap();
    converge(&mut cluster, 200);
    let restored = cluster.replica(follower).unwrap();
    let snapshot_index = restored.store().stored_snapshot().get_metadata().index;
    assert!(
        snapshot_index >= leader_first - 1,
        "caught up through a snapshot ({snapshot_index})"
    );
    assert_eq!(restored.state_machine().history().len(), 40);
    assert_same_state(&cluster);
}

#[test]
fn a_restart_resumes_from_the_members_own_snapshot() {
    let mut cluster = cluster_with(3, 47, compacting_config(47));
    for i in 0..30 {
        commit(&mut cluster, payload(i));
    }
    converge(&mut cluster, 50);
    for id in cluster.ids() {
        cluster.crash(id);
    }
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    commit(&mut cluster, payload(30));
    converge(&mut cluster, 100);
    for (id, history) in histories(&cluster) {
        let expected: Vec<Vec<u8>> = (0..31).map(payload).collect();
        assert_eq!(history, expected, "member {id}");
    }
}

#[test]
fn lost_snapshot_messages_are_sent_again() {
    let mut cluster = cluster_with(3, 53, compacting_config(53));
    let leader = elect(&mut cluster);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.crash(follower);
    for i in 0..30 {
        commit(&mut cluster, payload(i));
    }
    // Every snapshot the leader sends is lost: without a retry raft-rs
    // would wait for this one forever.
    cluster.net_mut().ignore(MessageType::MsgSnapshot);
    cluster.restart(follower).unwrap();
    cluster.run(20);
    assert!(
        histories(&cluster)[&follower].is_empty(),
        "nothing reached the follower"
    );
    let lost = cluster.net().stats().snapshots;
    assert!(lost >= 1, "the leader sent a snapshot, which was lost");
    cluster.net_mut().heal();
    converge(&mut cluster, 200);
    assert_same_state(&cluster);
    assert!(cluster.net().stats().snapshots > lost, "and sent it again");
}

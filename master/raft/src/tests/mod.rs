//! The engine's tests: every one runs a seeded [`SimCluster`] of
//! [`Register`] replicas, so a failure replays exactly from its seed.

mod background_snapshots;
mod bad_input;
mod basics;
mod failover;
mod forged_messages;
mod grpc;
mod kv_watchers;
mod membership;
mod restored;
mod schedules;
mod tidy;

use std::collections::BTreeMap;

use crate::{Applied, RaftError, Register, ReplicaConfig, SimCluster, StateMachine, Token};

/// Generous bound for an election: a timeout is at most 2 × 10 ticks, and
/// a pre-vote plus a vote round take a tick or two without delays.
pub(super) const ELECTION_BOUND: u64 = 60;

pub(super) fn ids(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

pub(crate) fn config(seed: u64) -> ReplicaConfig {
    ReplicaConfig {
        seed,
        ..ReplicaConfig::default()
    }
}

/// A config that snapshots and compacts often, so tests reach the
/// snapshot paths with a few dozen entries.
pub(super) fn compacting_config(seed: u64) -> ReplicaConfig {
    ReplicaConfig {
        seed,
        snapshot_interval: 8,
        log_tail_kept: 2,
        ..ReplicaConfig::default()
    }
}

pub(super) fn cluster(n: u64, seed: u64) -> SimCluster<Register> {
    SimCluster::new(&ids(n), seed, config(seed), Register::new).unwrap()
}

pub(super) fn cluster_with(n: u64, seed: u64, config: ReplicaConfig) -> SimCluster<Register> {
    SimCluster::new(&ids(n), seed, config, Register::new).unwrap()
}

/// Runs until some member leads (and no one else claims a higher term).
pub(crate) fn elect<S: StateMachine>(cluster: &mut SimCluster<S>) -> u64 {
    assert!(
        cluster.run_until(ELECTION_BOUND, |c| c.leader().is_some()),
        "no leader within {ELECTION_BOUND} ticks:\n{}",
        cluster.describe()
    );
    cluster.leader().unwrap()
}

pub(super) fn payload(n: u64) -> Vec<u8> {
    format!("entry-{n}").into_bytes()
}

/// Proposes on the current leader and runs until the proposal completes;
/// tries again (at most a few times) when it was not applied here (no
/// leader yet, or a leader that was about to lose its term). After an
/// `Unknown` the payload may end up applied twice; tests that compare exact
/// histories use this only without faults, where that cannot happen.
pub(super) fn commit(cluster: &mut SimCluster<Register>, data: Vec<u8>) -> Applied {
    for _ in 0..5 {
        let leader = elect(cluster);
        let token = match cluster.propose(leader, data.clone()) {
            Ok(token) => token,
            Err(RaftError::NotLeader { .. } | RaftError::Dropped) => {
                cluster.run(5);
                continue;
            }
            Err(error) => panic!("proposal refused: {error}"),
        };
        assert!(
            cluster.run_until(ELECTION_BOUND, |c| c.completions().contains_key(&token)),
            "proposal {token} did not complete:\n{}",
            cluster.describe()
        );
        match &cluster.completions()[&token] {
            Ok(applied) => return applied.clone(),
            Err(RaftError::Dropped | RaftError::Unknown) => continue,
            Err(error) => panic!("proposal {token} failed: {error}"),
        }
    }
    panic!("no proposal committed in 5 attempts");
}

pub(super) fn outcome(
    cluster: &SimCluster<Register>,
    token: Token,
) -> Option<&Result<Applied, RaftError>> {
    cluster.completions().get(&token)
}

/// Each running member's history.
pub(super) fn histories(cluster: &SimCluster<Register>) -> BTreeMap<u64, Vec<Vec<u8>>> {
    (cluster.up_ids().into_iter())
        .filter_map(|id| Some((id, cluster.replica(id)?.state_machine().history().to_vec())))
        .collect()
}

/// Runs until every running member applied as far as the leader.
pub(crate) fn converge<S: StateMachine>(cluster: &mut SimCluster<S>, max_ticks: u64) {
    // Proposals made since the last tick are not even in the leader's
    // commit index yet: let them flow first.
    cluster.tick();
    let done = cluster.run_until(max_ticks, |c| {
        let Some(leader) = c.leader() else {
            return false;
        };
        let target = c.replica(leader).map_or(0, |r| r.commit_index());
        c.up_ids().iter().all(|id| {
            c.replica(*id)
                .is_some_and(|r| r.applied_index() >= target && r.commit_index() >= target)
        })
    });
    assert!(
        done,
        "members did not converge within {max_ticks} ticks:\n{}",
        cluster.describe()
    );
}

/// All running members hold the same state.
pub(super) fn assert_same_state(cluster: &SimCluster<Register>) {
    let hashes: BTreeMap<u64, u64> = (cluster.up_ids().into_iter())
        .filter_map(|id| Some((id, cluster.replica(id)?.state_machine().hash())))
        .collect();
    let first = hashes.values().next().copied();
    assert!(
        hashes.values().all(|h| Some(*h) == first),
        "state hashes differ: {hashes:?}"
    );
}

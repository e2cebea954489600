//! Elections, replication, reads and quorum in a healthy or split group.

use raft::eraftpb::MessageType;

use super::*;
use crate::{Leadership, Role};

#[test]
fn three_and_five_members_elect_one_leader_within_bounded_ticks() {
    for n in [3, 5] {
        for seed in 0..10 {
            let mut cluster = cluster(n, seed);
            let leader = elect(&mut cluster);
            cluster.run(20);
            assert_eq!(
                cluster.leader(),
                Some(leader),
                "n={n} seed={seed}: leadership moved"
            );
            let term = cluster.replica(leader).unwrap().leadership().term;
            for id in cluster.ids() {
                let seen = cluster.replica(id).unwrap().leadership();
                assert_eq!(seen.leader, Some(leader), "n={n} seed={seed} member {id}");
                assert_eq!(seen.term, term);
            }
            assert!(
                cluster.violations().is_empty(),
                "{:?}",
                cluster.violations()
            );
        }
    }
}

#[test]
fn a_single_member_group_commits_alone() {
    let mut cluster = cluster(1, 7);
    let applied = commit(&mut cluster, payload(1));
    assert_eq!(Register::position(&applied.response), Some(1));
}

#[test]
fn proposals_commit_and_every_member_applies_the_same_sequence() {
    for n in [3, 5] {
        let mut cluster = cluster(n, 11);
        let leader = elect(&mut cluster);
        let tokens: Vec<Token> = (0..30)
            .map(|i| cluster.propose(leader, payload(i)).unwrap())
            .collect();
        converge(&mut cluster, 100);
        for (i, token) in tokens.iter().enumerate() {
            let applied = outcome(&cluster, *token).unwrap().as_ref().unwrap();
            assert_eq!(Register::position(&applied.response), Some(i as u64 + 1));
        }
        let expected: Vec<Vec<u8>> = (0..30).map(payload).collect();
        for (id, history) in histories(&cluster) {
            assert_eq!(history, expected, "member {id}");
        }
        assert_same_state(&cluster);
    }
}

#[test]
fn a_follower_refuses_proposals_with_a_leader_hint() {
    let mut cluster = cluster(3, 3);
    let leader = elect(&mut cluster);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let refused = cluster.propose(follower, payload(0));
    assert!(
        matches!(refused, Err(RaftError::NotLeader { leader: Some(hint) }) if hint == leader),
        "{refused:?}"
    );
}

#[test]
fn reads_complete_on_the_leader_and_on_followers_after_their_index_is_applied() {
    let mut cluster = cluster(3, 5);
    let leader = elect(&mut cluster);
    let written = commit(&mut cluster, payload(1));
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let on_leader = cluster.read_index(leader).unwrap();
    let on_follower = cluster.read_index(follower).unwrap();
    assert!(
        cluster.run_until(20, |c| c.reads().len() == 2),
        "reads did not complete"
    );
    for token in [on_leader, on_follower] {
        let index = *cluster.reads()[&token].as_ref().unwrap();
        assert!(
            index >= written.index,
            "read index {index} before the write {}",
            written.index
        );
    }
    let follower_state = cluster.replica(follower).unwrap().state_machine();
    assert!(
        follower_state.history().contains(&payload(1)),
        "a read after a write sees it"
    );
}

#[test]
fn a_read_without_a_known_leader_is_refused() {
    let mut cluster = cluster(3, 9);
    assert!(matches!(
        cluster.read_index(1),
        Err(RaftError::NotLeader { leader: None })
    ));
}

#[test]
fn a_minority_cannot_commit_and_the_majority_moves_on() {
    let mut cluster = cluster(5, 21);
    let old = elect(&mut cluster);
    commit(&mut cluster, payload(0));
    let others: Vec<u64> = cluster.ids().into_iter().filter(|id| *id != old).collect();
    let minority = [old, others[0]];
    let majority = [others[1], others[2], others[3]];
    cluster.net_mut().partition(&[&minority[..], &majority[..]]);
    let stuck = cluster.propose(old, payload(1)).unwrap();
    cluster.run(40);
    assert!(outcome(&cluster, stuck).is_none(), "a minority committed");
    let new = cluster.leader().unwrap();
    assert!(majority.contains(&new), "the majority elects a leader");
    let role = cluster.replica(old).unwrap().leadership().role;
    assert_ne!(
        role,
        Role::Leader,
        "the old leader stepped down (check_quorum)"
    );
    for i in 2..6 {
        cluster.propose(new, payload(i)).unwrap();
    }
    cluster.run(5);
    cluster.net_mut().heal();
    converge(&mut cluster, 100);
    assert!(
        matches!(outcome(&cluster, stuck), Some(Err(RaftError::Dropped))),
        "the minority's proposal lost its slot: {:?}",
        outcome(&cluster, stuck)
    );
    for (id, history) in histories(&cluster) {
        assert!(
            !history.contains(&payload(1)),
            "member {id} applied a dropped proposal"
        );
    }
    assert_same_state(&cluster);
    assert!(
        cluster.violations().is_empty(),
        "{:?}",
        cluster.violations()
    );
}

#[test]
fn leadership_changes_are_reported_once() {
    let store = crate::MemLogStore::new();
    let mut replica = crate::Replica::new(1, &[1], store, Register::new(), config(1)).unwrap();
    replica.campaign().unwrap();
    let first = replica.drive().unwrap();
    let expected = Leadership {
        role: Role::Leader,
        term: 2,
        leader: Some(1),
    };
    assert_eq!(first.leadership, Some(expected));
    replica.propose(payload(1), 42).unwrap();
    let second = replica.drive().unwrap();
    assert_eq!(second.leadership, None, "no change, no report");
    assert_eq!(second.completions.len(), 1);
    assert_eq!(second.completions[0].token, 42);
    assert!(second.completions[0].result.is_ok());
}

#[test]
fn a_read_whose_request_is_lost_fails_after_the_timeout_and_a_retry_succeeds() {
    let mut cluster = cluster(3, 13);
    let leader = elect(&mut cluster);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.net_mut().ignore(MessageType::MsgReadIndex);
    let lost = cluster.read_index(follower).unwrap();
    cluster.run(crate::READ_TIMEOUT_TICKS + 1);
    assert!(
        matches!(cluster.reads().get(&lost), Some(Err(RaftError::Dropped))),
        "{:?}",
        cluster.reads().get(&lost)
    );
    cluster.net_mut().heal();
    let retried = cluster.read_index(follower).unwrap();
    cluster.run(2);
    assert!(matches!(cluster.reads().get(&retried), Some(Ok(_))));
}

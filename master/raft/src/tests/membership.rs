//! Adding and removing voters through the log.

use super::*;
use crate::MembershipChange::{AddVoter, RemoveVoter};

fn change(
    cluster: &mut SimCluster<Register>,
    change: crate::MembershipChange,
) -> Result<Applied, RaftError> {
    let leader = elect(cluster);
    let token = cluster.propose_change(leader, change)?;
    assert!(
        cluster.run_until(ELECTION_BOUND, |c| c.completions().contains_key(&token)),
        "change {change:?} did not complete"
    );
    match cluster.completions().get(&token) {
        Some(Ok(applied)) => Ok(applied.clone()),
        Some(Err(_)) | None => Err(RaftError::Dropped),
    }
}

#[test]
fn a_fourth_member_joins_through_a_snapshot_and_a_member_leaves() {
    let mut cluster = cluster(3, 61);
    for i in 0..5 {
        commit(&mut cluster, payload(i));
    }
    cluster.start_joining(4).unwrap();
    change(&mut cluster, AddVoter(4)).unwrap();
    converge(&mut cluster, 100);
    for id in cluster.ids() {
        assert_eq!(
            cluster.replica(id).unwrap().voters(),
            vec![1, 2, 3, 4],
            "member {id}"
        );
    }
    assert_eq!(
        histories(&cluster)[&4].len(),
        5,
        "the newcomer has the history"
    );
    for i in 5..10 {
        commit(&mut cluster, payload(i));
    }
    converge(&mut cluster, 100);
    assert_same_state(&cluster);

    let leader = cluster.leader().unwrap();
    let leaving = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    change(&mut cluster, RemoveVoter(leaving)).unwrap();
    assert!(
        cluster.run_until(ELECTION_BOUND, |c| c.is_removed(leaving)),
        "member {leaving} did not learn of its removal"
    );
    commit(&mut cluster, payload(10));
    converge(&mut cluster, 100);
    for id in cluster.up_ids() {
        let voters = cluster.replica(id).unwrap().voters();
        assert!(
            !voters.contains(&leaving) && voters.len() == 3,
            "member {id}: {voters:?}"
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
fn the_group_keeps_working_after_a_member_is_removed_and_another_crashes() {
    let mut cluster = cluster(5, 67);
    let leader = elect(&mut cluster);
    let mut others = cluster.ids().into_iter().filter(|id| *id != leader);
    let (removed, crashed) = (others.next().unwrap(), others.next().unwrap());
    change(&mut cluster, RemoveVoter(removed)).unwrap();
    cluster.crash(crashed);
    // Four voters, one down: three of four is still a quorum.
    commit(&mut cluster, payload(1));
    converge(&mut cluster, 100);
    assert_same_state(&cluster);
}

#[test]
fn impossible_changes_are_refused_up_front() {
    let mut cluster = cluster(3, 71);
    let leader = elect(&mut cluster);
    let refuse = |result: Result<Token, RaftError>| matches!(result, Err(RaftError::ConfChange(_)));
    assert!(
        refuse(cluster.propose_change(leader, AddVoter(leader))),
        "already a member"
    );
    assert!(
        refuse(cluster.propose_change(leader, RemoveVoter(9))),
        "not a member"
    );
    assert!(
        refuse(cluster.propose_change(leader, RemoveVoter(leader))),
        "the leader itself"
    );
    cluster.start_joining(4).unwrap();
    cluster.propose_change(leader, AddVoter(4)).unwrap();
    assert!(
        refuse(cluster.propose_change(leader, AddVoter(5))),
        "one change at a time"
    );
}

#[test]
fn the_leader_leaves_after_handing_over_leadership() {
    let mut cluster = cluster(3, 73);
    commit(&mut cluster, payload(0));
    let old = cluster.leader().unwrap();
    let next = cluster.ids().into_iter().find(|id| *id != old).unwrap();
    cluster.transfer_leadership(old, next).unwrap();
    assert!(
        cluster.run_until(ELECTION_BOUND, |c| c.leader() == Some(next)),
        "leadership did not move:\n{}",
        cluster.describe()
    );
    change(&mut cluster, RemoveVoter(old)).unwrap();
    assert!(
        cluster.run_until(ELECTION_BOUND, |c| c.is_removed(old)),
        "the old leader did not learn of its removal"
    );
    commit(&mut cluster, payload(1));
    converge(&mut cluster, 100);
    for id in cluster.up_ids() {
        assert_eq!(
            cluster.replica(id).unwrap().voters().len(),
            2,
            "member {id}"
        );
    }
    assert_eq!(histories(&cluster).values().next().unwrap().len(), 2);
    assert_same_state(&cluster);
}

//! `KvMachine`'s watchers across snapshot installs (here rather than in
//! `kv_machine.rs`, which the tidy test keeps free of channels).

use agora_kv::{CancelReason, Command, LogEntry, PutRequest, Revision, WatchRequest, WatchUpdate};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::{KvMachine, StateMachine, WatchMessage};

fn put(key: &str, value: &str) -> Vec<u8> {
    LogEntry::V1(Command::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..PutRequest::default()
    }))
    .encode()
}

fn compact(revision: Revision) -> Vec<u8> {
    LogEntry::V1(Command::Compact(agora_kv::CompactRequest { revision })).encode()
}

/// Revisions of the events, and the cancellations, in `rx` so far.
fn drain(rx: &mut UnboundedReceiver<WatchMessage>) -> (Vec<Revision>, Vec<WatchUpdate>) {
    let (mut revisions, mut other) = (Vec::new(), Vec::new());
    while let Ok(message) = rx.try_recv() {
        match message {
            WatchMessage::Update {
                update: WatchUpdate::Events { events, .. },
                ..
            } => revisions.extend(events.iter().map(|e| e.revision())),
            WatchMessage::Update { update, .. } => other.push(update),
            WatchMessage::Progress { .. } => {}
        }
    }
    (revisions, other)
}

#[test]
fn watchers_continue_across_a_snapshot_install_or_end_as_compacted() {
    let mut leader = KvMachine::new();
    let mut follower = KvMachine::new();
    leader.apply(1, &put("a", "1"));
    follower.apply(1, &put("a", "1"));
    let (sink, mut rx) = unbounded_channel();
    let request = WatchRequest {
        key: b"a".to_vec(),
        ..WatchRequest::default()
    };
    let (id, revision) = follower.watch(request, sink).unwrap();
    assert_eq!(revision, 2);
    follower.after_drive();
    // The follower falls behind and installs the leader's snapshot:
    // its watcher gets exactly the revisions it had not seen.
    leader.apply(2, &put("a", "2"));
    leader.apply(3, &put("a", "3"));
    follower.restore(&leader.snapshot()).unwrap();
    assert_eq!(follower.published_revision().get(), 4);
    follower.after_drive();
    assert_eq!(drain(&mut rx), (vec![3, 4], Vec::new()));
    follower.acknowledge(id, 2);
    // History the watcher needs is compacted away before the next
    // install: it is cancelled with where to resume, never skipped ahead.
    leader.apply(4, &put("a", "4"));
    leader.apply(5, &put("a", "5"));
    leader.apply(6, &compact(6));
    follower.restore(&leader.snapshot()).unwrap();
    follower.after_drive();
    let (revisions, other) = drain(&mut rx);
    assert!(revisions.is_empty());
    assert_eq!(
        other,
        vec![WatchUpdate::Cancelled {
            watch_id: id,
            reason: CancelReason::Compacted {
                compact_revision: 6
            },
            resume_revision: 5,
        }]
    );
    assert!(follower.watchers().is_empty());
}

/// In a replicated group: a follower cut off while the leader writes and
/// compacts its log comes back through a snapshot install; its watcher,
/// registered before, gets every revision it missed, once, in order.
#[test]
fn a_follower_installing_a_snapshot_keeps_its_watchers_gap_free() {
    use raft::Storage;

    use crate::tests::{compacting_config, converge, elect};
    use crate::{LogStore, SimCluster};

    let ids = [1, 2, 3];
    let mut cluster = SimCluster::new(&ids, 47, compacting_config(47), KvMachine::new).unwrap();
    let leader = elect(&mut cluster);
    let follower = ids.into_iter().find(|id| *id != leader).unwrap();
    cluster.propose(leader, put("a", "0")).unwrap();
    converge(&mut cluster, 100);
    let (sink, mut rx) = unbounded_channel();
    let request = WatchRequest {
        key: b"a".to_vec(),
        ..WatchRequest::default()
    };
    let follower_sm = cluster.replica_mut(follower).unwrap().state_machine_mut();
    let (_, at) = follower_sm.watch(request, sink).unwrap();
    let applied_before = cluster.replica(follower).unwrap().applied_index();
    cluster.net_mut().isolate(follower, &ids);
    for i in 1..40 {
        cluster.propose(leader, put("a", &i.to_string())).unwrap();
        cluster.tick();
    }
    cluster.run(20);
    let leader_first = cluster
        .replica(leader)
        .unwrap()
        .store()
        .first_index()
        .unwrap();
    assert!(
        leader_first > applied_before + 1,
        "the leader compacted past the follower"
    );
    cluster.net_mut().heal();
    converge(&mut cluster, 300);
    let replica = cluster.replica_mut(follower).unwrap();
    let snapshot_index = replica.store().stored_snapshot().get_metadata().index;
    assert!(
        snapshot_index >= leader_first - 1,
        "caught up through a snapshot"
    );
    let final_revision = replica.state_machine().state().current_revision();
    replica.state_machine_mut().after_drive();
    let (revisions, other) = drain(&mut rx);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(revisions, ((at + 1)..=final_revision).collect::<Vec<_>>());
}

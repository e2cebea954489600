//! Well-formed but wrong messages from a peer (a buggy or forged member,
//! or anyone who can reach the peer port) never make a replica panic, and
//! never change an entry it already knows to be committed.
//!
//! raft-rs treats several impossible-in-correct-Raft inputs as fatal (a
//! heartbeat committing past the log, an append overwriting a committed
//! entry, an empty proposal): the replica's peer check drops them first
//! (`node/peer_check.rs`). This drives members of a real group, with
//! history and compacted logs, through arbitrary messages.

use proptest::prelude::*;
use raft::Storage;
use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};

use super::*;

/// Every message type, local ones included (a peer can send those too).
const KINDS: [MessageType; 19] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgPropose,
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgReadIndex,
    MessageType::MsgReadIndexResp,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
];

/// One forged message's fields, drawn relative to the target's log so
/// that the interesting boundaries (committed, last index) are hit.
#[derive(Debug, Clone)]
struct Forged {
    kind: usize,
    from_offset: u64,
    term_delta: i64,
    index_delta: i64,
    log_term_delta: i64,
    commit_delta: i64,
    reject: bool,
    reject_hint_delta: i64,
    entries: Vec<(i64, i64, bool)>,
    contiguous: bool,
    snapshot: Option<(i64, i64, Vec<u64>, Vec<u64>)>,
}

fn forged() -> impl Strategy<Value = Forged> {
    let delta = || prop_oneof![-4i64..=4, Just(i64::MAX / 2), Just(-(i64::MAX / 2))];
    (
        (
            0usize..KINDS.len(),
            0u64..3,
            -2i64..=3,
            delta(),
            delta(),
            delta(),
        ),
        (any::<bool>(), delta()),
        proptest::collection::vec((-3i64..=3, -2i64..=2, any::<bool>()), 0..4),
        any::<bool>(),
        proptest::option::of((
            delta(),
            -2i64..=2,
            proptest::collection::vec(1u64..=5, 0..4),
            proptest::collection::vec(1u64..=5, 0..2),
        )),
    )
        .prop_map(
            |(
                (kind, from_offset, term_delta, index_delta, log_term_delta, commit_delta),
                (reject, reject_hint_delta),
                entries,
                contiguous,
                snapshot,
            )| Forged {
                kind,
                from_offset,
                term_delta,
                index_delta,
                log_term_delta,
                commit_delta,
                reject,
                reject_hint_delta,
                entries,
                contiguous,
                snapshot,
            },
        )
}

fn shifted(base: u64, delta: i64) -> u64 {
    base.saturating_add_signed(delta)
}

/// Builds the message `forged` describes, aimed at `target` from another
/// member, with numbers around the target's term and log.
fn build(forged: &Forged, target: u64, term: u64, last: u64, commit: u64) -> Message {
    let mut message = Message::default();
    message.set_msg_type(KINDS[forged.kind % KINDS.len()]);
    message.to = target;
    message.from = (target + forged.from_offset) % 3 + 1;
    if message.from == target {
        message.from = target % 3 + 1;
    }
    message.term = shifted(term, forged.term_delta);
    message.index = shifted(last, forged.index_delta);
    message.log_term = shifted(term, forged.log_term_delta);
    message.commit = shifted(commit, forged.commit_delta);
    message.reject = forged.reject;
    message.reject_hint = shifted(last, forged.reject_hint_delta);
    for (n, (index_delta, term_delta, conf)) in forged.entries.iter().enumerate() {
        let mut entry = Entry {
            index: if forged.contiguous {
                message.index.saturating_add(1 + n as u64)
            } else {
                shifted(last, *index_delta)
            },
            term: shifted(term, *term_delta),
            data: format!("forged-{n}").into_bytes().into(),
            ..Entry::default()
        };
        if *conf {
            entry.set_entry_type(EntryType::EntryConfChangeV2);
        }
        message.entries.push(entry);
    }
    if let Some((index_delta, term_delta, voters, learners)) = &forged.snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = shifted(commit, *index_delta);
        snapshot.mut_metadata().term = shifted(term, *term_delta);
        snapshot.mut_metadata().set_conf_state(ConfState {
            voters: voters.clone(),
            learners: learners.clone(),
            ..ConfState::default()
        });
        message.set_snapshot(snapshot);
    }
    message
}

/// The terms of the entries `replica` holds at or below its commit index.
fn committed_terms(cluster: &SimCluster<Register>, id: u64) -> Vec<(u64, u64)> {
    let Some(replica) = cluster.replica(id) else {
        return Vec::new();
    };
    let store = replica.store();
    let first = store.first_index().unwrap_or(1);
    (first..=replica.commit_index())
        .filter_map(|index| Some((index, store.term(index).ok()?)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn forged_peer_messages_neither_panic_nor_rewrite_committed_entries(
        seed in 0u64..1_000,
        entries in 0u64..24,
        target_is_leader in any::<bool>(),
        messages in proptest::collection::vec(forged(), 1..5),
    ) {
        let mut cluster = cluster_with(3, seed, compacting_config(seed));
        let leader = elect(&mut cluster);
        for n in 0..entries {
            commit(&mut cluster, payload(n));
        }
        converge(&mut cluster, 200);
        let target = if target_is_leader { leader } else { leader % 3 + 1 };
        let before = committed_terms(&cluster, target);
        let Ok(replica) = cluster.replica_mut(target) else {
            return Err(TestCaseError::fail("target not running"));
        };
        for forged in &messages {
            let (term, commit) = (replica.leadership().term, replica.commit_index());
            let last = replica.store().last_index().unwrap_or(0);
            let message = build(forged, target, term, last, commit);
            if replica.step(message).is_err() {
                break;
            }
            if replica.drive().is_err() {
                break;
            }
        }
        // Let whatever the forgeries started play out in the group.
        cluster.run(30);
        let after = committed_terms(&cluster, target);
        for (index, term) in &before {
            if let Some((_, now)) = after.iter().find(|(i, _)| i == index) {
                prop_assert_eq!(now, term, "committed entry {} changed its term", index);
            }
        }
    }
}

//! What a peer sends cannot make a replica panic or misbehave, and what
//! the replica answers it is durable first.

use proptest::prelude::*;
use raft::eraftpb::{Message, MessageType};

use super::*;
use crate::{LogStore, MemLogStore, Replica, encode_message};

fn follower() -> Replica<MemLogStore, Register> {
    Replica::new(
        2,
        &[1, 2, 3],
        MemLogStore::new(),
        Register::new(),
        config(2),
    )
    .unwrap()
}

proptest! {
    #[test]
    fn garbage_bytes_are_ignored(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut replica = follower();
        // Undecodable bytes are dropped; bytes that happen to decode are
        // handed to raft-rs, which refuses what does not fit.
        let _ = replica.step_bytes(&bytes);
        prop_assert!(replica.drive().is_ok());
    }
}

#[test]
fn local_message_types_from_the_network_are_refused() {
    let mut replica = follower();
    for kind in [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgCheckQuorum,
    ] {
        let mut message = Message::default();
        message.set_msg_type(kind);
        message.from = 1;
        message.to = 2;
        replica.step_bytes(&encode_message(&message)).unwrap();
    }
    replica.drive().unwrap();
    assert_eq!(
        replica.leadership().role,
        crate::Role::Follower,
        "a peer cannot make us campaign"
    );
}

#[test]
fn misaddressed_messages_are_ignored() {
    let mut replica = follower();
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.from = 1;
    message.to = 3;
    message.term = 5;
    replica.step(message).unwrap();
    replica.drive().unwrap();
    assert_eq!(
        replica.leadership().term,
        1,
        "a message for someone else changed nothing"
    );
}

#[test]
fn a_corrupt_snapshot_stops_the_replica_instead_of_panicking() {
    let mut replica = Replica::new(4, &[], MemLogStore::new(), Register::new(), config(4)).unwrap();
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgSnapshot);
    message.from = 1;
    message.to = 4;
    message.term = 3;
    let snapshot = message.mut_snapshot();
    snapshot.set_data(b"not a register".to_vec().into());
    snapshot.mut_metadata().index = 10;
    snapshot.mut_metadata().term = 2;
    snapshot.mut_metadata().mut_conf_state().voters = vec![1, 2, 3, 4];
    replica.step(message).unwrap();
    let result = replica.drive();
    assert!(
        matches!(result, Err(RaftError::Corrupt { .. })),
        "{result:?}"
    );
    assert!(replica.is_stopped());
    assert!(matches!(replica.tick(), Err(RaftError::Stopped)));
}

/// Ready step 6: a vote leaves only once the vote is in the store (a
/// member that crashed after voting must not vote again in that term).
#[test]
fn a_vote_is_stored_before_it_is_sent() {
    let mut replica = follower();
    let mut request = Message::default();
    request.set_msg_type(MessageType::MsgRequestVote);
    request.from = 3;
    request.to = 2;
    request.term = 2;
    request.index = 1;
    request.log_term = 1;
    replica.step(request).unwrap();
    let output = replica.drive().unwrap();
    let vote = output
        .messages
        .iter()
        .find(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse)
        .expect("a vote response");
    assert!(!vote.reject, "the vote is granted");
    let stored = replica.store().hard_state();
    assert_eq!((stored.term, stored.vote), (2, 3));
}

//! Refuses peer messages that a correct member never sends and that
//! raft-rs would act on in ways that end the process or corrupt the log.
//!
//! raft-rs trusts its peers: a heartbeat committing past the end of the
//! log, an append that overwrites a committed entry, an empty proposal or
//! a ReadIndex request without its context are "impossible" there and
//! answered with `panic!`/`fatal!`. The peer port is reachable by anyone
//! who can reach the master, and a member with a damaged disk can send
//! such things too, so each is checked here against this member's own log
//! and dropped with a reason. Raft retransmits what matters; a correct
//! peer's message always passes (each check below says why).
//!
//! This does not authenticate anyone: a well-formed message from a
//! stranger that claims a higher term still disturbs the group, as it
//! would etcd's peer port without TLS (see ARCHITECTURE.md, trust).

use raft::eraftpb::{ConfState, Message, MessageType};
use raft::{Raft, Storage};

/// Why `message` from a peer must not reach raft-rs, or `None` if it may.
pub(super) fn refusal<S: Storage>(raft: &Raft<S>, message: &Message) -> Option<&'static str> {
    let kind = message.get_msg_type();
    // Every message a member sends carries its term, except a follower's
    // forwarded read, which never does; raft-rs takes term 0 for a local
    // message and refuses to send a forwarded read or a vote response
    // with the wrong one.
    if (message.term == 0) != (kind == MessageType::MsgReadIndex) {
        return Some("only a forwarded read goes without a term");
    }
    match kind {
        // Only a leader proposes here (`Replica::propose` checks first), so
        // no member forwards a proposal or a leadership transfer request.
        MessageType::MsgPropose => Some("members never forward proposals"),
        MessageType::MsgTransferLeader => Some("members never forward leadership transfers"),
        // A follower forwards its read with the read's context as the one
        // entry; the leader indexes `entries[0]`.
        MessageType::MsgReadIndex if message.entries.len() != 1 => {
            Some("a read index request carries exactly one context entry")
        }
        // A leader's heartbeat commits min(matched, committed) of the
        // receiver, never past what the receiver holds.
        MessageType::MsgHeartbeat if message.commit > raft.raft_log.last_index() => {
            Some("heartbeat commits past the end of this log")
        }
        MessageType::MsgAppend => append_refusal(raft, message),
        MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
            if message.index > raft.raft_log.last_index() && !message.reject =>
        {
            Some("acknowledges entries this log does not have")
        }
        MessageType::MsgSnapshot => snapshot_refusal(message),
        _ => None,
    }
}

/// A snapshot a member took: of an index and term that exist (raft-rs
/// reads term 0 past the end of a log, so a snapshot of term 0 "matches"
/// any index beyond it), no newer than the term sending it, of a
/// membership raft-rs can restore.
fn snapshot_refusal(message: &Message) -> Option<&'static str> {
    let metadata = message.snapshot.as_ref()?.metadata.as_ref()?;
    if metadata.index == 0 || metadata.term == 0 {
        return Some("snapshot of no entry");
    }
    if metadata.term > message.term {
        return Some("snapshot from a later term than its sender's");
    }
    conf_state_refusal(metadata.conf_state.as_ref()?)
}

/// Checks an append against the log it would extend. A leader's log holds
/// every committed entry (leader completeness), so what it sends agrees
/// with this member's committed prefix and its terms never go down.
fn append_refusal<S: Storage>(raft: &Raft<S>, message: &Message) -> Option<&'static str> {
    let log = &raft.raft_log;
    let contiguous = (message.entries.iter().enumerate())
        .all(|(n, entry)| Some(entry.index) == message.index.checked_add(n as u64 + 1));
    if !contiguous {
        return Some("append entries do not follow its index");
    }
    // Every entry has a term (the first is 1); raft-rs reads term 0 past
    // the end of a log, so a term of 0 would match a gap there.
    if message
        .entries
        .iter()
        .any(|entry| entry.term == 0 || entry.term > message.term)
    {
        return Some("append entry of no term, or of a later term than its sender's");
    }
    if message.index >= log.committed
        && let Ok(committed_term) = log.term(log.committed)
        && message.log_term < committed_term
    {
        return Some("append's previous term is older than this log's committed entry");
    }
    let rewrites_committed = (message.entries.iter())
        .take_while(|entry| entry.index <= log.committed)
        .any(|entry| log.term(entry.index).is_ok_and(|term| term != entry.term));
    if rewrites_committed {
        return Some("append overwrites a committed entry");
    }
    None
}

/// A membership raft-rs can restore: no member listed twice, voters and
/// learners apart, someone voting. Snapshots taken by a member always are.
fn conf_state_refusal(conf: &ConfState) -> Option<&'static str> {
    let mut seen = std::collections::BTreeSet::new();
    let all = (conf.voters.iter()).chain(&conf.learners);
    if !all.into_iter().all(|id| seen.insert(*id)) {
        return Some("snapshot membership lists a member twice");
    }
    if conf.voters.is_empty() {
        return Some("snapshot membership has no voter");
    }
    None
}

//! The replica core: one member of a Raft group, sans IO.
//!
//! A [`Replica`] owns raft-rs's `RawNode`, the log store and the state
//! machine. Its owner feeds it inputs (`tick`, `step`, `propose`,
//! `read_index`, ...) and then calls [`Replica::drive`], which performs
//! raft-rs's Ready protocol (see `ready.rs`) and returns an [`Output`]:
//! messages to send, proposals and reads that completed, role changes.
//! Nothing here reads a clock, spawns, blocks or touches the network.
//!
//! Proposals are tracked by log index: `pending` maps the index raft-rs
//! gave the entry to the proposer's term and token. When the entry at that
//! index is applied, a matching term means the proposal committed; another
//! term means another leader's entry won the slot, so it never will (log
//! matching), and it fails with `Dropped`. A proposal this member can no
//! longer judge (its log was replaced by a snapshot, or overwritten by a new
//! leader while nothing at the index is committed) fails with `Unknown`.

mod apply;
mod peer_check;
mod ready;

use std::collections::{BTreeMap, BTreeSet};

use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Message, MessageType, Snapshot};
use raft::{INVALID_ID, ProgressState, RawNode, SnapshotStatus, StateRole};

use crate::config::ReplicaConfig;
use crate::output::{Leadership, Output, ReadCompletion, Token};
use crate::state_machine::StateMachine;
use crate::storage::LogStore;
use crate::transport::decode_message;
use crate::{RaftError, logger};

/// The index and term of the snapshot every founding member starts from.
/// A log that starts after index 1 makes a member that joins later receive
/// a snapshot first, which carries the membership (raft-rs's advice).
const BOOTSTRAP_INDEX: u64 = 1;
const BOOTSTRAP_TERM: u64 = 1;

/// One membership change, applied through the log. One at a time: the
/// leader refuses a change while another is uncommitted or unapplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Add a member that votes. It starts empty and receives a snapshot.
    AddVoter(u64),
    /// Remove a member. The leader cannot remove itself: transfer
    /// leadership first, then ask the new leader.
    RemoveVoter(u64),
}

/// Whether the replica still serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Running,
    /// Applied its own removal.
    Removed,
    /// A storage or corruption error; the owner must restart it.
    Stopped,
}

/// What kind of entry a pending proposal put in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Normal,
    ConfChange,
}

/// A proposal of this member, waiting for its index to be applied.
#[derive(Debug, Clone, Copy)]
struct Pending {
    term: u64,
    token: Token,
    kind: EntryKind,
}

/// One member of a Raft group over log store `L` and state machine `S`.
pub struct Replica<L: LogStore, S: StateMachine> {
    id: u64,
    raw: RawNode<L>,
    state_machine: S,
    config: ReplicaConfig,
    lifecycle: Lifecycle,
    /// This member's proposals by log index (see the module comment).
    pending: BTreeMap<u64, Pending>,
    /// ReadIndex requests sent but not confirmed, with the tick they were made at.
    reads_waiting: BTreeMap<Token, u64>,
    /// Confirmed reads (token, read index) waiting for `applied` to reach the index.
    reads_confirmed: Vec<(Token, u64)>,
    /// Leader only: reads waiting for its first commit in its term.
    reads_deferred: Vec<Token>,
    /// Last entry applied (including no-op and membership entries).
    applied: u64,
    /// Index of the newest snapshot in the store.
    snapshot_index: u64,
    /// Index of a periodic snapshot being encoded off the thread (see
    /// `background_snapshots`); none is started while one is out.
    snapshot_in_flight: Option<u64>,
    /// Membership as of `applied`.
    conf_state: ConfState,
    /// Set when a membership change was applied: the stored snapshot must
    /// be replaced, because a member joining now needs one that includes it.
    conf_changed: bool,
    /// Members removed by an applied change; their messages are ignored.
    /// Member ids are never reused.
    removed_members: BTreeSet<u64>,
    /// Ticks since the replica was created (its only notion of time).
    ticks: u64,
    /// Leadership as reported in the last `Output`.
    reported: Leadership,
    /// Role/term/leader when the election timeout was last drawn, and how
    /// many draws there were (see `pin_election_timeout`).
    timeout_key: (StateRole, u64, u64),
    timeout_draws: u64,
    /// Leader only: ticks each follower has been waiting for a snapshot.
    snapshot_waits: BTreeMap<u64, u32>,
    /// Produced between drives (timeouts, farewells); emptied by `drive`.
    outbox: Output,
}

impl<L: LogStore, S: StateMachine> Replica<L, S> {
    /// Opens member `id` over `store`.
    ///
    /// - A store that already holds a membership resumes from it (`peers`
    ///   is ignored): a restart.
    /// - An empty store with `peers` founds a group: every founding member
    ///   must be given the same `peers`, which must include `id`, and the
    ///   same state machine: empty, or restored from the same backup (the
    ///   group's log then starts after its applied index).
    /// - An empty store without peers joins an existing group: it waits for
    ///   the leader, which adds it with [`MembershipChange::AddVoter`].
    ///
    /// The state machine is restored from the stored snapshot if it is
    /// behind the log's compaction point.
    pub fn new(
        id: u64,
        peers: &[u64],
        mut store: L,
        mut state_machine: S,
        config: ReplicaConfig,
    ) -> Result<Self, RaftError> {
        if id == INVALID_ID {
            return Err(invalid_config("member id 0 is reserved"));
        }
        let initialized = store.conf_state() != ConfState::default();
        if !initialized && !peers.is_empty() {
            bootstrap(id, peers, &mut store, &state_machine)?;
        }
        let applied = resume_point(&store, &mut state_machine)?;
        let conf_state = store.conf_state();
        let snapshot_index = store.stored_snapshot().get_metadata().index;
        let raw = RawNode::new(&config.raft_config(id, applied), store, &logger::logger(id))?;
        let reported = leadership_of(&raw);
        let timeout_key = (raw.raft.state, raw.raft.term, raw.raft.leader_id);
        let mut replica = Replica {
            id,
            raw,
            state_machine,
            config,
            lifecycle: Lifecycle::Running,
            pending: BTreeMap::new(),
            reads_waiting: BTreeMap::new(),
            reads_confirmed: Vec::new(),
            reads_deferred: Vec::new(),
            applied,
            snapshot_index,
            snapshot_in_flight: None,
            conf_state,
            conf_changed: false,
            removed_members: BTreeSet::new(),
            ticks: 0,
            reported,
            timeout_key,
            timeout_draws: 0,
            snapshot_waits: BTreeMap::new(),
            outbox: Output::default(),
        };
        // A member restarted after it applied its own removal stays removed.
        let members = (replica.conf_state.voters.iter()).chain(replica.conf_state.learners.iter());
        if initialized && !members.copied().any(|member| member == id) {
            replica.lifecycle = Lifecycle::Removed;
        }
        replica.pin_election_timeout();
        Ok(replica)
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Role, term and known leader right now.
    pub fn leadership(&self) -> Leadership {
        leadership_of(&self.raw)
    }

    /// Whether this member leads its term.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The last applied log index.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// The highest log index known to be committed.
    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The voters as of the applied index, ascending.
    pub fn voters(&self) -> Vec<u64> {
        let mut voters = self.conf_state.voters.clone();
        voters.sort_unstable();
        voters
    }

    /// The state machine, for reads (after a completed ReadIndex, for linearizable ones).
    pub fn state_machine(&self) -> &S {
        &self.state_machine
    }

    /// The state machine, for the owner's non-replicated work on it
    /// (registering watchers, handing out events). Changing replicated
    /// state through it would make members diverge.
    pub fn state_machine_mut(&mut self) -> &mut S {
        &mut self.state_machine
    }

    /// The log store.
    pub fn store(&self) -> &L {
        self.raw.store()
    }

    /// Whether the replica applied its own removal.
    pub fn is_removed(&self) -> bool {
        self.lifecycle == Lifecycle::Removed
    }

    /// Whether the replica stopped after a fatal error.
    pub fn is_stopped(&self) -> bool {
        self.lifecycle == Lifecycle::Stopped
    }

    /// Takes the store out, dropping everything else: what survives a crash.
    pub fn into_store(mut self) -> L
    where
        L: Default,
    {
        std::mem::take(self.raw.mut_store())
    }

    /// Advances the logical clock by one tick (the owner ticks every
    /// 100 ms). Drives elections, heartbeats and the engine's own timeouts.
    pub fn tick(&mut self) -> Result<(), RaftError> {
        self.check_running()?;
        self.ticks += 1;
        self.pin_election_timeout();
        self.raw.tick();
        self.retry_stalled_snapshots();
        self.expire_reads();
        Ok(())
    }

    /// Hands a message from a peer to raft. Messages raft refuses (local
    /// types, responses from strangers), messages from removed members and
    /// messages no correct member sends (`peer_check.rs`) are dropped with
    /// a log line: a peer cannot make this replica fail.
    pub fn step(&mut self, message: Message) -> Result<(), RaftError> {
        self.check_running()?;
        if message.to != self.id || message.from == self.id || message.from == INVALID_ID {
            tracing::debug!(
                member = self.id,
                from = message.from,
                to = message.to,
                "misaddressed message ignored"
            );
            return Ok(());
        }
        if self.removed_members.contains(&message.from) {
            self.farewell_on_request(&message);
            return Ok(());
        }
        if let Some(reason) = peer_check::refusal(&self.raw.raft, &message) {
            tracing::warn!(
                member = self.id,
                from = message.from,
                kind = ?message.get_msg_type(),
                reason,
                "peer message refused"
            );
            return Ok(());
        }
        if let Err(error) = self.raw.step(message) {
            tracing::debug!(member = self.id, %error, "raft refused a message");
        }
        Ok(())
    }

    /// Decodes and steps a message received as bytes. Undecodable bytes are
    /// ignored with a warning.
    pub fn step_bytes(&mut self, bytes: &[u8]) -> Result<(), RaftError> {
        match decode_message(bytes) {
            Some(message) => self.step(message),
            None => self.check_running(),
        }
    }

    /// Appends `data` to the log if this member leads; `token` completes
    /// once the entry is applied here (or is known to have lost its slot).
    pub fn propose(&mut self, data: Vec<u8>, token: Token) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_leader()?;
        let index = self.append_proposal(|raw| raw.propose(Vec::new(), data))?;
        self.track(index, token, EntryKind::Normal);
        Ok(())
    }

    /// Proposes one membership change; `token` completes once it is
    /// applied here. Refused up front when it cannot work.
    pub fn propose_conf_change(
        &mut self,
        change: MembershipChange,
        token: Token,
    ) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_leader()?;
        let conf_change = self.validate_change(change)?;
        let index = self.append_proposal(|raw| raw.propose_conf_change(Vec::new(), conf_change))?;
        self.track(index, token, EntryKind::ConfChange);
        Ok(())
    }

    /// Asks for a linearizable read point. The completion carries the read
    /// index once this replica has applied it; a follower asks its leader.
    pub fn read_index(&mut self, token: Token) -> Result<(), RaftError> {
        self.check_running()?;
        if self.raw.raft.leader_id == INVALID_ID {
            return Err(RaftError::NotLeader { leader: None });
        }
        self.reads_waiting.insert(token, self.ticks);
        if self.raw.raft.state == StateRole::Leader && !self.raw.raft.commit_to_current_term() {
            // raft-rs silently drops a leader's ReadIndex until an entry of
            // its term is committed (its read point would not be safe);
            // hold it and issue it then, instead of letting it time out.
            self.reads_deferred.push(token);
            return Ok(());
        }
        self.raw.read_index(token.to_be_bytes().to_vec());
        Ok(())
    }

    /// Issues the reads held back until this leader committed an entry of
    /// its term; whether any was.
    pub(crate) fn issue_deferred_reads(&mut self) -> bool {
        if self.reads_deferred.is_empty()
            || self.raw.raft.state != StateRole::Leader
            || !self.raw.raft.commit_to_current_term()
        {
            return false;
        }
        for token in std::mem::take(&mut self.reads_deferred) {
            // Reads that failed meanwhile (timeout, leader change) are gone.
            if self.reads_waiting.contains_key(&token) {
                self.raw.read_index(token.to_be_bytes().to_vec());
            }
        }
        true
    }

    /// Starts an election now (pre-vote first) instead of waiting for the
    /// election timeout.
    pub fn campaign(&mut self) -> Result<(), RaftError> {
        self.check_running()?;
        if let Err(error) = self.raw.campaign() {
            tracing::debug!(member = self.id, %error, "campaign refused");
        }
        Ok(())
    }

    /// Leader only: hands leadership to `to` once it has caught up.
    pub fn transfer_leadership(&mut self, to: u64) -> Result<(), RaftError> {
        self.check_running()?;
        self.check_leader()?;
        self.raw.transfer_leader(to);
        Ok(())
    }

    /// The transport could not deliver to `peer`: raft-rs slows down
    /// replication to it instead of filling a dead link.
    pub fn report_unreachable(&mut self, peer: u64) {
        if self.lifecycle == Lifecycle::Running {
            self.raw.report_unreachable(peer);
        }
    }

    fn check_running(&self) -> Result<(), RaftError> {
        match self.lifecycle {
            Lifecycle::Running => Ok(()),
            Lifecycle::Removed => Err(RaftError::Removed),
            Lifecycle::Stopped => Err(RaftError::Stopped),
        }
    }

    fn check_leader(&self) -> Result<(), RaftError> {
        if self.raw.raft.state != StateRole::Leader {
            let leader = self.raw.raft.leader_id;
            return Err(RaftError::NotLeader {
                leader: (leader != INVALID_ID).then_some(leader),
            });
        }
        if self.raw.raft.lead_transferee.is_some() {
            // raft-rs drops proposals while leadership moves.
            return Err(RaftError::Dropped);
        }
        Ok(())
    }

    /// Runs `propose` and returns the index raft-rs gave the new entry.
    fn append_proposal(
        &mut self,
        propose: impl FnOnce(&mut RawNode<L>) -> raft::Result<()>,
    ) -> Result<u64, RaftError> {
        let before = self.raw.raft.raft_log.last_index();
        if let Err(error) = propose(&mut self.raw) {
            tracing::debug!(member = self.id, %error, "proposal refused by raft");
            return Err(RaftError::Dropped);
        }
        let index = self.raw.raft.raft_log.last_index();
        if index != before + 1 {
            return Err(RaftError::Dropped);
        }
        Ok(index)
    }

    fn track(&mut self, index: u64, token: Token, kind: EntryKind) {
        let term = self.raw.raft.term;
        self.pending.insert(index, Pending { term, token, kind });
    }

    fn validate_change(&self, change: MembershipChange) -> Result<ConfChange, RaftError> {
        let reject = |why: &str| Err(RaftError::ConfChange(why.to_string()));
        if self.raw.raft.has_pending_conf() {
            return reject("another membership change is not applied yet");
        }
        let voters = &self.conf_state.voters;
        let mut conf_change = ConfChange::default();
        match change {
            MembershipChange::AddVoter(id) => {
                if id == INVALID_ID || voters.contains(&id) || self.removed_members.contains(&id) {
                    return reject("already a member, removed before, or id 0");
                }
                conf_change.set_change_type(ConfChangeType::AddNode);
                conf_change.node_id = id;
            }
            MembershipChange::RemoveVoter(id) => {
                if !voters.contains(&id) {
                    return reject("not a voter");
                }
                if id == self.id {
                    return reject("the leader cannot remove itself; transfer leadership first");
                }
                conf_change.set_change_type(ConfChangeType::RemoveNode);
                conf_change.node_id = id;
            }
        }
        Ok(conf_change)
    }

    /// raft-rs draws election timeouts from the thread RNG, which would make
    /// simulations unrepeatable. Before every tick this replaces the draw
    /// with one from the configured seed, redrawn whenever role, term or
    /// leader changed (when raft-rs would have drawn a new one).
    fn pin_election_timeout(&mut self) {
        let raft = &self.raw.raft;
        let key = (raft.state, raft.term, raft.leader_id);
        if key != self.timeout_key {
            self.timeout_key = key;
            self.timeout_draws += 1;
        }
        let base = self.config.election_ticks;
        let span = base.max(1) as u64;
        let draw =
            mix(self.config.seed ^ mix(self.id) ^ mix(self.timeout_draws.wrapping_add(1 << 32)));
        let timeout = base + (draw % span) as usize;
        self.raw.raft.set_randomized_election_timeout(timeout);
    }

    /// raft-rs waits forever for a snapshot's outcome unless told; a lost
    /// snapshot message would leave the follower behind for good. After
    /// `snapshot_retry_ticks` the leader reports a failure and resends.
    fn retry_stalled_snapshots(&mut self) {
        if self.raw.raft.state != StateRole::Leader {
            self.snapshot_waits.clear();
            return;
        }
        let mut waiting: Vec<u64> = (self.raw.raft.prs().iter())
            .filter(|(_, progress)| progress.state == ProgressState::Snapshot)
            .map(|(id, _)| *id)
            .collect();
        waiting.sort_unstable();
        self.snapshot_waits.retain(|id, _| waiting.contains(id));
        for id in waiting {
            let ticks = self.snapshot_waits.entry(id).or_insert(0);
            *ticks += 1;
            if *ticks >= self.config.snapshot_retry_ticks {
                self.snapshot_waits.remove(&id);
                self.raw.report_snapshot(id, SnapshotStatus::Failure);
            }
        }
    }

    /// Fails reads whose confirmation did not come in time (the request or
    /// the answer was lost; raft-rs does not retry them).
    fn expire_reads(&mut self) {
        let deadline = self.config.read_timeout_ticks;
        let now = self.ticks;
        let expired: Vec<Token> = (self.reads_waiting.iter())
            .filter(|(_, since)| now.saturating_sub(**since) >= deadline)
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            self.reads_waiting.remove(&token);
            self.outbox.reads.push(ReadCompletion {
                token,
                result: Err(RaftError::Dropped),
            });
        }
    }

    /// A removed member keeps campaigning if it never learned that its
    /// removal committed (the leader stops replicating to it as soon as the
    /// removal applies). When its vote request shows a log that matches
    /// ours, the leader tells it the commit index so that it applies its
    /// own removal and stops.
    fn farewell_on_request(&mut self, request: &Message) {
        let is_vote = matches!(
            request.get_msg_type(),
            MessageType::MsgRequestPreVote | MessageType::MsgRequestVote
        );
        if !is_vote || self.raw.raft.state != StateRole::Leader || request.index == 0 {
            return;
        }
        let ours = self.raw.raft.raft_log.term(request.index).unwrap_or(0);
        if ours == 0 || ours != request.log_term {
            return;
        }
        let commit = request.index.min(self.raw.raft.raft_log.committed);
        let farewell = self.heartbeat(request.from, commit);
        self.outbox.messages.push(farewell);
    }

    /// A heartbeat carrying `commit`, which must not exceed what `to` holds
    /// in agreement with our log (raft-rs panics on a commit past its log).
    fn heartbeat(&self, to: u64, commit: u64) -> Message {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgHeartbeat);
        message.from = self.id;
        message.to = to;
        message.term = self.raw.raft.term;
        message.commit = commit;
        message
    }
}

fn leadership_of<L: LogStore>(raw: &RawNode<L>) -> Leadership {
    let leader = raw.raft.leader_id;
    Leadership {
        role: raw.raft.state.into(),
        term: raw.raft.term,
        leader: (leader != INVALID_ID).then_some(leader),
    }
}

fn invalid_config(why: &str) -> RaftError {
    RaftError::Storage(raft::Error::ConfigInvalid(why.to_string()))
}

/// Writes the founding snapshot: membership `peers`, the state machine's
/// initial state, at term 1 and index 1 (or the restored state's applied
/// index).
fn bootstrap<L: LogStore, S: StateMachine>(
    id: u64,
    peers: &[u64],
    store: &mut L,
    state_machine: &S,
) -> Result<(), RaftError> {
    let mut voters = peers.to_vec();
    voters.sort_unstable();
    voters.dedup();
    if !voters.contains(&id) || voters.contains(&INVALID_ID) {
        return Err(invalid_config("peers must include this member and not 0"));
    }
    let mut snapshot = Snapshot::default();
    snapshot.set_data(state_machine.snapshot().into());
    let meta = snapshot.mut_metadata();
    // A state machine restored from a backup has applied entries of the
    // group it was taken from; the new log starts after them, or `apply`
    // would skip the new group's first entries as already applied.
    meta.index = state_machine.applied_index().max(BOOTSTRAP_INDEX);
    meta.term = BOOTSTRAP_TERM;
    meta.mut_conf_state().voters = voters;
    store.apply_snapshot(&snapshot)?;
    Ok(())
}

/// The applied index to resume from. A state machine behind the log's
/// compaction point is restored from the stored snapshot; one ahead of the
/// persisted commit index (it applied, then the process died before the
/// commit index was stored) resumes at the commit index and skips entries
/// it already holds (see `apply.rs`).
fn resume_point<L: LogStore, S: StateMachine>(
    store: &L,
    state_machine: &mut S,
) -> Result<u64, RaftError> {
    let compacted = store.first_index()?.saturating_sub(1);
    let commit = store.hard_state().commit;
    if state_machine.applied_index() < compacted {
        let snapshot = store.stored_snapshot();
        state_machine
            .restore(snapshot.get_data())
            .map_err(|error| RaftError::Corrupt {
                what: "stored snapshot",
                reason: error.to_string(),
            })?;
        return Ok(snapshot.get_metadata().index);
    }
    Ok(state_machine.applied_index().min(commit).max(compacted))
}

/// splitmix64's finalizer: a cheap, well-mixed hash of one word.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

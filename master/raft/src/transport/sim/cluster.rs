//! N replicas over a [`SimNetwork`], with crashes and restarts.

use std::collections::BTreeMap;

use super::SimNetwork;
use crate::RaftError;
use crate::config::ReplicaConfig;
use crate::node::{MembershipChange, Replica};
use crate::output::{Applied, Output, Role, Token};
use crate::state_machine::StateMachine;
use crate::storage::MemLogStore;
use crate::transport::Transport;

/// Delivery rounds per tick. Messages with no delay are delivered in the
/// tick they were sent, so an election or a commit takes a few rounds;
/// the bound stops a message storm from spinning forever.
const MAX_ROUNDS_PER_TICK: usize = 64;

/// One member as the simulation sees it.
pub enum SimNode<S: StateMachine> {
    /// Running.
    Up(Box<Replica<MemLogStore, S>>),
    /// Crashed: only the store survives.
    Down(Box<MemLogStore>),
    /// Applied its own removal and stopped for good.
    Removed,
}

/// A whole group in one process, deterministic for a given seed and call
/// sequence. It records every completion and checks on every step that no
/// term has two leaders; the tests check the state machines.
pub struct SimCluster<S: StateMachine> {
    net: SimNetwork,
    nodes: BTreeMap<u64, SimNode<S>>,
    new_state_machine: fn() -> S,
    config: ReplicaConfig,
    next_token: Token,
    /// Every proposal's end, by token. A token that is absent is still
    /// waiting, or was lost with a crashed proposer (outcome unknown).
    completions: BTreeMap<Token, Result<Applied, RaftError>>,
    /// Every read's end, by token.
    reads: BTreeMap<Token, Result<u64, RaftError>>,
    /// Who led each term, first seen: a second leader in a term is a violation.
    leaders: BTreeMap<u64, u64>,
    violations: Vec<String>,
    crashes_before_persist: u64,
}

impl<S: StateMachine> SimCluster<S> {
    /// Founds a group of `ids`. `config.seed` seeds the election timeouts
    /// and `seed` the network.
    pub fn new(
        ids: &[u64],
        seed: u64,
        config: ReplicaConfig,
        new_state_machine: fn() -> S,
    ) -> Result<Self, RaftError> {
        let mut nodes = BTreeMap::new();
        for id in ids {
            let replica = Replica::new(
                *id,
                ids,
                MemLogStore::new(),
                new_state_machine(),
                config.clone(),
            )?;
            nodes.insert(*id, SimNode::Up(Box::new(replica)));
        }
        Ok(SimCluster {
            net: SimNetwork::new(seed),
            nodes,
            new_state_machine,
            config,
            next_token: 1,
            completions: BTreeMap::new(),
            reads: BTreeMap::new(),
            leaders: BTreeMap::new(),
            violations: Vec::new(),
            crashes_before_persist: 0,
        })
    }

    /// The network, to inspect.
    pub fn net(&self) -> &SimNetwork {
        &self.net
    }

    /// The network, to change faults and partitions.
    pub fn net_mut(&mut self) -> &mut SimNetwork {
        &mut self.net
    }

    /// Every member id, up or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Members that are running.
    pub fn up_ids(&self) -> Vec<u64> {
        (self.nodes.iter())
            .filter(|(_, node)| matches!(node, SimNode::Up(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// A running member's replica.
    pub fn replica(&self, id: u64) -> Option<&Replica<MemLogStore, S>> {
        match self.nodes.get(&id) {
            Some(SimNode::Up(replica)) => Some(&**replica),
            _ => None,
        }
    }

    pub(crate) fn replica_mut(
        &mut self,
        id: u64,
    ) -> Result<&mut Replica<MemLogStore, S>, RaftError> {
        match self.nodes.get_mut(&id) {
            Some(SimNode::Up(replica)) => Ok(&mut **replica),
            Some(SimNode::Removed) => Err(RaftError::Removed),
            _ => Err(RaftError::Stopped),
        }
    }

    /// Whether `id` applied its own removal.
    pub fn is_removed(&self, id: u64) -> bool {
        matches!(self.nodes.get(&id), Some(SimNode::Removed))
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        (self.nodes.iter())
            .filter_map(|(id, node)| match node {
                SimNode::Up(r) if r.is_leader() => Some((r.leadership().term, *id)),
                _ => None,
            })
            .max()
            .map(|(_, id)| id)
    }

    /// One line per member (role, term, leader, commit, applied, log
    /// bounds), for failure messages.
    pub fn describe(&self) -> String {
        use raft::Storage as _;
        let mut out = String::new();
        for (id, node) in &self.nodes {
            let line = match node {
                SimNode::Up(r) => {
                    let l = r.leadership();
                    let first = r.store().first_index().unwrap_or(0);
                    let last = r.store().last_index().unwrap_or(0);
                    format!(
                        "{id}: {:?} term {} leader {:?} commit {} applied {} log [{first}, {last}] voters {:?}",
                        l.role,
                        l.term,
                        l.leader,
                        r.commit_index(),
                        r.applied_index(),
                        r.voters()
                    )
                }
                SimNode::Down(_) => format!("{id}: down"),
                SimNode::Removed => format!("{id}: removed"),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Safety violations seen so far (empty in a correct run).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Every finished proposal, by token.
    pub fn completions(&self) -> &BTreeMap<Token, Result<Applied, RaftError>> {
        &self.completions
    }

    /// Every finished read, by token.
    pub fn reads(&self) -> &BTreeMap<Token, Result<u64, RaftError>> {
        &self.reads
    }

    /// Proposes `data` on member `id`; the token identifies its completion.
    pub fn propose(&mut self, id: u64, data: Vec<u8>) -> Result<Token, RaftError> {
        let token = self.take_token();
        self.replica_mut(id)?.propose(data, token)?;
        Ok(token)
    }

    /// Proposes a membership change on member `id`.
    pub fn propose_change(
        &mut self,
        id: u64,
        change: MembershipChange,
    ) -> Result<Token, RaftError> {
        let token = self.take_token();
        self.replica_mut(id)?.propose_conf_change(change, token)?;
        Ok(token)
    }

    /// Starts a ReadIndex on member `id`.
    pub fn read_index(&mut self, id: u64) -> Result<Token, RaftError> {
        let token = self.take_token();
        self.replica_mut(id)?.read_index(token)?;
        Ok(token)
    }

    /// Asks leader `id` to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, id: u64, to: u64) -> Result<(), RaftError> {
        self.replica_mut(id)?.transfer_leadership(to)
    }

    /// Makes member `id` campaign now.
    pub fn campaign(&mut self, id: u64) -> Result<(), RaftError> {
        self.replica_mut(id)?.campaign()
    }

    /// Crashes member `id`: it keeps only its store; messages to it are lost.
    pub fn crash(&mut self, id: u64) {
        if let Some(SimNode::Up(_)) = self.nodes.get(&id)
            && let Some(SimNode::Up(replica)) = self.nodes.remove(&id)
        {
            self.nodes
                .insert(id, SimNode::Down(Box::new(replica.into_store())));
        }
        self.net.discard_to(id);
    }

    /// Restarts a crashed member from its store with a fresh state machine.
    pub fn restart(&mut self, id: u64) -> Result<(), RaftError> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Err(RaftError::Stopped);
        };
        let SimNode::Down(store) = node else {
            return Ok(());
        };
        let store = std::mem::take(&mut **store);
        let replica = Replica::new(
            id,
            &[],
            store,
            (self.new_state_machine)(),
            self.config.clone(),
        )?;
        // A member that had applied its own removal stays removed.
        *node = if replica.is_removed() {
            SimNode::Removed
        } else {
            SimNode::Up(Box::new(replica))
        };
        Ok(())
    }

    /// Starts a new, empty member `id` that waits to be added by the leader.
    pub fn start_joining(&mut self, id: u64) -> Result<(), RaftError> {
        let replica = Replica::new(
            id,
            &[],
            MemLogStore::new(),
            (self.new_state_machine)(),
            self.config.clone(),
        )?;
        self.nodes.insert(id, SimNode::Up(Box::new(replica)));
        Ok(())
    }

    /// One tick: the clock advances for the network and every running
    /// member, then messages flow until none is due this tick.
    pub fn tick(&mut self) {
        self.net.advance();
        for (id, node) in self.nodes.iter_mut() {
            if let SimNode::Up(replica) = node
                && let Err(error) = replica.tick()
            {
                self.violations
                    .push(format!("member {id} could not tick: {error}"));
            }
        }
        self.settle();
    }

    /// Ticks until `done` holds (checked before every tick) or `max_ticks`
    /// passed; returns whether it held.
    pub fn run_until(&mut self, max_ticks: u64, mut done: impl FnMut(&Self) -> bool) -> bool {
        for _ in 0..max_ticks {
            if done(self) {
                return true;
            }
            self.tick();
        }
        done(self)
    }

    /// Ticks `n` times.
    pub fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Drives every member and delivers due messages, in rounds.
    pub fn settle(&mut self) {
        self.drive_all();
        for _ in 0..MAX_ROUNDS_PER_TICK {
            let due = self.net.take_due();
            if due.is_empty() {
                return;
            }
            let mut stepped = Vec::new();
            for (to, bytes) in due {
                if let Some(SimNode::Up(replica)) = self.nodes.get_mut(&to) {
                    // Only a removed or stopped replica refuses; drive_all reports those.
                    let _ = replica.step_bytes(&bytes);
                    stepped.push(to);
                }
            }
            self.crash_before_persist(stepped);
            self.drive_all();
        }
    }

    /// Crashes some members that took messages in, before their `drive`
    /// persists anything (see `Faults::crash_before_persist_per_mille`).
    fn crash_before_persist(&mut self, stepped: Vec<u64>) {
        let per_mille = self.net.faults().crash_before_persist_per_mille;
        if per_mille == 0 {
            return;
        }
        for id in stepped {
            if self.net.rng().below(1000) < u64::from(per_mille)
                && matches!(self.nodes.get(&id), Some(SimNode::Up(_)))
            {
                self.crash(id);
                self.crashes_before_persist += 1;
            }
        }
    }

    /// Members crashed by `Faults::crash_before_persist_per_mille` so far.
    pub fn crashes_before_persist(&self) -> u64 {
        self.crashes_before_persist
    }

    fn drive_all(&mut self) {
        let ids: Vec<u64> = self.up_ids();
        for id in ids {
            let Some(SimNode::Up(replica)) = self.nodes.get_mut(&id) else {
                continue;
            };
            match replica.drive() {
                Ok(output) => self.absorb(id, output),
                Err(RaftError::Removed) => {
                    self.nodes.insert(id, SimNode::Removed);
                }
                Err(error) => {
                    self.violations
                        .push(format!("member {id} stopped: {error}"));
                    self.crash(id);
                }
            }
        }
    }

    /// Acts on one member's output: send, record, check leadership.
    fn absorb(&mut self, id: u64, output: Output) {
        for message in output.messages {
            self.net.send(message);
        }
        for completion in output.completions {
            self.completions.insert(completion.token, completion.result);
        }
        for read in output.reads {
            self.reads.insert(read.token, read.result);
        }
        if let Some(leadership) = output.leadership
            && leadership.role == Role::Leader
        {
            let first = *self.leaders.entry(leadership.term).or_insert(id);
            if first != id {
                self.violations.push(format!(
                    "term {} has two leaders: {first} and {id}",
                    leadership.term
                ));
            }
        }
        if output.removed {
            self.nodes.insert(id, SimNode::Removed);
        }
    }

    fn take_token(&mut self) -> Token {
        let token = self.next_token;
        self.next_token += 1;
        token
    }
}

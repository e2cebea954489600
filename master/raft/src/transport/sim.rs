//! A deterministic simulated network and cluster, driven by a seed.
//!
//! [`SimNetwork`] carries encoded messages between member ids with
//! seeded faults: loss, delay (in ticks), reordering, duplication, and
//! partitions (cut links). [`SimCluster`] runs N replicas over it with
//! in-memory stores, and can crash a member (everything but its store is
//! lost: raft-rs's unstable entries, pending proposals, the state machine),
//! also right after it took messages in and before it persisted anything,
//! and restart it from the store. No threads, no clock: the same seed and
//! the same calls give the same run, message for message.

mod cluster;

pub use cluster::{SimCluster, SimNode};

use std::collections::BTreeSet;

use raft::eraftpb::{Message, MessageType};

use super::{Transport, encode_message};

/// A small seeded generator (splitmix64). Own code rather than `rand`, so
/// that a recorded seed replays the same run after dependency upgrades.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }
}

/// Faults applied to every message sent (besides cut links).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Percentage of messages lost.
    pub drop_percent: u32,
    /// Percentage of messages delivered twice (each copy with its own delay).
    pub duplicate_percent: u32,
    /// Each message is delayed by a uniform 0..=`max_delay_ticks` ticks.
    pub max_delay_ticks: u64,
    /// Deliver the messages due in one round in random order instead of
    /// sending order.
    pub reorder: bool,
    /// Per mille of deliveries after which the receiving member crashes
    /// before it persists what the message made it do ([`SimCluster`] only):
    /// raft-rs's unstable entries and votes are lost, the store is not.
    pub crash_before_persist_per_mille: u32,
}

/// A message on its way.
#[derive(Debug, Clone)]
struct InFlight {
    deliver_at: u64,
    seq: u64,
    from: u64,
    to: u64,
    bytes: Vec<u8>,
}

/// Counters for a run's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Lost to faults or cut links.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Handed to a receiver.
    pub delivered: u64,
    /// Snapshot messages handed to the network (lost or not).
    pub snapshots: u64,
}

/// The simulated network: a queue of encoded messages ordered by delivery tick.
#[derive(Debug, Clone)]
pub struct SimNetwork {
    rng: SimRng,
    now: u64,
    faults: Faults,
    /// Directed links that lose everything: (from, to).
    cut: BTreeSet<(u64, u64)>,
    /// Message types lost on every link (raft-rs harness's `ignore`).
    ignored: Vec<MessageType>,
    queue: Vec<InFlight>,
    next_seq: u64,
    stats: NetStats,
}

impl SimNetwork {
    /// A fault-free network whose randomness comes from `seed`.
    pub fn new(seed: u64) -> Self {
        SimNetwork {
            rng: SimRng::new(seed),
            now: 0,
            faults: Faults::default(),
            cut: BTreeSet::new(),
            ignored: Vec::new(),
            queue: Vec::new(),
            next_seq: 0,
            stats: NetStats::default(),
        }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Replaces the faults applied to messages sent from now on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The network's generator, for schedules that should follow the same seed.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Cuts every link between members of different groups (both ways).
    /// Members in no group keep their links.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        for (i, left) in groups.iter().enumerate() {
            for right in &groups[i + 1..] {
                for a in left.iter() {
                    for b in right.iter() {
                        self.cut.insert((*a, *b));
                        self.cut.insert((*b, *a));
                    }
                }
            }
        }
    }

    /// Cuts `member` off from every id in `others`, both ways.
    pub fn isolate(&mut self, member: u64, others: &[u64]) {
        for other in others.iter().filter(|o| **o != member) {
            self.cut.insert((member, *other));
            self.cut.insert((*other, member));
        }
    }

    /// Cuts one direction only: `from` can no longer reach `to`.
    pub fn cut_one_way(&mut self, from: u64, to: u64) {
        self.cut.insert((from, to));
    }

    /// Loses every message of type `kind` until [`SimNetwork::heal`].
    pub fn ignore(&mut self, kind: MessageType) {
        self.ignored.push(kind);
    }

    /// Restores every link and stops ignoring message types (messages
    /// already lost stay lost).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.ignored.clear();
    }

    /// Whether `from` can reach `to`.
    pub fn connected(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Moves to the next tick.
    pub fn advance(&mut self) {
        self.now += 1;
    }

    /// Removes and returns the messages due now, as (to, bytes).
    pub fn take_due(&mut self) -> Vec<(u64, Vec<u8>)> {
        let now = self.now;
        let (mut due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| m.deliver_at <= now);
        self.queue = later;
        // A partition also catches messages already on the wire.
        let before = due.len();
        due.retain(|m| !self.cut.contains(&(m.from, m.to)));
        self.stats.dropped += (before - due.len()) as u64;
        due.sort_by_key(|m| (m.deliver_at, m.seq));
        if self.faults.reorder {
            // Fisher-Yates with the seeded generator.
            for i in (1..due.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                due.swap(i, j);
            }
        }
        self.stats.delivered += due.len() as u64;
        due.into_iter().map(|m| (m.to, m.bytes)).collect()
    }

    /// Messages still on their way.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Drops every message on its way to `member` (it crashed: its socket
    /// buffers are gone too).
    pub fn discard_to(&mut self, member: u64) {
        let before = self.queue.len();
        self.queue.retain(|m| m.to != member);
        self.stats.dropped += (before - self.queue.len()) as u64;
    }

    fn enqueue(&mut self, from: u64, to: u64, bytes: Vec<u8>) {
        let delay = self.rng.below(self.faults.max_delay_ticks + 1);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(InFlight {
            deliver_at: self.now + delay,
            seq,
            from,
            to,
            bytes,
        });
    }
}

impl Transport for SimNetwork {
    fn send(&mut self, message: Message) {
        self.stats.sent += 1;
        if message.get_msg_type() == MessageType::MsgSnapshot {
            self.stats.snapshots += 1;
        }
        let (from, to) = (message.from, message.to);
        let ignored = self.ignored.contains(&message.get_msg_type());
        if ignored || !self.connected(from, to) || self.rng.chance(self.faults.drop_percent) {
            self.stats.dropped += 1;
            return;
        }
        let bytes = encode_message(&message);
        if self.rng.chance(self.faults.duplicate_percent) {
            self.stats.duplicated += 1;
            self.enqueue(from, to, bytes.clone());
        }
        self.enqueue(from, to, bytes);
    }
}

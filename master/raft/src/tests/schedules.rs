//! Random schedules (seeded): proposals, reads, crashes, restarts,
//! partitions, message loss, delay, reordering and duplication. After every
//! tick and at the end the safety properties must hold:
//! (a) no term has two leaders (checked by `SimCluster` on every drive);
//! (b) members' histories are prefixes of one another;
//! (c) after healing, every acknowledged proposal is in every member's
//!     state at the position it was answered with, and no proposal
//!     answered `Dropped` is anywhere;
//! and reads: a completed read's index covers every write acknowledged
//! before the read was asked.
//!
//! `RAFT_SIM_SEEDS=<n>` runs more schedules (e.g. a nightly soak).

use super::*;
use crate::MembershipChange::{AddVoter, RemoveVoter};
use crate::{Faults, SimRng};

const DEFAULT_SEEDS: u64 = 200;
const SCHEDULE_TICKS: u64 = 300;

fn seeds() -> u64 {
    std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_SEEDS)
}

#[test]
fn safety_holds_in_random_schedules_with_faults() {
    let mut total = Tally::default();
    for seed in 0..seeds() {
        let tally = run_schedule(seed);
        total.acknowledged += tally.acknowledged;
        total.dropped += tally.dropped;
        total.unknown += tally.unknown;
        total.reads += tally.reads;
        total.snapshots += tally.snapshots;
        total.crashes += tally.crashes;
        total.crashes_before_persist += tally.crashes_before_persist;
        total.messages_lost += tally.messages_lost;
    }
    eprintln!("{} schedules: {total:?}", seeds());
    // The schedules must exercise what they claim to, not pass vacuously.
    let n = seeds();
    assert!(
        total.acknowledged >= 5 * n,
        "too few acknowledged writes: {total:?}"
    );
    assert!(total.dropped > 0 && total.reads >= n, "{total:?}");
    assert!(total.snapshots >= n / 2 && total.crashes >= n, "{total:?}");
    assert!(total.crashes_before_persist >= n / 2, "{total:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let fingerprint = |seed: u64| {
        let (cluster, checker, crashes) = play(seed);
        format!(
            "{:?} {:?} {:?} {crashes} {:?}\n{}",
            cluster.completions(),
            cluster.reads(),
            cluster.net().stats(),
            checker.canonical,
            cluster.describe()
        )
    };
    assert_eq!(fingerprint(7), fingerprint(7), "same seed, same run");
    assert_ne!(fingerprint(7), fingerprint(9), "another seed, another run");
}

/// What one schedule did, for the report and the "not vacuous" checks.
#[derive(Debug, Default)]
struct Tally {
    acknowledged: u64,
    dropped: u64,
    unknown: u64,
    reads: u64,
    snapshots: u64,
    crashes: u64,
    crashes_before_persist: u64,
    messages_lost: u64,
}

#[derive(Debug, Default)]
struct Checker {
    /// The longest history seen: every history must be a prefix of it or extend it.
    canonical: Vec<Vec<u8>>,
    /// What each proposal carried.
    proposed: BTreeMap<Token, Vec<u8>>,
    /// For each read, the highest index acknowledged to a writer when it was asked.
    read_floor: BTreeMap<Token, u64>,
}

impl Checker {
    fn check_prefixes(&mut self, cluster: &SimCluster<Register>, seed: u64) {
        for (id, history) in histories(cluster) {
            let common = history.len().min(self.canonical.len());
            assert!(
                history[..common] == self.canonical[..common],
                "seed {seed}: member {id} diverged from the committed history"
            );
            if history.len() > self.canonical.len() {
                self.canonical = history;
            }
        }
    }

    fn highest_acknowledged(cluster: &SimCluster<Register>) -> u64 {
        (cluster.completions().values())
            .filter_map(|result| result.as_ref().ok().map(|applied| applied.index))
            .max()
            .unwrap_or(0)
    }

    fn check_completions(&self, cluster: &SimCluster<Register>, seed: u64) {
        let history = &self.canonical;
        for (token, result) in cluster.completions() {
            let Some(data) = self.proposed.get(token) else {
                continue;
            };
            match result {
                Ok(applied) => {
                    let position = Register::position(&applied.response).unwrap() as usize;
                    assert!(
                        history.get(position - 1) == Some(data),
                        "seed {seed}: acknowledged proposal {token} is not at position {position}"
                    );
                }
                Err(RaftError::Dropped) => assert!(
                    !history.contains(data),
                    "seed {seed}: proposal {token} answered Dropped was applied"
                ),
                Err(_) => {}
            }
        }
    }

    fn check_reads(&self, cluster: &SimCluster<Register>, seed: u64) {
        for (token, result) in cluster.reads() {
            if let (Ok(index), Some(floor)) = (result, self.read_floor.get(token)) {
                assert!(
                    index >= floor,
                    "seed {seed}: read {token} at {index} misses a write acknowledged at {floor}"
                );
            }
        }
    }
}

/// Runs schedule `seed` to the end (healed, every member restarted, one
/// last write committed everywhere), checking prefixes after every tick.
fn play(seed: u64) -> (SimCluster<Register>, Checker, u64) {
    let mut rng = SimRng::new(seed ^ 0x5eed_cafe);
    let n = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut cluster = cluster_with(n, seed, compacting_config(seed));
    cluster.net_mut().set_faults(random_faults(&mut rng));
    let mut checker = Checker::default();
    let mut crashes = 0;
    for step in 0..SCHEDULE_TICKS {
        crashes += u64::from(disturb(&mut cluster, &mut rng));
        let member = 1 + rng.below(n);
        if rng.chance(50) {
            let data = payload(step);
            if let Ok(token) = cluster.propose(member, data.clone()) {
                checker.proposed.insert(token, data);
            }
        } else if rng.chance(20) {
            let floor = Checker::highest_acknowledged(&cluster);
            if let Ok(token) = cluster.read_index(member) {
                checker.read_floor.insert(token, floor);
            }
        }
        cluster.tick();
        checker.check_prefixes(&cluster, seed);
    }
    cluster.net_mut().heal();
    cluster.net_mut().set_faults(Faults::default());
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    commit(&mut cluster, b"final".to_vec());
    converge(&mut cluster, 300);
    checker.check_prefixes(&cluster, seed);
    (cluster, checker, crashes)
}

fn run_schedule(seed: u64) -> Tally {
    let (cluster, checker, crashes) = play(seed);
    assert_same_state(&cluster);
    checker.check_completions(&cluster, seed);
    checker.check_reads(&cluster, seed);
    assert!(
        cluster.violations().is_empty(),
        "seed {seed}: {:?}",
        cluster.violations()
    );
    let count = |wanted: fn(&Result<crate::Applied, RaftError>) -> bool| {
        cluster.completions().values().filter(|r| wanted(r)).count() as u64
    };
    Tally {
        acknowledged: count(|r| r.is_ok()),
        dropped: count(|r| matches!(r, Err(RaftError::Dropped))),
        unknown: count(|r| matches!(r, Err(RaftError::Unknown))),
        reads: cluster.reads().values().filter(|r| r.is_ok()).count() as u64,
        snapshots: cluster.net().stats().snapshots,
        crashes,
        crashes_before_persist: cluster.crashes_before_persist(),
        messages_lost: cluster.net().stats().dropped,
    }
}

fn random_faults(rng: &mut SimRng) -> Faults {
    Faults {
        drop_percent: rng.below(15) as u32,
        duplicate_percent: rng.below(10) as u32,
        max_delay_ticks: rng.below(4),
        reorder: rng.chance(50),
        crash_before_persist_per_mille: rng.below(3) as u32,
    }
}

/// At most one fault event per tick, each rare enough that the group
/// spends most of its time able to make progress. Returns whether a
/// member crashed.
fn disturb(cluster: &mut SimCluster<Register>, rng: &mut SimRng) -> bool {
    let ids = cluster.ids();
    let pick = |rng: &mut SimRng, among: &[u64]| {
        among.get(rng.below(among.len() as u64) as usize).copied()
    };
    match rng.below(100) {
        0..=2 => {
            if let Some(id) = pick(rng, &cluster.up_ids()) {
                cluster.crash(id);
                return true;
            }
        }
        3..=7 => {
            let up = cluster.up_ids();
            let down: Vec<u64> = ids.iter().copied().filter(|id| !up.contains(id)).collect();
            if let Some(id) = pick(rng, &down) {
                cluster.restart(id).unwrap();
            }
        }
        8..=10 => {
            let mut shuffled = ids.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let split = 1 + rng.below(shuffled.len() as u64 - 1) as usize;
            let (left, right) = shuffled.split_at(split);
            cluster.net_mut().heal();
            cluster.net_mut().partition(&[left, right]);
        }
        11..=15 => cluster.net_mut().heal(),
        16..=17 => {
            let faults = random_faults(rng);
            cluster.net_mut().set_faults(faults);
        }
        _ => {}
    }
    false
}

/// Schedules with membership churn on top of the faults: members join
/// (from an empty store, through a snapshot) and leave, one change at a
/// time, the group staying between 3 and 5 voters. 30 % of the plain
/// schedules' seed count (60 by default): each one is a longer story.
#[test]
fn safety_holds_while_members_join_and_leave() {
    let seeds = seeds() * 3 / 10;
    let mut changes = 0;
    for seed in 0..seeds {
        changes += churn(seed);
    }
    eprintln!("{seeds} churn schedules: {changes} membership changes applied");
    assert!(changes >= seeds, "too few membership changes: {changes}");
}

/// Runs one churn schedule; returns how many membership changes applied.
fn churn(seed: u64) -> u64 {
    let mut rng = SimRng::new(seed ^ 0xc4a2_9e00);
    let mut cluster = cluster_with(3, seed, compacting_config(seed));
    cluster.net_mut().set_faults(random_faults(&mut rng));
    let mut checker = Checker::default();
    let mut next_id = 4;
    let mut changes = Vec::new();
    for step in 0..SCHEDULE_TICKS {
        disturb(&mut cluster, &mut rng);
        if rng.chance(4) {
            changes.extend(change_membership(&mut cluster, &mut rng, &mut next_id));
        }
        let members = cluster.ids();
        if let Some(member) = members.get(rng.below(members.len() as u64) as usize)
            && rng.chance(50)
        {
            let data = payload(step);
            if let Ok(token) = cluster.propose(*member, data.clone()) {
                checker.proposed.insert(token, data);
            }
        }
        cluster.tick();
        checker.check_prefixes(&cluster, seed);
    }
    cluster.net_mut().heal();
    cluster.net_mut().set_faults(Faults::default());
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    commit(&mut cluster, b"final".to_vec());
    converge_voters(&mut cluster, seed);
    checker.check_prefixes(&cluster, seed);
    checker.check_completions(&cluster, seed);
    assert!(
        cluster.violations().is_empty(),
        "seed {seed}: {:?}",
        cluster.violations()
    );
    let applied = |token: &Token| matches!(cluster.completions().get(token), Some(Ok(_)));
    changes.iter().filter(|token| applied(token)).count() as u64
}

/// Proposes one change on the leader, if there is one: add a new member
/// while there are fewer than 5 voters (sometimes), else remove a follower
/// while there are more than 3.
fn change_membership(
    cluster: &mut SimCluster<Register>,
    rng: &mut SimRng,
    next_id: &mut u64,
) -> Option<Token> {
    let leader = cluster.leader()?;
    let voters = cluster.replica(leader)?.voters();
    if voters.len() < 5 && (voters.len() == 3 || rng.chance(50)) {
        let id = *next_id;
        *next_id += 1;
        cluster.start_joining(id).ok()?;
        return cluster.propose_change(leader, AddVoter(id)).ok();
    }
    let followers: Vec<u64> = voters.into_iter().filter(|id| *id != leader).collect();
    let leaving = *followers.get(rng.below(followers.len() as u64) as usize)?;
    cluster.propose_change(leader, RemoveVoter(leaving)).ok()
}

/// Runs until every voter (in the leader's view) applied the leader's
/// commit index, then checks they hold the same state. Members outside
/// the configuration (removed without knowing, or never added) are not
/// waited for.
fn converge_voters(cluster: &mut SimCluster<Register>, seed: u64) {
    let voters = |c: &SimCluster<Register>| {
        let leader = c.leader()?;
        let replica = c.replica(leader)?;
        Some((replica.voters(), replica.commit_index()))
    };
    let done = cluster.run_until(300, |c| {
        voters(c).is_some_and(|(ids, commit)| {
            (ids.iter()).all(|id| c.replica(*id).is_some_and(|r| r.applied_index() >= commit))
        })
    });
    assert!(
        done,
        "seed {seed}: voters did not converge:\n{}",
        cluster.describe()
    );
    let (ids, _) = voters(cluster).unwrap();
    let hashes: Vec<u64> = (ids.iter())
        .map(|id| cluster.replica(*id).unwrap().state_machine().hash())
        .collect();
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "seed {seed}: voters {ids:?} differ:\n{}",
        cluster.describe()
    );
}

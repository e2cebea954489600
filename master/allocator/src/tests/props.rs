//! Invariants over random clusters: nothing over-committed, offers only of
//! what the role may use, never to someone who may not have them, nothing
//! left that an eligible framework could take, and stable on re-run.
use std::collections::{BTreeMap, BTreeSet};

use agora_model::{AgentId, FrameworkId, MonoTime, Ranges, Resources, Role, Scalar, Value};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use super::role;
use crate::{
    AgentView, Allocation, AllocatorConfig, ClusterSnapshot, FrameworkView, OfferFilter, allocate,
};

/// A small pool so that roles, reservations and filters collide often.
const ROLES: [&str; 4] = ["*", "a", "b", "c"];
const NAMES: [&str; 4] = ["cpus", "mem", "disk", "gpus"];
const MAX_AGENTS: usize = 6;
const MAX_FRAMEWORKS: usize = 6;
/// `now` for every generated cycle; filters expire around it.
const NOW: MonoTime = MonoTime(1_000);

/// One scalar entry: (name, role, amount, quarters of it still free).
type Entry = (usize, usize, u32, u32);

fn scalar(name: usize, amount: u32) -> Scalar {
    match NAMES[name] {
        "cpus" => Scalar::from_milli(i64::from(amount)),
        // Whole GPUs, and few of them.
        "gpus" => Scalar::from_units(i64::from(amount % 3)),
        _ => Scalar::from_units(i64::from(amount)),
    }
}

fn build_agent(
    i: usize,
    entries: Vec<Entry>,
    ports: Option<(usize, u64, bool)>,
    active: bool,
) -> AgentView {
    let (mut total, mut free) = (Resources::new(), Resources::new());
    for (name, r, amount, quarters) in entries {
        let all = scalar(name, amount);
        // GPUs stay whole: round the free part down to units.
        let part = if NAMES[name] == "gpus" {
            Scalar::from_units(all.milli() / 1000 * i64::from(quarters) / 4)
        } else {
            Scalar::from_milli(all.milli() * i64::from(quarters) / 4)
        };
        total.push(NAMES[name], role(ROLES[r]), Value::Scalar(all));
        free.push(NAMES[name], role(ROLES[r]), Value::Scalar(part));
    }
    if let Some((r, len, all_free)) = ports {
        let ports = Ranges::single(31_000, 31_000 + len);
        total.push("ports", role(ROLES[r]), Value::Ranges(ports.clone()));
        if all_free {
            free.push("ports", role(ROLES[r]), Value::Ranges(ports));
        }
    }
    AgentView {
        id: AgentId::new_unchecked(format!("agent-{i}")),
        total,
        free,
        active,
    }
}

fn arb_agent() -> impl Strategy<Value = (Vec<Entry>, Option<(usize, u64, bool)>, bool)> {
    (
        vec(
            (0..NAMES.len(), 0..ROLES.len(), 1..20_000u32, 0..=4u32),
            0..6,
        ),
        proptest::option::of((0..ROLES.len(), 0..50u64, any::<bool>())),
        proptest::bool::weighted(0.85),
    )
}

/// (agent, huge?, role, cpus milli, mem, expires).
type FilterParts = (usize, bool, usize, u32, u32, u64);

/// A filter that refuses anything an agent could ever offer.
fn huge() -> Resources {
    let mut r = Resources::new();
    for name in NAMES {
        for role_name in ROLES {
            r.push(
                name,
                role(role_name),
                Value::Scalar(Scalar::from_units(1_000_000)),
            );
        }
    }
    for role_name in ROLES {
        r.push(
            "ports",
            role(role_name),
            Value::Ranges(Ranges::single(0, 65_535)),
        );
    }
    r
}

type FrameworkParts = (
    Vec<usize>,
    BTreeSet<usize>,
    bool,
    bool,
    Vec<(usize, u32, u32)>,
    Vec<FilterParts>,
);

fn arb_framework() -> impl Strategy<Value = FrameworkParts> {
    (
        vec(0..ROLES.len(), 1..3),
        btree_set(0..ROLES.len(), 0..2),
        proptest::bool::weighted(0.85),
        any::<bool>(),
        vec((0..ROLES.len(), 0..8_000u32, 0..8_000u32), 0..3),
        vec(
            (
                0..MAX_AGENTS,
                any::<bool>(),
                0..ROLES.len(),
                0..20_000u32,
                0..20_000u32,
                800..1_200u64,
            ),
            0..4,
        ),
    )
}

fn build_framework(i: usize, parts: FrameworkParts) -> FrameworkView {
    let (roles, suppressed, active, gpu_aware, allocated, filters) = parts;
    let mut held: BTreeMap<Role, Resources> = BTreeMap::new();
    for (r, cpus, mem) in allocated {
        let res = Resources::new()
            .with_scalar("cpus", Scalar::from_milli(i64::from(cpus)))
            .with_scalar("mem", Scalar::from_units(i64::from(mem)));
        held.entry(role(ROLES[r])).or_default().add(&res);
    }
    let filters = filters
        .into_iter()
        .map(|(agent, is_huge, r, cpus, mem, expires)| {
            let resources = if is_huge {
                huge()
            } else {
                let mut res = Resources::new();
                res.push(
                    "cpus",
                    role(ROLES[r]),
                    Value::Scalar(Scalar::from_milli(i64::from(cpus))),
                );
                res.push(
                    "mem",
                    Role::star(),
                    Value::Scalar(Scalar::from_units(i64::from(mem))),
                );
                res
            };
            OfferFilter {
                agent: AgentId::new_unchecked(format!("agent-{agent}")),
                resources,
                expires: MonoTime(expires),
            }
        })
        .collect();
    FrameworkView {
        id: FrameworkId::new_unchecked(format!("fw-{i}")),
        roles: roles.into_iter().map(|r| role(ROLES[r])).collect(),
        suppressed_roles: suppressed.into_iter().map(|r| role(ROLES[r])).collect(),
        active,
        gpu_aware,
        allocated: held,
        filters,
    }
}

fn arb_cycle() -> impl Strategy<Value = (ClusterSnapshot, AllocatorConfig, u64)> {
    (
        vec(arb_agent(), 0..=MAX_AGENTS),
        vec(arb_framework(), 0..=MAX_FRAMEWORKS),
        btree_map(
            0..ROLES.len(),
            prop_oneof![Just(0.5), Just(1.0), Just(2.0), Just(3.0), Just(0.0)],
            0..4,
        ),
        any::<bool>(),
        btree_set(prop_oneof![Just("gpus"), Just("mem")], 0..2),
        any::<u64>(),
    )
        .prop_map(
            |(agents, frameworks, weights, filter_gpus, excluded, seed)| {
                let snapshot = ClusterSnapshot {
                    agents: agents
                        .into_iter()
                        .enumerate()
                        .map(|(i, (e, p, a))| build_agent(i, e, p, a))
                        .collect(),
                    role_weights: weights
                        .into_iter()
                        .map(|(r, w)| (role(ROLES[r]), w))
                        .collect(),
                    frameworks: frameworks
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| build_framework(i, f))
                        .collect(),
                };
                let config = AllocatorConfig {
                    filter_gpu_resources: filter_gpus,
                    fair_sharing_excluded: excluded.into_iter().map(String::from).collect(),
                };
                (snapshot, config, seed)
            },
        )
}

/// May `fw` be offered `offer` on `agent` for `role` at all?
fn eligible(
    fw: &FrameworkView,
    role: &Role,
    agent: &AgentView,
    offer: &Resources,
    config: &AllocatorConfig,
) -> bool {
    fw.active
        && fw.roles.contains(role)
        && !fw.suppressed_roles.contains(role)
        && !(config.filter_gpu_resources && !agent.total.gpus().is_zero() && !fw.gpu_aware)
        && !fw
            .filters
            .iter()
            .any(|f| f.agent == agent.id && NOW < f.expires && f.resources.contains(offer))
}

fn check_plan(
    snapshot: &ClusterSnapshot,
    config: &AllocatorConfig,
    plan: &[Allocation],
) -> Result<(), TestCaseError> {
    let agents: BTreeMap<&AgentId, &AgentView> =
        snapshot.agents.iter().map(|a| (&a.id, a)).collect();
    let frameworks: BTreeMap<&FrameworkId, &FrameworkView> =
        snapshot.frameworks.iter().map(|f| (&f.id, f)).collect();
    let mut remaining: BTreeMap<&AgentId, Resources> =
        agents.iter().map(|(id, a)| (*id, a.free.clone())).collect();
    let mut offered: BTreeMap<&AgentId, Resources> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for a in plan {
        prop_assert!(
            seen.insert((&a.framework, &a.role, &a.agent)),
            "(framework, role, agent) twice: {a:?}"
        );
        prop_assert!(
            !a.resources.is_empty() && a.resources.is_allocatable(),
            "{a:?}"
        );
        prop_assert!(
            a.resources
                .iter()
                .all(|e| e.role.is_star() || *e.role == a.role),
            "foreign reservation: {a:?}"
        );
        let (Some(agent), Some(fw)) = (agents.get(&a.agent), frameworks.get(&a.framework)) else {
            return Err(TestCaseError::fail(format!(
                "unknown agent or framework: {a:?}"
            )));
        };
        prop_assert!(agent.active, "inactive agent: {a:?}");
        prop_assert!(
            eligible(fw, &a.role, agent, &a.resources, config),
            "ineligible: {a:?}"
        );
        let rem = remaining.entry(&a.agent).or_default();
        prop_assert_eq!(
            &a.resources,
            &rem.allocatable_to(&a.role),
            "not everything the role may use"
        );
        rem.subtract(&a.resources);
        offered.entry(&a.agent).or_default().add(&a.resources);
    }
    for (id, sum) in &offered {
        prop_assert!(
            agents[id].free.contains(sum),
            "agent {id} over-committed: {sum} > {}",
            agents[id].free
        );
    }
    // Maximality: whatever is left, no eligible framework could have taken.
    for agent in snapshot.agents.iter().filter(|a| a.active) {
        let rem = &remaining[&agent.id];
        for fw in &snapshot.frameworks {
            for r in &fw.roles {
                let offer = rem.allocatable_to(r);
                prop_assert!(
                    !offer.is_allocatable() || !eligible(fw, r, agent, &offer, config),
                    "{} could still take {offer} on {} for {r}",
                    fw.id,
                    agent.id
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn plans_respect_every_invariant((snapshot, config, seed) in arb_cycle()) {
        let plan = allocate(&snapshot, &config, NOW, seed);
        check_plan(&snapshot, &config, &plan)?;
    }

    #[test]
    fn plans_are_stable_on_rerun_and_input_order((snapshot, config, seed) in arb_cycle()) {
        let plan = allocate(&snapshot, &config, NOW, seed);
        prop_assert_eq!(&allocate(&snapshot, &config, NOW, seed), &plan);
        let mut reordered = snapshot.clone();
        reordered.agents.reverse();
        reordered.frameworks.reverse();
        prop_assert_eq!(&allocate(&reordered, &config, NOW, seed), &plan);
    }
}

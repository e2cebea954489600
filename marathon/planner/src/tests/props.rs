//! Invariants over random clusters and deployments: UNIQUE never violated,
//! MAX_PER never exceeded, GROUP_BY spread within 1 whenever capacity
//! allows, rolling restarts between the healthy floor and the capacity
//! ceiling and converging, and scale-only changes never restarting.
use std::collections::BTreeMap;

use agora_model::{MonoTime, Scalar};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{DeployHarness, PlacementHarness, app, constraint};
use crate::{
    Action, App, DeploymentAction, DockerContainer, Field, StepInput, StepStatus, UpgradeStrategy,
    Version, plan, step,
};

/// (rack, cpus, mem) per agent; small so offers run out often.
type AgentSpec = (u8, u8, u16);

fn arb_agents() -> impl Strategy<Value = Vec<AgentSpec>> {
    vec((0..4u8, 0..6u8, 0..4096u16), 1..10)
}

/// Rounds: which agents offer (bitmask) and how many instances wait.
fn arb_rounds() -> impl Strategy<Value = Vec<(u16, u8)>> {
    vec((any::<u16>(), 0..12u8), 1..6)
}

fn harness(constraints: &[&[&str]], agents: &[AgentSpec], max_per_offer: u32) -> PlacementHarness {
    let mut a = app("/p");
    a.resources.cpus = Scalar::from_units(1);
    a.resources.mem = Scalar::from_units(256);
    a.constraints = constraints.iter().map(|c| constraint(c)).collect();
    let mut h = PlacementHarness::new(a);
    h.max_per_offer = max_per_offer;
    for (i, (rack, cpus, mem)) in agents.iter().enumerate() {
        // Two agents share each hostname, so hostname UNIQUE bites.
        h.agent(
            &format!("host-{}", i / 2),
            &format!("rack_id:r{rack}"),
            &format!("cpus:{cpus};mem:{mem}"),
        );
    }
    h
}

fn offered(mask: u16, n: usize) -> Vec<usize> {
    (0..n).filter(|i| mask & (1 << i) != 0).collect()
}

fn rack() -> Field {
    Field::Attribute("rack_id".into())
}

proptest! {
    #[test]
    fn unique_is_never_violated(agents in arb_agents(), rounds in arb_rounds(), cap in 1..6u32) {
        for field in ["hostname", "rack_id"] {
            let mut h = harness(&[&[field, "UNIQUE"]], &agents, cap);
            for (mask, n) in &rounds {
                h.round_on(&offered(*mask, agents.len()), u32::from(*n));
                let f = if field == "hostname" { Field::Hostname } else { rack() };
                prop_assert!(h.spread(&f).values().all(|c| *c <= 1), "{:?}", h.spread(&f));
            }
        }
    }

    #[test]
    fn max_per_is_never_exceeded(agents in arb_agents(), rounds in arb_rounds(), max in 1..4u32) {
        let max_text = max.to_string();
        let mut h = harness(&[&["rack_id", "MAX_PER", &max_text]], &agents, 5);
        for (mask, n) in &rounds {
            h.round_on(&offered(*mask, agents.len()), u32::from(*n));
            prop_assert!(h.spread(&rack()).values().all(|c| *c <= max));
        }
    }

    #[test]
    fn placements_never_overcommit_an_offer(agents in arb_agents(), rounds in arb_rounds()) {
        let mut h = harness(&[], &agents, 20);
        for (mask, n) in &rounds {
            let which = offered(*mask, agents.len());
            let before: Vec<_> = which.iter().map(|&i| h.agents[i].free.clone()).collect();
            let plan = h.round_on(&which, u32::from(*n));
            prop_assert!(plan.placements.len() <= usize::from(*n));
            for (outcome, free) in plan.outcomes.iter().zip(&before) {
                let placed = i64::from(outcome.launched);
                prop_assert!(placed * 1000 <= free.cpus().milli());
                prop_assert!(placed * 256_000 <= free.mem().milli());
            }
        }
    }

    #[test]
    fn group_by_spread_stays_within_one_when_capacity_allows(
        racks in 1..6u8,
        per_rack in 1..3u8,
        n in 0..30u32,
        partial in vec(any::<u16>(), 0..4),
        with_value in any::<bool>(),
    ) {
        // Every agent can hold all n; partial rounds offer only some agents,
        // the last round offers all of them.
        let agents: Vec<AgentSpec> = (0..racks)
            .flat_map(|r| (0..per_rack).map(move |_| (r, 32, 32 * 256)))
            .collect();
        let racks_text = racks.to_string();
        let c: &[&str] = if with_value {
            &["rack_id", "GROUP_BY", &racks_text]
        } else {
            &["rack_id", "GROUP_BY"]
        };
        let mut h = harness(&[c], &agents, 64);
        for mask in partial {
            let left = n - u32::try_from(h.placed.len()).unwrap();
            h.round_on(&offered(mask, agents.len()), left);
        }
        let left = n - u32::try_from(h.placed.len()).unwrap();
        h.round(left);
        prop_assert_eq!(u32::try_from(h.placed.len()).unwrap(), n);
        let spread = h.spread(&rack());
        let counts: Vec<u32> = (0..racks).map(|r| spread.get(&format!("r{r}")).copied().unwrap_or(0)).collect();
        let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
        prop_assert!(max - min <= 1, "{:?}", counts);
    }

    #[test]
    fn rolling_restart_stays_between_floor_and_ceiling_and_converges(
        n in 0..12u32,
        min_health in 0..=10i64,
        over in 0..=10i64,
        ticks in vec(0..4usize, 1..40),
        old_unhealthy in 0..3usize,
        pre_new in 0..4u32,
        oldest_first in any::<bool>(),
    ) {
        let strategy = UpgradeStrategy {
            minimum_health_capacity: Scalar::from_milli(min_health * 100),
            maximum_over_capacity: Scalar::from_milli(over * 100),
        };
        let mut target = app("/p");
        target.instances = n;
        target.upgrade_strategy = strategy;
        if oldest_first {
            target.kill_selection = crate::KillSelection::OldestFirst;
        }
        target.version_info.last_config_change_at = Version(2);
        let floor = strategy.min_healthy(n);
        let max = strategy.max_capacity(n);
        let ceiling = if floor == max { max + 1 } else { max };
        let mut h = DeployHarness::running(n, 1);
        for i in h.instances.iter_mut().take(old_unhealthy) {
            i.healthy = false;
        }
        // New-version instances left by an earlier, cancelled deployment:
        // one may still be starting.
        h.apply(&[Action::Launch { app: target.id.clone(), count: pre_new, config_version: Version(2) }]);
        h.advance(usize::try_from(2 * pre_new).unwrap().saturating_sub(1));
        let action = DeploymentAction::RestartApplication(target.id.clone());
        // The random ticks, then steady progress until done.
        let schedule = ticks.into_iter().chain(std::iter::repeat(1)).take(2_000);
        let mut done = false;
        for advance in schedule {
            let healthy_before = h.healthy();
            let out = step(&StepInput {
                action: &action, app: &target, instances: &h.instances,
                now: MonoTime(0), last_progress: MonoTime(0),
            });
            let kills: Vec<Action> = out.actions.iter().filter(|a| matches!(a, Action::Kill { .. })).cloned().collect();
            h.apply(&kills);
            prop_assert!(h.healthy() >= healthy_before.min(floor), "healthy {} < floor {}", h.healthy(), floor);
            let launched = out.actions.iter().any(|a| matches!(a, Action::Launch { .. }));
            let launches: Vec<Action> = out.actions.iter().filter(|a| matches!(a, Action::Launch { .. })).cloned().collect();
            h.apply(&launches);
            if launched {
                prop_assert!(h.active() <= ceiling, "active {} > ceiling {}", h.active(), ceiling);
            }
            if out.status == StepStatus::Done {
                done = true;
                break;
            }
            h.advance(advance);
        }
        prop_assert!(done, "did not converge");
        prop_assert_eq!(h.of_version(1), 0);
        prop_assert_eq!(h.of_version(2), n);
    }

    #[test]
    fn scale_only_changes_never_restart_or_overkill(
        from in 0..10u32,
        to in 0..10u32,
        running in 0..12u32,
        tag in "[a-z0-9]{1,6}",
    ) {
        let mut current = app("/p");
        current.docker = Some(DockerContainer { image: format!("img:{tag}"), ..Default::default() });
        current.instances = from;
        let mut target = current.clone();
        target.instances = to;
        target.version = Version(5);
        target.version_info.last_scaling_at = Version(5);
        let apps = |a: &App| BTreeMap::from([(a.id.clone(), a.clone())]);
        let p = plan(&apps(&current), &apps(&target)).unwrap();
        for s in &p.steps {
            for a in &s.actions {
                prop_assert!(!matches!(a, DeploymentAction::RestartApplication(_)));
            }
        }
        let h = DeployHarness::running(running, 0);
        let action = DeploymentAction::ScaleApplication { app: target.id.clone(), instances: to, kill: vec![], };
        let out = step(&StepInput {
            action: &action, app: &target, instances: &h.instances,
            now: MonoTime(0), last_progress: MonoTime(0),
        });
        let killed: usize = out.actions.iter().map(|a| match a {
            Action::Kill { instances, .. } => instances.len(),
            Action::Launch { .. } => 0,
        }).sum();
        prop_assert_eq!(killed, usize::try_from(running.saturating_sub(to)).unwrap());
    }
}

/// Random dependency graphs over 6 apps: edges only to lower indices give
/// a DAG; `back` adds one edge the other way, which may close a cycle.
fn arb_graph() -> impl Strategy<Value = (Vec<Vec<usize>>, Option<(usize, usize)>)> {
    (
        vec(vec(0..6usize, 0..3), 6),
        proptest::option::of((0..6usize, 0..6usize)),
    )
}

proptest! {
    #[test]
    fn plans_honour_dependencies_and_reject_cycles((deps, back) in arb_graph()) {
        let ids: Vec<String> = (0..6).map(|i| format!("/g/a{i}")).collect();
        let mut edges: Vec<Vec<usize>> = deps
            .iter()
            .enumerate()
            .map(|(i, d)| d.iter().copied().filter(|&j| j < i).collect())
            .collect();
        if let Some((from, to)) = back {
            edges[from].push(to);
        }
        let target: crate::Apps = (0..6)
            .map(|i| {
                let mut a = app(&ids[i]);
                a.dependencies = edges[i].iter().map(|&j| super::id(&ids[j])).collect();
                (a.id.clone(), a)
            })
            .collect();
        // Is there a cycle? Reachability from each node back to itself.
        let reaches = |from: usize, to: usize| {
            let mut seen = [false; 6];
            let mut stack = vec![from];
            while let Some(n) = stack.pop() {
                for &m in &edges[n] {
                    if m == to {
                        return true;
                    }
                    if !seen[m] {
                        seen[m] = true;
                        stack.push(m);
                    }
                }
            }
            false
        };
        let cyclic = (0..6).any(|i| reaches(i, i));
        match plan(&crate::Apps::new(), &target) {
            Err(crate::PlanError::Cycle(c)) => prop_assert!(cyclic && !c.is_empty()),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
            Ok(p) => {
                prop_assert!(!cyclic);
                let step_of = |id: &str| {
                    p.steps.iter().position(|s| {
                        s.actions.iter().any(|a| {
                            matches!(a, DeploymentAction::ScaleApplication { .. }) && a.app().to_string() == id
                        })
                    })
                };
                for i in 0..6 {
                    for &j in &edges[i] {
                        prop_assert!(step_of(&ids[j]) < step_of(&ids[i]), "{} before {}", ids[j], ids[i]);
                    }
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn counters_match_a_recount_after_any_adds_and_removes(
        ops in vec((any::<bool>(), 0..5u8), 0..80),
    ) {
        let mut c = crate::FieldCounter::default();
        let mut naive: BTreeMap<String, u32> = BTreeMap::new();
        for (add, v) in ops {
            let v = format!("v{v}");
            if add {
                c.add(&v);
                *naive.entry(v).or_insert(0) += 1;
            } else {
                c.remove(&v);
                if let Some(n) = naive.get_mut(&v) {
                    *n -= 1;
                    if *n == 0 {
                        naive.remove(&v);
                    }
                }
            }
            let got: BTreeMap<String, u32> = c.iter().map(|(k, n)| (k.to_string(), n)).collect();
            prop_assert_eq!(&got, &naive);
            prop_assert_eq!(c.placed(), naive.values().sum::<u32>());
            prop_assert_eq!(c.used_values(), u32::try_from(naive.len()).unwrap());
            for k in 0..4 {
                let above = u32::try_from(naive.values().filter(|n| **n > k).count()).unwrap();
                prop_assert_eq!(c.values_above(k), above);
            }
        }
    }

    #[test]
    fn scale_down_never_widens_the_group_by_spread(
        racks in vec(0..4u8, 0..16),
        k in 0..20usize,
        youngest in any::<bool>(),
    ) {
        let instances: Vec<_> = racks
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let n = u32::try_from(i).unwrap();
                super::instance(n, 1, super::facts("h", &format!("rack_id:r{r}")))
            })
            .collect();
        let spread = |alive: &[&crate::InstanceView]| {
            let mut by: BTreeMap<String, u32> = (0..4).map(|r| (format!("r{r}"), 0)).collect();
            for i in alive {
                if let Some(v) = i.agent.value(&rack()) {
                    *by.get_mut(v).unwrap() += 1;
                }
            }
            let used: Vec<u32> = by.into_values().collect();
            used.iter().max().unwrap() - used.iter().min().unwrap()
        };
        let selection = if youngest { crate::KillSelection::YoungestFirst } else { crate::KillSelection::OldestFirst };
        let gb = [constraint(&["rack_id", "GROUP_BY"])];
        let kill = crate::select_to_kill(&instances, k, &gb, selection);
        prop_assert_eq!(kill.len(), k.min(instances.len()));
        let before: Vec<&crate::InstanceView> = instances.iter().collect();
        let after: Vec<&crate::InstanceView> = instances.iter().filter(|i| !kill.contains(&i.id)).collect();
        prop_assert!(spread(&after) <= spread(&before).max(1), "{} > {}", spread(&after), spread(&before));
        // The survivors' largest group is as small as any choice could make it.
        let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
        for r in &racks {
            *counts.entry(*r).or_insert(0) += 1;
        }
        let mut water: Vec<usize> = counts.into_values().collect();
        for _ in 0..k.min(instances.len()) {
            if let Some(m) = water.iter_mut().max() {
                *m -= 1;
            }
        }
        let best = water.into_iter().max().unwrap_or(0);
        let mut after_counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in &after {
            if let Some(v) = i.agent.value(&rack()) {
                *after_counts.entry(v.to_string()).or_insert(0) += 1;
            }
        }
        prop_assert_eq!(after_counts.into_values().max().unwrap_or(0), best);
    }
}

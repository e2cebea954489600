//! Building a [`ClusterSnapshot`] from running tallies: what each agent has
//! in use and what each framework holds per role, kept by the caller as
//! tasks and offers come and go. This is what the master does before every
//! allocation cycle: the cost is O(agents + frameworks), with no pass over
//! tasks, offers or (agent, framework) pairs. [`crate::build_snapshot`], which
//! sums a usage list, stays for callers that have no tallies and serves as
//! the reference this builder is tested against.
use std::collections::BTreeMap;

use agora_model::{AgentId, Resources, Role};

use crate::snapshot::framework_view;
use crate::{AgentView, ClusterSnapshot, FrameworkInput, FrameworkView};

/// An active agent with what is in use on it.
#[derive(Debug, Clone, Copy)]
pub struct AgentTallyInput<'a> {
    /// The agent's id.
    pub id: &'a AgentId,
    /// Everything the agent advertises.
    pub total: &'a Resources,
    /// Held by the agent's live tasks.
    pub used: &'a Resources,
    /// Held by the agent's outstanding offers.
    pub offered: &'a Resources,
}

/// A framework with what it holds per role on the active agents.
#[derive(Debug, Clone)]
pub struct FrameworkTallyInput<'a> {
    /// The framework itself.
    pub framework: FrameworkInput<'a>,
    /// Its tasks and outstanding offers on the [`AgentTallyInput`] agents,
    /// per role. Roles holding nothing may be left out.
    pub allocated: BTreeMap<Role, Resources>,
}

/// Builds the allocator's snapshot from tallies: per agent
/// `free = total - used - offered`, per framework its `allocated` as given.
/// Agents keep the order they are given in (the master gives them in id
/// order, which lets `allocate` skip sorting them); a repeated agent or
/// framework id keeps its first entry, as in [`crate::build_snapshot`].
pub fn build_snapshot_from_tallies<'a>(
    agents: impl IntoIterator<Item = AgentTallyInput<'a>>,
    frameworks: impl IntoIterator<Item = FrameworkTallyInput<'a>>,
    role_weights: BTreeMap<Role, f64>,
) -> ClusterSnapshot {
    let agents = agents.into_iter();
    let mut views: Vec<AgentView> = Vec::with_capacity(agents.size_hint().0);
    let mut last: Option<&AgentId> = None;
    let mut seen_out_of_order = false;
    for a in agents {
        // Ids arrive sorted from the master; only input out of order needs
        // the duplicate check below.
        seen_out_of_order |= last.is_some_and(|prev| prev >= a.id);
        last = Some(a.id);
        views.push(agent_view(a));
    }
    if seen_out_of_order {
        dedup_keeping_first(&mut views);
    }

    let mut fw_views: Vec<FrameworkView> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in frameworks {
        if !seen.insert(f.framework.id) {
            continue;
        }
        let mut view = framework_view(f.framework);
        view.allocated = f.allocated;
        fw_views.push(view);
    }

    ClusterSnapshot {
        agents: views,
        role_weights,
        frameworks: fw_views,
    }
}

fn agent_view(a: AgentTallyInput<'_>) -> AgentView {
    let mut free = a.total.clone();
    // Most agents of a busy cluster hold something, but idle ones skip both
    // subtractions.
    if !a.used.is_empty() {
        free.subtract(a.used);
    }
    if !a.offered.is_empty() {
        free.subtract(a.offered);
    }
    AgentView {
        id: a.id.clone(),
        total: a.total.clone(),
        free,
        active: true,
    }
}

/// Drops every view whose id appeared earlier, keeping the order.
fn dedup_keeping_first(views: &mut Vec<AgentView>) {
    let mut seen = std::collections::BTreeSet::new();
    views.retain(|v| seen.insert(v.id.clone()));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use agora_model::{FrameworkId, Ranges, Scalar};
    use proptest::prelude::*;

    use super::*;
    use crate::{AgentInput, UsageInput, build_snapshot};

    proptest! {
        /// The tally builder gives the same snapshot as summing the usage
        /// list, when the tallies are the sums of that list.
        #[test]
        fn tallies_give_the_snapshot_of_the_usage_list(
            n_agents in 0usize..6,
            usage in proptest::collection::vec((0usize..6, 0usize..3, 0usize..2, 0i64..3_000, any::<bool>(), any::<bool>()), 0..30),
        ) {
            let total = Resources::parse("cpus:8;mem:4096;ports:[100-110];cpus(r1):1").unwrap();
            let agent_ids: Vec<AgentId> = (0..n_agents).map(|i| AgentId::new_unchecked(format!("agent-{i}"))).collect();
            let fw_ids: Vec<FrameworkId> = (0..3).map(|i| FrameworkId::new_unchecked(format!("fw-{i}"))).collect();
            let roles = [Role::parse("r0").unwrap(), Role::parse("r1").unwrap()];
            let suppressed = BTreeSet::new();
            // (agent, framework, role, resources, is an offer)
            let used: Vec<(usize, usize, usize, Resources, bool)> = usage
                .into_iter()
                .filter(|(a, ..)| *a < n_agents)
                .map(|(a, f, r, cpus, port, offer)| {
                    let mut res = Resources::new().with_scalar("cpus", Scalar::from_milli(cpus));
                    if port {
                        res = res.with_ranges("ports", Ranges::single(100 + a as u64, 100 + a as u64));
                    }
                    (a, f, r, res, offer)
                })
                .collect();
            let fw_input = |id| FrameworkInput {
                id,
                roles: &roles,
                suppressed_roles: &suppressed,
                active: true,
                gpu_aware: false,
                filters: Vec::new(),
            };
            let want = build_snapshot(
                agent_ids.iter().map(|id| AgentInput { id, total: &total }),
                fw_ids.iter().map(fw_input),
                used.iter().map(|(a, f, r, res, _)| UsageInput {
                    agent: &agent_ids[*a],
                    framework: &fw_ids[*f],
                    role: &roles[*r],
                    resources: res,
                }),
                BTreeMap::new(),
            );
            let mut agent_used = vec![(Resources::new(), Resources::new()); n_agents];
            let mut fw_held = vec![BTreeMap::<Role, Resources>::new(); fw_ids.len()];
            for (a, f, r, res, offer) in &used {
                let (u, o) = &mut agent_used[*a];
                if *offer { o.add(res) } else { u.add(res) }
                fw_held[*f].entry(roles[*r].clone()).or_default().add(res);
            }
            let got = build_snapshot_from_tallies(
                agent_ids.iter().zip(&agent_used).map(|(id, (used, offered))| AgentTallyInput {
                    id,
                    total: &total,
                    used,
                    offered,
                }),
                fw_ids.iter().zip(fw_held).map(|(id, allocated)| FrameworkTallyInput {
                    framework: fw_input(id),
                    allocated,
                }),
                BTreeMap::new(),
            );
            prop_assert_eq!(got.agents, want.agents);
            prop_assert_eq!(got.frameworks, want.frameworks);
        }
    }

    #[test]
    fn a_repeated_agent_keeps_its_first_entry() {
        let total = Resources::parse("cpus:8;mem:4096").unwrap();
        let other = Resources::parse("cpus:1;mem:1").unwrap();
        let none = Resources::new();
        let (a, b) = (AgentId::new_unchecked("a"), AgentId::new_unchecked("b"));
        let input = |id, total| AgentTallyInput {
            id,
            total,
            used: &none,
            offered: &none,
        };
        let snap = build_snapshot_from_tallies(
            [input(&b, &total), input(&a, &total), input(&b, &other)],
            [],
            BTreeMap::new(),
        );
        let got: Vec<(&str, &Resources)> = snap
            .agents
            .iter()
            .map(|v| (v.id.as_str(), &v.total))
            .collect();
        assert_eq!(got, vec![("b", &total), ("a", &total)]);
    }
}

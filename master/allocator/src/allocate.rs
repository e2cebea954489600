//! The allocation cycle (mechanism; the policy is in `sorter.rs` and
//! `filters.rs`). Mesos `HierarchicalAllocatorProcess::__generateOffers`,
//! stage 2:
//!
//! 1. Active agents are put in id order, then shuffled by the seed (so no
//!    agent is always last); those without allocatable free resources are
//!    skipped when their turn comes.
//! 2. For each agent, roles in weighted-DRF order, and within a role its
//!    frameworks in DRF order: the first eligible framework gets everything
//!    on the agent its role may use (unreserved plus the role's
//!    reservations).
//! 3. What is left is other roles' reservations; those roles are served the
//!    same way.
//! 4. Every allocation is charged to its role and framework at once, so the
//!    next agent sees the new order; this is what makes DRF converge.
use std::borrow::Cow;
use std::collections::BTreeMap;

use agora_model::resources::{CPUS, GPUS, MEM, MIN_ALLOCATABLE_CPUS, MIN_ALLOCATABLE_MEM};
use agora_model::{AgentId, MonoTime, Resources, Role};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::filters::{ActiveFilters, FilterIndex, FilteredAgent};
use crate::sorter::{DEFAULT_WEIGHT, Quantities, Sorter};
use crate::{AgentView, Allocation, AllocatorConfig, ClusterSnapshot, FrameworkView};

/// Runs one cycle with fairness policy `S`.
pub(crate) fn run<S: Sorter>(
    snapshot: &ClusterSnapshot,
    config: &AllocatorConfig,
    now: MonoTime,
    seed: u64,
) -> Vec<Allocation> {
    let (total, mut agents) = survey_agents(snapshot, config);
    // Sorting first makes the plan depend on the seed, not on the order in
    // which the master happened to list its agents (e.g. from a HashMap).
    // The master lists agents from a map ordered by id, so check first: a
    // linear pass instead of ~130,000 comparisons of cold id strings.
    if !agents.is_sorted_by(|a, b| a.view.id <= b.view.id) {
        agents.sort_unstable_by(|a, b| a.view.id.cmp(&b.view.id));
    }
    agents.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut cycle = Cycle::<S>::new(snapshot, total, now);
    // Usually one offer per agent; reservations for several roles add more.
    let mut plan = Vec::with_capacity(agents.len());
    for agent in agents {
        cycle.allocate_agent(agent, &mut plan);
    }
    plan
}

/// An active agent and what the cycle needs to know about its total.
#[derive(Clone, Copy)]
struct AgentEntry<'a> {
    view: &'a AgentView,
    /// Has GPUs and GPU filtering is on: only GPU-aware frameworks qualify.
    gpu_only: bool,
}

/// The fairness total (sum of active agents' totals, minus excluded names)
/// and the active agents. One pass over every agent's `total`: at 10,000
/// agents the snapshot is far larger than the CPU caches, and each extra
/// pass over cold resource maps costs milliseconds.
fn survey_agents<'a>(
    snapshot: &'a ClusterSnapshot,
    config: &AllocatorConfig,
) -> (Quantities, Vec<AgentEntry<'a>>) {
    let mut total = Quantities::default();
    let mut agents = Vec::with_capacity(snapshot.agents.len());
    for view in snapshot.agents.iter().filter(|a| a.active) {
        let q = Quantities::of(&view.total);
        total.add(&q);
        agents.push(AgentEntry {
            view,
            gpu_only: config.filter_gpu_resources && !q.get(GPUS).is_zero(),
        });
    }
    (total.without(&config.fair_sharing_excluded), agents)
}

/// What one scan of an agent's free resources tells the loop.
struct FreeSummary {
    /// `Resources::is_allocatable` of everything free.
    allocatable: bool,
    /// `Resources::is_allocatable` of the unreserved part alone.
    unreserved_allocatable: bool,
    /// Nothing is reserved: whoever is served first takes it all.
    unreserved_only: bool,
    /// The fairness quantities of everything free.
    all: Quantities,
}

impl FreeSummary {
    /// Mirrors `Resources::is_allocatable` (same constants) for the whole
    /// and the unreserved part. `Resources` keeps unreserved cpus, mem, disk
    /// and gpus in fixed slots, so without reservations this reads a few
    /// fields of one cache line instead of walking entries.
    fn of(free: &Resources) -> FreeSummary {
        let all = Quantities::of(free);
        let unreserved_only = !free.has_reservations();
        let unreserved = if unreserved_only {
            all
        } else {
            Quantities::unreserved(free)
        };
        let allocatable = |q: &Quantities| {
            q.get(CPUS) >= MIN_ALLOCATABLE_CPUS || q.get(MEM) >= MIN_ALLOCATABLE_MEM
        };
        FreeSummary {
            allocatable: allocatable(&all),
            unreserved_allocatable: allocatable(&unreserved),
            unreserved_only,
            all,
        }
    }
}

/// An active framework that may receive offers.
struct Candidate<'a> {
    view: &'a FrameworkView,
    /// Filters unexpired at `now`, by agent.
    filters: ActiveFilters<'a>,
}

/// One role with at least one framework that may receive offers for it.
struct RoleState<'a, S> {
    role: &'a Role,
    /// The role's framework sorter; its clients index `members`.
    frameworks: S,
    /// Sorter client -> index into `Cycle::candidates`.
    members: Vec<usize>,
}

/// The mutable state of one cycle: who has what, in which order.
struct Cycle<'a, S> {
    candidates: Vec<Candidate<'a>>,
    /// In name order; the index is the role's client id in `role_sorter`.
    roles: Vec<RoleState<'a, S>>,
    /// Role -> index into `roles`, for serving leftover reservations.
    role_index: BTreeMap<&'a Role, usize>,
    role_sorter: S,
    /// Numbers the agents that active filters name.
    filtered: FilterIndex<'a>,
}

impl<'a, S: Sorter> Cycle<'a, S> {
    fn new(snapshot: &'a ClusterSnapshot, total: Quantities, now: MonoTime) -> Self {
        // Frameworks with equal shares are served in id order; rank them once
        // so the sorters compare integers, not strings.
        let frameworks = &snapshot.frameworks;
        let mut by_id: Vec<usize> = (0..frameworks.len()).collect();
        by_id.sort_by(|&a, &b| frameworks[a].id.cmp(&frameworks[b].id));
        let mut id_rank = vec![0; frameworks.len()];
        for (rank, &i) in by_id.iter().enumerate() {
            id_rank[i] = rank;
        }

        let mut filtered = FilterIndex::default();
        let mut candidates = Vec::new();
        let mut ranks = Vec::new();
        let mut members: BTreeMap<&'a Role, Vec<usize>> = BTreeMap::new();
        for (i, fw) in frameworks.iter().enumerate().filter(|(_, f)| f.active) {
            let c = candidates.len();
            for role in fw
                .roles
                .iter()
                .filter(|r| !fw.suppressed_roles.contains(*r))
            {
                let list = members.entry(role).or_default();
                // A role listed twice by one framework must not make it two clients.
                if list.last() != Some(&c) {
                    list.push(c);
                }
            }
            candidates.push(Candidate {
                view: fw,
                filters: filtered.active(&fw.filters, now),
            });
            ranks.push(id_rank[i]);
        }

        let role_index: BTreeMap<&'a Role, usize> =
            members.keys().enumerate().map(|(i, r)| (*r, i)).collect();
        // A role's share counts every framework's holdings in it, including
        // inactive and suppressed frameworks: their tasks still use the cluster.
        let mut role_held = vec![Quantities::default(); role_index.len()];
        for fw in frameworks {
            for (role, held) in &fw.allocated {
                if let Some(&r) = role_index.get(role) {
                    role_held[r].add(&Quantities::of(held));
                }
            }
        }

        let mut role_sorter = S::new(total);
        let mut roles = Vec::with_capacity(members.len());
        for (r, (role, members)) in members.into_iter().enumerate() {
            let weight = snapshot
                .role_weights
                .get(role)
                .copied()
                .unwrap_or(DEFAULT_WEIGHT);
            role_sorter.add(r, r, weight, role_held[r]);
            let mut sorter = S::new(total);
            for (client, &c) in members.iter().enumerate() {
                let held = candidates[c]
                    .view
                    .allocated
                    .get(role)
                    .map(Quantities::of)
                    .unwrap_or_default();
                sorter.add(client, ranks[c], DEFAULT_WEIGHT, held);
            }
            roles.push(RoleState {
                role,
                frameworks: sorter,
                members,
            });
        }

        Cycle {
            candidates,
            roles,
            role_index,
            role_sorter,
            filtered,
        }
    }

    /// Offers `agent`'s free resources, appending to `plan`.
    fn allocate_agent(&mut self, entry: AgentEntry<'_>, plan: &mut Vec<Allocation>) {
        let agent = entry.view;
        let free = FreeSummary::of(&agent.free);
        if !free.allocatable {
            return;
        }
        let mut turn = Turn {
            agent: &agent.id,
            filtered: self.filtered.agent(&agent.id),
            gpu_only: entry.gpu_only,
            remaining: Cow::Borrowed(&agent.free),
        };

        if free.unreserved_allocatable {
            // Every role could use this agent: serve the one furthest below
            // its fair share that has an eligible framework.
            let pick = self
                .role_sorter
                .sorted()
                .find_map(|r| self.pick_framework(r, &turn, None));
            let Some(pick) = pick else {
                // Nobody takes unreserved plus reserved resources here, and a
                // filter that blocks an offer also blocks any part of it, so
                // the reservations alone would find no taker either.
                return;
            };
            // Nothing reserved: the offer is the whole of `free`, already measured.
            let whole = free.unreserved_only.then_some(free.all);
            self.grant(pick, &mut turn, whole, plan);
        }

        if turn.remaining.is_empty() {
            return;
        }
        // What is left is reserved for other roles (plus unreserved crumbs
        // below the minimum). Their reservations are disjoint, so the order
        // does not change who gets what; DRF order keeps the plan readable.
        let mut left: Vec<usize> = turn
            .remaining
            .reservation_roles()
            .iter()
            .filter_map(|role| self.role_index.get(role).copied())
            .collect();
        left.sort_by(|&a, &b| self.role_sorter.compare(a, b));
        for r in left {
            let offer = offer_for(&turn.remaining, self.roles[r].role);
            if !offer.is_allocatable() {
                continue;
            }
            if let Some(pick) = self.pick_framework(r, &turn, Some(offer)) {
                self.grant(pick, &mut turn, None, plan);
            }
        }
    }

    /// The first framework of role `r`, in DRF order, that may be offered
    /// what its role may use of `turn.remaining`. That offer is built only
    /// when a filter has to be checked against it (or taken from `offer`).
    fn pick_framework(
        &self,
        r: usize,
        turn: &Turn<'_>,
        mut offer: Option<Resources>,
    ) -> Option<Pick> {
        let state = &self.roles[r];
        let client = state.frameworks.sorted().find(|&client| {
            let Some(fw) = state
                .members
                .get(client)
                .and_then(|&c| self.candidates.get(c))
            else {
                return false;
            };
            if turn.gpu_only && !fw.view.gpu_aware {
                return false;
            }
            let Some(refused) = turn.filtered.and_then(|agent| fw.filters.on(agent)) else {
                return true;
            };
            !refused.blocks(offer.get_or_insert_with(|| offer_for(&turn.remaining, state.role)))
        })?;
        Some(Pick {
            role: r,
            client,
            offer,
        })
    }

    /// Gives the picked framework everything on the agent its role may use,
    /// and charges it to both sorters. `whole` is set when that is known to
    /// be all of `turn.remaining`, with its quantities.
    fn grant(
        &mut self,
        pick: Pick,
        turn: &mut Turn<'_>,
        whole: Option<Quantities>,
        plan: &mut Vec<Allocation>,
    ) {
        let state = &mut self.roles[pick.role];
        let Some(fw) = state
            .members
            .get(pick.client)
            .and_then(|&c| self.candidates.get(c))
        else {
            return;
        };
        let role = state.role;
        let remaining = &mut turn.remaining;
        let resources = match pick.offer {
            Some(offer) => offer,
            // Nothing reserved for others: the offer is all of `remaining`;
            // move it if it is already a copy.
            None if whole.is_some() => std::mem::take(remaining).into_owned(),
            None => offer_for(remaining, role),
        };
        // An offer is a subset of the entries of `remaining`, so equal length
        // means it took everything: then do not copy the agent's free
        // resources just to subtract them.
        if resources.len() == remaining.len() {
            *remaining = Cow::Owned(Resources::new());
        } else if !remaining.is_empty() {
            remaining.to_mut().subtract(&resources);
        }
        let delta = whole.unwrap_or_else(|| Quantities::of(&resources));
        self.role_sorter.allocated(pick.role, &delta);
        state.frameworks.allocated(pick.client, &delta);
        plan.push(Allocation {
            framework: fw.view.id.clone(),
            role: role.clone(),
            agent: turn.agent.clone(),
            resources,
        });
    }
}

/// One agent's turn in the cycle.
struct Turn<'v> {
    agent: &'v AgentId,
    /// Set if some framework has an active filter on this agent.
    filtered: Option<FilteredAgent>,
    /// Only GPU-aware frameworks may be offered this agent.
    gpu_only: bool,
    /// Free resources not yet offered this cycle; borrowed from the snapshot
    /// until a partial offer forces a copy.
    remaining: Cow<'v, Resources>,
}

/// A framework chosen for an offer.
struct Pick {
    /// Index into `Cycle::roles`.
    role: usize,
    /// The framework's client id in that role's sorter.
    client: usize,
    /// The offer, if it had to be built to check filters.
    offer: Option<Resources>,
}

/// What a framework in `role` may be offered of `remaining`: unreserved plus
/// reserved for `role` (`Resources::allocatable_to`, which is a plain copy
/// when nothing else is reserved there, as on most agents).
fn offer_for(remaining: &Resources, role: &Role) -> Resources {
    remaining.allocatable_to(role)
}

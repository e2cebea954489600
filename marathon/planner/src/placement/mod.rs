//! Placement: which offers take how many of an app's waiting instances.
//!
//! `place(&PlacementInput, &[OfferView]) -> PlacementPlan`. Offers are
//! visited in the order given; each takes instances one at a time, and after
//! every placement all constraints are judged again against the counters
//! plus what this call placed so far, so several instances from one offer
//! still honour UNIQUE and MAX_PER (Marathon #1349, #3867, #4803). Resources
//! are subtracted per instance. An offer that stops short says why
//! ([`DeclineReason`]); the reasons add up to a [`RejectSummary`].
use std::collections::BTreeMap;

use agora_model::{AgentId, OfferId, Ranges, Resources, Role, Scalar};

use crate::app::{App, HostPort};
use crate::constraint::{AgentFacts, Constraint, Field, Operator};

mod counters;
mod reasons;

pub use counters::{FieldCounter, Inventory, PlacementCounters};
pub use reasons::{DeclineReason, FUNNEL, FunnelStage, ReasonKind, RejectSummary};

use counters::move_bucket;

/// Marathon's `--max_instances_per_offer` default.
pub const DEFAULT_MAX_INSTANCES_PER_OFFER: u32 = 5;

/// Everything placement looks at besides the offers, by reference: the
/// caller owns the counters and keeps them up to date.
#[derive(Debug, Clone, Copy)]
pub struct PlacementInput<'a> {
    /// The app (resources, ports, constraints, accepted roles).
    pub app: &'a App,
    /// How the app's counted instances spread over constraint values.
    pub counters: &'a PlacementCounters,
    /// The values the cluster's agents have, per field.
    pub inventory: &'a Inventory,
    /// Instances waiting for an offer.
    pub to_place: u32,
    /// At most this many instances per offer.
    pub max_per_offer: u32,
}

/// One offer as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferView {
    /// The offer.
    pub id: OfferId,
    /// Its agent.
    pub agent_id: AgentId,
    /// What constraints see of the agent.
    pub agent: AgentFacts,
    /// The offered resources.
    pub resources: Resources,
}

/// One instance to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Index of the offer in the `offers` given to [`place`].
    pub offer_index: usize,
    /// The offer.
    pub offer: OfferId,
    /// Its agent.
    pub agent_id: AgentId,
    /// Host ports for the instance, in the order of [`App::host_ports`].
    pub host_ports: Vec<u64>,
}

/// What happened to one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferOutcome {
    /// The offer.
    pub offer: OfferId,
    /// Instances placed on it.
    pub launched: u32,
    /// Why it could not take another instance (empty when nothing more was
    /// wanted or the per-offer cap was reached).
    pub reasons: Vec<DeclineReason>,
}

/// The result of [`place`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementPlan {
    /// Instances to launch, in placement order.
    pub placements: Vec<Placement>,
    /// Per offer, in the order given.
    pub outcomes: Vec<OfferOutcome>,
    /// The outcomes counted for `/v2/queue`.
    pub summary: RejectSummary,
}

/// Places up to `input.to_place` instances on `offers`.
pub fn place(input: &PlacementInput<'_>, offers: &[OfferView]) -> PlacementPlan {
    let mut state = Working::new(input);
    let mut plan = PlacementPlan::default();
    let roles = &input.app.accepted_resource_roles;
    let ports = input.app.host_ports();
    for (offer_index, offer) in offers.iter().enumerate() {
        let mut launched = 0;
        let mut reasons = Vec::new();
        // Offers looked at after everything was placed are not "unused",
        // and need no look at their resources.
        let wanted = state.remaining > 0;
        let mut budget = if wanted {
            Budget::of(&offer.resources, roles)
        } else {
            None
        };
        if wanted && budget.is_none() {
            reasons.push(DeclineReason::UnfulfilledRole);
        }
        while let Some(b) = budget.as_mut() {
            if state.remaining == 0 || launched >= input.max_per_offer {
                break;
            }
            reasons = state.constraint_reasons(input, &offer.agent);
            reasons.extend(b.shortfalls(input.app, &ports));
            if !reasons.is_empty() {
                break;
            }
            let host_ports = b.take(input.app, &ports);
            state.record(&offer.agent);
            launched += 1;
            plan.placements.push(Placement {
                offer_index,
                offer: offer.id.clone(),
                agent_id: offer.agent_id.clone(),
                host_ports,
            });
        }
        if wanted {
            plan.summary.record(launched > 0, &reasons);
        }
        plan.outcomes.push(OfferOutcome {
            offer: offer.id.clone(),
            launched,
            reasons,
        });
    }
    plan
}

/// The counters of one counting constraint plus what this call placed: an
/// overlay, so the caller's per-value map is never copied (only the small
/// histogram, one entry per distinct count).
struct Overlay<'a> {
    field: &'a Field,
    base: &'a FieldCounter,
    added: BTreeMap<String, u32>,
    histogram: BTreeMap<u32, u32>,
}

impl Overlay<'_> {
    fn count(&self, v: &str) -> u32 {
        self.base.count(v) + self.added.get(v).copied().unwrap_or(0)
    }

    fn used(&self) -> u32 {
        self.histogram.values().sum()
    }

    fn above(&self, k: u32) -> u32 {
        self.histogram
            .range(k.saturating_add(1)..)
            .map(|(_, n)| *n)
            .sum()
    }

    fn add(&mut self, v: &str) {
        let before = self.count(v);
        move_bucket(&mut self.histogram, before, before + 1);
        *self.added.entry(v.to_string()).or_insert(0) += 1;
    }
}

/// Placement state across the offers of one call.
struct Working<'a> {
    /// One overlay per constraint (`None` for those that do not count).
    overlays: Vec<Option<Overlay<'a>>>,
    /// Per constraint, the instance total GROUP_BY balances: counted
    /// instances with the field plus those waiting. Constant in one call.
    totals: Vec<u32>,
    remaining: u32,
}

impl<'a> Working<'a> {
    fn new(input: &PlacementInput<'a>) -> Working<'a> {
        let constraints = &input.app.constraints;
        let overlays = constraints
            .iter()
            .map(|c| {
                c.counts_instances().then(|| {
                    let base = input.counters.field(&c.field);
                    Overlay {
                        field: &c.field,
                        base,
                        added: BTreeMap::new(),
                        histogram: base.histogram().clone(),
                    }
                })
            })
            .collect();
        let totals = constraints
            .iter()
            .map(|c| input.counters.field(&c.field).placed() + input.to_place)
            .collect();
        Working {
            overlays,
            totals,
            remaining: input.to_place,
        }
    }

    /// The first constraint the agent fails now, if any.
    fn constraint_reasons(
        &self,
        input: &PlacementInput<'_>,
        agent: &AgentFacts,
    ) -> Vec<DeclineReason> {
        for (index, c) in input.app.constraints.iter().enumerate() {
            if !self.allows(index, c, input, agent) {
                return vec![DeclineReason::UnfulfilledConstraint {
                    index,
                    constraint: c.to_string(),
                }];
            }
        }
        Vec::new()
    }

    fn allows(
        &self,
        index: usize,
        c: &Constraint,
        input: &PlacementInput<'_>,
        agent: &AgentFacts,
    ) -> bool {
        let value = agent.value(&c.field);
        if !c.matches_agent(value) {
            return false;
        }
        let (Some(v), Some(Some(o))) = (value, self.overlays.get(index)) else {
            return true;
        };
        let count = o.count(v);
        match c.op {
            Operator::Unique => count == 0,
            Operator::MaxPer(max) => count < max,
            Operator::Cluster(None) => {
                let used = o.used();
                used == 0 || (used == 1 && count > 0)
            }
            Operator::GroupBy(groups) => {
                let known = input.inventory.values(&c.field);
                let used = o.used();
                let g = groups.unwrap_or_else(|| known.max(used)).max(1);
                let n = self.totals.get(index).copied().unwrap_or(0);
                let (floor, rem) = (n / g, n % g);
                (count > 0 || used < g)
                    && (count < floor || (count == floor && o.above(floor) < rem))
            }
            Operator::Cluster(Some(_))
            | Operator::Like(_)
            | Operator::Unlike(_)
            | Operator::Is(_) => true,
        }
    }

    fn record(&mut self, agent: &AgentFacts) {
        self.remaining -= 1;
        for o in self.overlays.iter_mut().flatten() {
            if let Some(v) = agent.value(o.field) {
                o.add(v);
            }
        }
    }
}

/// What is left of one offer for the app: the resources of accepted roles.
struct Budget {
    cpus: Scalar,
    mem: Scalar,
    disk: Scalar,
    gpus: Scalar,
    ports: Ranges,
}

impl Budget {
    /// `None` when the offer has resources but none of an accepted role.
    fn of(resources: &Resources, roles: &[Role]) -> Option<Budget> {
        let usable = if roles.iter().all(Role::is_star) {
            resources.unreserved()
        } else {
            resources.filter_roles(|r| roles.contains(r))
        };
        if usable.is_empty() && !resources.is_empty() {
            return None;
        }
        Some(Budget {
            cpus: usable.cpus(),
            mem: usable.mem(),
            disk: usable.disk(),
            gpus: usable.gpus(),
            ports: usable.ports(),
        })
    }

    /// What one more instance lacks here.
    fn shortfalls(&self, app: &App, ports: &[HostPort]) -> Vec<DeclineReason> {
        let r = &app.resources;
        let mut out = Vec::new();
        if self.cpus < r.cpus {
            out.push(DeclineReason::InsufficientCpus);
        }
        if self.mem < r.mem {
            out.push(DeclineReason::InsufficientMemory);
        }
        if self.disk < r.disk {
            out.push(DeclineReason::InsufficientDisk);
        }
        if self.gpus < Scalar::from_units(i64::from(r.gpus)) {
            out.push(DeclineReason::InsufficientGpus);
        }
        if self.assign_ports(ports).is_none() {
            out.push(DeclineReason::InsufficientPorts);
        }
        out
    }

    /// Host ports for one instance, without taking them: exact ports must
    /// be free, `Any` ports come from the lowest free ones.
    fn assign_ports(&self, ports: &[HostPort]) -> Option<(Vec<u64>, Ranges)> {
        let mut free = self.ports.clone();
        let mut out = vec![0u64; ports.len()];
        for (i, p) in ports.iter().enumerate() {
            if let HostPort::Exact(n) = p {
                let n = u64::from(*n);
                if !free.contains_value(n) {
                    return None;
                }
                free = free.difference(&Ranges::single(n, n));
                out[i] = n;
            }
        }
        let any = ports.iter().filter(|p| **p == HostPort::Any).count();
        if any > 0 {
            let taken = free.take_lowest(u64::try_from(any).ok()?)?;
            free = free.difference(&taken);
            let mut values = taken.values();
            for (i, p) in ports.iter().enumerate() {
                if *p == HostPort::Any {
                    out[i] = values.next()?;
                }
            }
        }
        Some((out, free))
    }

    /// Takes one instance's resources; call only after [`Budget::shortfalls`]
    /// found none. Returns its host ports.
    fn take(&mut self, app: &App, ports: &[HostPort]) -> Vec<u64> {
        let r = &app.resources;
        self.cpus = self.cpus.saturating_sub(r.cpus);
        self.mem = self.mem.saturating_sub(r.mem);
        self.disk = self.disk.saturating_sub(r.disk);
        self.gpus = self
            .gpus
            .saturating_sub(Scalar::from_units(i64::from(r.gpus)));
        match self.assign_ports(ports) {
            Some((assigned, free)) => {
                self.ports = free;
                assigned
            }
            None => Vec::new(),
        }
    }
}

//! Planner tests: a [`PlacementHarness`] (agents with free resources, offers
//! made from them, placements applied back as the framework would) and a
//! [`DeployHarness`] (instances driven through launches, health and kills),
//! fixtures with valid defaults, hand-written cases from Marathon's docs
//! (`cases.rs`, `deploy_cases.rs`), proptests (`props.rs`) and the crate's
//! tidy checks (`tidy.rs`).
use std::collections::BTreeMap;

use agora_model::{AgentId, Attributes, MonoTime, OfferId, Resources};

use crate::{
    Action, AgentFacts, App, Condition, Constraint, DEFAULT_MAX_INSTANCES_PER_OFFER, Goal,
    InstanceId, InstanceView, Inventory, OfferView, PathId, PlacementCounters, PlacementInput,
    PlacementPlan, Version, place,
};

mod cases;
mod deploy_cases;
mod props;
mod tidy;

pub(crate) fn id(s: &str) -> PathId {
    PathId::parse(s).unwrap()
}

/// A valid app: Marathon's defaults plus a command.
pub(crate) fn app(path: &str) -> App {
    let mut a = App::new(id(path));
    a.cmd = Some("sleep 1000".into());
    a
}

pub(crate) fn constraint(parts: &[&str]) -> Constraint {
    Constraint::parse(parts).unwrap()
}

/// An agent: hostname and Mesos attribute text.
pub(crate) fn facts(hostname: &str, attributes: &str) -> AgentFacts {
    AgentFacts::new(hostname, &Attributes::parse(attributes).unwrap())
}

pub(crate) fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

/// One agent of the placement harness.
pub(crate) struct HarnessAgent {
    pub(crate) id: AgentId,
    pub(crate) facts: AgentFacts,
    pub(crate) free: Resources,
}

/// An app, the cluster's agents and the app's placed instances, kept the
/// way the framework keeps them: placements take resources and count.
pub(crate) struct PlacementHarness {
    pub(crate) app: App,
    pub(crate) agents: Vec<HarnessAgent>,
    pub(crate) counters: PlacementCounters,
    pub(crate) inventory: Inventory,
    pub(crate) max_per_offer: u32,
    /// Agent index of every placed instance, in placement order.
    pub(crate) placed: Vec<usize>,
    pub(crate) plans: Vec<PlacementPlan>,
}

impl PlacementHarness {
    pub(crate) fn new(app: App) -> Self {
        PlacementHarness {
            counters: PlacementCounters::for_constraints(&app.constraints),
            app,
            agents: Vec::new(),
            inventory: Inventory::default(),
            max_per_offer: DEFAULT_MAX_INSTANCES_PER_OFFER,
            placed: Vec::new(),
            plans: Vec::new(),
        }
    }

    /// Adds an agent to the cluster (and to the known inventory).
    pub(crate) fn agent(&mut self, hostname: &str, attributes: &str, resources: &str) -> usize {
        let f = facts(hostname, attributes);
        self.inventory.add_agent(&f);
        self.agents.push(HarnessAgent {
            id: AgentId::new_unchecked(format!("agent-{}", self.agents.len())),
            facts: f,
            free: res(resources),
        });
        self.agents.len() - 1
    }

    /// Offers from the listed agents (all their free resources).
    pub(crate) fn offers(&self, which: &[usize]) -> Vec<OfferView> {
        which
            .iter()
            .map(|&i| {
                let a = &self.agents[i];
                OfferView {
                    id: OfferId::new_unchecked(format!("offer-{i}")),
                    agent_id: a.id.clone(),
                    agent: a.facts.clone(),
                    resources: a.free.clone(),
                }
            })
            .collect()
    }

    /// Places up to `to_place` instances on offers from `which` and applies
    /// the plan: resources taken, counters updated.
    pub(crate) fn round_on(&mut self, which: &[usize], to_place: u32) -> PlacementPlan {
        let offers = self.offers(which);
        let input = PlacementInput {
            app: &self.app,
            counters: &self.counters,
            inventory: &self.inventory,
            to_place,
            max_per_offer: self.max_per_offer,
        };
        let plan = place(&input, &offers);
        for p in &plan.placements {
            let agent = which[p.offer_index];
            let r = &self.app.resources;
            let mut used =
                Resources::cpus_mem_disk(r.cpus.as_f64(), r.mem.as_f64(), r.disk.as_f64());
            if r.gpus > 0 {
                used = used.with_scalar("gpus", agora_model::Scalar::from_units(i64::from(r.gpus)));
            }
            for port in &p.host_ports {
                used = used.plus(
                    &Resources::new()
                        .with_ranges("ports", agora_model::Ranges::single(*port, *port)),
                );
            }
            self.agents[agent].free.subtract(&used);
            self.counters.add(&self.agents[agent].facts);
            self.placed.push(agent);
        }
        self.plans.push(plan.clone());
        plan
    }

    /// A round over every agent.
    pub(crate) fn round(&mut self, to_place: u32) -> PlacementPlan {
        let all: Vec<usize> = (0..self.agents.len()).collect();
        self.round_on(&all, to_place)
    }

    /// Placed instances per value of an agent attribute (or hostname).
    pub(crate) fn spread(&self, field: &crate::Field) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for &a in &self.placed {
            if let Some(v) = self.agents[a].facts.value(field) {
                *out.entry(v.to_string()).or_insert(0) += 1;
            }
        }
        out
    }
}

/// A running, healthy, ready instance of config version `v` on `agent`.
pub(crate) fn instance(n: u32, v: u64, agent: AgentFacts) -> InstanceView {
    InstanceView {
        id: InstanceId::from_string(format!("app.{n:04}")),
        config_version: Version(v),
        goal: Goal::Running,
        condition: Condition::Running,
        healthy: true,
        ready: true,
        started_at: MonoTime(u64::from(n)),
        agent,
    }
}

/// An app's instances, driven by a deployment's actions: launches appear
/// as scheduled instances, kills end instances at once, and the test moves
/// instances forward (running, healthy, ready) with [`DeployHarness::advance`].
pub(crate) struct DeployHarness {
    pub(crate) instances: Vec<InstanceView>,
    pub(crate) next: u32,
    pub(crate) now: MonoTime,
}

impl DeployHarness {
    /// `n` running, healthy, ready instances at config version `v`.
    pub(crate) fn running(n: u32, v: u64) -> Self {
        let instances = (0..n)
            .map(|i| instance(i, v, facts(&format!("host-{i}"), "")))
            .collect();
        DeployHarness {
            instances,
            next: n,
            now: MonoTime(1_000),
        }
    }

    /// Applies actions: kills end instances (terminal ones are dropped),
    /// launches add scheduled ones.
    pub(crate) fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Kill { instances, .. } => {
                    self.instances.retain(|i| !instances.contains(&i.id));
                }
                Action::Launch {
                    count,
                    config_version,
                    ..
                } => {
                    for _ in 0..*count {
                        let mut i = instance(
                            self.next,
                            config_version.0,
                            facts(&format!("host-{}", self.next), ""),
                        );
                        i.condition = Condition::Scheduled;
                        i.healthy = false;
                        i.ready = false;
                        i.started_at = MonoTime(self.now.0 + u64::from(self.next));
                        self.next += 1;
                        self.instances.push(i);
                    }
                }
            }
        }
    }

    /// Moves the first `k` not-yet-ready instances one stage forward:
    /// scheduled → running → healthy → ready.
    pub(crate) fn advance(&mut self, k: usize) {
        let mut moved = 0;
        for i in &mut self.instances {
            if moved == k {
                break;
            }
            match i.condition {
                Condition::Scheduled | Condition::Staging => i.condition = Condition::Running,
                Condition::Running if !i.healthy => i.healthy = true,
                Condition::Running if !i.ready => i.ready = true,
                _ => continue,
            }
            moved += 1;
        }
    }

    /// Instances that serve: running, healthy and ready.
    pub(crate) fn healthy(&self) -> u32 {
        u32::try_from(
            self.instances
                .iter()
                .filter(|i| i.is_healthy_ready())
                .count(),
        )
        .unwrap()
    }

    pub(crate) fn active(&self) -> u32 {
        u32::try_from(self.instances.iter().filter(|i| i.is_active()).count()).unwrap()
    }

    pub(crate) fn of_version(&self, v: u64) -> u32 {
        u32::try_from(
            self.instances
                .iter()
                .filter(|i| i.config_version == Version(v))
                .count(),
        )
        .unwrap()
    }
}

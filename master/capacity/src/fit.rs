//! "What fits": how many more instances of a task shape, for a role and
//! Marathon constraints, and where — by a dry run of the planner's `place`
//! over every active agent's free resources — with each agent's
//! bottleneck and the rejection funnel (agents → role → constraints →
//! maintenance → cpus → mem → disk → gpus → ports → placeable).
use std::collections::BTreeMap;

use agora_marathon_planner::{
    AgentFacts, App, Constraint, DeclineReason, Inventory, OfferView, PathId, PlacementCounters,
    PlacementInput, PortSpec, place,
};
use agora_model::{OfferId, Resources, Role, Scalar};
use serde::Serialize;

use crate::breakdown::{AgentSnapshot, Snapshot};

/// Without a count, at most this many instances are placed in a dry run.
pub const MAX_FIT: u32 = 100_000;

/// A task shape and where it may go.
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// CPUs per instance.
    pub cpus: Scalar,
    /// Memory per instance, MB.
    pub mem: Scalar,
    /// Disk per instance, MB.
    pub disk: Scalar,
    /// GPUs per instance.
    pub gpus: u32,
    /// Host ports per instance.
    pub ports: u32,
    /// The role the instances would run under.
    pub role: Role,
    /// Marathon constraints (already parsed and validated).
    pub constraints: Vec<Constraint>,
    /// How many are wanted (None: as many as fit, up to [`MAX_FIT`]).
    pub count: Option<u32>,
}

/// One agent's share of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFit {
    /// Its id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Instances the dry run placed on it.
    pub placeable: u32,
    /// Why it could not take one more (`None` when the count was reached
    /// first).
    pub bottleneck: Option<String>,
}

/// One stage of the funnel: how many agents it turned away, and how many
/// go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunnelStep {
    /// The stage.
    pub stage: &'static str,
    /// Agents turned away here.
    pub rejected: u32,
    /// Agents left after it.
    pub remaining: u32,
}

/// The answer of [`fit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FitAnswer {
    /// Instances that fit now (at most the count asked for).
    pub placeable: u32,
    /// Whether the count asked for fits.
    pub fits: bool,
    /// Per agent, in id order.
    pub agents: Vec<AgentFit>,
    /// Where agents drop out for a single instance, in order.
    pub funnel: Vec<FunnelStep>,
}

const STAGES: [&str; 9] = [
    "role",
    "constraints",
    "maintenance",
    "cpus",
    "mem",
    "disk",
    "gpus",
    "ports",
    "placeable",
];

fn stage_of(reason: &DeclineReason) -> &'static str {
    match reason {
        DeclineReason::UnfulfilledRole => "role",
        DeclineReason::UnfulfilledConstraint { .. } => "constraints",
        DeclineReason::InsufficientCpus => "cpus",
        DeclineReason::InsufficientMemory => "mem",
        DeclineReason::InsufficientDisk => "disk",
        DeclineReason::InsufficientGpus => "gpus",
        DeclineReason::InsufficientPorts => "ports",
    }
}

/// The app the planner places: the shape, the role, the constraints.
fn shape_app(req: &FitRequest, count: u32) -> App {
    let id = PathId::parse("/capacity-dry-run").unwrap_or_else(|_| PathId::root());
    let mut app = App::new(id);
    app.cmd = Some("capacity dry run".into());
    app.instances = count;
    app.resources.cpus = req.cpus;
    app.resources.mem = req.mem;
    app.resources.disk = req.disk;
    app.resources.gpus = req.gpus;
    // A role may use its reservations and unreserved resources (Marathon's
    // acceptedResourceRoles [role, "*"]).
    app.accepted_resource_roles = if req.role == Role::star() {
        vec![Role::star()]
    } else {
        vec![req.role.clone(), Role::star()]
    };
    app.constraints = req.constraints.clone();
    app.ports = (0..req.ports).map(|_| PortSpec::default()).collect();
    app
}

/// What an agent could still take, as an offer: everything not allocated
/// to tasks. Outstanding offers count as available: an offer is not a
/// commitment, and what its framework does not launch comes back (agent
/// ids are valid offer id characters, so the id always parses).
fn offer_of(a: &AgentSnapshot) -> Option<OfferView> {
    let mut free: Resources = a.total.clone();
    free.subtract(&a.allocated);
    Some(OfferView {
        id: OfferId::parse(format!("fit-{}", a.id)).ok()?,
        agent_id: a.id.clone(),
        agent: AgentFacts::new(a.hostname.clone(), &a.attributes),
        resources: free,
    })
}

/// Answers "how many more of this shape fit, where, and why not".
pub fn fit(s: &Snapshot, req: &FitRequest) -> FitAnswer {
    let mut sorted: Vec<&AgentSnapshot> = s.agents.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let (agents, offers): (Vec<&AgentSnapshot>, Vec<OfferView>) = sorted
        .into_iter()
        .filter_map(|a| offer_of(a).map(|o| (a, o)))
        .unzip();
    let inventory = Inventory::of(offers.iter().map(|o| &o.agent));
    let counters = PlacementCounters::for_constraints(&req.constraints);
    let want = req.count.unwrap_or(MAX_FIT);
    let app = shape_app(req, want);
    let active: Vec<OfferView> = offers
        .iter()
        .zip(&agents)
        .filter(|(_, a)| a.active)
        .map(|(o, _)| o.clone())
        .collect();
    let plan = place(
        &PlacementInput {
            app: &app,
            counters: &counters,
            inventory: &inventory,
            to_place: want,
            max_per_offer: u32::MAX,
        },
        &active,
    );
    let mut per_agent: BTreeMap<String, (u32, Option<String>)> = BTreeMap::new();
    for (o, outcome) in active.iter().zip(&plan.outcomes) {
        let bottleneck = outcome.reasons.first().map(|r| stage_of(r).to_string());
        per_agent.insert(o.agent_id.to_string(), (outcome.launched, bottleneck));
    }
    let rows = agents
        .iter()
        .map(|a| {
            let (placeable, bottleneck) = per_agent
                .get(&a.id.to_string())
                .cloned()
                .unwrap_or((0, Some("maintenance".into())));
            AgentFit {
                id: a.id.to_string(),
                hostname: a.hostname.clone(),
                placeable,
                bottleneck,
            }
        })
        .collect();
    let placeable = plan.placements.len() as u32;
    FitAnswer {
        placeable,
        fits: req.count.is_none_or(|c| placeable >= c),
        agents: rows,
        funnel: funnel(&app, &agents, &offers, &counters, &inventory),
    }
}

/// Where each agent drops out for one instance.
fn funnel(
    app: &App,
    agents: &[&AgentSnapshot],
    offers: &[OfferView],
    counters: &PlacementCounters,
    inventory: &Inventory,
) -> Vec<FunnelStep> {
    let mut rejected: BTreeMap<&'static str, u32> = BTreeMap::new();
    for (a, o) in agents.iter().zip(offers) {
        let one = place(
            &PlacementInput {
                app,
                counters,
                inventory,
                to_place: 1,
                max_per_offer: 1,
            },
            std::slice::from_ref(o),
        );
        let reason = one
            .outcomes
            .first()
            .and_then(|x| x.reasons.first())
            .map(stage_of);
        let stage = match reason {
            Some(s @ ("role" | "constraints")) => s,
            _ if !a.active => "maintenance",
            Some(s) => s,
            None => continue,
        };
        *rejected.entry(stage).or_default() += 1;
    }
    let mut remaining = agents.len() as u32;
    let mut out = vec![FunnelStep {
        stage: "agents",
        rejected: 0,
        remaining,
    }];
    for stage in STAGES {
        let r = rejected.get(stage).copied().unwrap_or(0);
        if stage != "placeable" {
            remaining = remaining.saturating_sub(r);
        }
        out.push(FunnelStep {
            stage,
            rejected: r,
            remaining,
        });
    }
    out
}

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

/// At most this many instances are placed in a dry run, with or without a
/// count: each is a planner step and an entry in the answer, and the fit
/// endpoints are unauthenticated, so an asked-for count above it is refused
/// (400) rather than run, and [`fit`] never places more.
pub const MAX_FIT: u32 = 100_000;

/// The most host ports one instance may ask for. Real tasks ask for a
/// handful; the dry run builds a port list per instance (and the app's port
/// definitions up front), so this bounds that memory by `MAX_FIT × MAX_PORTS`
/// numbers however large the number asked for.
pub const MAX_PORTS: u32 = 100;

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

impl FitRequest {
    /// Does the shape ask for no resources at all? Then nothing but the
    /// role, the constraints and the count limits how many fit, so the
    /// HTTP handlers refuse it (as reference shapes must ask for something);
    /// [`fit`] still answers it, placing at most [`MAX_FIT`].
    pub fn asks_for_nothing(&self) -> bool {
        self.cpus.is_zero()
            && self.mem.is_zero()
            && self.disk.is_zero()
            && self.gpus == 0
            && self.ports == 0
    }
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
    // Callers refuse more than MAX_PORTS; the cap keeps an unchecked
    // request from allocating a port spec per number it names.
    app.ports = (0..req.ports.min(MAX_PORTS))
        .map(|_| PortSpec::default())
        .collect();
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
    // An explicit count is capped too: without the cap a shape that asks
    // for nothing (or very little) would place billions.
    let want = req.count.unwrap_or(MAX_FIT).min(MAX_FIT);
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

#[cfg(test)]
mod tests {
    use agora_model::{AgentId, Attributes, Resources, Role, Scalar};

    use super::{FitRequest, MAX_FIT, MAX_PORTS, fit, shape_app};
    use crate::breakdown::{AgentSnapshot, Snapshot};

    fn one_agent(total: &str) -> Snapshot {
        Snapshot {
            agents: vec![AgentSnapshot {
                id: AgentId::parse("a1").expect("id"),
                hostname: "a1.example".into(),
                attributes: Attributes::default(),
                total: Resources::parse(total).expect("total"),
                allocated: Resources::new(),
                offered: Resources::new(),
                active: true,
                draining: false,
            }],
        }
    }

    fn nothing(count: Option<u32>) -> FitRequest {
        FitRequest {
            cpus: Scalar::ZERO,
            mem: Scalar::ZERO,
            disk: Scalar::ZERO,
            gpus: 0,
            ports: 0,
            role: Role::star(),
            constraints: Vec::new(),
            count,
        }
    }

    #[test]
    fn a_shape_asking_for_nothing_is_recognised() {
        assert!(nothing(None).asks_for_nothing());
        for ask in [
            |r: &mut FitRequest| r.cpus = Scalar::from_milli(1),
            |r: &mut FitRequest| r.mem = Scalar::from_milli(1),
            |r: &mut FitRequest| r.disk = Scalar::from_milli(1),
            |r: &mut FitRequest| r.gpus = 1,
            |r: &mut FitRequest| r.ports = 1,
        ] {
            let mut r = nothing(None);
            ask(&mut r);
            assert!(!r.asks_for_nothing(), "{r:?}");
        }
    }

    #[test]
    fn an_explicit_count_is_capped_like_an_absent_one() {
        let s = one_agent("cpus:4;mem:4096");
        let a = fit(&s, &nothing(Some(u32::MAX)));
        assert_eq!(a.placeable, MAX_FIT);
        assert!(!a.fits, "more than the cap was asked for, and not placed");
        let a = fit(&s, &nothing(None));
        assert_eq!((a.placeable, a.fits), (MAX_FIT, true));
        let a = fit(&s, &nothing(Some(7)));
        assert_eq!((a.placeable, a.fits), (7, true));
        let a = fit(&s, &nothing(Some(0)));
        assert_eq!((a.placeable, a.fits), (0, true));
    }

    #[test]
    fn a_huge_port_count_builds_at_most_max_ports_specs() {
        let mut r = nothing(Some(1));
        r.ports = u32::MAX;
        assert_eq!(shape_app(&r, 1).ports.len(), MAX_PORTS as usize);
        // Ten ports on the agent: not even one instance of the capped
        // shape fits, and ports is named as the bottleneck.
        let a = fit(&one_agent("cpus:4;mem:4096;ports:[31000-31009]"), &r);
        assert_eq!(a.placeable, 0);
        assert_eq!(a.agents[0].bottleneck.as_deref(), Some("ports"));
        r.ports = 3;
        let a = fit(&one_agent("cpus:4;mem:4096;ports:[31000-31009]"), &r);
        assert_eq!(a.placeable, 1, "{a:?}");
    }
}

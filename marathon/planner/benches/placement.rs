//! Placement cost at 10,000 agents with `hostname:UNIQUE` and
//! `rack_id:GROUP_BY` (20 racks), for several numbers of instances already
//! running: the claim is that the cost per placed instance does not grow
//! with them, because counters are kept incrementally.
//!
//! `cargo bench -p agora-marathon-planner --bench placement`
use std::hint::black_box;
use std::time::Instant;

use agora_marathon_planner::{
    AgentFacts, App, Constraint, Inventory, OfferView, PathId, PlacementCounters, PlacementInput,
    place,
};
use agora_model::{AgentId, Attributes, OfferId, Resources, Scalar};

const AGENTS: usize = 10_000;
const RACKS: usize = 20;
const TO_PLACE: u32 = 100;
const OFFERS: usize = 1_000;

fn facts(i: usize) -> AgentFacts {
    let attrs = Attributes::parse(&format!("rack_id:rack-{}", i % RACKS)).unwrap_or_default();
    AgentFacts::new(format!("host-{i}.example.com"), &attrs)
}

fn main() {
    let id = PathId::parse("/bench/web").unwrap_or_else(|_| PathId::root());
    let mut app = App::new(id);
    app.cmd = Some("sleep 1000".into());
    app.resources.cpus = Scalar::from_milli(100);
    app.resources.mem = Scalar::from_units(64);
    app.constraints = [&["hostname", "UNIQUE"][..], &["rack_id", "GROUP_BY"][..]]
        .iter()
        .filter_map(|c| Constraint::parse(c).ok())
        .collect();
    let agents: Vec<AgentFacts> = (0..AGENTS).map(facts).collect();
    let inventory = Inventory::of(agents.iter());
    let resources = Resources::parse("cpus:8;mem:32768;ports:[31000-32000]").unwrap_or_default();
    println!(
        "running  placed/call  per call (µs)  per placed instance (µs)  per rejected offer (µs)"
    );
    for running in [0usize, 1_000, 5_000, 9_000] {
        let mut counters = PlacementCounters::for_constraints(&app.constraints);
        for a in &agents[..running] {
            counters.add(a);
        }
        let offer = |i: usize| OfferView {
            id: OfferId::new_unchecked(format!("offer-{i}")),
            agent_id: AgentId::new_unchecked(format!("agent-{i}")),
            agent: agents[i % AGENTS].clone(),
            resources: resources.clone(),
        };
        // Offers from agents without an instance yet (UNIQUE lets each take
        // one), and offers from agents that all have one (all rejected).
        let fresh: Vec<OfferView> = (running..running + OFFERS).map(offer).collect();
        let taken: Vec<OfferView> = (0..running.min(OFFERS)).map(offer).collect();
        let input = PlacementInput {
            app: &app,
            counters: &counters,
            inventory: &inventory,
            to_place: TO_PLACE,
            max_per_offer: 5,
        };
        let (placed, per_call) = time(&input, &fresh);
        let per_rejected = if taken.is_empty() {
            0.0
        } else {
            time(&input, &taken).1 / taken.len() as f64
        };
        println!(
            "{running:>7}  {placed:>11}  {per_call:>13.1}  {:>24.2}  {per_rejected:>23.3}",
            per_call / placed.max(1) as f64,
        );
    }
}

/// Instances placed per call and microseconds per call, over `ROUNDS` calls.
fn time(input: &PlacementInput<'_>, offers: &[OfferView]) -> (usize, f64) {
    const ROUNDS: u32 = 300;
    let mut placed = 0;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        placed += place(black_box(input), black_box(offers)).placements.len();
    }
    let micros = start.elapsed().as_secs_f64() * 1e6;
    (placed / ROUNDS as usize, micros / f64::from(ROUNDS))
}

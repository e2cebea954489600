//! Placement and scale-down cases, one behaviour each; several follow
//! Marathon's constraints.md examples.
use agora_model::{MonoTime, Role};

use super::{PlacementHarness, app, constraint, facts, instance};
use crate::{
    App, Condition, DeclineReason, Field, KillSelection, NetworkMode, PortSpec, ReasonKind,
    select_to_kill,
};

const AGENT: &str = "cpus:4;mem:4096;disk:10000;ports:[31000-31009]";

fn with(constraints: &[&[&str]]) -> App {
    let mut a = app("/prod/web");
    a.resources.cpus = agora_model::Scalar::from_milli(500);
    a.resources.mem = agora_model::Scalar::from_units(256);
    a.constraints = constraints.iter().map(|c| constraint(c)).collect();
    a
}

fn rack() -> Field {
    Field::Attribute("rack_id".into())
}

#[test]
fn unique_hostname_holds_within_one_offer_and_says_why_extras_wait() {
    // Marathon #1349/#3867: several instances from one offer broke UNIQUE.
    let mut h = PlacementHarness::new(with(&[&["hostname", "UNIQUE"]]));
    for i in 0..3 {
        h.agent(&format!("host-{i}"), "", AGENT);
    }
    let plan = h.round(5);
    assert_eq!(plan.placements.len(), 3);
    assert!(h.spread(&Field::Hostname).values().all(|n| *n == 1));
    // Every offer placed one and then stopped on the constraint.
    for o in &plan.outcomes {
        assert_eq!(o.launched, 1);
        assert_eq!(o.reasons[0].kind(), ReasonKind::UnfulfilledConstraint);
    }
    // The next round: nothing fits, and /v2/queue says why.
    let plan = h.round(2);
    assert!(plan.placements.is_empty());
    assert_eq!(plan.summary.unused_offers, 3);
    assert_eq!(plan.summary.declined[&ReasonKind::UnfulfilledConstraint], 3);
    assert_eq!(
        plan.outcomes[0].reasons,
        vec![DeclineReason::UnfulfilledConstraint {
            index: 0,
            constraint: "hostname:UNIQUE".into()
        }]
    );
}

#[test]
fn max_per_is_rechecked_after_each_placement() {
    let mut h = PlacementHarness::new(with(&[&["rack_id", "MAX_PER", "2"]]));
    h.agent("a", "rack_id:r1", AGENT);
    h.agent("b", "rack_id:r1", AGENT);
    h.agent("c", "rack_id:r2", AGENT);
    let plan = h.round(10);
    assert_eq!(plan.placements.len(), 4);
    let spread = h.spread(&rack());
    assert_eq!(spread["r1"], 2);
    assert_eq!(spread["r2"], 2);
}

#[test]
fn cluster_with_a_value_and_without() {
    let mut h = PlacementHarness::new(with(&[&["rack_id", "CLUSTER", "r2"]]));
    h.agent("a", "rack_id:r1", AGENT);
    h.agent("b", "rack_id:r2", AGENT);
    h.agent("c", "", AGENT);
    h.round(3);
    assert_eq!(h.placed, vec![1, 1, 1]);

    // Without a value: wherever the first goes, the rest follow.
    let mut h = PlacementHarness::new(with(&[&["rack_id", "CLUSTER"]]));
    h.agent("a", "rack_id:r1", "cpus:1;mem:512");
    h.agent("b", "rack_id:r2", AGENT);
    h.agent("c", "rack_id:r1", AGENT);
    h.round(5);
    assert_eq!(h.spread(&rack()).keys().collect::<Vec<_>>(), vec!["r1"]);
    assert_eq!(h.placed.len(), 5);
}

#[test]
fn like_unlike_and_is_on_attributes() {
    let mut h = PlacementHarness::new(with(&[&["rack_id", "LIKE", "rack-[1-2]"]]));
    h.agent("a", "rack_id:rack-1", AGENT);
    h.agent("b", "rack_id:rack-12", AGENT);
    h.agent("c", "", AGENT);
    h.round(3);
    assert!(h.placed.iter().all(|a| *a == 0));

    let mut h = PlacementHarness::new(with(&[&["rack_id", "UNLIKE", "rack-1"]]));
    h.agent("a", "rack_id:rack-1", AGENT);
    h.agent("b", "", AGENT);
    let plan = h.round(2);
    assert_eq!(h.placed, vec![1, 1], "a missing attribute matches UNLIKE");
    assert_eq!(
        plan.outcomes[0].reasons[0].kind(),
        ReasonKind::UnfulfilledConstraint
    );

    let mut h = PlacementHarness::new(with(&[&["level", "IS", "3"]]));
    h.agent("a", "level:2", AGENT);
    h.agent("b", "level:3.0", AGENT);
    h.round(1);
    assert_eq!(h.placed, vec![1]);
}

#[test]
fn group_by_docs_example_balances_over_known_racks_not_offered_ones() {
    // constraints.md: 9 instances, GROUP_BY rack_id, only rack_1 and rack_2
    // offering. Marathon learnt groups from offers and placed 4/4 then 1 on
    // rack_3; we know rack_3 exists, so 3/3 and 3 wait for it.
    let mut h = PlacementHarness::new(with(&[&["rack_id", "GROUP_BY"]]));
    for r in 1..=3 {
        h.agent(
            &format!("h{r}"),
            &format!("rack_id:rack_{r}"),
            "cpus:8;mem:8192",
        );
    }
    h.max_per_offer = 9;
    let plan = h.round_on(&[0, 1], 9);
    assert_eq!(plan.placements.len(), 6);
    assert_eq!(h.spread(&rack())["rack_1"], 3);
    assert_eq!(h.spread(&rack())["rack_2"], 3);
    h.round_on(&[2], 3);
    assert_eq!(h.spread(&rack())["rack_3"], 3);
}

#[test]
fn group_by_with_a_value_uses_that_many_groups() {
    // rack_id:GROUP_BY:3 with 5 racks: exactly 3 used (Marathon's final code).
    let mut h = PlacementHarness::new(with(&[&["rack_id", "GROUP_BY", "3"]]));
    for r in 1..=5 {
        h.agent(
            &format!("h{r}"),
            &format!("rack_id:r{r}"),
            "cpus:8;mem:8192",
        );
    }
    h.round(9);
    let spread = h.spread(&rack());
    assert_eq!(spread.len(), 3);
    assert!(spread.values().all(|n| *n == 3));
}

#[test]
fn group_by_remainders_keep_the_spread_within_one() {
    let mut h = PlacementHarness::new(with(&[&["rack_id", "GROUP_BY"]]));
    for r in 1..=3 {
        h.agent(
            &format!("h{r}"),
            &format!("rack_id:r{r}"),
            "cpus:8;mem:8192",
        );
    }
    h.max_per_offer = 10;
    h.round(10);
    let mut counts: Vec<u32> = h.spread(&rack()).into_values().collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![3, 3, 4]);
}

#[test]
fn resources_are_checked_per_instance_and_reasons_follow_the_funnel() {
    let mut a = with(&[]);
    a.resources.cpus = agora_model::Scalar::from_units(1);
    a.resources.mem = agora_model::Scalar::from_units(1024);
    a.resources.gpus = 1;
    let mut h = PlacementHarness::new(a);
    h.agent("a", "", "cpus:2;mem:4096;gpus:1");
    h.agent("b", "", "cpus:0.5;mem:512");
    let plan = h.round(3);
    assert_eq!(plan.placements.len(), 1);
    assert_eq!(
        plan.outcomes[0].reasons,
        vec![DeclineReason::InsufficientGpus]
    );
    assert_eq!(
        plan.outcomes[1].reasons,
        vec![
            DeclineReason::InsufficientCpus,
            DeclineReason::InsufficientMemory,
            DeclineReason::InsufficientGpus
        ]
    );
    let f = plan.summary.funnel();
    assert_eq!(f[2].reason, ReasonKind::InsufficientCpus);
    assert_eq!((f[2].declined, f[2].processed), (1, 1));
}

#[test]
fn host_ports_are_assigned_and_exhausted() {
    let mut a = with(&[]);
    a.ports = vec![PortSpec::default(), PortSpec::default()];
    let mut h = PlacementHarness::new(a);
    h.agent("a", "", "cpus:8;mem:8192;ports:[31000-31004]");
    let plan = h.round(3);
    assert_eq!(plan.placements.len(), 2);
    assert_eq!(plan.placements[0].host_ports, vec![31000, 31001]);
    assert_eq!(plan.placements[1].host_ports, vec![31002, 31003]);
    assert_eq!(
        plan.outcomes[0].reasons,
        vec![DeclineReason::InsufficientPorts]
    );

    let mut a = with(&[]);
    a.network = NetworkMode::Bridge;
    a.ports = vec![PortSpec {
        port: 80,
        host_port: Some(31003),
        ..Default::default()
    }];
    let mut h = PlacementHarness::new(a);
    h.agent("a", "", "cpus:8;mem:8192;ports:[31000-31004]");
    let plan = h.round(2);
    assert_eq!(plan.placements.len(), 1, "an exact host port is taken once");
    assert_eq!(plan.placements[0].host_ports, vec![31003]);
}

#[test]
fn accepted_roles_decide_which_resources_count() {
    let mut a = with(&[]);
    a.accepted_resource_roles = vec![Role::parse("prod").unwrap()];
    let mut h = PlacementHarness::new(a);
    h.agent("a", "", "cpus:4;mem:4096");
    h.agent("b", "", "cpus(prod):4;mem(prod):4096");
    let plan = h.round(1);
    assert_eq!(
        plan.outcomes[0].reasons,
        vec![DeclineReason::UnfulfilledRole]
    );
    assert_eq!(h.placed, vec![1]);
    assert_eq!(plan.summary.declined[&ReasonKind::UnfulfilledRole], 1);
}

#[test]
fn the_per_offer_cap_is_honoured() {
    let mut h = PlacementHarness::new(with(&[]));
    h.agent("a", "", "cpus:64;mem:65536");
    h.max_per_offer = 5;
    let plan = h.round(20);
    assert_eq!(plan.placements.len(), 5);
    assert!(plan.outcomes[0].reasons.is_empty());
}

#[test]
fn scale_down_takes_the_largest_group_first_then_youngest() {
    let gb = vec![constraint(&["rack_id", "GROUP_BY"])];
    let on = |r: &str| facts("h", &format!("rack_id:{r}"));
    // r1: 0,1,2 r2: 3 r3: 4
    let instances = vec![
        instance(0, 1, on("r1")),
        instance(1, 1, on("r1")),
        instance(2, 1, on("r1")),
        instance(3, 1, on("r2")),
        instance(4, 1, on("r3")),
    ];
    let kill = select_to_kill(&instances, 2, &gb, KillSelection::YoungestFirst);
    let ids: Vec<&str> = kill.iter().map(|i| i.as_str()).collect();
    assert_eq!(ids, vec!["app.0002", "app.0001"]);
    let kill = select_to_kill(&instances, 3, &gb, KillSelection::OldestFirst);
    let ids: Vec<&str> = kill.iter().map(|i| i.as_str()).collect();
    // r1 3→2, then r1 2 vs 1,1 → r1 again (oldest: 0, 1), then all at 1: oldest overall.
    assert_eq!(ids, vec!["app.0000", "app.0001", "app.0002"]);
}

#[test]
fn scale_down_without_group_by_prefers_broken_then_kill_selection() {
    let mut instances: Vec<_> = (0..4).map(|i| instance(i, 1, facts("h", ""))).collect();
    instances[0].condition = Condition::Unreachable;
    instances[1].healthy = false;
    let kill = select_to_kill(&instances, 3, &[], KillSelection::YoungestFirst);
    let ids: Vec<&str> = kill.iter().map(|i| i.as_str()).collect();
    assert_eq!(ids, vec!["app.0000", "app.0001", "app.0003"]);
    instances[3].started_at = MonoTime(0);
    let kill = select_to_kill(&instances, 10, &[], KillSelection::OldestFirst);
    assert_eq!(kill.len(), 4);
}

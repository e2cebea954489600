//! The capacity model on hand-made snapshots, and its invariants on
//! generated ones.
use agora_marathon_planner::parse_constraints;
use agora_model::{AgentId, AttributeValue, Attributes, Resources, Role, Scalar};
use proptest::prelude::*;

use crate::{AgentSnapshot, FitRequest, Snapshot, breakdown, fit};

fn agent(id: &str, rack: &str, total: &str, allocated: &str, active: bool) -> AgentSnapshot {
    AgentSnapshot {
        id: AgentId::parse(id).expect("id"),
        hostname: format!("{id}.example"),
        attributes: Attributes(
            [("rack".to_string(), AttributeValue::Text(rack.into()))]
                .into_iter()
                .collect(),
        ),
        total: Resources::parse(total).expect("total"),
        allocated: Resources::parse(allocated).expect("allocated"),
        offered: Resources::new(),
        active,
    }
}

fn request(cpus: i64, constraints: &[&[&str]]) -> FitRequest {
    let raw: Vec<Vec<&str>> = constraints.iter().map(|c| c.to_vec()).collect();
    FitRequest {
        cpus: Scalar::from_units(cpus),
        mem: Scalar::from_units(128),
        disk: Scalar::ZERO,
        gpus: 0,
        ports: 0,
        role: Role::star(),
        constraints: parse_constraints(&raw).expect("constraints"),
        count: None,
    }
}

fn cluster() -> Snapshot {
    Snapshot {
        agents: vec![
            agent(
                "a1",
                "r1",
                "cpus:4;mem:4096;ports:[31000-31009]",
                "cpus:1;mem:512",
                true,
            ),
            agent(
                "a2",
                "r1",
                "cpus:4;mem:4096;cpus(prod):2;mem(prod):1024",
                "",
                true,
            ),
            agent("a3", "r2", "cpus:8;mem:1024", "", true),
            agent("a4", "r2", "cpus:8;mem:8192", "", false),
        ],
    }
}

#[test]
fn rows_partition_exactly_and_group_by_attribute_and_role() {
    let c = breakdown(&cluster());
    let row = &c.cluster;
    assert_eq!(row.total.cpus, Scalar::from_units(26));
    assert_eq!(row.allocated.cpus, Scalar::from_units(1));
    assert_eq!(row.free.cpus, Scalar::from_units(25));
    assert_eq!(row.allocated.plus(row.offered).plus(row.free), row.total);
    assert_eq!(c.roles["prod"].cpus, Scalar::from_units(2));
    assert_eq!(row.unreserved.cpus, Scalar::from_units(24));
    assert_eq!(
        c.by_attribute["rack"]["r1"].total.cpus,
        Scalar::from_units(10)
    );
    assert_eq!(
        c.by_attribute["rack"]["r2"].total.mem,
        Scalar::from_units(9216)
    );
    assert_eq!(c.agents[0].capacity.total.ports, 10);
    assert!(!c.agents[3].active);
}

#[test]
fn as_many_as_fit_with_bottlenecks_per_agent() {
    let a = fit(&cluster(), &request(2, &[]));
    // a1: 3 free unreserved cpus → 1; a2: 4 (the prod reservation is not
    // for `*`) → 2; a3: 8 cpus but 1024 MB → 8 by cpus, 8 by mem → 4; a4
    // is not active.
    let by_id: Vec<(String, u32)> = a
        .agents
        .iter()
        .map(|x| (x.id.clone(), x.placeable))
        .collect();
    assert_eq!(
        by_id,
        vec![
            ("a1".into(), 1),
            ("a2".into(), 2),
            ("a3".into(), 4),
            ("a4".into(), 0)
        ]
    );
    assert_eq!(a.placeable, 7);
    assert_eq!(a.agents[0].bottleneck.as_deref(), Some("cpus"));
    assert_eq!(a.agents[2].bottleneck.as_deref(), Some("cpus"));
    assert_eq!(a.agents[3].bottleneck.as_deref(), Some("maintenance"));
    let mut big = request(2, &[]);
    big.mem = Scalar::from_units(2048);
    let b = fit(&cluster(), &big);
    assert_eq!(b.agents[2].bottleneck.as_deref(), Some("mem"));
}

#[test]
fn constraints_are_the_planners_and_the_funnel_names_each_stage() {
    let unique = fit(&cluster(), &request(1, &[&["hostname", "UNIQUE"]]));
    assert_eq!(unique.placeable, 3, "one per active agent");
    let like = fit(&cluster(), &request(1, &[&["rack", "LIKE", "r2"]]));
    assert_eq!(like.placeable, 8);
    let stages: Vec<(&str, u32, u32)> = like
        .funnel
        .iter()
        .map(|s| (s.stage, s.rejected, s.remaining))
        .collect();
    assert_eq!(
        stages,
        vec![
            ("agents", 0, 4),
            ("role", 0, 4),
            ("constraints", 2, 2),
            ("maintenance", 1, 1),
            ("cpus", 0, 1),
            ("mem", 0, 1),
            ("disk", 0, 1),
            ("gpus", 0, 1),
            ("ports", 0, 1),
            ("placeable", 0, 1),
        ]
    );
    let mut counted = request(1, &[]);
    counted.count = Some(30);
    let c = fit(&cluster(), &counted);
    assert!(!c.fits);
    counted.count = Some(3);
    let c = fit(&cluster(), &counted);
    assert!(c.fits && c.placeable == 3);
}

#[test]
fn a_reserved_role_sees_its_reservation() {
    let mut prod = request(1, &[]);
    prod.role = Role::parse("prod").expect("role");
    let a = fit(&cluster(), &prod);
    // prod may use its reservation and unreserved resources.
    assert_eq!(a.agents[1].placeable, 6);
}

proptest! {
    #[test]
    fn every_row_adds_up(agents in prop::collection::vec((1..64u32, 1..64u32, 0..64u32, 0..64u32, 0..4u32), 0..20)) {
        let s = Snapshot {
            agents: agents
                .iter()
                .enumerate()
                .map(|(i, (cpus, mem, used_c, used_m, rack))| {
                    let (uc, um) = (used_c % (cpus + 1), used_m % (mem + 1));
                    agent(
                        &format!("a{i}"),
                        &format!("r{rack}"),
                        &format!("cpus:{cpus};mem:{mem};cpus(prod):1"),
                        &format!("cpus:{uc};mem:{um}"),
                        true,
                    )
                })
                .collect(),
        };
        let c = breakdown(&s);
        for row in c.agents.iter().map(|a| &a.capacity).chain(std::iter::once(&c.cluster)) {
            prop_assert_eq!(row.allocated.plus(row.offered).plus(row.free), row.total);
            let reserved = row.reserved.values().fold(crate::Amount::default(), |x, y| x.plus(*y));
            prop_assert_eq!(reserved.plus(row.unreserved), row.total);
        }
        let sum = c.by_attribute.get("rack").map(|v| v.values().fold(crate::Amount::default(), |x, y| x.plus(y.total)));
        prop_assert_eq!(sum.unwrap_or_default(), c.cluster.total);
    }
}

#[test]
fn fragmentation_counts_shapes_and_finds_stranded_resources() {
    let f = crate::fragmentation(&cluster(), &crate::default_shapes());
    let small = &f.shapes[0];
    assert_eq!(small.shape.name, "small");
    // a1: 3 cpus, 3584 MB → 6 small; a2: 4 cpus, 4096 → 8; a3: 8 cpus but
    // 1024 MB → 2; a4 drained → 0.
    assert_eq!(small.agents["a1"], 6);
    assert_eq!(small.agents["a3"], 2);
    assert_eq!(small.cluster, 16);
    let large = &f.shapes[2];
    assert_eq!(large.cluster, 0);
    assert_eq!(f.agents[2].largest.cpus, Scalar::from_units(8));
    assert_eq!(f.agents[2].stranded, crate::Amount::default());
    // An agent whose memory is gone strands its cpus.
    let mut s = cluster();
    s.agents[2].allocated = Resources::parse("mem:1000").expect("r");
    let f = crate::fragmentation(&s, &crate::default_shapes());
    assert_eq!(f.agents[2].stranded.cpus, Scalar::from_units(8));
    assert_eq!(f.agents[2].exhausted.as_deref(), Some("mem"));
}

#[test]
fn what_if_adds_an_agent_or_drains_one() {
    let more = crate::what_if(
        &cluster(),
        &[crate::WhatIf::AddAgent {
            resources: Resources::parse("cpus:16;mem:16384").expect("r"),
            attributes: Attributes::default(),
        }],
    );
    assert_eq!(fit(&more, &request(2, &[])).placeable, 7 + 8);
    let less = crate::what_if(
        &cluster(),
        &[crate::WhatIf::Drain(AgentId::parse("a2").expect("id"))],
    );
    assert_eq!(fit(&less, &request(2, &[])).placeable, 5);
}

#[test]
fn offered_resources_still_count_as_placeable() {
    let mut s = cluster();
    s.agents[1].offered = Resources::parse("cpus:6;mem:5120").expect("r");
    let c = breakdown(&s);
    assert_eq!(c.agents[1].capacity.free.cpus, Scalar::ZERO);
    assert_eq!(c.agents[1].capacity.offered.cpus, Scalar::from_units(6));
    // An offer is not a commitment: the shape still fits there.
    assert_eq!(fit(&s, &request(2, &[])).agents[1].placeable, 2);
}

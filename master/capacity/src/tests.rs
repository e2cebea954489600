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
        draining: false,
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
            let reserved = row.reserved_total();
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

// ---- history ----

mod history {
    use std::collections::BTreeMap;

    use crate::{
        CLUSTER_SCOPE, History, HistoryQuery, HistorySample, MAX_HISTORY_SCOPES, breakdown,
        default_shapes, fragmentation, milli, sample,
    };

    fn at(ms: u64, cpus_allocated: f64) -> HistorySample {
        let series: BTreeMap<String, i64> = [("cpus.allocated".to_string(), milli(cpus_allocated))]
            .into_iter()
            .collect();
        HistorySample {
            at_unix_ms: ms,
            scopes: [(CLUSTER_SCOPE.to_string(), series)].into_iter().collect(),
        }
    }

    fn cluster_query() -> HistoryQuery {
        HistoryQuery {
            scope: CLUSTER_SCOPE.into(),
            ..HistoryQuery::default()
        }
    }

    #[test]
    fn n_samples_give_n_points_of_ten_seconds() {
        let mut h = History::default();
        let start = 1_700_000_000_000;
        for i in 0..30u64 {
            assert!(h.record(&at(start + i * 10_000, i as f64)));
        }
        let q = h.query(&cluster_query());
        assert_eq!(q.step_seconds, 10);
        assert_eq!(q.times.len(), 30);
        assert!(q.times.windows(2).all(|w| w[1] - w[0] == 10));
        let values = &q.series["cpus.allocated"];
        assert_eq!(values.len(), 30);
        assert_eq!(values[7], Some(7.0));
        assert_eq!(
            values[29],
            Some(29.0),
            "the bucket still filling is the last point"
        );
    }

    #[test]
    fn the_minute_ring_averages_its_samples() {
        let mut h = History::default();
        let minute = 1_700_000_040_000; // a whole minute
        for i in 0..6u64 {
            h.record(&at(minute + i * 10_000, i as f64));
        }
        h.record(&at(minute + 60_000, 100.0));
        let q = h.query(&HistoryQuery {
            step_ms: Some(60_000),
            ..cluster_query()
        });
        assert_eq!(q.step_seconds, 60);
        assert_eq!(q.times, vec![minute / 1000, minute / 1000 + 60]);
        assert_eq!(q.series["cpus.allocated"], vec![Some(2.5), Some(100.0)]);
    }

    #[test]
    fn the_ten_second_ring_keeps_an_hour_and_older_queries_go_coarser() {
        let mut h = History::default();
        let start = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000;
        for i in 0..500u64 {
            h.record(&at(start + i * 10_000, 1.0));
        }
        let fine = h.query(&cluster_query());
        // 360 closed buckets plus the one filling.
        assert_eq!(
            fine.step_seconds, 60,
            "everything kept reaches back past the 10 s ring"
        );
        let recent = h.query(&HistoryQuery {
            from_ms: Some(start + 400 * 10_000),
            ..cluster_query()
        });
        assert_eq!(recent.step_seconds, 10);
        assert_eq!(recent.times.len(), 100);
        let old = h.query(&HistoryQuery {
            from_ms: Some(start),
            ..cluster_query()
        });
        assert_eq!(old.step_seconds, 60);
        assert_eq!(old.times.first(), Some(&(start / 1000)));
    }

    #[test]
    fn an_older_sample_is_refused_and_changes_nothing() {
        let mut h = History::default();
        h.record(&at(1_700_000_100_000, 1.0));
        let before = h.clone();
        assert!(!h.record(&at(1_700_000_050_000, 9.0)));
        assert_eq!(h, before);
    }

    #[test]
    fn a_gap_leaves_no_invented_points_and_a_new_series_is_padded() {
        let mut h = History::default();
        let t = 1_700_000_000_000;
        h.record(&at(t, 1.0));
        let mut s = at(t + 100_000, 2.0);
        s.scopes
            .get_mut(CLUSTER_SCOPE)
            .expect("cluster")
            .insert("mem.free".into(), 5000);
        h.record(&s);
        h.record(&at(t + 110_000, 3.0));
        let q = h.query(&cluster_query());
        assert_eq!(q.times.len(), 3, "no points for the 90 s without samples");
        assert_eq!(q.series["mem.free"], vec![None, Some(5.0), None]);
    }

    #[test]
    fn replicas_that_apply_the_same_samples_hold_the_same_bytes() {
        let mut a = History::default();
        for i in 0..200u64 {
            a.record(&at(1_700_000_000_000 + i * 7_000, (i % 13) as f64 / 3.0));
        }
        let bytes = serde_json::to_vec(&a).expect("serialize");
        let b: History = serde_json::from_slice(&bytes).expect("deserialize");
        assert_eq!(a, b);
        assert_eq!(bytes, serde_json::to_vec(&b).expect("serialize again"));
    }

    #[test]
    fn a_sample_covers_cluster_roles_and_attribute_values_within_the_limit() {
        let snap = super::cluster();
        let cap = breakdown(&snap);
        let frag = fragmentation(&snap, &default_shapes());
        let held: BTreeMap<String, crate::Amount> = [(
            "web".to_string(),
            crate::Amount {
                cpus: agora_model::Scalar::from_units(3),
                ..crate::Amount::default()
            },
        )]
        .into_iter()
        .collect();
        let s = sample(&cap, &frag, &held, 1);
        assert_eq!(
            s.scopes["role:web"]["cpus.held"], 3000,
            "a role with only holdings is sampled"
        );
        let c = &s.scopes[CLUSTER_SCOPE];
        assert_eq!(c["cpus.total"], milli(cap.cluster.total.cpus.as_f64()));
        assert_eq!(
            c["cpus.allocated"] + c["cpus.offered"] + c["cpus.free"],
            c["cpus.total"]
        );
        assert_eq!(
            c["placeable.small"],
            milli(f64::from(frag.shapes[0].cluster))
        );
        assert!(s.scopes.keys().any(|k| k.starts_with("attr:rack=")));
        assert!(s.scopes.len() <= MAX_HISTORY_SCOPES);
    }
}

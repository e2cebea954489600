//! The pages rendered from hand-made snapshots: numbers as the capacity
//! model computes them, sorting and filtering, history charts with as many
//! points as table rows, no reference to another origin, and the script
//! budget.
use std::collections::BTreeMap;

use agora_capacity::{
    AgentSnapshot, CLUSTER_SCOPE, History, HistoryQuery, HistorySample, Snapshot, breakdown,
    default_shapes, fragmentation,
};
use agora_model::{AgentId, AttributeValue, Attributes, Resources};

use super::snapshot::UiSnapshot;
use super::{APP_JS, STYLE_CSS, agents, cluster, history, layout};

fn agent(i: usize, total: &str, allocated: &str) -> AgentSnapshot {
    AgentSnapshot {
        id: AgentId::parse(format!("agent-{i:04}")).expect("id"),
        hostname: format!("host-{i:04}"),
        attributes: Attributes(
            [(
                "rack".to_string(),
                AttributeValue::Text(format!("r{}", i % 3)),
            )]
            .into_iter()
            .collect(),
        ),
        total: Resources::parse(total).expect("total"),
        allocated: Resources::parse(allocated).expect("allocated"),
        offered: Resources::new(),
        active: true,
        draining: false,
    }
}

fn ui(agents: Vec<AgentSnapshot>) -> UiSnapshot {
    UiSnapshot {
        capacity: Snapshot { agents },
        at_unix: 1_764_460_800.0,
        ..UiSnapshot::default()
    }
}

fn cluster_html(snap: &UiSnapshot, group_by: Option<&str>) -> String {
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &default_shapes());
    let group = serde_json::json!({"member_id": 1, "role": "leader", "term": 3,
        "commit_index": 42, "applied_index": 42,
        "members": [{"id": 1, "address": "m1:5050", "etcd_address": "m1:2379", "leader": true},
                    {"id": 2, "address": "m2:5050", "etcd_address": "m2:2379", "leader": false}],
        "etcd": {"revision": 77, "keyspace_bytes": 3_145_728u64, "quota_bytes": 4_194_304u64,
                 "nospace_alarm": true}});
    layout::page(
        "Cluster",
        "/ui",
        snap.at_unix,
        cluster::body(snap, &cap, &frag, group_by, &group),
    )
    .into_string()
}

/// The text of the element carrying `data-test="{name}"`.
fn cell(html: &str, name: &str) -> String {
    let marker = format!("data-test=\"{name}\"");
    let Some(at) = html.find(&marker) else {
        panic!("no {marker} in the page");
    };
    let rest = &html[at..];
    let start = rest.find('>').map_or(0, |i| i + 1);
    let end = rest[start..].find('<').map_or(rest.len(), |i| start + i);
    rest[start..end].to_string()
}

#[test]
fn four_agents_with_two_free_cpus_fit_no_large_task() {
    let agents = (0..4)
        .map(|i| agent(i, "cpus:4;mem:16384", "cpus:2;mem:1024"))
        .collect();
    let snap = ui(agents);
    let html = cluster_html(&snap, None);
    assert_eq!(cell(&html, "cluster-cpus-total"), "16");
    assert_eq!(cell(&html, "cluster-cpus-allocated"), "8");
    assert_eq!(cell(&html, "cluster-cpus-free"), "8");
    assert_eq!(cell(&html, "placeable-large"), "0");
    assert_eq!(html.matches("data-test=\"master-row\"").count(), 2);
    assert!(html.contains("★ leader"));
    assert!(
        html.contains("8 cpus free, largest 2"),
        "the fragmentation line says why nothing large fits"
    );
}

#[test]
fn groups_sum_to_the_cluster_and_agents_without_the_attribute_are_none() {
    let mut agents: Vec<AgentSnapshot> = (0..5).map(|i| agent(i, "cpus:2;mem:1024", "")).collect();
    agents[4].attributes = Attributes::default();
    let snap = ui(agents);
    let html = cluster_html(&snap, Some("rack"));
    assert!(html.contains("data-test=\"group-r0\""));
    assert!(html.contains("data-test=\"group-(none)\""), "{html}");
    let cap = breakdown(&snap.capacity);
    assert_eq!(cap.cluster.total.cpus.to_string(), "10");
}

#[test]
fn agents_sort_and_filter_by_attribute() {
    let agents = (0..6)
        .map(|i| agent(i, &format!("cpus:{};mem:1024", i + 1), ""))
        .collect();
    let snap = ui(agents);
    let cap = breakdown(&snap.capacity);
    let q = agents::AgentsQuery {
        attrs: vec![("rack".into(), "r1".into())],
        sort: Some("cpus.free".into()),
        descending: true,
    };
    let rows = agents::rows(&cap, &q);
    let hosts: Vec<&str> = rows.iter().map(|a| a.hostname.as_str()).collect();
    assert_eq!(hosts, vec!["host-0004", "host-0001"]);
    let frag = fragmentation(&snap.capacity, &default_shapes());
    let html = agents::body(&cap, &frag, &q).into_string();
    assert_eq!(html.matches("data-test=\"agent-row\"").count(), 2);
    assert!(html.contains("cpus free ▼"));
}

#[test]
fn a_thousand_agents_render_one_row_each() {
    let agents = (0..1000)
        .map(|i| {
            agent(
                i,
                "cpus:16;mem:65536;disk:100000;ports:[31000-32000]",
                "cpus:3;mem:4096",
            )
        })
        .collect();
    let snap = ui(agents);
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &default_shapes());
    let html = agents::body(&cap, &frag, &agents::AgentsQuery::default()).into_string();
    assert_eq!(html.matches("data-test=\"agent-row\"").count(), 1000);
}

#[test]
fn the_history_chart_has_as_many_points_as_the_table_has_rows() {
    let mut h = History::default();
    for i in 0..42u64 {
        let series: BTreeMap<String, i64> = [
            ("cpus.total".to_string(), 8000),
            ("cpus.allocated".to_string(), (i % 8) as i64 * 1000),
        ]
        .into_iter()
        .collect();
        h.record(&HistorySample {
            at_unix_ms: 1_764_460_800_000 + i * 10_000,
            scopes: [(CLUSTER_SCOPE.to_string(), series)].into_iter().collect(),
        });
    }
    let series = h.query(&HistoryQuery::default());
    let html = history::body(&series, "1h").into_string();
    let rows = html.matches("data-test=\"history-row\"").count();
    assert_eq!(rows, 42);
    assert!(html.contains("data-points=\"42\""), "{html}");
}

#[test]
fn nothing_points_at_another_origin_and_the_script_is_small() {
    assert!(
        APP_JS.len() < 30 * 1024,
        "script budget: {} bytes",
        APP_JS.len()
    );
    let agents = (0..3).map(|i| agent(i, "cpus:2;mem:1024", "")).collect();
    let html = cluster_html(&ui(agents), Some("rack"));
    for text in [html.as_str(), APP_JS, STYLE_CSS] {
        for scheme in ["http://", "https://", "//cdn", "url(http"] {
            assert!(!text.contains(scheme), "{scheme} in {text:.200}");
        }
    }
}

#[test]
fn text_from_agents_is_escaped() {
    let mut a = agent(0, "cpus:1;mem:64", "");
    a.hostname = "<script>alert(1)</script>".into();
    let snap = ui(vec![a]);
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &default_shapes());
    let html = agents::body(&cap, &frag, &agents::AgentsQuery::default()).into_string();
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn only_same_origin_forms_change_deployments() {
    use axum::http::{HeaderMap, HeaderValue, header};
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("10.0.0.1:5050"));
    assert!(
        super::same_origin(&h),
        "no Origin: not a cross-site browser post"
    );
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("http://10.0.0.1:5050"),
    );
    assert!(super::same_origin(&h));
    h.insert(
        header::ORIGIN,
        HeaderValue::from_static("http://evil.example"),
    );
    assert!(!super::same_origin(&h));
    h.insert(header::ORIGIN, HeaderValue::from_static("null"));
    assert!(!super::same_origin(&h));
}

#[test]
fn a_draining_agent_shows_as_draining() {
    let mut a = agent(0, "cpus:1;mem:64", "");
    a.active = false;
    a.draining = true;
    let snap = ui(vec![a, agent(1, "cpus:1;mem:64", "")]);
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &default_shapes());
    let html = agents::body(&cap, &frag, &agents::AgentsQuery::default()).into_string();
    assert_eq!(html.matches("draining").count(), 1, "{html}");
    assert_eq!(html.matches("✓ active").count(), 1);
    let page = cluster_html(&snap, None);
    assert!(page.contains("data-test=\"agents-draining\">1<"), "{page}");
}

#[test]
fn roles_show_weight_reservations_and_what_their_frameworks_hold() {
    let mut snap = ui(vec![agent(0, "cpus:4;mem:4096;cpus(web):2", "")]);
    snap.weights.insert("web".into(), 2.0);
    let held = agora_capacity::Amount {
        cpus: agora_model::Scalar::from_milli(1500),
        ..agora_capacity::Amount::default()
    };
    snap.role_held.insert("web".into(), held);
    let html = cluster_html(&snap, None);
    assert!(html.contains("data-test=\"role-web\""), "{html}");
    assert_eq!(cell(&html, "role-held-cpus-web"), "1.5");
}

#[test]
fn a_role_history_charts_reserved_and_held() {
    let mut h = History::default();
    let series: BTreeMap<String, i64> = [
        ("cpus.reserved".to_string(), 2000),
        ("cpus.held".to_string(), 1500),
    ]
    .into_iter()
    .collect();
    h.record(&HistorySample {
        at_unix_ms: 1_764_460_800_000,
        scopes: [("role:web".to_string(), series)].into_iter().collect(),
    });
    let q = h.query(&HistoryQuery {
        scope: "role:web".into(),
        ..HistoryQuery::default()
    });
    let html = history::body(&q, "1h").into_string();
    assert!(html.contains("cpus held"), "{html}");
    assert!(!html.contains("cpus free"), "a role has no free series");
    assert!(html.contains(">1.5<"), "{html}");
}

#[test]
fn the_masters_section_shows_the_etcd_keyspace_against_its_quota_and_the_alarm() {
    let html = cluster_html(&ui(vec![]), None);
    assert_eq!(cell(&html, "keyspace-bytes"), "3.0 MiB");
    assert_eq!(cell(&html, "keyspace-quota"), "4.0 MiB");
    assert!(html.contains("(75.0%) · revision 77"), "{html}");
    assert!(cell(&html, "nospace").starts_with("NOSPACE alarm"));
}

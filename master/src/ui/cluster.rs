//! `/ui`: the cluster's resources by state, the roles and frameworks,
//! fragmentation per reference shape, and groups by an attribute.
use std::collections::BTreeMap;

use agora_capacity::{AgentCapacity, Amount, Capacity, Fragmentation};
use maud::{Markup, html};

use super::layout::{num, percent};
use super::snapshot::UiSnapshot;
use super::svg::{Segment, stacked_bar};

/// A dimension of [`Amount`]: name, unit, value as text, value as number.
pub(crate) type Dim = (
    &'static str,
    &'static str,
    fn(&Amount) -> String,
    fn(&Amount) -> f64,
);

/// The dimensions, in display order.
pub(crate) const DIMS: [Dim; 5] = [
    ("cpus", "", |a| num(a.cpus), |a| a.cpus.as_f64()),
    ("mem", "MB", |a| num(a.mem), |a| a.mem.as_f64()),
    ("disk", "MB", |a| num(a.disk), |a| a.disk.as_f64()),
    ("gpus", "", |a| num(a.gpus), |a| a.gpus.as_f64()),
    ("ports", "", |a| a.ports.to_string(), |a| a.ports as f64),
];

/// The whole page body; `group` is the masters' group as this member
/// sees it (`http::replication_json`).
pub(crate) fn body(
    snap: &UiSnapshot,
    cap: &Capacity,
    frag: &Fragmentation,
    group_by: Option<&str>,
    group: &serde_json::Value,
) -> Markup {
    let active = cap.agents.iter().filter(|a| a.active).count();
    let draining = cap.agents.iter().filter(|a| a.draining).count();
    html! {
        p.summary data-test="summary" {
            span data-test="agents-count" { (cap.agents.len()) } " agents (" (active) " active"
            @if draining > 0 { ", " span data-test="agents-draining" { (draining) } " draining" }
            ") · "
            span data-test="frameworks-count" { (snap.frameworks.len()) } " frameworks · "
            span data-test="tasks-count" { (snap.tasks) } " tasks · "
            span data-test="offers-count" { (snap.offers) } " outstanding offers"
        }
        (resources(cap))
        (fragmentation(cap, frag))
        (groups(cap, group_by))
        (roles(snap, cap))
        (frameworks(snap))
        (masters(group))
    }
}

/// The masters' group: who leads, in which term, how far each log is.
fn masters(group: &serde_json::Value) -> Markup {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "–".into(),
        other => other.to_string(),
    };
    html! {
        h2 { "Masters" }
        p data-test="raft" {
            "term " (text(&group["term"])) " · commit index " (text(&group["commit_index"]))
            " · applied index " (text(&group["applied_index"])) " · this member is "
            (text(&group["member_id"])) " (" (text(&group["role"])) ")"
        }
        (keyspace(&group["etcd"]))
        table data-test="masters" {
            thead { tr { th { "member" } th { "address" } th { "etcd API" } th { "role" } } }
            tbody {
                @for m in group["members"].as_array().into_iter().flatten() {
                    tr data-test="master-row" {
                        th { (text(&m["id"])) } td { (text(&m["address"])) } td { (text(&m["etcd_address"])) }
                        td { @if m["leader"] == true { "★ leader" } @else { "standby" } }
                    }
                }
            }
        }
    }
}

/// The etcd keyspace against its space quota, and the NOSPACE alarm that
/// refuses writes once it is reached.
fn keyspace(etcd: &serde_json::Value) -> Markup {
    let held = etcd["keyspace_bytes"].as_u64().unwrap_or(0);
    let quota = etcd["quota_bytes"].as_u64().unwrap_or(0);
    html! {
        p data-test="keyspace" {
            "etcd keyspace: " span data-test="keyspace-bytes" { (mebibytes(held)) }
            " of a " span data-test="keyspace-quota" { (mebibytes(quota)) } " quota ("
            (percent(held as f64, quota as f64)) ") · revision " (etcd["revision"].as_i64().unwrap_or(0))
            @if etcd["nospace_alarm"] == true {
                " · " strong.bad data-test="nospace" {
                    "NOSPACE alarm: writes are refused until space is freed and the alarm disarmed"
                }
            }
        }
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn resources(cap: &Capacity) -> Markup {
    let c = &cap.cluster;
    let reserved = c.reserved_total();
    html! {
        h2 { "Resources" }
        p.note { "allocated + offered + free = total; reserved is the part of total set aside for roles." }
        table data-test="resources" {
            thead { tr {
                th { "resource" } th.n { "total" } th.n { "reserved" } th.n { "allocated" }
                th.n { "offered" } th.n { "free" } th.n { "allocated %" } th.bar-cell { "allocated · offered · free" }
            } }
            tbody {
                @for (name, unit, text, value) in DIMS {
                    tr data-test={ "resource-" (name) } {
                        th { (name) @if !unit.is_empty() { " (" (unit) ")" } }
                        td.n data-test={ "cluster-" (name) "-total" } { (text(&c.total)) }
                        td.n data-test={ "cluster-" (name) "-reserved" } { (text(&reserved)) }
                        td.n data-test={ "cluster-" (name) "-allocated" } { (text(&c.allocated)) }
                        td.n data-test={ "cluster-" (name) "-offered" } { (text(&c.offered)) }
                        td.n data-test={ "cluster-" (name) "-free" } { (text(&c.free)) }
                        td.n { (percent(value(&c.allocated), value(&c.total))) }
                        td.bar-cell { (stacked_bar(name, &[
                            Segment { class: "allocated", label: "allocated", value: value(&c.allocated) },
                            Segment { class: "offered", label: "offered", value: value(&c.offered) },
                            Segment { class: "free", label: "free", value: value(&c.free) },
                        ])) }
                    }
                }
            }
        }
    }
}

fn fragmentation(cap: &Capacity, frag: &Fragmentation) -> Markup {
    let largest = |get: fn(&Amount) -> f64| {
        frag.agents
            .iter()
            .map(|a| get(&a.largest))
            .fold(0.0f64, f64::max)
    };
    let stranded = frag
        .agents
        .iter()
        .fold(Amount::default(), |s, a| s.plus(a.stranded));
    let free = &cap.cluster.free;
    html! {
        h2 { "What fits now" }
        p data-test="largest-cpus" {
            (num(free.cpus)) " cpus free, largest " (super::svg::trim(largest(|a| a.cpus.as_f64())))
            " · " (num(free.mem)) " MB mem free, largest " (super::svg::trim(largest(|a| a.mem.as_f64())))
        }
        p data-test="stranded" {
            "Stranded (free where the smallest shape no longer fits): "
            (num(stranded.cpus)) " cpus, " (num(stranded.mem)) " MB mem"
        }
        table data-test="shapes" {
            thead { tr { th { "reference shape" } th.n { "cpus" } th.n { "mem (MB)" } th.n { "placeable instances" } } }
            tbody {
                @for s in &frag.shapes {
                    tr {
                        th { (s.shape.name) }
                        td.n { (num(s.shape.cpus)) }
                        td.n { (num(s.shape.mem)) }
                        td.n data-test={ "placeable-" (s.shape.name) } { (s.cluster) }
                    }
                }
            }
        }
    }
}

/// Rows per value of `attr` ("(none)" for agents without it), summed.
fn group_rows(agents: &[AgentCapacity], attr: &str) -> BTreeMap<String, (usize, [Amount; 4])> {
    let mut out: BTreeMap<String, (usize, [Amount; 4])> = BTreeMap::new();
    for a in agents {
        let key = a
            .attributes
            .get(attr)
            .cloned()
            .unwrap_or_else(|| "(none)".into());
        let e = out.entry(key).or_default();
        let c = &a.capacity;
        e.0 += 1;
        for (slot, v) in
            e.1.iter_mut()
                .zip([c.total, c.allocated, c.offered, c.free])
        {
            *slot = slot.plus(v);
        }
    }
    out
}

fn groups(cap: &Capacity, group_by: Option<&str>) -> Markup {
    let attrs: Vec<&String> = cap.by_attribute.keys().collect();
    let chosen = group_by.filter(|g| !g.is_empty());
    html! {
        h2 { "By attribute" }
        form method="get" action="/ui" {
            label { "group by " select name="group_by" {
                option value="" { "—" }
                @for a in &attrs {
                    @if Some(a.as_str()) == chosen { option value=(a) selected { (a) } }
                    @else { option value=(a) { (a) } }
                }
            } }
            " " button type="submit" { "show" }
        }
        @if let Some(attr) = chosen {
            table data-test="groups" {
                thead { tr {
                    th { (attr) } th.n { "agents" }
                    th.n { "cpus total" } th.n { "cpus allocated" } th.n { "cpus offered" } th.n { "cpus free" }
                    th.n { "mem total" } th.n { "mem allocated" } th.n { "mem offered" } th.n { "mem free" }
                } }
                tbody {
                    @for (value, (n, [total, allocated, offered, free])) in group_rows(&cap.agents, attr) {
                        tr data-test={ "group-" (value) } {
                            th { (value) } td.n { (n) }
                            td.n { (num(total.cpus)) } td.n { (num(allocated.cpus)) }
                            td.n { (num(offered.cpus)) } td.n { (num(free.cpus)) }
                            td.n { (num(total.mem)) } td.n { (num(allocated.mem)) }
                            td.n { (num(offered.mem)) } td.n { (num(free.mem)) }
                        }
                    }
                }
                tfoot { tr {
                    th { "cluster" } td.n { (cap.agents.len()) }
                    td.n { (num(cap.cluster.total.cpus)) } td.n { (num(cap.cluster.allocated.cpus)) }
                    td.n { (num(cap.cluster.offered.cpus)) } td.n { (num(cap.cluster.free.cpus)) }
                    td.n { (num(cap.cluster.total.mem)) } td.n { (num(cap.cluster.allocated.mem)) }
                    td.n { (num(cap.cluster.offered.mem)) } td.n { (num(cap.cluster.free.mem)) }
                } }
            }
        }
    }
}

fn roles(snap: &UiSnapshot, cap: &Capacity) -> Markup {
    let mut names: Vec<String> = cap.roles.keys().cloned().collect();
    names.extend(snap.weights.keys().cloned());
    names.extend(snap.role_held.keys().cloned());
    names.extend(snap.frameworks.iter().flat_map(|f| f.roles.clone()));
    names.sort();
    names.dedup();
    html! {
        h2 { "Roles" }
        p.note { "held: what the role's frameworks hold in running tasks and outstanding offers (what DRF counts)." }
        table data-test="roles" {
            thead { tr {
                th { "role" } th.n { "weight" } th.n { "reserved cpus" } th.n { "reserved mem (MB)" }
                th.n { "held cpus" } th.n { "held mem (MB)" } th { "frameworks" }
            } }
            tbody {
                @for role in &names {
                    @let reserved = cap.roles.get(role).copied().unwrap_or_default();
                    @let held = snap.role_held.get(role).copied().unwrap_or_default();
                    @let fws: Vec<&str> = snap.frameworks.iter().filter(|f| f.roles.contains(role)).map(|f| f.name.as_str()).collect();
                    tr data-test={ "role-" (role) } {
                        th { (role) }
                        td.n { (snap.weights.get(role).map_or("1".to_string(), |w| super::svg::trim(*w))) }
                        td.n { (num(reserved.cpus)) }
                        td.n { (num(reserved.mem)) }
                        td.n data-test={ "role-held-cpus-" (role) } { (num(held.cpus)) }
                        td.n { (num(held.mem)) }
                        td { (fws.join(", ")) }
                    }
                }
            }
        }
    }
}

fn frameworks(snap: &UiSnapshot) -> Markup {
    html! {
        h2 { "Frameworks" }
        table data-test="frameworks" {
            thead { tr {
                th { "name" } th { "id" } th { "roles" } th { "state" } th.n { "tasks" }
                th.n { "allocated cpus" } th.n { "allocated mem (MB)" } th.n { "offered cpus" } th.n { "offered mem (MB)" }
            } }
            tbody {
                @for f in &snap.frameworks {
                    tr {
                        th { (f.name) } td.id { (f.id) } td { (f.roles.join(", ")) }
                        td { @if f.connected { "✓ subscribed" } @else { "✗ disconnected" } }
                        td.n { (f.tasks) }
                        td.n { (num(f.allocated.cpus)) } td.n { (num(f.allocated.mem)) }
                        td.n { (num(f.offered.cpus)) } td.n { (num(f.offered.mem)) }
                    }
                }
            }
        }
    }
}

//! `/ui/agents`: one row per agent, sortable by any column and filterable
//! by attribute (`?attr=rack:r1&sort=cpus.free&order=desc`), with each
//! agent's placeable instances per reference shape and largest task.
use std::collections::BTreeMap;

use agora_capacity::{AgentCapacity, AgentFragment, Capacity, Fragmentation};
use maud::{Markup, html};

use super::layout::num;

/// What the page is asked.
#[derive(Debug, Default, Clone)]
pub(crate) struct AgentsQuery {
    /// `name:value` attribute filters (all must match).
    pub(crate) attrs: Vec<(String, String)>,
    /// A sort key from [`SORT_KEYS`].
    pub(crate) sort: Option<String>,
    pub(crate) descending: bool,
}

/// Sortable columns: key, header.
const SORT_KEYS: [(&str, &str); 9] = [
    ("hostname", "hostname"),
    ("cpus.total", "cpus total"),
    ("cpus.allocated", "cpus allocated"),
    ("cpus.free", "cpus free"),
    ("mem.total", "mem total"),
    ("mem.allocated", "mem allocated"),
    ("mem.free", "mem free"),
    ("disk.free", "disk free"),
    ("gpus.free", "gpus free"),
];

fn sort_value(a: &AgentCapacity, key: &str) -> f64 {
    let c = &a.capacity;
    match key {
        "cpus.total" => c.total.cpus.as_f64(),
        "cpus.allocated" => c.allocated.cpus.as_f64(),
        "cpus.free" => c.free.cpus.as_f64(),
        "mem.total" => c.total.mem.as_f64(),
        "mem.allocated" => c.allocated.mem.as_f64(),
        "mem.free" => c.free.mem.as_f64(),
        "disk.free" => c.free.disk.as_f64(),
        "gpus.free" => c.free.gpus.as_f64(),
        _ => 0.0,
    }
}

/// The agents that pass the filters, in the asked order.
pub(crate) fn rows<'a>(cap: &'a Capacity, q: &AgentsQuery) -> Vec<&'a AgentCapacity> {
    let mut out: Vec<&AgentCapacity> = cap
        .agents
        .iter()
        .filter(|a| {
            q.attrs
                .iter()
                .all(|(k, v)| a.attributes.get(k).is_some_and(|x| x == v))
        })
        .collect();
    match q.sort.as_deref() {
        Some("hostname") => out.sort_by(|a, b| a.hostname.cmp(&b.hostname)),
        Some(key) if SORT_KEYS.iter().any(|(k, _)| *k == key) => {
            out.sort_by(|a, b| sort_value(a, key).total_cmp(&sort_value(b, key)))
        }
        _ => {}
    }
    if q.descending {
        out.reverse();
    }
    out
}

fn sort_link(q: &AgentsQuery, key: &str, header: &str) -> Markup {
    let descending = q.sort.as_deref() == Some(key) && !q.descending;
    let mut params: Vec<(String, String)> = q
        .attrs
        .iter()
        .map(|(k, v)| ("attr".to_string(), format!("{k}:{v}")))
        .collect();
    params.push(("sort".into(), key.into()));
    if descending {
        params.push(("order".into(), "desc".into()));
    }
    let href = format!(
        "/ui/agents?{}",
        serde_urlencoded::to_string(&params).unwrap_or_default()
    );
    let mark = match (q.sort.as_deref() == Some(key), q.descending) {
        (true, false) => " ▲",
        (true, true) => " ▼",
        _ => "",
    };
    html! { a href=(href) data-test={ "sort-" (key) } { (header) (mark) } }
}

/// The whole page body.
pub(crate) fn body(cap: &Capacity, frag: &Fragmentation, q: &AgentsQuery) -> Markup {
    let agents = rows(cap, q);
    let fragments: BTreeMap<&str, &AgentFragment> =
        frag.agents.iter().map(|f| (f.id.as_str(), f)).collect();
    let attr_values: Vec<String> = cap
        .by_attribute
        .iter()
        .flat_map(|(k, vs)| vs.keys().map(move |v| format!("{k}:{v}")))
        .collect();
    let current: Vec<String> = q.attrs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    html! {
        form method="get" action="/ui/agents" data-test="agent-filter" {
            label { "attribute " select name="attr" {
                option value="" { "any" }
                @for v in &attr_values {
                    @if current.contains(v) { option value=(v) selected { (v) } }
                    @else { option value=(v) { (v) } }
                }
            } }
            @if let Some(s) = &q.sort { input type="hidden" name="sort" value=(s); }
            " " button type="submit" { "filter" }
        }
        p data-test="agents-shown" { (agents.len()) " of " (cap.agents.len()) " agents" }
        table data-test="agents" {
            thead { tr {
                th { "id" } th { (sort_link(q, "hostname", "hostname")) } th { "attributes" } th { "state" }
                @for (key, header) in &SORT_KEYS[1..] { th.n { (sort_link(q, key, header)) } }
                th.n { "ports free" }
                @for s in &frag.shapes { th.n { "placeable " (s.shape.name) } }
                th { "largest task" }
            } }
            tbody {
                @for a in &agents {
                    @let c = &a.capacity;
                    @let f = fragments.get(a.id.as_str());
                    tr data-test="agent-row" data-agent=(a.id) {
                        td.id { (a.id) }
                        th { (a.hostname) }
                        td { @for (k, v) in &a.attributes { span.attr { (k) ":" (v) } " " } }
                        td { @if a.draining { "⚠ draining" } @else if a.active { "✓ active" } @else { "✗ inactive" } }
                        td.n { (num(c.total.cpus)) } td.n { (num(c.allocated.cpus)) }
                        td.n data-test="cpus-free" { (num(c.free.cpus)) }
                        td.n { (num(c.total.mem)) } td.n { (num(c.allocated.mem)) }
                        td.n data-test="mem-free" { (num(c.free.mem)) }
                        td.n { (num(c.free.disk)) } td.n { (num(c.free.gpus)) } td.n { (c.free.ports) }
                        @for s in &frag.shapes {
                            td.n { (s.agents.get(&a.id).copied().unwrap_or(0)) }
                        }
                        td { @if let Some(f) = f {
                            (num(f.largest.cpus)) " cpus, " (num(f.largest.mem)) " MB"
                            @if let Some(x) = &f.exhausted { " (" (x) " exhausted)" }
                        } }
                    }
                }
            }
        }
    }
}

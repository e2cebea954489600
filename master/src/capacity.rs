//! `/api/v1/capacity` and `/api/v1/capacity/fit`: the loop copies a
//! [`agora_capacity::Snapshot`] out (`Master::capacity_snapshot`), and the
//! handlers run the pure capacity model on it outside the loop.
use agora_capacity::{
    AgentSnapshot, FitRequest, HistoryQuery, HistorySample, MAX_FIT, MAX_PORTS, ReferenceShape,
    Snapshot, WhatIf, breakdown, fit, fragmentation, sample, what_if,
};
use agora_marathon_planner::parse_constraints;
use agora_model::{Role, Scalar};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use crate::event_loop::Command;
use crate::http::HttpState;
use crate::registry::RegistryCommand;
use crate::route;
use crate::state::{AfterCommit, AgentStatus, Master};

impl Master {
    /// What the capacity model needs, copied at one instant.
    pub(crate) fn capacity_snapshot(&self) -> Snapshot {
        Snapshot {
            agents: self
                .agents
                .values()
                .map(|a| AgentSnapshot {
                    id: a.id.clone(),
                    hostname: a.hostname.clone(),
                    attributes: a.attributes.clone(),
                    total: a.total.clone(),
                    allocated: a.used.clone(),
                    offered: a.offered.clone(),
                    active: a.conn.status() == AgentStatus::Connected && !self.is_draining(&a.id),
                    draining: self.is_draining(&a.id),
                })
                .collect(),
        }
    }
}

impl Master {
    /// Proposes one capacity sample for the replicated utilisation history.
    pub(crate) fn record_capacity(&mut self, sample: Box<HistorySample>) {
        let cmd = RegistryCommand::RecordCapacity { sample };
        // Nothing waits for it; a failed write only loses one sample.
        let _ = self.propose(vec![cmd], AfterCommit::Nothing);
    }
}

/// One history sample of a snapshot: the breakdown and a dry-run fit per
/// reference shape over every agent, so it runs off the event loop.
pub(crate) fn compute_sample(
    snap: &Snapshot,
    shapes: &[ReferenceShape],
    role_held: &std::collections::BTreeMap<String, agora_capacity::Amount>,
    at_unix_ms: u64,
) -> HistorySample {
    let cap = breakdown(snap);
    let frag = fragmentation(snap, shapes);
    sample(&cap, &frag, role_held, at_unix_ms)
}

/// The leader's snapshot, or a redirect/503 answer.
async fn snapshot(s: &HttpState, path: &str) -> Result<Snapshot, Response> {
    let current = route::current(&s.route);
    let Ok(core) = current.core() else {
        return Err(crate::http::redirect(current.leader(), path));
    };
    let (reply, rx) = oneshot::channel();
    if core.tx.send(Command::GetCapacity { reply }).await.is_err() {
        return Err(crate::http::unavailable());
    }
    rx.await.map_err(|_| crate::http::unavailable())
}

/// `GET /api/v1/capacity`.
pub(crate) async fn capacity(State(s): State<HttpState>) -> Response {
    match snapshot(&s, "/api/v1/capacity").await {
        Ok(snap) => {
            let mut v = serde_json::to_value(breakdown(&snap)).unwrap_or_default();
            if let serde_json::Value::Object(m) = &mut v {
                let frag = fragmentation(&snap, &s.shapes);
                m.insert(
                    "fragmentation".into(),
                    serde_json::to_value(frag).unwrap_or_default(),
                );
            }
            axum::Json(v).into_response()
        }
        Err(r) => r,
    }
}

/// A query field that cannot be read: a 400 naming it.
pub(crate) struct QueryError {
    pub(crate) path: String,
    pub(crate) error: String,
}

impl QueryError {
    pub(crate) fn response(self) -> Response {
        let body = json!({"message": "invalid query", "details": [{"path": self.path, "errors": [self.error]}]});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

fn bad(path: &str, error: impl ToString) -> QueryError {
    QueryError {
        path: path.to_string(),
        error: error.to_string(),
    }
}

/// The fit request from `cpus=&mem=&disk=&gpus=&ports=&role=&count=` and
/// repeated `constraint=FIELD:OPERATOR[:VALUE]`.
pub(crate) fn fit_request(query: Option<&str>) -> Result<FitRequest, QueryError> {
    let pairs = query_pairs(query)?;
    let get = |k: &str| first(&pairs, k);
    let scalar = |k: &str, default: f64| -> Result<Scalar, QueryError> {
        let v = match get(k) {
            Some(t) => t.parse::<f64>().map_err(|e| bad(&format!("/{k}"), e))?,
            None => default,
        };
        Scalar::from_f64(v)
            .ok()
            .filter(|s| *s >= Scalar::ZERO)
            .ok_or_else(|| bad(&format!("/{k}"), "must be a number ≥ 0"))
    };
    let int = |k: &str| -> Result<Option<u32>, QueryError> {
        get(k)
            .map(|t| t.parse::<u32>().map_err(|e| bad(&format!("/{k}"), e)))
            .transpose()
    };
    let raw: Vec<Vec<String>> = pairs
        .iter()
        .filter(|(k, _)| k == "constraint")
        .map(|(_, v)| v.splitn(3, ':').map(str::to_string).collect())
        .collect();
    let constraints = parse_constraints(&raw).map_err(|v| {
        let errors: Vec<String> = v.iter().flat_map(|x| x.errors.clone()).collect();
        bad(
            v.first().map_or("/constraint", |x| x.path.as_str()),
            errors.join("; "),
        )
    })?;
    let role = Role::parse(get("role").unwrap_or("*")).map_err(|e| bad("/role", e))?;
    let (cpus, mem, disk) = (
        scalar("cpus", 0.1)?,
        scalar("mem", 128.0)?,
        scalar("disk", 0.0)?,
    );
    let gpus = int("gpus")?.unwrap_or(0);
    let ports = int("ports")?.unwrap_or(0);
    if ports > MAX_PORTS {
        return Err(bad("/ports", format!("at most {MAX_PORTS} per instance")));
    }
    // Refused rather than clamped: an answer for fewer than were asked
    // would not say whether the count asked for fits.
    let count = int("count")?;
    if count.is_some_and(|c| c > MAX_FIT) {
        return Err(bad(
            "/count",
            format!("at most {MAX_FIT} (leave it out to ask how many fit, up to {MAX_FIT})"),
        ));
    }
    let req = FitRequest {
        cpus,
        mem,
        disk,
        gpus,
        ports,
        role,
        constraints,
        count,
    };
    if req.asks_for_nothing() {
        return Err(bad(
            "/cpus",
            "cpus, mem, disk, gpus and ports are all 0: a shape must ask for something, or any number fits",
        ));
    }
    Ok(req)
}

/// "What if" changes from `add_agent=RESOURCES[@ATTR=VALUE,...]` and
/// `drain=AGENT_ID`, both repeatable.
pub(crate) fn what_ifs(query: Option<&str>) -> Result<Vec<WhatIf>, QueryError> {
    let pairs = query_pairs(query)?;
    let mut out = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "add_agent" => {
                let (res, attrs) = v.split_once('@').unwrap_or((v.as_str(), ""));
                let resources =
                    agora_model::Resources::parse(res).map_err(|e| bad("/add_agent", e))?;
                let text = attrs.replace(',', ";").replace('=', ":");
                let attributes =
                    agora_model::Attributes::parse(&text).map_err(|e| bad("/add_agent", e))?;
                out.push(WhatIf::AddAgent {
                    resources,
                    attributes,
                });
            }
            "drain" => {
                let id = agora_model::AgentId::parse(v).map_err(|e| bad("/drain", e))?;
                out.push(WhatIf::Drain(id));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `GET /api/v1/capacity/fit?...`: how many more of this shape fit (after
/// the "what if" changes, if any).
pub(crate) async fn capacity_fit(State(s): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let (req, changes) = match (fit_request(q.as_deref()), what_ifs(q.as_deref())) {
        (Ok(r), Ok(w)) => (r, w),
        (Err(e), _) | (_, Err(e)) => return e.response(),
    };
    let path = match &q {
        Some(q) => format!("/api/v1/capacity/fit?{q}"),
        None => "/api/v1/capacity/fit".into(),
    };
    match snapshot(&s, &path).await {
        Ok(snap) => axum::Json(fit(&what_if(&snap, &changes), &req)).into_response(),
        Err(r) => r,
    }
}

/// One exported dimension: metric suffix, help, unit scale, and reader.
type Dimension = (
    &'static str,
    &'static str,
    f64,
    fn(&agora_capacity::Amount) -> f64,
);

/// Prometheus text for the capacity model, in base units: per agent and
/// state (`allocated`, `offered`, `free`: the three sum to the agent's
/// total), instances placeable per reference shape, and what is stranded
/// per agent.
pub(crate) fn metrics_text(snap: &Snapshot, shapes: &[ReferenceShape]) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let cap = breakdown(snap);
    let mut out = String::new();
    let dims: [Dimension; 5] = [
        ("cpus", "CPUs", 1.0, |a| a.cpus.as_f64()),
        ("memory_bytes", "Memory, bytes", MB, |a| a.mem.as_f64()),
        ("disk_bytes", "Disk, bytes", MB, |a| a.disk.as_f64()),
        ("gpus", "GPUs", 1.0, |a| a.gpus.as_f64()),
        ("ports", "Host ports", 1.0, |a| a.ports as f64),
    ];
    for (name, what, scale, get) in dims {
        out.push_str(&format!(
            "# HELP agora_capacity_{name} {what} per agent by state (allocated, offered, free: they sum to the agent's total).\n# TYPE agora_capacity_{name} gauge\n"
        ));
        for a in &cap.agents {
            let c = &a.capacity;
            for (state, amount) in [
                ("allocated", &c.allocated),
                ("offered", &c.offered),
                ("free", &c.free),
            ] {
                out.push_str(&format!(
                    "agora_capacity_{name}{{agent=\"{}\",hostname=\"{}\",state=\"{state}\"}} {}\n",
                    escape(&a.id),
                    escape(&a.hostname),
                    get(amount) * scale
                ));
            }
        }
    }
    let frag = fragmentation(snap, shapes);
    out.push_str("# HELP agora_capacity_placeable_instances Instances of each reference shape that fit now, cluster-wide.\n# TYPE agora_capacity_placeable_instances gauge\n");
    for s in &frag.shapes {
        out.push_str(&format!(
            "agora_capacity_placeable_instances{{shape=\"{}\"}} {}\n",
            escape(&s.shape.name),
            s.cluster
        ));
    }
    // Stranded: free on an agent that cannot take even the smallest shape.
    let stranded: [Dimension; 2] = [
        ("cpus", "CPUs", 1.0, |a| a.cpus.as_f64()),
        ("memory_bytes", "Memory, bytes,", MB, |a| a.mem.as_f64()),
    ];
    for (name, what, scale, get) in stranded {
        out.push_str(&format!("# HELP agora_capacity_stranded_{name} {what} free per agent but unusable by the smallest reference shape.\n# TYPE agora_capacity_stranded_{name} gauge\n"));
        for a in &frag.agents {
            let v = get(&a.stranded) * scale;
            let id = escape(&a.id);
            out.push_str(&format!(
                "agora_capacity_stranded_{name}{{agent=\"{id}\"}} {v}\n"
            ));
        }
    }
    out
}

/// A Prometheus label value, escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The history query from `scope=&from=&to=&step=` (Unix seconds, step in
/// seconds) or `range=1h|24h|30d|SECONDS` (from that long before now).
fn history_query(query: Option<&str>, now_unix_ms: u64) -> Result<HistoryQuery, QueryError> {
    let pairs = query_pairs(query)?;
    let get = |k: &str| first(&pairs, k);
    let seconds = |k: &str| -> Result<Option<u64>, QueryError> {
        get(k)
            .map(|t| {
                t.parse::<u64>()
                    .map_err(|e| bad(&format!("/{k}"), e))
                    .map(|s| s.saturating_mul(1000))
            })
            .transpose()
    };
    let mut from_ms = seconds("from")?;
    if let Some(range) = get("range") {
        let span = parse_span(range).ok_or_else(|| {
            bad(
                "/range",
                "expected seconds or a number with s, m, h or d (1h, 30d)",
            )
        })?;
        from_ms = Some(now_unix_ms.saturating_sub(span.saturating_mul(1000)));
    }
    Ok(HistoryQuery {
        scope: get("scope").unwrap_or(agora_capacity::CLUSTER_SCOPE).into(),
        from_ms,
        to_ms: seconds("to")?,
        step_ms: seconds("step")?,
    })
}

/// `90`, `90s`, `15m`, `1h`, `30d` → seconds.
pub(crate) fn parse_span(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// `GET /api/v1/capacity/history?...`: the replicated utilisation history.
pub(crate) async fn capacity_history(
    State(s): State<HttpState>,
    RawQuery(q): RawQuery,
) -> Response {
    let now_ms = (crate::clock::unix_now() * 1000.0) as u64;
    let query = match history_query(q.as_deref(), now_ms) {
        Ok(query) => query,
        Err(e) => return e.response(),
    };
    let path = match &q {
        Some(q) => format!("/api/v1/capacity/history?{q}"),
        None => "/api/v1/capacity/history".into(),
    };
    match history(&s, query, &path).await {
        Ok(series) => axum::Json(series).into_response(),
        Err(r) => r,
    }
}

/// A query string's `key=value` pairs, in order (keys may repeat).
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, QueryError> {
    Ok(query
        .map(serde_urlencoded::from_str)
        .transpose()
        .map_err(|e| bad("/", e))?
        .unwrap_or_default())
}

/// The first value of `key`.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The leader's history for `query`, or the redirect (to `path` on the
/// leader) or 503 a standby answers.
pub(crate) async fn history(
    s: &HttpState,
    query: HistoryQuery,
    path: &str,
) -> Result<agora_capacity::HistorySeries, Response> {
    let current = route::current(&s.route);
    let Ok(core) = current.core() else {
        return Err(crate::http::redirect(current.leader(), path));
    };
    let (reply, rx) = oneshot::channel();
    if core
        .tx
        .send(Command::GetHistory { query, reply })
        .await
        .is_err()
    {
        return Err(crate::http::unavailable());
    }
    rx.await.map_err(|_| crate::http::unavailable())
}

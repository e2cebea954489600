//! `/ui/apps`: each Marathon's apps, its deployments (step i/N, the
//! actions, old and new instances staged/running/healthy, elapsed time,
//! Stop and Rollback) and why instances wait (the queue's offer funnel).
use maud::{Markup, html};
use serde_json::Value;

use super::marathon::MarathonState;

/// One Marathon as the page shows it.
pub(crate) struct MarathonView {
    pub(crate) name: String,
    pub(crate) framework_id: String,
    pub(crate) url: String,
    pub(crate) state: Result<MarathonState, String>,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Staged, running and healthy counts of tasks whose version is (or is not)
/// the app's.
#[derive(Default, Clone, Copy)]
struct Counts {
    staged: u64,
    running: u64,
    healthy: u64,
}

fn instance_counts(app: &Value, new: bool) -> Counts {
    let version = text(app, "version");
    let mut c = Counts::default();
    for t in app
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if (text(t, "version") == version) != new {
            continue;
        }
        match text(t, "state").as_str() {
            "TASK_STAGING" | "TASK_STARTING" => c.staged += 1,
            "TASK_RUNNING" => {
                c.running += 1;
                let checks = t.get("healthCheckResults").and_then(Value::as_array);
                if checks.is_some_and(|cs| {
                    !cs.is_empty()
                        && cs
                            .iter()
                            .all(|r| r.get("alive").and_then(Value::as_bool) == Some(true))
                }) {
                    c.healthy += 1;
                }
            }
            _ => {}
        }
    }
    c
}

fn status(app: &Value, m: &MarathonState) -> &'static str {
    let id = text(app, "id");
    let deploying = m.deployments.iter().any(|d| {
        d.get("affectedApps")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&id)))
    });
    let waiting = m
        .queue
        .iter()
        .any(|q| q.get("app").map(|a| text(a, "id")) == Some(id.clone()));
    match (deploying, waiting, count(app, "instances")) {
        (_, true, _) => "Waiting",
        (true, false, _) => "Deploying",
        (false, false, 0) => "Suspended",
        _ => "Running",
    }
}

/// The page body.
pub(crate) fn body(views: &[MarathonView], now_unix: f64) -> Markup {
    html! {
        @if views.is_empty() {
            p data-test="no-marathon" { "No framework has registered a web address (Marathon sets one)." }
        }
        @for v in views {
            section data-test="marathon" {
                h2 { (v.name) " " small.id { (v.framework_id) " · " (v.url) } }
                @match &v.state {
                    Err(e) => { p.error role="alert" { "Could not ask it: " (e) } }
                    Ok(m) => { (apps(m)) (deployments(v, m, now_unix)) (queue(m)) }
                }
            }
        }
    }
}

fn apps(m: &MarathonState) -> Markup {
    html! {
        h3 { "Apps" }
        table data-test="apps" {
            thead { tr {
                th { "app" } th { "image / command" } th.n { "instances" } th.n { "staged" }
                th.n { "running" } th.n { "healthy" } th { "status" } th { "version" }
            } }
            tbody {
                @for a in &m.apps {
                    @let image = a.pointer("/container/docker/image").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| text(a, "cmd"));
                    tr data-test="app-row" data-app=(text(a, "id")) {
                        th { (text(a, "id")) } td { (image) }
                        td.n data-test="app-instances" { (count(a, "instances")) }
                        td.n { (count(a, "tasksStaged")) }
                        td.n data-test="app-running" { (count(a, "tasksRunning")) }
                        td.n { (count(a, "tasksHealthy")) }
                        td data-test="app-status" { (status(a, m)) }
                        td { (text(a, "version")) }
                    }
                }
            }
        }
    }
}

/// Seconds since an ISO-8601 UTC time Marathon printed, if it can be read.
fn age_seconds(iso: &str, now_unix: f64) -> Option<u64> {
    let at_ms = agora_model::utc::parse_ms(iso)?;
    u64::try_from(now_unix as i64 - (at_ms / 1000) as i64).ok()
}

fn deployments(v: &MarathonView, m: &MarathonState, now_unix: f64) -> Markup {
    html! {
        h3 { "Deployments" }
        @if m.deployments.is_empty() { p data-test="no-deployments" { "None in progress." } }
        @for d in &m.deployments {
            @let id = text(d, "id");
            @let affected: Vec<String> = d.get("affectedApps").and_then(Value::as_array).into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect();
            @let actions: Vec<String> = d.get("currentActions").and_then(Value::as_array).into_iter().flatten().map(|a| format!("{} {}", text(a, "action"), text(a, "app"))).collect();
            div.deployment data-test="deployment" data-deployment=(id) {
                p {
                    strong { "step " span data-test="deployment-step" { (count(d, "currentStep")) "/" (count(d, "totalSteps")) } }
                    " · " (actions.join(", "))
                    " · running for " (age_seconds(&text(d, "version"), now_unix).map_or("?".to_string(), |s| format!("{s} s")))
                    " · " span.id { (id) }
                }
                table {
                    thead { tr { th { "app" } th.n { "old staged" } th.n { "old running" } th.n { "old healthy" } th.n { "new staged" } th.n { "new running" } th.n { "new healthy" } th.n { "target" } } }
                    tbody {
                        @for app_id in &affected {
                            @if let Some(app) = m.apps.iter().find(|a| text(a, "id") == *app_id) {
                                @let (old, new) = (instance_counts(app, false), instance_counts(app, true));
                                tr data-app=(app_id) {
                                    th { (app_id) }
                                    td.n { (old.staged) } td.n { (old.running) } td.n { (old.healthy) }
                                    td.n { (new.staged) } td.n data-test="new-running" { (new.running) } td.n { (new.healthy) }
                                    td.n { (count(app, "instances")) }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/ui/apps/deployment" class="inline" {
                    input type="hidden" name="framework" value=(v.framework_id);
                    input type="hidden" name="id" value=(id);
                    button type="submit" name="action" value="rollback" data-test="rollback" { "Rollback" }
                    " "
                    button type="submit" name="action" value="stop" data-test="stop" { "Stop (keep as is)" }
                }
            }
        }
    }
}

fn queue(m: &MarathonState) -> Markup {
    html! {
        h3 { "Waiting" }
        @if m.queue.is_empty() { p data-test="queue-empty" { "Nothing waits for resources." } }
        @for q in &m.queue {
            @let app = q.get("app").map(|a| text(a, "id")).unwrap_or_default();
            @let funnel = q.pointer("/processedOffersSummary/rejectSummaryLastOffers").and_then(Value::as_array).cloned().unwrap_or_default();
            div.waiting data-test="waiting" data-app=(app) {
                p {
                    strong { (app) } ": " span data-test="waiting-count" { (count(q, "count")) } @if count(q, "count") == 1 { " instance waiting" } @else { " instances waiting" }
                    @if let Some(left) = q.pointer("/delay/timeLeftSeconds").and_then(Value::as_u64) {
                        @if left > 0 { " · launch delayed " (left) " s more (backoff)" }
                    }
                }
                table {
                    thead { tr { th { "offer check" } th.n { "offers turned away" } th.n { "offers looked at" } } }
                    tbody {
                        @for s in &funnel {
                            tr data-reason=(text(s, "reason")) {
                                th { (text(s, "reason")) } td.n { (count(s, "declined")) } td.n { (count(s, "processed")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

//! `agora why APP`: why an app's instances wait. Marathon's launch queue
//! says how many wait, their launch delay and why the offers seen were
//! declined; the master's capacity model then says where the app's shape
//! could go right now, under its constraints, and what blocks it on each
//! agent. Exit 0 when nothing waits, 2 when instances wait.
use clap::Args;
use serde_json::Value;

use crate::client::get_json as fetch;

#[derive(Args, Debug, Clone)]
pub(crate) struct WhyArgs {
    /// The app id, e.g. /prod/web.
    pub(crate) app: String,
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
}

/// The fit query's fields for an app's shape and constraints (shared
/// with `agora app plan`).
pub(crate) fn shape_query(app: &Value) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&'static str, String)> = vec![
        ("cpus", app["cpus"].to_string()),
        ("mem", app["mem"].to_string()),
        ("disk", app["disk"].to_string()),
        ("gpus", app["gpus"].to_string()),
        (
            "ports",
            app["portDefinitions"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ),
    ];
    for c in app["constraints"].as_array().into_iter().flatten() {
        let parts: Vec<String> = c
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        q.push(("constraint", parts.join(":")));
    }
    q
}

/// The capacity model's query for an app's shape and constraints.
fn fit_query(app: &Value) -> anyhow::Result<String> {
    Ok(serde_urlencoded::to_string(shape_query(app))?)
}

/// Each agent's share of a fit answer: hostname, instances, bottleneck.
pub(crate) fn print_fit_agents(fit: &Value) {
    for ag in fit["agents"].as_array().into_iter().flatten() {
        println!(
            "  {:<24} {:>4}  {}",
            ag["hostname"].as_str().unwrap_or_default(),
            ag["placeable"],
            ag["bottleneck"].as_str().unwrap_or("-")
        );
    }
}

/// `agora why`; returns the exit code.
pub(crate) fn why(a: &WhyArgs) -> anyhow::Result<i32> {
    let id = if a.app.starts_with('/') {
        a.app.clone()
    } else {
        format!("/{}", a.app)
    };
    let app = fetch(&a.ep.marathon, &format!("/v2/apps{id}"))?["app"].clone();
    let queue = fetch(&a.ep.marathon, "/v2/queue")?;
    let item = queue["queue"]
        .as_array()
        .and_then(|q| q.iter().find(|i| i["app"]["id"] == id.as_str()))
        .cloned();
    println!(
        "{id}: {} wanted, {} running, {} healthy",
        app["instances"], app["tasksRunning"], app["tasksHealthy"]
    );
    let Some(item) = item else {
        println!("nothing waits for resources");
        return Ok(0);
    };
    let summary = &item["processedOffersSummary"];
    println!(
        "{} instance(s) waiting since {}; launch delay {} s{}",
        item["count"],
        item["since"].as_str().unwrap_or("?"),
        item["delay"]["timeLeftSeconds"],
        app["lastTaskFailure"]["message"]
            .as_str()
            .map_or(String::new(), |m| format!(" (last failure: {m})")),
    );
    println!(
        "offers processed: {}, unused: {}",
        summary["processedOffersCount"], summary["unusedOffersCount"]
    );
    for r in summary["rejectSummaryLastOffers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if r["declined"].as_u64().is_some_and(|n| n > 0) {
            println!(
                "  declined for {}: {} of {}",
                r["reason"].as_str().unwrap_or("?"),
                r["declined"],
                r["processed"]
            );
        }
    }
    let fit = fetch(
        &a.ep.master,
        &format!("/api/v1/capacity/fit?{}", fit_query(&app)?),
    )?;
    println!("right now {} more of this shape fit:", fit["placeable"]);
    print_fit_agents(&fit);
    Ok(2)
}

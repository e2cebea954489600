//! The few Marathon v2 calls the client commands share.
use anyhow::Context;
use serde_json::Value;

use crate::client::request;

/// One request; the status and the body as JSON (`null` when empty).
pub(crate) fn call(
    marathon: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    let r = request(marathon, method, path, body)?;
    let v = if r.body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&r.body).with_context(|| format!("{path}: not JSON: {}", r.body))?
    };
    Ok((r.status, v))
}

/// An app id as Marathon spells it: absolute, with a leading `/`.
pub(crate) fn app_id(id: &str) -> String {
    if id.starts_with('/') {
        id.to_string()
    } else {
        format!("/{id}")
    }
}

/// Whether instances of an app wait in `/v2/queue`, and if so the reasons
/// offers were declined, e.g. "InsufficientCpus ×3" (empty before any).
pub(crate) fn waiting_reasons(marathon: &str, id: &str) -> Option<String> {
    let (_, q) = call(marathon, "GET", "/v2/queue", "").ok()?;
    let item = q["queue"]
        .as_array()?
        .iter()
        .find(|i| i["app"]["id"] == id && i["count"].as_u64().is_some_and(|n| n > 0))?
        .clone();
    let reasons = item["processedOffersSummary"]["rejectSummaryLastOffers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["declined"].as_u64().is_some_and(|n| n > 0))
        .map(|r| format!("{} ×{}", r["reason"].as_str().unwrap_or("?"), r["declined"]))
        .collect::<Vec<_>>();
    Some(reasons.join(", "))
}

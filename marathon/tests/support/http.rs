//! JSON exchanges with Marathon over the workspace's raw HTTP/1.1 test
//! client (`agora_tests::http_request`), bounded in time.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// One exchange takes at most this long: a server that stops answering
/// fails the test instead of hanging it.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// `method path` with an optional JSON body; the status and the body as
/// JSON (`null` when empty).
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let body = body.map(Value::to_string);
    let exchange = agora_tests::http_request(addr, method, path, body.as_deref());
    let (status, _, text) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer within {EXCHANGE_TIMEOUT:?}"))?
        .with_context(|| format!("{method} {path}"))?;
    let json = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))?
    };
    Ok((status, json))
}

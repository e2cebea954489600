//! Readiness checks (Marathon's `readinessChecks`): Marathon itself GETs
//! `http://host:port/path` of each new instance every `interval` until the
//! answer's status is one of `httpStatusCodesForReady`; a rolling restart
//! kills an old instance only once a new one is healthy *and* ready. One
//! task per probed instance, started and stopped by the loop's effects;
//! the result comes back as a loop command.
use std::collections::HashMap;
use std::time::Duration;

use agora_marathon_planner::InstanceId;
use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::event_loop::Command;

/// Probe commands queued at most.
pub(crate) const PROBE_QUEUE: usize = 1024;

/// What the loop asks of the prober.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Start checking an instance.
    Start {
        instance: InstanceId,
        url: String,
        interval: Duration,
        timeout: Duration,
        ready_codes: Vec<u16>,
    },
    /// Stop checking it (killed, gone or ready).
    Stop(InstanceId),
}

/// Runs probes until the loop goes away.
pub(crate) async fn run(mut rx: mpsc::Receiver<Probe>, back: mpsc::Sender<Command>) {
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut probes: HashMap<InstanceId, JoinHandle<()>> = HashMap::new();
    while let Some(p) = rx.recv().await {
        probes.retain(|_, h| !h.is_finished());
        match p {
            Probe::Start {
                instance,
                url,
                interval,
                timeout,
                ready_codes,
            } => {
                let task = tokio::spawn(probe(
                    client.clone(),
                    instance.clone(),
                    url,
                    interval,
                    timeout,
                    ready_codes,
                    back.clone(),
                ));
                if let Some(old) = probes.insert(instance, task) {
                    old.abort();
                }
            }
            Probe::Stop(instance) => {
                if let Some(h) = probes.remove(&instance) {
                    h.abort();
                }
            }
        }
    }
    for h in probes.values() {
        h.abort();
    }
}

async fn probe(
    client: Client<HttpConnector, Body>,
    instance: InstanceId,
    url: String,
    interval: Duration,
    timeout: Duration,
    ready_codes: Vec<u16>,
    back: mpsc::Sender<Command>,
) {
    let Ok(uri) = url.parse::<axum::http::Uri>() else {
        tracing::warn!(%url, "readiness check: not a URL");
        return;
    };
    loop {
        let answer = tokio::time::timeout(timeout, client.get(uri.clone())).await;
        if let Ok(Ok(resp)) = answer
            && ready_codes.contains(&resp.status().as_u16())
        {
            let _ = back.send(Command::Ready(instance)).await;
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

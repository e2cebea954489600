//! Helpers for the Marathon end-to-end tests: a master serving the etcd
//! API, real agents with rack attributes and private hostnames, and
//! polling on Marathon's JSON.
use std::time::Duration;

use agora_agent::AgentHandle;
use agora_model::{AttributeValue, Attributes};
use agora_tests::{TestMarathon, TestMaster};
use serde_json::Value;

use crate::agent_support::{agent_config, start_agent};

/// Longest wait for a deployment step in these tests.
pub(crate) const DEPLOY_WAIT: Duration = Duration::from_secs(90);

/// A master with its etcd API on an ephemeral port.
pub(crate) async fn master_with_etcd() -> anyhow::Result<(TestMaster, std::net::SocketAddr)> {
    let mut cfg = TestMaster::fast_config();
    cfg.group.etcd_listen = Some("127.0.0.1:0".parse()?);
    let master = TestMaster::start_with(cfg).await;
    let etcd = master
        .etcd_addr()
        .ok_or_else(|| anyhow::anyhow!("the master serves no etcd API"))?;
    Ok((master, etcd))
}

/// A real agent named `host` on rack `rack`.
pub(crate) async fn agent_on(
    master: &TestMaster,
    dir: &std::path::Path,
    host: &str,
    rack: &str,
    docker: bool,
) -> anyhow::Result<AgentHandle> {
    let mut cfg = agent_config(master, dir);
    cfg.hostname = Some(host.to_string());
    cfg.attributes = Attributes(
        [("rack".to_string(), AttributeValue::Text(rack.into()))]
            .into_iter()
            .collect(),
    );
    if !docker {
        cfg.docker = agora_agent::DockerMode::Disabled;
    }
    start_agent(cfg).await
}

/// Waits until `/v2/apps{id}` satisfies `ok`; returns the app.
pub(crate) async fn wait_app(
    m: &TestMarathon,
    id: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let path = format!("/v2/apps{id}");
    agora_tests::eventually(what, DEPLOY_WAIT, || async {
        let (code, body) = m.get(&path).await.ok()?;
        (code == 200 && ok(&body["app"])).then(|| body["app"].clone())
    })
    .await
}

/// No deployment in flight.
pub(crate) async fn wait_no_deployments(m: &TestMarathon) -> anyhow::Result<()> {
    agora_tests::eventually("no deployments", DEPLOY_WAIT, || async {
        let (code, body) = m.get("/v2/deployments").await.ok()?;
        (code == 200 && body.as_array().is_some_and(Vec::is_empty)).then_some(())
    })
    .await
}

/// Task ids of an app's tasks.
pub(crate) fn task_ids(app: &Value) -> Vec<String> {
    let mut ids: Vec<String> = app["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// `n` tasks running (and healthy, if the app has checks).
pub(crate) fn serving(app: &Value, n: u64) -> bool {
    let checks = app["healthChecks"]
        .as_array()
        .is_some_and(|c| !c.is_empty());
    let running = app["tasksRunning"].as_u64() == Some(n);
    let healthy = !checks || app["tasksHealthy"].as_u64() == Some(n);
    running && healthy && app["tasks"].as_array().is_some_and(|t| t.len() as u64 == n)
}

/// Task status events, in the order `/v2/events` sent them: (task id,
/// state). Runs until the handle is aborted.
pub(crate) type StatusLog = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Reads the Server-Sent Events of `path` line by line into `on_line`
/// until the task is aborted (or the stream ends).
pub(crate) fn follow_events(
    m: &TestMarathon,
    path: &str,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let addr = m.addr;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            return;
        };
        if s.write_all(req.as_bytes()).await.is_err() {
            return;
        }
        let mut lines = BufReader::new(s).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            on_line(&line);
        }
    })
}

pub(crate) fn watch_status_events(m: &TestMarathon) -> (StatusLog, tokio::task::JoinHandle<()>) {
    let log: StatusLog = Default::default();
    let out = log.clone();
    let task = follow_events(
        m,
        "/v2/events?event_type=status_update_event",
        move |line| {
            let Some(data) = line.strip_prefix("data: ") else {
                return;
            };
            if let Ok(v) = serde_json::from_str::<Value>(data)
                && let (Some(id), Some(state)) = (v["taskId"].as_str(), v["taskStatus"].as_str())
                && let Ok(mut l) = out.lock()
            {
                l.push((id.to_string(), state.to_string()));
            }
        },
    );
    (log, task)
}

//! The running compose cluster seen from the test (the host routes to the
//! compose network, so its fixed addresses are reachable directly): the
//! masters' group, their /state, Marathon's REST API and the etcd API.
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use agora_tests::{eventually, http_request};
use serde_json::Value;

/// One request's bound: a killed container's address does not answer at
/// all, and a poll must move on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The cluster's fixed addresses on its /24.
#[derive(Debug, Clone)]
pub(crate) struct Addrs {
    pub(crate) net: String,
}

impl Addrs {
    /// Master `id`'s API (gRPC and HTTP).
    pub(crate) fn master(&self, id: u64) -> SocketAddr {
        self.at(10 + id as u8, 5050)
    }
    /// Master `id`'s etcd v3 API.
    pub(crate) fn etcd(&self, id: u64) -> String {
        format!("http://{}", self.at(10 + id as u8, 2379))
    }
    /// Marathon process `n` (1 or 2).
    pub(crate) fn marathon(&self, n: u8) -> SocketAddr {
        self.at(20 + n, 8080)
    }
    fn at(&self, host: u8, port: u16) -> SocketAddr {
        let ip = format!("{}.{host}", self.net);
        SocketAddr::new(ip.parse().unwrap_or([127, 0, 0, 1].into()), port)
    }
}

/// One request, JSON in and out; `None` on any failure or timeout.
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let body = body.map(Value::to_string);
    let request = http_request(addr, method, path, body.as_deref());
    let (code, _, text) = tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .ok()?
        .ok()?;
    Some((code, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The leader every member of `ids` that answers agrees on (at least two
/// must answer, a majority of three), once they do and it is one of `ids`
/// (after a kill, the survivors name the dead leader until they notice).
pub(crate) async fn agreed_leader(
    addrs: &Addrs,
    ids: &[u64],
    wait: Duration,
) -> anyhow::Result<u64> {
    eventually("the masters to agree on a leader", wait, || async {
        let mut seen = Vec::new();
        for id in ids {
            if let Some((200, body)) = call(addrs.master(*id), "GET", "/members", None).await {
                seen.push(body["leader_id"].as_u64());
            }
        }
        let first = seen.first().copied().flatten()?;
        let agreed = seen.len() >= 2 && seen.iter().all(|l| *l == Some(first));
        (agreed && ids.contains(&first)).then_some(first)
    })
    .await
}

/// The leader's /state.
pub(crate) async fn state(addrs: &Addrs, leader: u64) -> Option<Value> {
    match call(addrs.master(leader), "GET", "/state", None).await? {
        (200, body) => Some(body),
        _ => None,
    }
}

/// Ids of the tasks the master's /state lists as running.
pub(crate) fn running_tasks(state: &Value) -> BTreeSet<String> {
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    frameworks
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .filter(|t| t["state"] == "TASK_RUNNING")
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

/// Hostnames of the agents connected to the master whose /state this is.
pub(crate) fn connected_agents(state: &Value) -> BTreeSet<String> {
    let agents = state["agents"].as_array().into_iter().flatten();
    agents
        .filter(|a| a["status"] == "connected")
        .filter_map(|a| a["hostname"].as_str().map(str::to_string))
        .collect()
}

/// Is Marathon subscribed (active) at the master whose /state this is?
pub(crate) fn marathon_active(state: &Value) -> bool {
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    frameworks
        .filter(|f| f["name"] == "marathon")
        .any(|f| f["active"] == true && f["connected"] == true)
}

/// Ids of an app's tasks as Marathon shows them.
pub(crate) fn task_ids(app: &Value) -> BTreeSet<String> {
    let tasks = app["tasks"].as_array().into_iter().flatten();
    tasks
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

/// `n` tasks running and healthy, and no deployment of the app in flight.
pub(crate) fn settled(app: &Value, n: u64) -> bool {
    app["tasksRunning"].as_u64() == Some(n)
        && app["tasksHealthy"].as_u64() == Some(n)
        && app["tasks"].as_array().is_some_and(|t| t.len() as u64 == n)
        && app["deployments"].as_array().is_some_and(Vec::is_empty)
}

/// Waits until Marathon (either process: a standby proxies to the
/// leader) shows app `id` satisfying `ok`; returns it.
pub(crate) async fn wait_app(
    addrs: &Addrs,
    id: &str,
    what: &str,
    wait: Duration,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let path = format!("/v2/apps{id}");
    eventually(what, wait, || async {
        for n in [1, 2] {
            if let Some((200, body)) = call(addrs.marathon(n), "GET", &path, None).await
                && ok(&body["app"])
            {
                return Some(body["app"].clone());
            }
        }
        None
    })
    .await
}

/// What a task's HTTP server answers on the agent's host (the agents and
/// their tasks share this machine's network).
pub(crate) async fn served_by(task: &Value) -> Option<String> {
    let port = task["ports"][0].as_u64()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).ok()?));
    let request = http_request(addr, "GET", "/", None);
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok((200, _, body))) => Some(body.trim().to_string()),
        _ => None,
    }
}

/// Puts a key through whichever etcd endpoint answers.
pub(crate) async fn etcd_put(endpoints: &[String], key: &str, value: &str) -> anyhow::Result<()> {
    eventually("an etcd put", Duration::from_secs(30), || async {
        let mut client = etcd(endpoints).await?;
        client.put(key, value, None).await.ok().map(|_| ())
    })
    .await
}

/// Reads a key (linearizably) through one endpoint.
pub(crate) async fn etcd_get(endpoint: &str, key: &str) -> Option<String> {
    let mut client = etcd(&[endpoint.to_string()]).await?;
    let response = client.get(key, None).await.ok()?;
    let kv = response.kvs().first()?;
    Some(String::from_utf8_lossy(kv.value()).into_owned())
}

async fn etcd(endpoints: &[String]) -> Option<etcd_client::Client> {
    let options = etcd_client::ConnectOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(Duration::from_secs(2));
    etcd_client::Client::connect(endpoints, Some(options))
        .await
        .ok()
}

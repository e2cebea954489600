//! Maintenance end to end (`agora agent drain|undrain`): a real master,
//! simulated agents whose tasks run until killed, and Marathon. Draining
//! the agent that holds one of an app's two instances moves that instance
//! to another agent while the running count never drops below the upgrade
//! strategy's floor; nothing new lands on the drained agent; the capacity
//! model counts it under maintenance; undraining brings its offers back.
//! A drain is in the registry, so it survives a leader crash.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agora_model::Resources;
use agora_tests::{SimAgent, SimAgentConfig, TestMarathon, TestMaster, http_get, http_request};
use serde_json::{Value, json};

use crate::marathon_support::{DEPLOY_WAIT, master_with_etcd, wait_app, wait_no_deployments};

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let (code, _, body) = http_request(addr, "POST", path, body).await?;
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((code, json))
}

async fn get_json(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, Value)> {
    let (code, body) = http_get(addr, path).await?;
    Ok((code, serde_json::from_str(&body)?))
}

/// The entry of `agents` (in /state or /api/v1/capacity) with this id, or null.
fn agent_in(doc: &Value, id: &str) -> Value {
    doc["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or_default()
}

fn sim(i: usize) -> SimAgentConfig {
    SimAgentConfig {
        resources: Resources::parse("cpus:2;mem:2048;disk:100;ports:[31000-31009]")
            .unwrap_or_default(),
        hostname: format!("sim-{i}"),
        ..SimAgentConfig::default()
    }
}

/// The hosts an app's tasks run on, by task id (each sim agent has its own
/// hostname).
fn placements(app: &Value) -> Vec<(String, String)> {
    app["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t["id"].as_str()?.to_string(),
                t["host"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The master's id for the agent with this hostname.
async fn agent_on_host(master: &TestMaster, host: &str) -> anyhow::Result<String> {
    let state = master.state().await?;
    state["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["hostname"] == host)
        .and_then(|a| a["id"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("no agent on {host}: {state}"))
}

/// Samples the app's running count while the instance moves: the lowest
/// seen (`u64::MAX` if it never read the app).
fn watch_running(
    m: &TestMarathon,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let lowest = Arc::new(AtomicU64::new(u64::MAX));
    let (low, addr) = (lowest.clone(), m.addr);
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            if let Ok((200, _, body)) = http_request(addr, "GET", "/v2/apps/web", None).await
                && let Ok(v) = serde_json::from_str::<Value>(&body)
                && let Some(n) = v["app"]["tasksRunning"].as_u64()
            {
                low.fetch_min(n, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (lowest, task)
}

#[tokio::test]
async fn drain_moves_a_marathon_instance_and_undrain_brings_offers_back() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (master, etcd) = master_with_etcd().await?;
    // Two agents first: the moved instance cannot go anywhere until a
    // third joins, so what the drain shows meanwhile can be checked.
    let mut sims = Vec::new();
    for i in 0..2 {
        sims.push(SimAgent::start(&master.endpoint(), sim(i)).await);
    }
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-drain").await?;
    m.wait_leader(Duration::from_secs(20)).await?;
    // Default strategy {1.0, 1.0}: the floor is both instances, so the
    // replacement must run before the drained instance is killed.
    let app = json!({"id": "/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 2,
                     "constraints": [["hostname", "UNIQUE"]]});
    let (code, body) = m.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 201, "{body}");
    let before = wait_app(&m, "/web", "2 running", |a| a["tasksRunning"] == 2).await?;
    wait_no_deployments(&m).await?;
    let before = placements(&before);
    let (moved_task, drained_host) = before[0].clone();
    let (kept_task, _) = before[1].clone();
    let drained = agent_on_host(&master, &drained_host).await?;

    // Bad input first: unknown agent 404, bad body 400, both with the path.
    let (code, body) = post(master.addr, "/api/v1/agents/nobody/drain", None).await?;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["path"], "/agent_id");
    let path = format!("/api/v1/agents/{drained}/drain");
    let (code, body) = post(master.addr, &path, Some(r#"{"deadline_seconds": -1}"#)).await?;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["path"], "/deadline_seconds");

    let (code, body) = post(master.addr, &path, Some(r#"{"deadline_seconds": 600}"#)).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["draining"], true);

    // With nowhere to go (UNIQUE, two hosts) the replacement waits, and the
    // floor of 2 keeps the drained instance running; both are shown.
    let waiting = agora_tests::eventually(
        "the replacement waits, marked draining",
        DEPLOY_WAIT,
        || async {
            let (_, q) = m.get("/v2/queue").await.ok()?;
            let item = q["queue"].as_array()?.first()?.clone();
            (item["draining"] == 1 && item["count"] == 1).then_some(item)
        },
    )
    .await?;
    assert_eq!(waiting["app"]["id"], "/web");
    let (_, app_now) = m.get("/v2/apps/web").await?;
    assert_eq!(app_now["app"]["tasksRunning"], 2, "{app_now}");
    let marked: Vec<&Value> = app_now["app"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["draining"] == true)
        .collect();
    assert_eq!(marked.len(), 1, "{app_now}");
    assert_eq!(marked[0]["id"], moved_task.as_str());

    let stop = Arc::new(AtomicBool::new(false));
    let (lowest, sampler) = watch_running(&m, stop.clone());
    sims.push(SimAgent::start(&master.endpoint(), sim(2)).await);

    let after = wait_app(
        &m,
        "/web",
        "the instance moved off the drained agent",
        |a| {
            let p = placements(a);
            a["tasksRunning"] == 2
                && p.len() == 2
                && p.iter().all(|(_, host)| *host != drained_host)
        },
    )
    .await?;
    stop.store(true, Ordering::SeqCst);
    sampler.await?;
    let after = placements(&after);
    assert!(
        after.iter().any(|(t, _)| *t == kept_task),
        "the other instance stayed: {after:?}"
    );
    assert!(after.iter().all(|(t, _)| *t != moved_task));
    let lowest = lowest.load(Ordering::SeqCst);
    assert_ne!(lowest, u64::MAX, "the sampler never read the app");
    assert!(lowest >= 2, "running dropped below the floor of 2");

    // Nothing new on the drained agent: it only ever had the moved task.
    let mut drained_sim = None;
    for s in &sims {
        if s.agent_id().await.to_string() == drained {
            drained_sim = Some(s);
        }
    }
    let drained_sim = drained_sim.ok_or_else(|| anyhow::anyhow!("no sim is {drained}"))?;
    let on_it: BTreeSet<String> = drained_sim
        .tasks()
        .await
        .into_iter()
        .map(|(t, _)| t.to_string())
        .collect();
    assert!(on_it.iter().all(|t| *t == moved_task), "{on_it:?}");

    // Shown everywhere: /state, the capacity breakdown and the fit funnel.
    let state = master.state().await?;
    let agent = agent_in(&state, &drained);
    assert_eq!(agent["maintenance"]["state"], "draining", "{agent}");
    assert_eq!(agent["active"], false);
    assert_eq!(
        state["activated_agents"], 2,
        "a draining agent is not active"
    );
    assert!(
        agent["maintenance"]["deadline_time"].as_f64()
            > agent["maintenance"]["since_time"].as_f64()
    );
    let (_, cap) = get_json(master.addr, "/api/v1/capacity").await?;
    let row = agent_in(&cap, &drained);
    assert_eq!(row["draining"], true, "{row}");
    let (_, fit) = get_json(master.addr, "/api/v1/capacity/fit?cpus=0.1&mem=32").await?;
    let stage = fit["funnel"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["stage"] == "maintenance")
        .cloned()
        .unwrap_or_default();
    assert_eq!(stage["rejected"], 1, "{fit}");
    let (_, metrics) = http_get(master.addr, "/metrics").await?;
    assert!(
        metrics.contains("\nagora_master_agents_draining 1\n"),
        "{metrics}"
    );

    // Undrain: the agent offers again; a third UNIQUE instance can only go there.
    let (code, body) = post(
        master.addr,
        &format!("/api/v1/agents/{drained}/undrain"),
        None,
    )
    .await?;
    assert_eq!(code, 200, "{body}");
    let mut three = app.clone();
    three["instances"] = json!(3);
    let (code, body) = m.call("PUT", "/v2/apps/web", Some(&three)).await?;
    assert_eq!(code, 200, "{body}");
    let scaled = wait_app(&m, "/web", "3 running", |a| a["tasksRunning"] == 3).await?;
    assert!(
        placements(&scaled).iter().any(|(_, h)| *h == drained_host),
        "no task on the undrained agent"
    );
    eprintln!(
        "drain end to end took {:?} (deploy wait cap {DEPLOY_WAIT:?})",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_drain_survives_a_leader_crash() -> anyhow::Result<()> {
    let settle = Duration::from_secs(40);
    let mut group = agora_tests::TestGroup::start(3, TestMaster::fast_config()).await?;
    let leader = group.leader(settle).await?;
    let agent = SimAgent::start(&group.addresses(), sim(0)).await;
    let id = agent.agent_id().await;
    let path = format!("/api/v1/agents/{id}/drain");
    // A standby sends the operator to the leader.
    if let Some(standby) = group.masters.keys().find(|m| **m != leader).copied() {
        let (code, _) = post(group.masters[&standby].addr, &path, None).await?;
        assert_eq!(code, 307);
    }
    let (code, body) = post(group.masters[&leader].addr, &path, None).await?;
    assert_eq!(code, 200, "{body}");
    if let Some(m) = group.masters.get_mut(&leader) {
        m.crash();
    }
    let new_leader = group.leader(settle).await?;
    assert_ne!(new_leader, leader);
    let state = agora_tests::eventually(
        "the drained agent in the new leader's /state",
        settle,
        || async {
            let (code, v) = get_json(group.masters[&new_leader].addr, "/state")
                .await
                .ok()?;
            let a = v["agents"]
                .as_array()?
                .iter()
                .find(|a| a["id"] == id.to_string().as_str())?
                .clone();
            (code == 200).then_some(a)
        },
    )
    .await?;
    assert_eq!(state["maintenance"]["state"], "draining", "{state}");
    Ok(())
}

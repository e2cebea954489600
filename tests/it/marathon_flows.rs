//! More Marathon flows end to end (process tasks on real agents, so no
//! Docker needed): GROUP_BY over racks, a blue-green upgrade, a rollback by
//! `DELETE /v2/deployments/{id}`, a rollback to a stored version, a killed
//! task replaced, a crashing app slowed by backoff, and the leading master
//! of a 3-master group killed mid-deployment.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_tests::{TestGroup, TestMarathon, TestMaster};
use serde_json::{Value, json};

use crate::agent_support::{agent_config, start_agent};
use crate::marathon_support::*;

fn sleeper(id: &str, instances: u32, cmd: &str) -> Value {
    json!({"id": id, "cmd": cmd, "cpus": 0.1, "mem": 16, "instances": instances})
}

/// Tasks per rack, from the hosts' names (`host-<rack>-<n>`).
fn per_rack(app: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in app["tasks"].as_array().into_iter().flatten() {
        let host = t["host"].as_str().unwrap_or_default();
        let rack = host.split('-').nth(1).unwrap_or_default().to_string();
        *out.entry(rack).or_default() += 1;
    }
    out
}

/// The lowest `tasksRunning` seen while it runs.
fn running_floor_probe(
    m: &TestMarathon,
    id: &'static str,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let lowest = Arc::new(AtomicU64::new(u64::MAX));
    let addr = m.addr;
    let low = lowest.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Ok((200, _, body)) =
                agora_tests::http_request(addr, "GET", &format!("/v2/apps{id}"), None).await
                && let Ok(v) = serde_json::from_str::<Value>(&body)
                && let Some(n) = v["app"]["tasksRunning"].as_u64()
            {
                low.fetch_min(n, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (lowest, task)
}

#[tokio::test]
async fn marathon_group_by_blue_green_rollbacks_kills_and_backoff() -> anyhow::Result<()> {
    let (master, etcd) = master_with_etcd().await?;
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let _a = agent_on(&master, dirs[0].path(), "host-r1-a", "r1", false).await?;
    let _b = agent_on(&master, dirs[1].path(), "host-r1-b", "r1", false).await?;
    let _c = agent_on(&master, dirs[2].path(), "host-r2-c", "r2", false).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-flows").await?;
    m.wait_leader(Duration::from_secs(20)).await?;

    // GROUP_BY rack: 4 instances over 2 racks of unequal size → 2 and 2.
    let mut grouped = sleeper("/racks", 4, "sleep 300");
    grouped["constraints"] = json!([["rack", "GROUP_BY"]]);
    assert_eq!(m.call("POST", "/v2/apps", Some(&grouped)).await?.0, 201);
    let app = wait_app(&m, "/racks", "4 running", |a| serving(a, 4)).await?;
    assert_eq!(
        per_rack(&app),
        BTreeMap::from([("r1".into(), 2), ("r2".into(), 2)]),
        "{app}"
    );

    // Blue-green ({1.0, 1.0}): never fewer than 2 running, then only new ones.
    let mut bg = sleeper("/bg", 2, "sleep 300");
    bg["upgradeStrategy"] = json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0});
    assert_eq!(m.call("POST", "/v2/apps", Some(&bg)).await?.0, 201);
    let before = task_ids(&wait_app(&m, "/bg", "2 running", |a| serving(a, 2)).await?);
    wait_no_deployments(&m).await?;
    let (lowest, probe) = running_floor_probe(&m, "/bg");
    let (log, events) = watch_status_events(&m);
    tokio::time::sleep(Duration::from_millis(200)).await;
    bg["cmd"] = json!("sleep 301");
    assert_eq!(m.call("PUT", "/v2/apps/bg", Some(&bg)).await?.0, 200);
    wait_no_deployments(&m).await?;
    let after = wait_app(&m, "/bg", "2 new running", |a| {
        serving(a, 2) && a["cmd"] == "sleep 301"
    })
    .await?;
    probe.abort();
    let new_ids = task_ids(&after);
    assert!(new_ids.iter().all(|t| !before.contains(t)));
    assert!(
        lowest.load(Ordering::SeqCst) >= 2,
        "blue-green dropped below 2 running"
    );
    // The whole new version ran before any old instance was killed.
    let killed_old = || -> Option<usize> {
        let l = log.lock().ok()?;
        l.iter()
            .position(|(id, st)| before.contains(id) && st == "TASK_KILLED")
    };
    agora_tests::eventually("the old tasks' kills reported", DEPLOY_WAIT, || async {
        killed_old()
    })
    .await?;
    events.abort();
    let l = log.lock().map(|l| l.clone()).unwrap_or_default();
    let first_kill = l
        .iter()
        .position(|(id, st)| before.contains(id) && st == "TASK_KILLED");
    let last_new_running = l
        .iter()
        .rposition(|(id, st)| new_ids.contains(id) && st == "TASK_RUNNING");
    assert!(
        matches!((last_new_running, first_kill), (Some(r), Some(k)) if r < k),
        "an old task died before the new version was up: {l:?}"
    );

    // Rollback by DELETE /v2/deployments/{id}: a definition that cannot be
    // placed, reverted; the running tasks are never touched.
    let kept = task_ids(&after);
    let mut huge = bg.clone();
    huge["cpus"] = json!(100);
    let (code, body) = m.call("PUT", "/v2/apps/bg", Some(&huge)).await?;
    assert_eq!(code, 200, "{body}");
    let stuck = body["deploymentId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (code, body) = m
        .call("DELETE", &format!("/v2/deployments/{stuck}"), None)
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_ne!(body["deploymentId"].as_str(), Some(stuck.as_str()));
    wait_no_deployments(&m).await?;
    let reverted = wait_app(&m, "/bg", "reverted", |a| a["cpus"] == 0.1 && serving(a, 2)).await?;
    assert_eq!(task_ids(&reverted), kept, "the rollback restarted tasks");

    // Rollback to a stored version: the first definition comes back.
    let (_, versions) = m.get("/v2/apps/bg/versions").await?;
    let oldest = versions["versions"]
        .as_array()
        .and_then(|v| v.last())
        .cloned()
        .unwrap_or(Value::Null);
    let (code, body) = m
        .call("PUT", "/v2/apps/bg", Some(&json!({"version": oldest})))
        .await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;
    wait_app(&m, "/bg", "back on the first command", |a| {
        a["cmd"] == "sleep 300" && serving(a, 2)
    })
    .await?;

    // A killed task (no scale) is replaced.
    let app = wait_app(&m, "/racks", "4 running", |a| serving(a, 4)).await?;
    let victim = task_ids(&app)[0].clone();
    let (code, body) = m
        .call("DELETE", &format!("/v2/apps/racks/tasks/{victim}"), None)
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["task"]["id"], victim.as_str());
    let app = wait_app(&m, "/racks", "replaced", |a| {
        serving(a, 4) && !task_ids(a).contains(&victim)
    })
    .await?;
    assert_eq!(app["instances"], 4);

    // A crashing app is relaunched with growing delays, not in a tight loop.
    let crash = sleeper("/crash", 1, "exit 3");
    assert_eq!(m.call("POST", "/v2/apps", Some(&crash)).await?.0, 201);
    let failed = wait_app(&m, "/crash", "a recorded failure", |a| {
        a["lastTaskFailure"]["state"] == "TASK_FAILED"
    })
    .await?;
    assert_eq!(failed["lastTaskFailure"]["appId"], "/crash");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, q) = m.get("/v2/queue").await?;
    let item = q["queue"]
        .as_array()
        .and_then(|q| q.iter().find(|i| i["app"]["id"] == "/crash"))
        .cloned();
    let item = item.ok_or_else(|| anyhow::anyhow!("/crash not in the queue: {q}"))?;
    assert!(
        item["delay"]["timeLeftSeconds"].as_u64().is_some(),
        "{item}"
    );
    let state = master.state().await?;
    let launched: usize = state["frameworks"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|fw| {
                    fw["completed_tasks"].as_array().map_or(0, |t| {
                        t.iter()
                            .filter(|t| t["id"].as_str().is_some_and(|i| i.starts_with("crash.")))
                            .count()
                    })
                })
                .sum()
        })
        .unwrap_or(0);
    assert!(
        launched <= 8,
        "{launched} launches of a crashing app in ~6 s: no backoff"
    );
    Ok(())
}

#[tokio::test]
async fn marathon_survives_the_leading_master_killed_mid_deployment() -> anyhow::Result<()> {
    let mut group = TestGroup::start_with_etcd(3, TestMaster::fast_config()).await?;
    let leader = group.leader(Duration::from_secs(20)).await?;
    let masters: Vec<String> = group.masters.values().map(TestMaster::host_port).collect();
    let etcd: Vec<std::net::SocketAddr> = group
        .masters
        .values()
        .filter_map(TestMaster::etcd_addr)
        .collect();
    let first = group
        .masters
        .get(&leader)
        .ok_or_else(|| anyhow::anyhow!("no leader"))?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut agents = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut c = agent_config(first, dir.path());
        c.masters = masters.clone();
        c.hostname = Some(format!("host-{i}"));
        c.docker = agora_agent::DockerMode::Disabled;
        agents.push(start_agent(c).await?);
    }
    // Marathon on a follower's etcd endpoint, so killing the leader tests
    // both its master failover and its store's.
    let follower_etcd = group
        .masters
        .iter()
        .find(|(id, _)| **id != leader)
        .and_then(|(_, m)| m.etcd_addr())
        .ok_or_else(|| anyhow::anyhow!("no follower etcd"))?;
    let _ = etcd;
    let m = TestMarathon::start(masters, follower_etcd, "/marathon-group").await?;
    m.wait_leader(Duration::from_secs(30)).await?;
    let app = sleeper("/steady", 2, "sleep 300");
    assert_eq!(m.call("POST", "/v2/apps", Some(&app)).await?.0, 201);
    let before = task_ids(&wait_app(&m, "/steady", "2 running", |a| serving(a, 2)).await?);
    wait_no_deployments(&m).await?;

    let mut scaled = app.clone();
    scaled["instances"] = json!(4);
    scaled["cmd"] = json!("sleep 302");
    assert_eq!(
        m.call("PUT", "/v2/apps/steady", Some(&scaled)).await?.0,
        200
    );
    if let Some(dead) = group.masters.get_mut(&leader) {
        dead.crash();
    }
    let after = wait_app(&m, "/steady", "4 running on the new command", |a| {
        serving(a, 4) && a["cmd"] == "sleep 302"
    })
    .await?;
    wait_no_deployments(&m).await?;
    assert!(task_ids(&after).iter().all(|t| !before.contains(t)));
    Ok(())
}

#[tokio::test]
async fn marathon_groups_create_scale_replace_and_delete() -> anyhow::Result<()> {
    let (master, etcd) = master_with_etcd().await?;
    let dir = tempfile::tempdir()?;
    let _a = agent_on(&master, dir.path(), "host-r1-a", "r1", false).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-groups").await?;
    m.wait_leader(Duration::from_secs(20)).await?;
    let shop = json!({"id": "/shop",
        "apps": [sleeper("cart", 1, "sleep 300"), sleeper("db", 1, "sleep 300")],
        "groups": [{"id": "back", "apps": [sleeper("api", 1, "sleep 300")]}]});
    let (code, body) = m.call("POST", "/v2/groups", Some(&shop)).await?;
    assert_eq!(code, 201, "{body}");
    wait_no_deployments(&m).await?;
    let (code, tree) = m.get("/v2/groups/shop").await?;
    assert_eq!(code, 200);
    let ids = |v: &Value| -> Vec<String> {
        v["apps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(ids(&tree), vec!["/shop/cart", "/shop/db"], "{tree}");
    assert_eq!(tree["groups"][0]["id"], "/shop/back");
    assert_eq!(ids(&tree["groups"][0]), vec!["/shop/back/api"]);
    let (code, _) = m.call("POST", "/v2/groups", Some(&shop)).await?;
    assert_eq!(code, 409);

    let (code, body) = m
        .call("PUT", "/v2/groups/shop", Some(&json!({"scaleBy": 2})))
        .await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;
    wait_app(&m, "/shop/back/api", "scaled by 2", |a| serving(a, 2)).await?;

    let only_cart = json!({"apps": [sleeper("cart", 1, "sleep 300")]});
    let (code, body) = m.call("PUT", "/v2/groups/shop", Some(&only_cart)).await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;
    let (_, tree) = m.get("/v2/groups/shop").await?;
    assert_eq!(ids(&tree), vec!["/shop/cart"], "{tree}");
    assert_eq!(m.get("/v2/apps/shop/db").await?.0, 404);

    let (code, body) = m.call("DELETE", "/v2/groups/shop", None).await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;
    assert_eq!(m.get("/v2/groups/shop").await?.0, 404);
    let (_, tasks) = m.get("/v2/tasks").await?;
    assert_eq!(tasks["tasks"], json!([]));
    Ok(())
}

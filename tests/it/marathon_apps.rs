//! Agora's Marathon end to end, with real agents and a real master (its
//! etcd API holding Marathon's state): an app created with 3 instances,
//! scaled to 5 without restarts, upgraded by a PUT of a new image tag while
//! a probe checks the healthy floor, its events on `/v2/events`, and
//! deleted; UNIQUE with more instances than agents (the extra one waits
//! and `/v2/queue` says why); bad definitions and unknown ids; and the
//! Marathon leader killed mid-deployment with the standby finishing it.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_tests::TestMarathon;
use serde_json::{Value, json};

use crate::agent_support::docker_or_skip;
use crate::marathon_support::*;

const IMAGE_REPO: &str = "agora-test/web";

/// Tags the local test image as `agora-test/web:{v1,v2}` (no registry: the
/// "new image tag" is a new tag of the same local image).
fn tag_test_images() -> anyhow::Result<()> {
    for tag in ["v1", "v2"] {
        let out = std::process::Command::new("docker")
            .args([
                "tag",
                agora_runtime::testing::TEST_IMAGE,
                &format!("{IMAGE_REPO}:{tag}"),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "docker tag: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn web_app(tag: &str, instances: u32) -> Value {
    json!({
        "id": "/prod/web",
        "cmd": "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p $PORT0 -h /tmp/www",
        "cpus": 0.1,
        "mem": 32,
        "instances": instances,
        "container": {"type": "DOCKER", "docker": {"image": format!("{IMAGE_REPO}:{tag}")}},
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{
            "protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
            "gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1,
            "maxConsecutiveFailures": 3, "delaySeconds": 0
        }],
        "readinessChecks": [{
            "name": "ready", "protocol": "HTTP", "path": "/index.html", "portName": "http",
            "intervalSeconds": 2, "timeoutSeconds": 1, "httpStatusCodesForReady": [200]
        }],
        "upgradeStrategy": {"minimumHealthCapacity": 0.6, "maximumOverCapacity": 0.2}
    })
}

/// Event types `/v2/events` sends, in order, until the task is aborted.
fn watch_events(
    m: &TestMarathon,
) -> (
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = seen.clone();
    let task = follow_events(m, "/v2/events", move |line| {
        if let Some(kind) = line.strip_prefix("event: ")
            && let Ok(mut v) = out.lock()
        {
            v.push(kind.trim().to_string());
        }
    });
    (seen, task)
}

#[tokio::test]
async fn marathon_docker_app_scales_upgrades_by_image_tag_and_is_deleted() -> anyhow::Result<()> {
    let _turn = crate::agent_support::DOCKER_HEAVY.lock().await;
    if docker_or_skip("marathon_docker_app").await.is_none() {
        return Ok(());
    }
    tag_test_images()?;
    let (master, etcd) = master_with_etcd().await?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    // Hostnames Marathon's readiness probes can reach.
    let _a = agent_on(&master, dirs[0].path(), "localhost", "r1", true).await?;
    let _b = agent_on(&master, dirs[1].path(), "127.0.0.1", "r2", true).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-docker").await?;
    m.wait_leader(Duration::from_secs(20)).await?;
    let (events, events_task) = watch_events(&m);

    // Create: 201, Location, the deployment header.
    let (code, head, body) = m
        .call_raw("POST", "/v2/apps", Some(&web_app("v1", 3)))
        .await?;
    assert_eq!(code, 201, "{body}");
    assert!(head.contains("marathon-deployment-id:"), "{head}");
    assert!(head.contains("location: /v2/apps/prod/web"), "{head}");
    assert_eq!(body["id"], "/prod/web");
    let app = wait_app(&m, "/prod/web", "3 healthy", |a| serving(a, 3)).await?;
    wait_no_deployments(&m).await?;
    let first = task_ids(&app);

    // Scale to 5: the 3 keep running.
    let mut scaled = web_app("v1", 5);
    scaled["id"] = json!("/prod/web");
    let (code, body) = m.call("PUT", "/v2/apps/prod/web", Some(&scaled)).await?;
    assert_eq!(code, 200, "{body}");
    assert!(body["deploymentId"].is_string());
    let app = wait_app(&m, "/prod/web", "5 healthy", |a| serving(a, 5)).await?;
    wait_no_deployments(&m).await?;
    let after_scale = task_ids(&app);
    assert!(
        first.iter().all(|t| after_scale.contains(t)),
        "a scale restarted tasks: {first:?} vs {after_scale:?}"
    );

    // Rolling upgrade by image tag, with a probe on the healthy count.
    let floor = 3; // ceil(5 × 0.6)
    let lowest = Arc::new(AtomicU64::new(u64::MAX));
    let probe = {
        let lowest = lowest.clone();
        let addr = m.addr;
        tokio::spawn(async move {
            loop {
                if let Ok((200, _, body)) =
                    agora_tests::http_request(addr, "GET", "/v2/apps/prod/web", None).await
                    && let Ok(v) = serde_json::from_str::<Value>(&body)
                    && let Some(h) = v["app"]["tasksHealthy"].as_u64()
                {
                    lowest.fetch_min(h, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let (code, body) = m
        .call("PUT", "/v2/apps/prod/web", Some(&web_app("v2", 5)))
        .await?;
    assert_eq!(code, 200, "{body}");
    let deployment = body["deploymentId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (code, list) = m.get("/v2/deployments").await?;
    assert_eq!(code, 200);
    if let Some(d) = list
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == deployment.as_str()))
    {
        assert_eq!(d["affectedApps"], json!(["/prod/web"]));
        assert_eq!(d["currentActions"][0]["action"], "RestartApplication");
    }
    wait_no_deployments(&m).await?;
    let app = wait_app(&m, "/prod/web", "5 healthy on v2", |a| {
        serving(a, 5) && a["container"]["docker"]["image"] == "agora-test/web:v2"
    })
    .await?;
    probe.abort();
    let config_version = app["versionInfo"]["lastConfigChangeAt"].clone();
    let tasks = app["tasks"].as_array().cloned().unwrap_or_default();
    assert!(
        tasks.iter().all(|t| t["version"] == config_version),
        "old tasks left: {tasks:?}"
    );
    assert!(
        task_ids(&app).iter().all(|t| !after_scale.contains(t)),
        "an old task survived the upgrade"
    );
    let low = lowest.load(Ordering::SeqCst);
    assert!(
        low >= floor,
        "the healthy count fell to {low}, below ceil(5 x 0.6) = {floor}"
    );

    // Versions: three definitions (create, scale, upgrade), newest first.
    let (code, v) = m.get("/v2/apps/prod/web/versions").await?;
    assert_eq!(code, 200);
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(3), "{v}");

    // Delete: the tasks go.
    let (code, body) = m.call("DELETE", "/v2/apps/prod/web", None).await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;
    let (code, _) = m.get("/v2/apps/prod/web").await?;
    assert_eq!(code, 404);
    let (_, tasks) = m.get("/v2/tasks").await?;
    assert_eq!(tasks["tasks"], json!([]));

    // The stream may trail the state a little: wait for the last events.
    let kinds = [
        "event_stream_attached",
        "api_post_event",
        "deployment_info",
        "deployment_step_success",
        "deployment_success",
        "status_update_event",
        "instance_changed_event",
        "health_status_changed_event",
        "app_terminated_event",
    ];
    let all_seen = agora_tests::eventually("every event type", Duration::from_secs(15), || async {
        let seen = events.lock().ok()?;
        kinds
            .iter()
            .all(|k| seen.iter().any(|s| s == k))
            .then_some(())
    })
    .await;
    events_task.abort();
    let seen = events.lock().map(|v| v.clone()).unwrap_or_default();
    assert!(
        all_seen.is_ok(),
        "missing event types: want {kinds:?}, saw {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn marathon_unique_waits_with_reasons_and_refuses_bad_input() -> anyhow::Result<()> {
    let (master, etcd) = master_with_etcd().await?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let _a = agent_on(&master, dirs[0].path(), "host-a", "r1", false).await?;
    let _b = agent_on(&master, dirs[1].path(), "host-b", "r2", false).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-unique").await?;
    m.wait_leader(Duration::from_secs(20)).await?;

    let app = json!({"id": "/spread", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 3,
                     "constraints": [["hostname", "UNIQUE"]]});
    let (code, body) = m.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 201, "{body}");
    let running = wait_app(&m, "/spread", "2 running", |a| a["tasksRunning"] == 2).await?;
    let hosts: std::collections::BTreeSet<String> = running["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["host"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(hosts.len(), 2, "UNIQUE broken: {running}");
    let queue = agora_tests::eventually("a queue entry with reasons", DEPLOY_WAIT, || async {
        let (_, q) = m.get("/v2/queue").await.ok()?;
        let item = q["queue"].as_array()?.first()?.clone();
        let funnel = item["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()?
            .clone();
        let declined = funnel
            .iter()
            .find(|r| r["reason"] == "UnfulfilledConstraint")?["declined"]
            .as_u64()?;
        (declined > 0).then_some(item)
    })
    .await?;
    assert_eq!(queue["count"], 1);
    assert_eq!(queue["app"]["id"], "/spread");
    // The same answer in /metrics: waiting instances and declines by reason.
    let (_, text) = agora_tests::http_get(m.addr, "/metrics").await?;
    assert!(
        text.contains(
            "marathon_queue_waiting_instances{app=\"/spread\",reason=\"UnfulfilledConstraint\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "marathon_queue_declined_offers{app=\"/spread\",reason=\"UnfulfilledConstraint\"}"
        ),
        "{text}"
    );

    // Locked while the deployment waits: 409 with its id, unless force.
    let mut more = app.clone();
    more["instances"] = json!(2);
    let (code, body) = m.call("PUT", "/v2/apps/spread", Some(&more)).await?;
    assert_eq!(code, 409, "{body}");
    assert!(body["deployments"][0]["id"].is_string());
    let (code, body) = m
        .call("PUT", "/v2/apps/spread?force=true", Some(&more))
        .await?;
    assert_eq!(code, 200, "{body}");
    wait_no_deployments(&m).await?;

    // Bad input.
    let (code, body) = m
        .call(
            "POST",
            "/v2/apps",
            Some(&json!({"id": "/bad", "cmd": "x", "cpus": -1, "instances": -2})),
        )
        .await?;
    assert_eq!(code, 422, "{body}");
    let paths: Vec<&str> = body["details"]
        .as_array()
        .map(|d| d.iter().filter_map(|e| e["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        paths.contains(&"/cpus") && paths.contains(&"/instances"),
        "{body}"
    );
    let (code, _, _) =
        agora_tests::http_request(m.addr, "POST", "/v2/apps", Some("{not json")).await?;
    assert_eq!(code, 400);
    let (code, body) = m.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 409, "{body}");
    let (code, _) = m.get("/v2/apps/nope").await?;
    assert_eq!(code, 404);
    let (code, _) = m.call("DELETE", "/v2/deployments/nope", None).await?;
    assert_eq!(code, 404);

    // /metrics is clean Prometheus text.
    let (code, text) = agora_tests::http_get(m.addr, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(
        text.contains("marathon_leader 1")
            && text.contains("marathon_instances{condition=\"running\"}"),
        "{text}"
    );
    if agora_tests::promtool::available("marathon metrics") {
        let (ok, said) = agora_tests::promtool::check_metrics(&text).await?;
        assert!(ok, "promtool: {said}");
    }
    Ok(())
}

#[tokio::test]
async fn marathon_leader_killed_mid_deployment_standby_finishes_it() -> anyhow::Result<()> {
    let (master, etcd) = master_with_etcd().await?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let _a = agent_on(&master, dirs[0].path(), "host-a", "r1", false).await?;
    let _b = agent_on(&master, dirs[1].path(), "host-b", "r2", false).await?;
    let mut one = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-ha").await?;
    one.wait_leader(Duration::from_secs(20)).await?;
    let two = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-ha").await?;
    let leader = two.wait_leader(Duration::from_secs(20)).await?;
    assert_eq!(leader, one.addr.to_string());

    // Through the standby (proxied to the leader).
    let app = json!({"id": "/ha", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 2});
    let (code, body) = two.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 201, "{body}");
    let before = wait_app(&two, "/ha", "2 running", |a| a["tasksRunning"] == 2).await?;
    wait_no_deployments(&two).await?;
    let kept = task_ids(&before);

    // A restart needing more capacity than a step gives; kill the leader
    // while it runs.
    let mut upgraded = app.clone();
    upgraded["cmd"] = json!("sleep 301");
    upgraded["instances"] = json!(4);
    let (code, body) = two.call("PUT", "/v2/apps/ha", Some(&upgraded)).await?;
    assert_eq!(code, 200, "{body}");
    one.crash();
    let new_leader = two.wait_leader(Duration::from_secs(20)).await?;
    agora_tests::eventually("the standby to lead", Duration::from_secs(30), || async {
        let (_, l) = two.get("/v2/leader").await.ok()?;
        (l["leader"] == two.addr.to_string().as_str()).then_some(())
    })
    .await?;
    let _ = new_leader;
    let after = wait_app(&two, "/ha", "4 running on the new definition", |a| {
        a["tasksRunning"] == 4
            && a["cmd"] == "sleep 301"
            && a["tasks"].as_array().is_some_and(|t| t.len() == 4)
    })
    .await?;
    wait_no_deployments(&two).await?;
    let now = task_ids(&after);
    assert!(
        kept.iter().all(|t| !now.contains(t)),
        "old tasks survived the restart: {kept:?} {now:?}"
    );
    // Nothing runs twice: the master sees exactly the 4 tasks.
    let state = master.state().await?;
    let live: usize = state["frameworks"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|fw| {
                    fw["tasks"].as_array().map_or(0, |t| {
                        t.iter().filter(|t| t["state"] == "TASK_RUNNING").count()
                    })
                })
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(live, 4, "{state}");

    // DELETE /v2/leader: the leader abdicates and another process leads.
    let three = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-ha").await?;
    three.wait_leader(Duration::from_secs(20)).await?;
    let (code, body) = two.call("DELETE", "/v2/leader", None).await?;
    assert_eq!(code, 200, "{body}");
    agora_tests::eventually(
        "the third process to lead",
        Duration::from_secs(30),
        || async {
            let (_, l) = three.get("/v2/leader").await.ok()?;
            (l["leader"] == three.addr.to_string().as_str()).then_some(())
        },
    )
    .await?;
    let app = wait_app(&three, "/ha", "the app under the new leader", |a| {
        serving(a, 4)
    })
    .await?;
    assert_eq!(task_ids(&app), now, "abdication restarted tasks");
    Ok(())
}

#[tokio::test]
async fn marathon_bridge_app_publishes_its_port_and_passes_health_checks() -> anyhow::Result<()> {
    let _turn = crate::agent_support::DOCKER_HEAVY.lock().await;
    if docker_or_skip("marathon_bridge_app").await.is_none() {
        return Ok(());
    }
    tag_test_images()?;
    let (master, etcd) = master_with_etcd().await?;
    let dir = tempfile::tempdir()?;
    let _a = agent_on(&master, dir.path(), "localhost", "r1", true).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-bridge").await?;
    m.wait_leader(Duration::from_secs(20)).await?;
    // The README's shape: bridge networking, a container port mapped to any
    // host port, an agent-side HTTP check on it.
    let app = json!({
        "id": "/bridged", "instances": 1, "cpus": 0.1, "mem": 32,
        "cmd": "mkdir -p /tmp/www && echo bridged > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
        "networks": [{"mode": "container/bridge"}],
        "container": {"type": "DOCKER", "docker": {"image": format!("{IMAGE_REPO}:v1")},
                      "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}]},
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/index.html", "portIndex": 0,
                          "gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1}]
    });
    let (code, body) = m.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 201, "{body}");
    let up = wait_app(&m, "/bridged", "1 healthy", |a| serving(a, 1)).await?;
    let port = up["tasks"][0]["ports"][0].as_u64().unwrap_or(0);
    assert!(port > 0, "{up}");
    assert!(
        up["container"]["portMappings"][0]["servicePort"]
            .as_u64()
            .is_some_and(|p| (10000..=20000).contains(&p)),
        "{up}"
    );
    let (code, text) =
        agora_tests::http_get(format!("127.0.0.1:{port}").parse()?, "/index.html").await?;
    assert_eq!((code, text.trim()), (200, "bridged"));
    let (code, _) = m.call("DELETE", "/v2/apps/bridged", None).await?;
    assert_eq!(code, 200);
    wait_no_deployments(&m).await?;
    Ok(())
}

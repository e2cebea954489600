//! Requests that used to kill the leader's event loop, through the real
//! HTTP API of a Marathon started as the CLI starts it, on a real etcd
//! (`support/`): an app under another app (`GET /v2/groups` panicked in
//! the loop, and the stored pair killed every later leader), instance
//! counts past the limit (directly or by `scaleBy`), and app ids too long
//! for a task id or a store key. Each refusal is checked for its status,
//! its Marathon-shaped body, that nothing was stored, and that the
//! service still answers. Without etcd the tests skip (see
//! `support/etcd.rs`).
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon::api::convert::{MAX_APP_ID_BYTES, MAX_INSTANCES_PER_APP};
use agora_marathon::store::Write;
use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

mod support;

use support::etcd::{Etcd, etcd_or_skip};
use support::marathon::TestMarathon;

/// Marathon's message for an app id that is also a group.
const SAME_ID: &str = "Groups and Applications may not have the same identifier";
/// How long a deployment of apps without instances takes at most.
const SETTLE: Duration = Duration::from_secs(20);

/// An app definition with a command.
fn app(id: &str, instances: u64) -> Value {
    json!({"id": id, "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": instances})
}

/// Every record Marathon keeps (apps, instances, deployments), by key.
async fn records(etcd: &Etcd) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let store = etcd.store().await?;
    let mut all = BTreeMap::new();
    for under in ["apps/", "instances/", "deployments/"] {
        all.extend(store.load(under).await?);
    }
    Ok(all)
}

/// Waits until no deployment runs (apps without instances finish at once).
async fn settle(m: &TestMarathon) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let (code, body) = m.get("/v2/deployments").await?;
        if code == 200 && body.as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("deployments still running after {SETTLE:?}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(m: &TestMarathon, body: &Value) -> anyhow::Result<()> {
    let (code, answer) = m.call("POST", "/v2/apps", Some(body)).await?;
    ensure!(code == 201, "POST {body}: {code} {answer}");
    Ok(())
}

/// A 4xx in Marathon's validation shape: `status`, and the first detail at
/// `path` with an error containing every one of `words`.
fn assert_refused(answer: (u16, Value), status: u16, path: &str, words: &[&str]) {
    let (code, body) = answer;
    assert_eq!(code, status, "{body}");
    let detail = &body["details"][0];
    assert_eq!(detail["path"], path, "{body}");
    let error = detail["errors"][0].as_str().unwrap_or_default();
    for w in words {
        assert!(error.contains(w), "{w:?} not in {body}");
    }
}

/// Ids of the apps Marathon lists.
async fn app_ids(m: &TestMarathon) -> anyhow::Result<Vec<String>> {
    let (code, body) = m.get("/v2/apps").await?;
    ensure!(code == 200, "GET /v2/apps: {code} {body}");
    Ok(body["apps"]
        .as_array()
        .context("apps")?
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect())
}

/// The service still answers: the loop runs (`GET /v2/groups`, a read in
/// the loop) and this process still leads; returns the root group.
async fn still_serves(m: &TestMarathon) -> anyhow::Result<Value> {
    let (code, leader) = m.get("/v2/leader").await?;
    ensure!(
        code == 200 && leader["leader"] == m.addr.to_string(),
        "leader: {code} {leader}"
    );
    let (code, root) = m.get("/v2/groups").await?;
    ensure!(code == 200, "GET /v2/groups: {code} {root}");
    Ok(root)
}

fn ids_in(group: &Value, key: &str) -> Vec<String> {
    group[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_under_an_existing_app_is_refused_and_groups_still_answer() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    create(&m, &app("/a", 0)).await?;
    settle(&m).await?;
    let before = records(&etcd).await?;
    let words = [SAME_ID, "/a is an app", "/a/b"];
    let post = m.call("POST", "/v2/apps", Some(&app("/a/b", 0))).await?;
    assert_refused(post, 422, "/id", &words);
    // Create-on-PUT, and the batch PUT.
    let put = m.call("PUT", "/v2/apps/a/b", Some(&app("/a/b", 0))).await?;
    assert_refused(put, 422, "/id", &words);
    let batch = json!([app("/a/b", 0)]);
    let put_many = m.call("PUT", "/v2/apps", Some(&batch)).await?;
    assert_refused(put_many, 422, "/id", &words);

    let root = still_serves(&m).await?;
    assert_eq!(ids_in(&root, "apps"), ["/a"], "{root}");
    assert_eq!(ids_in(&root, "groups"), Vec::<String>::new(), "{root}");
    assert_eq!(app_ids(&m).await?, ["/a"]);
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    m.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_where_a_group_of_apps_is_is_refused() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    create(&m, &app("/g/x", 0)).await?;
    settle(&m).await?;
    let before = records(&etcd).await?;
    let words = [SAME_ID, "/g is an app", "/g/x"];
    let post = m.call("POST", "/v2/apps", Some(&app("/g", 0))).await?;
    assert_refused(post, 422, "/id", &words);
    let put = m.call("PUT", "/v2/apps/g", Some(&app("/g", 0))).await?;
    assert_refused(put, 422, "/id", &words);
    // Below the app /g/x, too.
    let deeper = m
        .call("POST", "/v2/apps", Some(&app("/g/x/y/z", 0)))
        .await?;
    assert_refused(deeper, 422, "/id", &[SAME_ID, "/g/x is an app", "/g/x/y/z"]);

    let root = still_serves(&m).await?;
    assert_eq!(ids_in(&root, "groups"), ["/g"], "{root}");
    assert_eq!(ids_in(&root["groups"][0], "apps"), ["/g/x"], "{root}");
    assert_eq!(app_ids(&m).await?, ["/g/x"]);
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    m.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_bodies_that_put_an_app_under_an_app_are_refused() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    create(&m, &app("/a", 0)).await?;
    settle(&m).await?;
    let before = records(&etcd).await?;
    // Both new, in one body: /p/q and, in its subgroup, /p/q/r.
    let nested = json!({"id": "/p", "apps": [app("q", 0)],
        "groups": [{"id": "q", "apps": [app("r", 0)]}]});
    let post = m.call("POST", "/v2/groups", Some(&nested)).await?;
    assert_refused(post, 422, "/id", &[SAME_ID, "/p/q is an app", "/p/q/r"]);
    // A group where the app /a is.
    let under_app = json!({"id": "/a", "apps": [app("b", 0)]});
    let post = m.call("POST", "/v2/groups", Some(&under_app)).await?;
    assert_refused(post, 422, "/id", &[SAME_ID, "/a is an app", "/a/b"]);
    // PUT of another group naming an app under /a.
    let put_body = json!({"apps": [app("/a/c", 0)]});
    let put = m.call("PUT", "/v2/groups/x", Some(&put_body)).await?;
    assert_refused(put, 422, "/id", &[SAME_ID, "/a is an app", "/a/c"]);

    still_serves(&m).await?;
    assert_eq!(app_ids(&m).await?, ["/a"]);
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    m.stop().await;
    Ok(())
}

/// The key of the one stored version of `id` (its safe path).
fn version_key(records: &BTreeMap<String, Vec<u8>>, safe: &str) -> anyhow::Result<String> {
    let prefix = format!("apps/{safe}/");
    records
        .keys()
        .find(|k| k.starts_with(&prefix))
        .cloned()
        .with_context(|| format!("no record under {prefix}: {:?}", records.keys()))
}

/// A store written before the check, holding both `/a` and `/a/b`: a new
/// leader loads it and `GET /v2/groups` answers (it panicked in the loop,
/// so every leader died), and only new conflicts are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_app_under_an_app_no_longer_kills_the_leader() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    create(&m, &app("/a/b", 0)).await?;
    settle(&m).await?;
    m.stop().await;
    // Copy /a/b's record as an app /a, as an older release could store it.
    let stored = records(&etcd).await?;
    let key = version_key(&stored, "a_b")?;
    let mut rec: Value = serde_json::from_slice(&stored[&key])?;
    rec["app"]["id"] = json!("/a");
    let version = key.rsplit('/').next().context("version")?;
    let store = etcd.store().await?;
    store
        .write(vec![Write::put(
            format!("apps/a/{version}"),
            serde_json::to_vec(&rec)?,
        )])
        .await?;

    let m = TestMarathon::start(&etcd).await?;
    let root = still_serves(&m).await?;
    assert_eq!(ids_in(&root, "apps"), ["/a"], "{root}");
    assert_eq!(ids_in(&root, "groups"), ["/a"], "{root}");
    assert_eq!(ids_in(&root["groups"][0], "apps"), ["/a/b"], "{root}");
    let (code, group) = m.get("/v2/groups/a").await?;
    assert_eq!(code, 200, "{group}");
    assert_eq!(ids_in(&group, "apps"), ["/a/b"], "{group}");
    // The stored pair does not block unrelated changes; a new pair is refused.
    create(&m, &app("/c", 0)).await?;
    let deeper = m.call("POST", "/v2/apps", Some(&app("/a/b/c", 0))).await?;
    assert_refused(deeper, 422, "/id", &[SAME_ID, "/a/b/c"]);
    still_serves(&m).await?;
    m.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_past_the_limit_are_refused() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    let limit = u64::from(MAX_INSTANCES_PER_APP);
    let expected = format!("expected {limit} or less");
    // Stays deploying: no agent offers anything.
    create(&m, &app("/big", 1)).await?;
    let before = records(&etcd).await?;
    for n in [limit + 1, u64::from(u32::MAX)] {
        let got = format!("got {n}");
        let words = [got.as_str(), expected.as_str()];
        let post = m.call("POST", "/v2/apps", Some(&app("/more", n))).await?;
        assert_refused(post, 422, "/instances", &words);
        let body = json!({"instances": n});
        let put = m
            .call("PUT", "/v2/apps/big?force=true", Some(&body))
            .await?;
        assert_refused(put, 422, "/instances", &words);
        let patch = m
            .call("PATCH", "/v2/apps/big?force=true", Some(&body))
            .await?;
        assert_refused(patch, 422, "/instances", &words);
        let group = json!({"id": "/h", "apps": [app("x", n)]});
        let post = m.call("POST", "/v2/groups", Some(&group)).await?;
        assert_refused(post, 422, "/instances", &words);
    }

    still_serves(&m).await?;
    let (code, big) = m.get("/v2/apps/big").await?;
    assert_eq!((code, &big["app"]["instances"]), (200, &json!(1)), "{big}");
    assert_eq!(app_ids(&m).await?, ["/big"]);
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    m.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_by_past_the_limit_is_refused() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    create(&m, &app("/s/a", 2)).await?;
    let before = records(&etcd).await?;
    let expected = format!("expected {MAX_INSTANCES_PER_APP} or less");
    // 2 × 5001 = 10,002; 1e300 saturated to u32::MAX before.
    for factor in [json!(5001), json!(1e300)] {
        let body = json!({"scaleBy": factor});
        let put = m
            .call("PUT", "/v2/groups/s?force=true", Some(&body))
            .await?;
        assert_refused(put, 422, "/scaleBy", &["/s/a", expected.as_str()]);
    }
    // Not a number: refused, not read as a group without apps (which
    // would remove every app in it).
    let text = json!({"scaleBy": "2"});
    let put = m
        .call("PUT", "/v2/groups/s?force=true", Some(&text))
        .await?;
    assert_refused(put, 400, "/scaleBy", &["expected a number"]);

    still_serves(&m).await?;
    assert_eq!(app_ids(&m).await?, ["/s/a"]);
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    // A factor within the limit still scales: ceil(2 × 1.5) = 3.
    let ok = json!({"scaleBy": 1.5});
    let (code, body) = m.call("PUT", "/v2/groups/s?force=true", Some(&ok)).await?;
    assert_eq!(code, 200, "{body}");
    let (code, a) = m.get("/v2/apps/s/a").await?;
    assert_eq!((code, &a["app"]["instances"]), (200, &json!(3)), "{a}");
    m.stop().await;
    Ok(())
}

/// A key longer than the store takes made the write fail, which ends the
/// leadership; shorter ids past the limit made tasks that never launch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_ids_too_long_for_a_task_id_are_refused() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let m = TestMarathon::start(&etcd).await?;
    let before = records(&etcd).await?;
    for len in [MAX_APP_ID_BYTES + 1, 5_000] {
        let id = format!("/{}", "a".repeat(len - 1));
        let post = m.call("POST", "/v2/apps", Some(&app(&id, 0))).await?;
        let expected = format!("expected {MAX_APP_ID_BYTES} or less");
        assert_refused(post, 422, "/id", &[expected.as_str()]);
    }
    still_serves(&m).await?;
    assert_eq!(records(&etcd).await?, before, "a refusal stored nothing");
    // The longest accepted id is stored and served.
    let longest = format!("/{}", "a".repeat(MAX_APP_ID_BYTES - 1));
    create(&m, &app(&longest, 0)).await?;
    settle(&m).await?;
    assert_eq!(app_ids(&m).await?, [longest]);
    still_serves(&m).await?;
    m.stop().await;
    Ok(())
}

//! The operators' pages in a real browser (headless Chromium, and
//! chromedriver for the calculator): the numbers on the page equal the
//! capacity API's, the calculator answers as `/api/v1/capacity/fit` does
//! (typed and clicked, answered in place by the script under the strict
//! CSP), history charts have as many points as their tables, Marathon's
//! apps and waiting reasons show, and nothing is loaded from elsewhere.
//! Screenshots are kept under `$CARGO_TARGET_DIR/ui-screenshots`.
use std::time::Duration;

use agora_model::{AttributeValue, Attributes, Resources};
use agora_tests::browser::{self, WebDriver};
use agora_tests::{
    SimAgent, SimAgentConfig, TaskBehaviour, TestMarathon, TestMaster, http_get, http_request,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The text inside the first element with `data-test="{name}"`.
fn cell(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("data-test=\"{name}\""))?;
    let rest = &html[at..];
    let start = rest.find('>')? + 1;
    let end = start + rest[start..].find('<')?;
    Some(rest[start..end].trim().to_string())
}

async fn api(master: &TestMaster, path: &str) -> anyhow::Result<Value> {
    let (code, body) = http_get(master.addr, path).await?;
    anyhow::ensure!(code == 200, "{path}: HTTP {code}: {body}");
    Ok(serde_json::from_str(&body)?)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |f| {
                if f.fract() == 0.0 {
                    format!("{}", f as i64)
                } else {
                    n.to_string()
                }
            },
        ),
        other => other.to_string(),
    }
}

/// No `src` or `href` in the DOM points at another origin.
fn assert_same_origin(dom: &str) {
    for attr in ["src=\"", "href=\"", "action=\""] {
        for (i, _) in dom.match_indices(attr) {
            let value = &dom[i + attr.len()..];
            let value = &value[..value.find('"').unwrap_or(value.len())];
            assert!(
                value.starts_with('/') || value.starts_with('#') || value.is_empty(),
                "{attr}{value}\" leaves the origin"
            );
        }
    }
}

#[tokio::test]
async fn pages_in_a_browser_match_the_api() -> anyhow::Result<()> {
    if !browser::available()? {
        eprintln!("skipping: chromium/chromedriver not installed");
        return Ok(());
    }
    let shots = browser::artifacts_dir();
    std::fs::create_dir_all(&shots)?;
    let mut cfg = TestMaster::fast_config();
    cfg.group.etcd_listen = Some("127.0.0.1:0".parse()?);
    let master = TestMaster::start_with(cfg).await;
    let mut sims = Vec::new();
    for (i, rack) in ["r1", "r1", "r2"].iter().enumerate() {
        let c = SimAgentConfig {
            resources: Resources::parse("cpus:4;mem:4096;disk:1000;ports:[31000-31009]")?,
            attributes: Attributes(
                [("rack".to_string(), AttributeValue::Text((*rack).into()))]
                    .into_iter()
                    .collect(),
            ),
            hostname: format!("ui-sim-{i}"),
            behaviour: TaskBehaviour::RunForever,
            ..SimAgentConfig::default()
        };
        sims.push(SimAgent::start(&master.endpoint(), c).await);
    }
    let base = format!("http://{}", master.addr);
    agora_tests::eventually("3 agents", WAIT, || async {
        let v = api(&master, "/api/v1/capacity").await.ok()?;
        (v["agents"].as_array().map(Vec::len) == Some(3)).then_some(())
    })
    .await?;

    // The cluster page against the API (no framework yet: nothing moves).
    let cap = api(&master, "/api/v1/capacity").await?;
    let dom = browser::dump_dom(&format!("{base}/ui?group_by=rack")).await?;
    assert_same_origin(&dom);
    for dim in ["cpus", "mem", "disk", "gpus", "ports"] {
        for state in ["total", "allocated", "offered", "free"] {
            assert_eq!(
                cell(&dom, &format!("cluster-{dim}-{state}")),
                Some(text_of(&cap["cluster"][state][dim])),
                "{dim} {state}"
            );
        }
    }
    assert_eq!(cell(&dom, "agents-count").as_deref(), Some("3"));
    for shape in cap["fragmentation"]["shapes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = shape["name"].as_str().unwrap_or_default();
        assert_eq!(
            cell(&dom, &format!("placeable-{name}")),
            Some(text_of(&shape["cluster"]))
        );
    }
    assert!(dom.contains("data-test=\"group-r1\""), "grouped by rack");
    assert_eq!(
        dom.matches("data-test=\"master-row\"").count(),
        1,
        "a group of one"
    );
    assert!(dom.contains("★ leader"), "the masters' group is shown");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script ran under the CSP"
    );
    browser::screenshot(
        &format!("{base}/ui?group_by=rack"),
        &shots.join("cluster.png"),
    )
    .await?;

    let (code, head, _) = http_request(master.addr, "GET", "/ui", None).await?;
    assert_eq!(code, 200);
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );

    // Agents, filtered and sorted.
    let dom = browser::dump_dom(&format!("{base}/ui/agents?attr=rack%3Ar1&sort=cpus.free")).await?;
    assert_eq!(dom.matches("data-test=\"agent-row\"").count(), 2);
    browser::screenshot(&format!("{base}/ui/agents"), &shots.join("agents.png")).await?;

    // The calculator, typed into and clicked; the script answers in place.
    let driver = WebDriver::start().await?;
    driver.goto(&format!("{base}/ui/fit")).await?;
    let cpus = driver.find("input[name=cpus]").await?;
    driver.type_into(&cpus, "1.5").await?;
    let mem = driver.find("input[name=mem]").await?;
    driver.type_into(&mem, "512").await?;
    let constraint = driver.find("input[name=constraint]").await?;
    driver.type_into(&constraint, "rack:GROUP_BY").await?;
    let submit = driver.find("[data-test=fit-submit]").await?;
    driver.click(&submit).await?;
    let shown = agora_tests::eventually("the calculator's answer", WAIT, || async {
        let v = driver
            .script("const e = document.querySelector('[data-test=fit-placeable]'); return e ? [e.textContent, document.body.dataset.swaps || '', location.search] : null;")
            .await
            .ok()?;
        v.as_array().cloned()
    })
    .await?;
    let fit = api(
        &master,
        "/api/v1/capacity/fit?cpus=1.5&mem=512&constraint=rack:GROUP_BY",
    )
    .await?;
    assert_eq!(
        shown[0].as_str(),
        Some(text_of(&fit["placeable"]).as_str()),
        "{shown:?} vs {fit}"
    );
    assert_eq!(
        shown[1], "1",
        "answered in place by the script, not by a reload"
    );
    assert!(
        shown[2].as_str().is_some_and(|q| q.contains("cpus=1.5")),
        "{shown:?}"
    );
    driver.quit().await?;
    browser::screenshot(
        &format!("{base}/ui/fit?cpus=1.5&mem=512&constraint=rack:GROUP_BY"),
        &shots.join("fit.png"),
    )
    .await?;
    // A bad field is a 400 page that names it.
    let (code, _, body) = http_request(master.addr, "GET", "/ui/fit?cpus=lots", None).await?;
    assert_eq!(code, 400);
    assert!(body.contains("/cpus"), "{body}");

    // Marathon: an app that cannot place its 4th instance (UNIQUE on 3 agents).
    let etcd = master
        .etcd_addr()
        .ok_or_else(|| anyhow::anyhow!("no etcd API"))?;
    let marathon = TestMarathon::start(vec![master.host_port()], etcd, "/ui-test").await?;
    marathon.wait_leader(WAIT).await?;
    let app = serde_json::json!({"id": "/web", "cmd": "sleep 1000", "cpus": 0.5, "mem": 64,
        "instances": 4, "constraints": [["hostname", "UNIQUE"]]});
    let (code, _) = marathon.call("POST", "/v2/apps", Some(&app)).await?;
    assert_eq!(code, 201);
    let dom = agora_tests::eventually(
        "the apps page with 3 running and 1 waiting",
        WAIT,
        || async {
            let dom = browser::dump_dom(&format!("{base}/ui/apps")).await.ok()?;
            (cell(&dom, "app-running").as_deref() == Some("3")
                && cell(&dom, "waiting-count").as_deref() == Some("1"))
            .then_some(dom)
        },
    )
    .await?;
    assert!(
        dom.contains("data-reason=\"UnfulfilledConstraint\""),
        "{dom}"
    );
    assert_eq!(cell(&dom, "app-instances").as_deref(), Some("4"));
    assert_eq!(cell(&dom, "app-status").as_deref(), Some("Waiting"));
    assert_same_origin(&dom);
    browser::screenshot(&format!("{base}/ui/apps"), &shots.join("apps.png")).await?;

    // The Stop button ends the deployment at Marathon (force: no rollback).
    let driver = WebDriver::start().await?;
    driver.goto(&format!("{base}/ui/apps")).await?;
    let stop = driver.find("[data-test=stop]").await?;
    driver.click(&stop).await?;
    agora_tests::eventually("the deployment stopped", WAIT, || async {
        let (code, body) = marathon.get("/v2/deployments").await.ok()?;
        (code == 200 && body.as_array().is_some_and(Vec::is_empty)).then_some(())
    })
    .await?;
    let back = driver
        .script("return [location.pathname, document.querySelectorAll('[data-test=deployment]').length];")
        .await?;
    assert_eq!(
        back,
        serde_json::json!(["/ui/apps", 0]),
        "back on the apps page, no deployment"
    );
    // Live refresh: within a few seconds the page swaps in a fresh copy of
    // itself, with no error (the CSP allows the same-origin fetch).
    let refreshed = agora_tests::eventually("a live refresh", WAIT, || async {
        let v = driver
            .script("return [document.body.dataset.swaps || '0', document.body.dataset.refreshError || ''];")
            .await
            .ok()?;
        (v[0] != "0").then_some(v)
    })
    .await?;
    assert_eq!(refreshed[1], "", "refresh failed: {refreshed}");
    driver.quit().await?;
    let (code, _, _) = http_request(
        master.addr,
        "POST",
        "/ui/apps/deployment",
        Some("framework=x&id=y&action=explode"),
    )
    .await?;
    assert_eq!(code, 415, "a form post needs the form content type");

    // History: once sampled, the chart's points equal the table's rows.
    agora_tests::eventually("a history sample", WAIT, || async {
        let v = api(&master, "/api/v1/capacity/history").await.ok()?;
        (!v["times"].as_array()?.is_empty()).then_some(())
    })
    .await?;
    // The role's scope samples what its frameworks hold (Marathon's tasks).
    agora_tests::eventually("a sample of what role * holds", WAIT, || async {
        let v = api(&master, "/api/v1/capacity/history?scope=role:*")
            .await
            .ok()?;
        let held = v["series"]["cpus.held"].as_array()?;
        held.iter()
            .any(|x| x.as_f64().is_some_and(|c| c >= 1.5))
            .then_some(())
    })
    .await?;
    let dom = browser::dump_dom(&format!("{base}/ui/history")).await?;
    let rows = dom.matches("data-test=\"history-row\"").count();
    assert!(rows >= 1);
    assert!(dom.contains(&format!("data-points=\"{rows}\"")), "{dom}");
    browser::screenshot(&format!("{base}/ui/history"), &shots.join("history.png")).await?;
    Ok(())
}

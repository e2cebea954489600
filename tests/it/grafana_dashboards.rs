//! Issue 9 §5 (GRAF-1): the Grafana dashboards in deploy/grafana/dashboards
//! against a live cluster. A master, two real agents and Marathon (one app
//! running, one with an instance that waits on its UNIQUE constraint) are
//! scraped every second by a real Prometheus; every panel expression must
//! succeed there with data, pass `promtool check rules`, and name only
//! metrics that are in the live scrape; two give the fixture's own numbers.
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agora_agent::AgentHandle;
use agora_tests::grafana::{self, LabelValues, Target};
use agora_tests::prometheus::{self, TestPrometheus};
use agora_tests::{TestMarathon, TestMaster, http_get};
use serde_json::{Value, json};

use crate::marathon_support::{
    DEPLOY_WAIT, agent_on, master_with_etcd, wait_app, wait_no_deployments,
};

/// How long one expression may take to return data: rates need a few
/// scrapes after the targets come up.
const QUERY_WAIT: Duration = Duration::from_secs(15);

/// The cluster the dashboards are checked against.
struct Cluster {
    master: TestMaster,
    agents: Vec<AgentHandle>,
    marathon: TestMarathon,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// A master, two agents on racks r1 and r2, and Marathon with `/web`
    /// (2 instances) running and `/spread` (hostname:UNIQUE, 3 instances
    /// on 2 agents) leaving one instance waiting, its offers declined for
    /// the constraint: so the queue, decline and deployment gauges hold
    /// data.
    async fn start() -> anyhow::Result<Cluster> {
        let (master, etcd) = master_with_etcd().await?;
        let dirs = vec![tempfile::tempdir()?, tempfile::tempdir()?];
        let agents = vec![
            agent_on(&master, dirs[0].path(), "host-a", "r1", false).await?,
            agent_on(&master, dirs[1].path(), "host-b", "r2", false).await?,
        ];
        let marathon = TestMarathon::start(vec![master.host_port()], etcd, "/grafana").await?;
        marathon.wait_leader(Duration::from_secs(20)).await?;
        let web = json!({"id": "/web", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 2});
        let spread = json!({"id": "/spread", "cmd": "sleep 300", "cpus": 0.1, "mem": 16,
                            "instances": 3, "constraints": [["hostname", "UNIQUE"]]});
        for app in [&web, &spread] {
            let (code, body) = marathon.call("POST", "/v2/apps", Some(app)).await?;
            assert_eq!(code, 201, "{body}");
        }
        wait_app(&marathon, "/web", "/web running", |a| {
            a["tasksRunning"] == 2
        })
        .await?;
        wait_app(&marathon, "/spread", "2 of /spread", |a| {
            a["tasksRunning"] == 2
        })
        .await?;
        let waiting =
            r#"marathon_queue_waiting_instances{app="/spread",reason="UnfulfilledConstraint"} 1"#;
        agora_tests::eventually("/spread waits on its constraint", DEPLOY_WAIT, || async {
            let (_, text) = http_get(marathon.addr, "/metrics").await.ok()?;
            text.contains(waiting).then_some(())
        })
        .await?;
        Ok(Cluster {
            master,
            agents,
            marathon,
            _dirs: dirs,
        })
    }

    /// What Prometheus scrapes: `(component, address)`.
    fn targets(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut t = vec![
            ("agora-master", self.master.addr),
            ("marathon", self.marathon.addr),
        ];
        t.extend(self.agents.iter().map(|a| ("agora-agent", a.addr())));
        t
    }

    /// Every sample name the targets' `/metrics` expose now; each
    /// exposition must pass `promtool check metrics` (naming conventions).
    async fn scraped_names(&self) -> anyhow::Result<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        for (_, addr) in self.targets() {
            let (code, text) = http_get(addr, "/metrics").await?;
            assert_eq!(code, 200, "{addr}/metrics: {text}");
            let (clean, said) = agora_tests::promtool::check_metrics(&text).await?;
            assert!(clean, "{addr}/metrics: promtool: {said}\n{text}");
            names.extend(grafana::sample_names(&text));
        }
        Ok(names)
    }

    /// Removes the apps (so no task outlives the test: stopped agents
    /// leave their tasks running) and stops Marathon and the agents.
    async fn stop(mut self) -> anyhow::Result<()> {
        for id in ["/web", "/spread"] {
            let path = format!("/v2/apps{id}?force=true");
            let (code, body) = self.marathon.call("DELETE", &path, None).await?;
            assert_eq!(code, 200, "{body}");
        }
        wait_no_deployments(&self.marathon).await?;
        self.marathon.stop().await;
        for a in self.agents {
            a.shutdown().await;
        }
        Ok(())
    }
}

fn dashboards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards")
}

/// Every target and query variable of the shipped dashboards.
fn shipped() -> anyhow::Result<(Vec<Target>, Vec<LabelValues>)> {
    let dashboards = grafana::load_dir(&dashboards_dir())?;
    let names: Vec<&str> = dashboards.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["capacity", "deployments", "scheduler"]);
    let (mut targets, mut variables) = (Vec::new(), Vec::new());
    for d in &dashboards {
        let t = d.targets()?;
        assert!(!t.is_empty(), "{} has no panel queries", d.name);
        targets.extend(t);
        variables.extend(d.variables()?.queries);
    }
    Ok((targets, variables))
}

/// `promtool check rules` accepts every expression as a recording rule.
fn rules_pass_promtool(targets: &[Target], dir: &std::path::Path) -> anyhow::Result<()> {
    let path = dir.join("dashboards.rules.yml");
    std::fs::write(&path, grafana::rules_yaml(targets))?;
    let (ok, said) = prometheus::check_rules(&path)?;
    assert!(ok, "promtool check rules:\n{said}");
    assert!(
        said.contains(&format!("{} rules found", targets.len())),
        "{said}"
    );
    Ok(())
}

/// Every metric a panel or variable names is in the live scrape.
fn names_are_scraped(targets: &[Target], variables: &[LabelValues], scraped: &BTreeSet<String>) {
    let mut missing = Vec::new();
    for t in targets {
        for name in grafana::metric_names(&t.expr) {
            if !scraped.contains(&name) {
                missing.push(format!("{} / {}: {name}", t.dashboard, t.panel));
            }
        }
    }
    for v in variables.iter().filter(|v| !scraped.contains(&v.metric)) {
        missing.push(format!("{} / ${}: {}", v.dashboard, v.name, v.metric));
    }
    assert!(missing.is_empty(), "not in the live scrape: {missing:#?}");
}

/// Runs `expr` until it returns data or [`QUERY_WAIT`] passes; the error
/// or the empty result otherwise.
async fn query_until_data(p: &TestPrometheus, expr: &str) -> Result<Vec<Value>, String> {
    let deadline = Instant::now() + QUERY_WAIT;
    loop {
        let last = match p.query(expr).await {
            Ok(r) if !r.is_empty() => return Ok(r),
            Ok(_) => "empty result".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(prometheus::SCRAPE_INTERVAL).await;
    }
}

/// `(label value, sample value)` of each series in an instant result.
fn samples(result: &[Value], label: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = result
        .iter()
        .map(|r| {
            let l = r["metric"][label].as_str().unwrap_or_default();
            (
                l.to_string(),
                r["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Two panels' numbers are the fixture's, through the whole pipeline: each
/// agent's CPU states sum to its 2 CPUs, and the one waiting instance waits
/// on its constraint.
async fn fixture_numbers_hold(p: &TestPrometheus) -> Result<(), String> {
    let per_agent = query_until_data(p, "sum by (hostname) (agora_capacity_cpus)").await?;
    let want = vec![("host-a".into(), "2".into()), ("host-b".into(), "2".into())];
    assert_eq!(samples(&per_agent, "hostname"), want);
    let reasons = "sum by (reason) (marathon_queue_waiting_instances)";
    let waiting = query_until_data(p, reasons).await?;
    let want = vec![("UnfulfilledConstraint".into(), "1".into())];
    assert_eq!(samples(&waiting, "reason"), want);
    Ok(())
}

#[tokio::test]
async fn grafana_dashboards_query_a_live_cluster() -> anyhow::Result<()> {
    if !prometheus::available("grafana_dashboards_query_a_live_cluster") {
        return Ok(());
    }
    let (targets, variables) = shipped()?;
    let cluster = Cluster::start().await?;
    names_are_scraped(&targets, &variables, &cluster.scraped_names().await?);
    let targets_up = cluster.targets().len();
    let prom = TestPrometheus::start(&cluster.targets()).await?;
    rules_pass_promtool(&targets, prom.dir())?;
    prom.wait_scraped(targets_up, Duration::from_secs(60))
        .await?;
    fixture_numbers_hold(&prom)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut failed = Vec::new();
    for t in &targets {
        if let Err(e) = query_until_data(&prom, &t.expr).await {
            failed.push(format!(
                "{} / {} ({}): {}: {e}",
                t.dashboard, t.panel, t.ref_id, t.expr
            ));
        }
    }
    // A variable's values: the label's values on its metric.
    for v in &variables {
        let expr = format!("count by ({}) ({})", v.label, v.metric);
        if let Err(e) = query_until_data(&prom, &expr).await {
            failed.push(format!("{} / ${}: {expr}: {e}", v.dashboard, v.name));
        }
    }
    assert!(
        failed.is_empty(),
        "panels without data: {failed:#?}\n{}",
        prom.log()
    );
    drop(prom);
    cluster.stop().await
}

//! The agent's event loop under bursts (issue 6): a real master and agent
//! in this process, `BURST_N` (default 500) process tasks (`sleep 600`
//! under cgroups) launched in one ACCEPT, then all of them killed at once.
//!
//! - launch rate: ACCEPT sent → the last TASK_RUNNING reaching the
//!   framework, as tasks per second (nothing else asks the agent anything
//!   meanwhile);
//! - kill burst: every KillRequest sent concurrently; the agent's `/state`
//!   is fetched over HTTP back to back (a new connection each time, 5 ms
//!   apart) from the first kill until the last TASK_KILLED arrives, and
//!   the max and p99 of those latencies are reported (target: under 50 ms
//!   throughout). `/state` is answered by the agent's event loop, so its
//!   latency is how long the loop is busy with something else, plus the
//!   cost of `/state` itself, sampled for 2 s with all tasks running
//!   before the kills ("idle").
//!
//! The framework acknowledges every update at once. Each round starts a
//! fresh master and agent; `BURST_ROUNDS` (default 3) rounds per run.
//!
//! Run: `cargo bench -p agora-benches --bench agent_burst`
//! (env `BURST_N`, `BURST_ROUNDS`). Needs cgroups and root; no Docker.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agora_agent::{AgentConfig, DockerMode, GcConfig};
use agora_model::Resources;
use agora_proto::v1;
use agora_proto::v1::scheduler_client::SchedulerClient;
use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Every task's resources; 500 of them fit the agent's total below.
const TASK_RESOURCES: &str = "cpus:0.1;mem:32";
/// Far more than the tasks use, so no launch is refused.
const AGENT_RESOURCES: &str = "cpus:64;mem:65536;disk:100000";
/// Longest wait for the whole launch or kill burst.
const WAIT: Duration = Duration::from_secs(300);
/// How long `/state` is sampled with all tasks running, before the kills.
const IDLE_SAMPLING: Duration = Duration::from_secs(2);
/// Pause between two `/state` samples.
const SAMPLE_GAP: Duration = Duration::from_millis(5);

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v}")),
        Err(_) => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let n = env_usize("BURST_N", 500)?;
    let rounds = env_usize("BURST_ROUNDS", 3)?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut results = Vec::new();
    for round in 0..rounds {
        let r = rt.block_on(one_round(n, round))?;
        println!(
            "round {round}: launch {n} in {:.2} s = {:.1} tasks/s; \
             /state idle with {n} tasks: max {:.1} ms, p50 {:.1} ms; \
             kill {n} in {:.2} s, /state during kills: max {:.1} ms, p99 {:.1} ms, p50 {:.1} ms, {} samples",
            r.launch.as_secs_f64(),
            r.rate(n),
            r.idle_state.max_ms(),
            r.idle_state.pct_ms(0.50),
            r.kill.as_secs_f64(),
            r.kill_state.max_ms(),
            r.kill_state.pct_ms(0.99),
            r.kill_state.pct_ms(0.50),
            r.kill_state.0.len(),
        );
        results.push(r);
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "median of {rounds}: launch {:.1} tasks/s; /state during kills max {:.1} ms, p99 {:.1} ms",
        med(results.iter().map(|r| r.rate(n)).collect()),
        med(results.iter().map(|r| r.kill_state.max_ms()).collect()),
        med(results.iter().map(|r| r.kill_state.pct_ms(0.99)).collect()),
    );
    Ok(())
}

/// One round's figures.
struct RoundResult {
    launch: Duration,
    idle_state: Latencies,
    kill: Duration,
    kill_state: Latencies,
}

impl RoundResult {
    fn rate(&self, n: usize) -> f64 {
        n as f64 / self.launch.as_secs_f64()
    }
}

/// `/state` latencies.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn max_ms(&self) -> f64 {
        self.0
            .iter()
            .max()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
    fn pct_ms(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 * p).ceil() as usize).saturating_sub(1);
        v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
}

async fn one_round(n: usize, round: usize) -> anyhow::Result<RoundResult> {
    let tmp = tempfile::tempdir()?;
    let cgroup_parent = format!("agora-burst-{}-{round}", std::process::id());
    // Pings every second with 10 misses allowed, as in the launch bench:
    // the kill burst must not get the agent declared unreachable.
    let master_config = agora_master::MasterConfig {
        allocation_interval: Duration::from_millis(50),
        agent_ping_interval: Duration::from_secs(1),
        max_agent_ping_misses: 10,
        ..agora_master::MasterConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let master_addr = listener.local_addr()?;
    let master = agora_master::start(master_config, listener).await?;
    let config = AgentConfig {
        masters: vec![master_addr.to_string()],
        work_dir: tmp.path().join("agent"),
        resources: Some(Resources::parse(AGENT_RESOURCES)?),
        docker: DockerMode::Disabled,
        cgroup_parent: cgroup_parent.clone(),
        default_kill_grace: Duration::ZERO,
        gc: GcConfig {
            interval: Duration::from_secs(3600),
            ..GcConfig::default()
        },
        ..AgentConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agent = agora_agent::start(config, listener).await?;
    let agent_addr = agent.addr();
    let agent_id = agent
        .wait_registered(Duration::from_secs(30))
        .await
        .context("the agent did not register")?
        .to_string();
    let mut fw = Framework::subscribe(format!("http://{master_addr}")).await?;
    let result = measure(&mut fw, agent_addr, &agent_id, n).await;
    drop(fw);
    agent.shutdown().await;
    master.shutdown().await;
    remove_cgroup_parent(&cgroup_parent);
    result
}

async fn measure(
    fw: &mut Framework,
    agent_addr: SocketAddr,
    agent_id: &str,
    n: usize,
) -> anyhow::Result<RoundResult> {
    let ids: Vec<String> = (0..n).map(|i| format!("burst-{i}")).collect();
    let offer = tokio::time::timeout(WAIT, fw.offers.recv())
        .await
        .context("no offer")?
        .context("event stream ended")?;
    let tasks = ids.iter().map(|id| task_info(id, agent_id)).collect();
    // No `/state` sampling here: an agent that answers fast would serve
    // hundreds of 300 kB answers during the launches and pay for them in
    // launch rate, one that is stuck only a few.
    let start = Instant::now();
    fw.accept(offer, tasks).await?;
    fw.wait_all(&ids, v1::TaskState::TaskRunning).await?;
    let launch = start.elapsed();

    // The cost of `/state` itself with every task running and nothing
    // else going on, to read the burst figures against.
    let sampler = Sampler::start(agent_addr);
    tokio::time::sleep(IDLE_SAMPLING).await;
    let idle_state = sampler.stop().await?;

    let sampler = Sampler::start(agent_addr);
    let start = Instant::now();
    let mut kills = tokio::task::JoinSet::new();
    for id in &ids {
        let (mut client, request) = (fw.client.clone(), fw.kill_request(agent_id, id));
        kills.spawn(async move { client.kill(request).await.map(drop) });
    }
    while let Some(r) = kills.join_next().await {
        r??;
    }
    fw.wait_all(&ids, v1::TaskState::TaskKilled).await?;
    let kill = start.elapsed();
    let kill_state = sampler.stop().await?;
    Ok(RoundResult {
        launch,
        idle_state,
        kill,
        kill_state,
    })
}

/// Fetches `/state` back to back until stopped.
struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Latencies>>,
}

impl Sampler {
    fn start(addr: SocketAddr) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let t = Instant::now();
                let status = http_get_status(addr, "/state").await?;
                anyhow::ensure!(status == 200, "/state answered {status}");
                out.push(t.elapsed());
                tokio::select! {
                    _ = &mut stopped => return Ok(Latencies(out)),
                    () = tokio::time::sleep(SAMPLE_GAP) => {}
                }
            }
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> anyhow::Result<Latencies> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// GET over a fresh connection, reading the whole answer; the status code.
async fn http_get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(buf.get(..buf.len().min(64)).unwrap_or_default());
    head.split_whitespace()
        .nth(1)
        .context("no status code")?
        .parse()
        .context("bad status code")
}

fn task_info(id: &str, agent_id: &str) -> v1::TaskInfo {
    let resources = Resources::parse(TASK_RESOURCES).unwrap_or_default();
    v1::TaskInfo {
        task_id: id.into(),
        name: id.into(),
        agent_id: agent_id.into(),
        resources: agora_proto::convert::resources_to_wire(&resources),
        command: Some(v1::CommandInfo {
            shell: false,
            value: "sleep".into(),
            arguments: vec!["600".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A framework over raw gRPC that acknowledges every update at once.
struct Framework {
    client: SchedulerClient<Channel>,
    header: v1::CallHeader,
    offers: mpsc::UnboundedReceiver<v1::Offer>,
    updates: mpsc::UnboundedReceiver<v1::TaskStatus>,
    reader: tokio::task::JoinHandle<()>,
}

impl Framework {
    async fn subscribe(endpoint: String) -> anyhow::Result<Framework> {
        let mut client = SchedulerClient::connect(endpoint).await?;
        let info = v1::FrameworkInfo {
            name: "burst-bench".into(),
            failover_timeout_seconds: 3600.0,
            checkpoint: true,
            ..Default::default()
        };
        let request = v1::SubscribeRequest {
            framework_info: Some(info),
            suppressed_roles: vec![],
        };
        let mut events = client.subscribe(request).await?.into_inner();
        let header = match tokio::time::timeout(WAIT, events.next()).await? {
            Some(Ok(v1::Event {
                event: Some(v1::event::Event::Subscribed(s)),
            })) => v1::CallHeader {
                framework_id: s.framework_id,
                stream_id: s.stream_id,
            },
            other => anyhow::bail!("expected SUBSCRIBED, got {other:?}"),
        };
        let (offer_tx, offers) = mpsc::unbounded_channel();
        let (update_tx, updates) = mpsc::unbounded_channel();
        let (acker, ack_header) = (client.clone(), header.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(ev)) = events.next().await {
                match ev.event {
                    Some(v1::event::Event::Offers(o)) => {
                        o.offers.into_iter().for_each(|o| drop(offer_tx.send(o)));
                    }
                    Some(v1::event::Event::Update(v1::event::Update {
                        status: Some(status),
                    })) => {
                        if !status.uuid.is_empty() {
                            let ack = v1::AcknowledgeRequest {
                                header: Some(ack_header.clone()),
                                agent_id: status.agent_id.clone(),
                                task_id: status.task_id.clone(),
                                uuid: status.uuid.clone(),
                            };
                            let mut c = acker.clone();
                            tokio::spawn(async move { c.acknowledge(ack).await });
                        }
                        let _ = update_tx.send(status);
                    }
                    _ => {}
                }
            }
        });
        Ok(Framework {
            client,
            header,
            offers,
            updates,
            reader,
        })
    }

    async fn accept(&mut self, offer: v1::Offer, tasks: Vec<v1::TaskInfo>) -> anyhow::Result<()> {
        let op = v1::Operation {
            operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                task_infos: tasks,
            })),
        };
        let request = v1::AcceptRequest {
            header: Some(self.header.clone()),
            offer_ids: vec![offer.offer_id],
            operations: vec![op],
            filters: Some(v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        };
        self.client.accept(request).await?;
        Ok(())
    }

    fn kill_request(&self, agent_id: &str, task_id: &str) -> v1::KillRequest {
        v1::KillRequest {
            header: Some(self.header.clone()),
            task_id: task_id.into(),
            agent_id: agent_id.into(),
            kill_policy: Some(v1::KillPolicy {
                grace_period_seconds: Some(0.0),
            }),
        }
    }

    /// Waits until every task in `ids` reported `state`; another terminal
    /// state is an error.
    async fn wait_all(&mut self, ids: &[String], state: v1::TaskState) -> anyhow::Result<()> {
        use v1::TaskState as S;
        let mut left: HashMap<&str, ()> = ids.iter().map(|i| (i.as_str(), ())).collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !left.is_empty() {
            let s = tokio::time::timeout_at(deadline, self.updates.recv())
                .await
                .with_context(|| format!("{} tasks never reached {state:?}", left.len()))?
                .context("event stream ended")?;
            if s.state == state as i32 {
                left.remove(s.task_id.as_str());
                continue;
            }
            let live = [
                S::TaskStaging,
                S::TaskStarting,
                S::TaskRunning,
                S::TaskKilling,
            ];
            anyhow::ensure!(
                live.iter().any(|k| *k as i32 == s.state),
                "{}: {:?} ({:?}): {}",
                s.task_id,
                S::try_from(s.state),
                v1::task_status::Reason::try_from(s.reason),
                s.message
            );
        }
        Ok(())
    }
}

impl Drop for Framework {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes `<hierarchy>/<parent>/<agent>/<task>`, `<hierarchy>/<parent>/<agent>`
/// and `<hierarchy>/<parent>` in every cgroup hierarchy. After a round that
/// went well they are empty (the runtime removes task cgroups but leaves
/// the parents); after a failed one the tasks still run, so whatever is in
/// them is SIGKILLed first (all of it was started by this run).
fn remove_cgroup_parent(parent: &str) {
    let pids_dir = std::path::Path::new("/sys/fs/cgroup/pids").join(parent);
    for _ in 0..50 {
        let pids = cgroup_pids(&pids_dir);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    remove_cgroup_dirs(parent);
}

/// Every pid in the cgroup tree under `dir`.
fn cgroup_pids(dir: &std::path::Path) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if child.path().is_dir() {
            out.extend(cgroup_pids(&child.path()));
        }
    }
    out
}

fn remove_cgroup_dirs(parent: &str) {
    let root = std::path::Path::new("/sys/fs/cgroup");
    let hierarchies = std::fs::read_dir(root)
        .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in hierarchies
        .iter()
        .map(|h| h.join(parent))
        .chain([root.join(parent)])
    {
        remove_tree(&dir);
    }
}

/// rmdir of a cgroup directory tree, deepest first.
fn remove_tree(dir: &std::path::Path) {
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if child.path().is_dir() {
            remove_tree(&child.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

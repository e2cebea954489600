//! Helpers for the real-agent integration tests: a real agent with short
//! timings on a temp work dir, a raw-gRPC framework that acknowledges only
//! when told to, task builders, and Docker gating (`CI=true` makes a
//! missing daemon a failure instead of a skip).
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_agent::{AgentConfig, AgentHandle, GcConfig};
use agora_model::Resources;
use agora_proto::v1;
use agora_proto::v1::scheduler_client::SchedulerClient;
use agora_tests::{RawFramework, TestMaster};
use anyhow::Context;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Longest wait for any one expected event.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// Each agent gets its own 20 ports so tests running in parallel never
/// fight over a port a task binds. They sit below Linux's ephemeral range
/// (32768-60999), where every test's outgoing connections and `:0` binds
/// could take one first.
static NEXT_PORTS: AtomicU64 = AtomicU64::new(0);

/// An agent configuration for tests: the given master, fixed resources
/// with a private port range, and short timings (update backoff
/// 200 ms..2 s, registration backoff 50..500 ms).
pub(crate) fn agent_config(master: &TestMaster, work_dir: &Path) -> AgentConfig {
    let n = NEXT_PORTS.fetch_add(1, Ordering::SeqCst);
    let base = 21000 + n * 20;
    let resources = Resources::parse(&format!(
        "cpus:2;mem:1024;disk:2048;ports:[{base}-{}]",
        base + 19
    ));
    AgentConfig {
        masters: vec![master.host_port()],
        work_dir: work_dir.to_path_buf(),
        resources: Some(resources.unwrap_or_default()),
        default_kill_grace: Duration::from_secs(1),
        status_update_backoff_min: Duration::from_millis(200),
        status_update_backoff_max: Duration::from_secs(2),
        register_backoff_min: Duration::from_millis(50),
        register_backoff_max: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        task_pids_limit: Some(256),
        gc: GcConfig {
            interval: Duration::from_secs(3600),
            ..GcConfig::default()
        },
        ..AgentConfig::default()
    }
}

/// The agent's id as a string (it must be registered).
pub(crate) fn id_of(agent: &AgentHandle) -> anyhow::Result<String> {
    agent
        .agent_id()
        .map(|a| a.to_string())
        .context("agent has no id")
}

/// Starts an agent on 127.0.0.1:0 and waits for its registration.
pub(crate) async fn start_agent(config: AgentConfig) -> anyhow::Result<AgentHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agent = agora_agent::start(config, listener).await?;
    agent
        .wait_registered(WAIT)
        .await
        .context("agent did not register")?;
    Ok(agent)
}

/// Starts an agent on the given port (a restart keeps its address).
pub(crate) async fn restart_agent(
    config: AgentConfig,
    addr: std::net::SocketAddr,
) -> anyhow::Result<AgentHandle> {
    let mut last = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let agent = agora_agent::start(config, l).await?;
                agent
                    .wait_registered(WAIT)
                    .await
                    .context("agent did not re-register")?;
                return Ok(agent);
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    anyhow::bail!("could not rebind {addr}: {last:?}")
}

/// Taken in turn by the Docker tests that crash and restart an agent around
/// Docker calls and by Marathon's Docker tests (dozens of containers):
/// together they loaded the daemon enough for a recovery to miss its
/// window. Held for the whole test.
pub(crate) static DOCKER_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The Docker daemon, with the test image built; `None` (with a note) when
/// there is no daemon, unless `CI=true`, where that is a failure.
pub(crate) async fn docker_or_skip(test: &str) -> Option<agora_runtime::DockerRuntime> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match agora_runtime::DockerRuntime::connect(agora_runtime::DockerConfig::default()).await {
        Ok(d) => {
            if let Err(e) = agora_runtime::testing::ensure_test_image(d.client()).await {
                panic!("{test}: building the test image failed: {e}");
            }
            Some(d)
        }
        Err(e) if ci => panic!("{test}: CI=true but Docker is unavailable: {e}"),
        Err(e) => {
            eprintln!(
                "SKIPPED {test}: Docker is unavailable ({e}); set CI=true to make this a failure"
            );
            None
        }
    }
}

/// A command task.
pub(crate) fn shell_task(id: &str, cmd: &str, resources: &str) -> v1::TaskInfo {
    let res = Resources::parse(resources).unwrap_or_default();
    v1::TaskInfo {
        task_id: id.into(),
        name: id.into(),
        resources: agora_proto::convert::resources_to_wire(&res),
        command: Some(v1::CommandInfo {
            shell: true,
            value: cmd.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Docker task on the busybox test image.
pub(crate) fn docker_task(id: &str, cmd: &str, resources: &str) -> v1::TaskInfo {
    let mut t = shell_task(id, cmd, resources);
    t.container = Some(v1::ContainerInfo {
        docker: Some(v1::DockerInfo {
            image: agora_runtime::testing::TEST_IMAGE.into(),
            ..Default::default()
        }),
    });
    t
}

/// `ports:[p-p]` of the agent's first offered port plus `extra`.
pub(crate) fn first_port(offer: &v1::Offer) -> Option<u16> {
    let res = agora_proto::convert::resources_from_wire(&offer.resources, "offer").ok()?;
    res.ports()
        .values()
        .next()
        .and_then(|p| u16::try_from(p).ok())
}

/// A framework over raw gRPC. It acknowledges updates only when asked
/// (`auto_ack`), so tests can watch resends.
pub(crate) struct Framework {
    pub(crate) client: SchedulerClient<Channel>,
    events: tonic::Streaming<v1::Event>,
    pub(crate) id: String,
    stream_id: String,
    pub(crate) auto_ack: bool,
    offers: VecDeque<v1::Offer>,
    /// Updates received but not yet asked for (other tasks').
    updates: VecDeque<v1::TaskStatus>,
}

/// A checkpointing framework that may be away for an hour.
fn framework_info(
    id: &str,
    name: &str,
    capabilities: &[v1::framework_info::Capability],
) -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        framework_id: id.into(),
        name: name.into(),
        capabilities: capabilities.iter().map(|c| *c as i32).collect(),
        failover_timeout_seconds: 3600.0,
        checkpoint: true,
        ..Default::default()
    }
}

/// A master that tolerates an agent being away for 5 s (pings every 200 ms,
/// 25 misses), as a restarted agent usually is; with the harness default
/// (0.5 s) tasks of non-partition-aware frameworks would be lost and killed.
pub(crate) async fn crash_tolerant_master() -> TestMaster {
    TestMaster::start_with(agora_master::MasterConfig {
        agent_ping_interval: Duration::from_millis(200),
        max_agent_ping_misses: 25,
        ..TestMaster::fast_config()
    })
    .await
}

impl Framework {
    /// Subscribes with the given capabilities.
    pub(crate) async fn subscribe(
        master: &TestMaster,
        name: &str,
        capabilities: &[v1::framework_info::Capability],
    ) -> anyhow::Result<Framework> {
        let raw =
            RawFramework::subscribe(&master.endpoint(), framework_info("", name, capabilities))
                .await?;
        Ok(Framework {
            client: raw.client,
            events: raw.events,
            id: raw.id,
            stream_id: raw.stream,
            auto_ack: true,
            offers: VecDeque::new(),
            updates: VecDeque::new(),
        })
    }

    /// Subscribes again with the same framework id (after a master restart).
    pub(crate) async fn resubscribe(&mut self, master: &TestMaster) -> anyhow::Result<()> {
        let info = framework_info(&self.id, "resubscribed", &[]);
        let raw = RawFramework::subscribe(&master.endpoint(), info).await?;
        anyhow::ensure!(raw.id == self.id, "got a new framework id {}", raw.id);
        self.client = raw.client;
        self.events = raw.events;
        self.stream_id = raw.stream;
        self.offers.clear();
        Ok(())
    }

    fn header(&self) -> Option<v1::CallHeader> {
        Some(v1::CallHeader {
            framework_id: self.id.clone(),
            stream_id: self.stream_id.clone(),
        })
    }

    /// The next event, acknowledging updates if `auto_ack`; offers are kept
    /// for `offer()`.
    async fn next_event(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<v1::Event> {
        let ev = tokio::time::timeout_at(deadline, self.events.next())
            .await
            .context("timed out waiting for a framework event")?
            .context("framework stream ended")??;
        if let Some(v1::event::Event::Update(u)) = &ev.event
            && let Some(s) = &u.status
            && self.auto_ack
            && !s.uuid.is_empty()
        {
            self.ack(s).await?;
        }
        if let Some(v1::event::Event::Offers(o)) = &ev.event {
            self.offers.extend(o.offers.iter().cloned());
        }
        Ok(ev)
    }

    /// An offer from `agent_id`.
    pub(crate) async fn offer(&mut self, agent_id: &str) -> anyhow::Result<v1::Offer> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.offers.iter().position(|o| o.agent_id == agent_id) {
                let o = self.offers.remove(i).context("offer vanished")?;
                return Ok(o);
            }
            self.next_event(deadline).await?;
        }
    }

    /// Launches `task` on an offer from `agent_id`; `fill` may adjust the
    /// task with the offer (e.g. pick ports).
    pub(crate) async fn launch_with(
        &mut self,
        agent_id: &str,
        mut task: v1::TaskInfo,
        fill: impl FnOnce(&mut v1::TaskInfo, &v1::Offer),
    ) -> anyhow::Result<()> {
        let offer = self.offer(agent_id).await?;
        task.agent_id = agent_id.into();
        fill(&mut task, &offer);
        let op = v1::Operation {
            operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                task_infos: vec![task],
            })),
        };
        self.client
            .accept(v1::AcceptRequest {
                header: self.header(),
                offer_ids: vec![offer.offer_id],
                operations: vec![op],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            })
            .await?;
        Ok(())
    }

    /// Launches `task` as is.
    pub(crate) async fn launch(
        &mut self,
        agent_id: &str,
        task: v1::TaskInfo,
    ) -> anyhow::Result<()> {
        self.launch_with(agent_id, task, |_, _| {}).await
    }

    /// The next status update of `task_id`.
    pub(crate) async fn next_update(&mut self, task_id: &str) -> anyhow::Result<v1::TaskStatus> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.updates.iter().position(|s| s.task_id == task_id) {
                return self.updates.remove(i).context("update vanished");
            }
            if let Some(v1::event::Event::Update(u)) = self.next_event(deadline).await?.event
                && let Some(s) = u.status
            {
                self.updates.push_back(s);
            }
        }
    }

    /// Waits for an update of `task_id` matching `pred`; returns it and
    /// every update of the task seen on the way (inclusive).
    pub(crate) async fn wait_for(
        &mut self,
        task_id: &str,
        pred: impl Fn(&v1::TaskStatus) -> bool,
    ) -> anyhow::Result<(v1::TaskStatus, Vec<v1::TaskStatus>)> {
        let mut seen = Vec::new();
        loop {
            let s = self
                .next_update(task_id)
                .await
                .with_context(|| format!("updates so far: {seen:#?}"))?;
            seen.push(s.clone());
            if pred(&s) {
                return Ok((s, seen));
            }
        }
    }

    /// Waits for `task_id` to reach `state`.
    pub(crate) async fn wait_state(
        &mut self,
        task_id: &str,
        state: v1::TaskState,
    ) -> anyhow::Result<v1::TaskStatus> {
        Ok(self.wait_for(task_id, |s| s.state == state as i32).await?.0)
    }

    /// Acknowledges one update.
    pub(crate) async fn ack(&mut self, s: &v1::TaskStatus) -> anyhow::Result<()> {
        self.client
            .acknowledge(v1::AcknowledgeRequest {
                header: self.header(),
                agent_id: s.agent_id.clone(),
                task_id: s.task_id.clone(),
                uuid: s.uuid.clone(),
            })
            .await?;
        Ok(())
    }

    /// Asks the master to kill a task.
    pub(crate) async fn kill(&mut self, agent_id: &str, task_id: &str) -> anyhow::Result<()> {
        self.client
            .kill(v1::KillRequest {
                header: self.header(),
                task_id: task_id.into(),
                agent_id: agent_id.into(),
                kill_policy: None,
            })
            .await?;
        Ok(())
    }

    /// Explicit reconciliation of one task.
    pub(crate) async fn reconcile(&mut self, agent_id: &str, task_id: &str) -> anyhow::Result<()> {
        self.client
            .reconcile(v1::ReconcileRequest {
                header: self.header(),
                tasks: vec![v1::reconcile_request::ReconcileTask {
                    task_id: task_id.into(),
                    agent_id: agent_id.into(),
                }],
            })
            .await?;
        Ok(())
    }
}

/// Shorthand for a state's wire value.
pub(crate) fn st(s: v1::TaskState) -> i32 {
    s as i32
}

/// Shorthand for a reason's wire value.
pub(crate) fn reason(r: v1::task_status::Reason) -> i32 {
    r as i32
}

/// The agent's `/state` entry of a task.
pub(crate) async fn task_state(
    agent: &AgentHandle,
    task_id: &str,
) -> anyhow::Result<serde_json::Value> {
    let state = agent.state().await?;
    state["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == task_id).cloned())
        .with_context(|| format!("task {task_id} not in the agent's /state: {state}"))
}

/// Is a process with this pid alive?
pub(crate) fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

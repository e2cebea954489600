//! A simulated agent: speaks the real agent link protocol (Register,
//! Hello, pings, reliable status updates with uuids and acknowledgements,
//! re-registration with running tasks and unacknowledged updates) but runs no
//! processes. Task behaviour is configurable per agent and per task (labels),
//! so the same simulator serves functional tests and scale benchmarks.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use agora_model::{
    AgentId, Attributes, FrameworkId, Resources, StatusSource, TaskId, TaskState, TaskStatus,
};
use agora_proto::link::{AgentLink, next_master_message};
use agora_proto::{convert, v1};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

/// What a simulated task does once launched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskBehaviour {
    /// RUNNING, then FINISHED after the duration.
    RunFor(Duration),
    /// RUNNING, then FAILED with the exit code after the duration.
    Fail {
        /// Time before it fails.
        after: Duration,
        /// Exit code reported.
        code: i32,
    },
    /// Stays STAGING: never sends an update.
    NeverStart,
    /// RUNNING until killed.
    RunForever,
}

/// Configuration of one simulated agent.
#[derive(Debug, Clone)]
pub struct SimAgentConfig {
    /// Total resources offered.
    pub resources: Resources,
    /// Attributes.
    pub attributes: Attributes,
    /// Hostname reported.
    pub hostname: String,
    /// Default task behaviour. A task may override it with labels
    /// `sim.behaviour` = `finish` | `fail` | `never_start` | `forever`,
    /// `sim.duration_ms` and `sim.exit_code`.
    pub behaviour: TaskBehaviour,
    /// How often the head of an unacknowledged update queue is resent.
    pub retry_interval: Duration,
}

impl Default for SimAgentConfig {
    fn default() -> Self {
        SimAgentConfig {
            resources: Resources::parse("cpus:4;mem:4096;disk:10000;ports:[31000-31099]")
                .unwrap_or_default(),
            attributes: Attributes::default(),
            hostname: "sim".into(),
            behaviour: TaskBehaviour::RunForever,
            retry_interval: Duration::from_millis(300),
        }
    }
}

/// The longest wait between two sends of the same update (the real agent's
/// is 10 min; tests need less).
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

enum Control {
    Partition,
    Heal,
    Stop,
    Tasks(oneshot::Sender<Vec<(TaskId, TaskState)>>),
}

/// Handle to a running simulated agent.
pub struct SimAgent {
    control: mpsc::Sender<Control>,
    agent_id: watch::Receiver<Option<AgentId>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimAgent {
    /// Starts an agent that registers with the master at `master`
    /// ("http://host:port", or several separated by commas: it walks them
    /// and follows a standby's redirect to the leader, as the agent does).
    pub async fn start(master: &str, config: SimAgentConfig) -> SimAgent {
        let (control, rx) = mpsc::channel(16);
        let (id_tx, agent_id) = watch::channel(None);
        let sim = Sim {
            masters: master.split(',').map(|m| m.trim().to_string()).collect(),
            next_master: 0,
            leader_hint: None,
            last_master: None,
            config,
            agent_id: None,
            id_tx,
            tasks: BTreeMap::new(),
            queues: HashMap::new(),
            retry_at: HashMap::new(),
            timers: BTreeMap::new(),
            partitioned: false,
        };
        let task = tokio::spawn(sim.run(rx));
        SimAgent {
            control,
            agent_id,
            task,
        }
    }

    /// Waits until registered and returns the agent id.
    pub async fn agent_id(&self) -> AgentId {
        let mut rx = self.agent_id.clone();
        loop {
            if let Some(id) = rx.borrow().clone() {
                return id;
            }
            if rx.changed().await.is_err() {
                panic!("simulated agent stopped before registering");
            }
        }
    }

    /// Cuts the agent off: its stream closes and it ignores the master
    /// until `heal()`. Tasks keep their timers.
    pub async fn partition(&self) {
        let _ = self.control.send(Control::Partition).await;
    }

    /// Reconnects after `partition()`: re-registers with the same id,
    /// reporting running tasks and unacknowledged updates.
    pub async fn heal(&self) {
        let _ = self.control.send(Control::Heal).await;
    }

    /// The agent's tasks and their current states.
    pub async fn tasks(&self) -> Vec<(TaskId, TaskState)> {
        let (tx, rx) = oneshot::channel();
        let _ = self.control.send(Control::Tasks(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Stops the agent abruptly (its connection drops).
    pub async fn stop(mut self) {
        let _ = self.control.send(Control::Stop).await;
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct SimTask {
    framework: v1::FrameworkInfo,
    info: v1::TaskInfo,
    state: TaskState,
}

enum Timer {
    Running(FrameworkId, TaskId),
    End(FrameworkId, TaskId, TaskState, Option<i32>),
    Retry,
}

struct Sim {
    masters: Vec<String>,
    /// The configured master tried next.
    next_master: usize,
    /// Where a standby said the leader is: tried before the list.
    leader_hint: Option<String>,
    /// The master that accepted the last registration.
    last_master: Option<String>,
    config: SimAgentConfig,
    agent_id: Option<AgentId>,
    id_tx: watch::Sender<Option<AgentId>>,
    tasks: BTreeMap<(FrameworkId, TaskId), SimTask>,
    queues: HashMap<(FrameworkId, TaskId), VecDeque<v1::StatusUpdate>>,
    /// When each queue's head is resent next, and the backoff after that:
    /// like the real agent, per update and doubling from `retry_interval`.
    retry_at: HashMap<(FrameworkId, TaskId), (Instant, Duration)>,
    timers: BTreeMap<(Instant, u64), Timer>,
    partitioned: bool,
}

/// Messages to the master, and the master's messages as read by a task of
/// the connection (a channel, so that `select!` can wait on it safely).
type Conn = (
    mpsc::Sender<v1::AgentMessage>,
    mpsc::Receiver<Result<v1::MasterMessage, tonic::Status>>,
);

/// Messages read ahead from the master per simulated agent.
const INBOUND_BUFFER: usize = 1024;

impl Sim {
    fn at(&mut self, when: Instant, t: Timer) {
        let seq = self.timers.len() as u64 + rand::random::<u32>() as u64;
        self.timers.insert((when, seq), t);
    }

    /// The master to try now: a standby's hint, else the next in the list.
    fn pick_master(&mut self) -> String {
        if let Some(leader) = self.leader_hint.take().or_else(|| self.last_master.take()) {
            return leader;
        }
        let i = self.next_master % self.masters.len().max(1);
        self.next_master = self.next_master.wrapping_add(1);
        self.masters.get(i).cloned().unwrap_or_default()
    }

    async fn connect(&mut self) -> Option<Conn> {
        let master = self.pick_master();
        let mut link = AgentLink::connect(&master, Duration::from_secs(5))
            .await
            .ok()?;
        let mut running = Vec::new();
        let mut frameworks: BTreeMap<String, v1::FrameworkInfo> = BTreeMap::new();
        for ((fw, _), t) in &self.tasks {
            if !t.state.is_terminal() {
                running.push(v1::RunningTask {
                    framework_id: fw.to_string(),
                    task: Some(t.info.clone()),
                    state: convert::state_to_wire(t.state),
                    healthy: None,
                });
                frameworks.insert(fw.to_string(), t.framework.clone());
            }
        }
        let unacked: Vec<v1::StatusUpdate> = self
            .queues
            .values()
            .flat_map(|q| q.iter().cloned())
            .collect();
        let req = v1::RegisterRequest {
            agent_info: Some(v1::AgentInfo {
                agent_id: self
                    .agent_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                hostname: self.config.hostname.clone(),
                port: 5051,
                resources: convert::resources_to_wire(&self.config.resources),
                attributes: convert::attributes_to_wire(&self.config.attributes),
            }),
            tasks: running,
            frameworks: frameworks.into_values().collect(),
            unacknowledged_updates: unacked,
            version: "sim".into(),
        };
        let resp = match link.register(req, Duration::from_secs(30)).await {
            Ok(resp) => resp,
            Err(status) => {
                self.leader_hint = agora_proto::leader_hint(&status);
                return None;
            }
        };
        // After a lost link, try the master that took us first (a demoted
        // leader then redirects), as the real agent does.
        self.last_master = Some(master);
        let id = AgentId::parse(resp.agent_id).ok()?;
        self.agent_id = Some(id.clone());
        let hello = v1::agent_message::Hello {
            agent_id: id.to_string(),
            session_id: resp.session_id,
        };
        let (tx, mut reader) = link.attach(hello, 1024).await.ok()?;
        let (in_tx, inbound) = mpsc::channel(INBOUND_BUFFER);
        tokio::spawn(async move {
            loop {
                let msg = next_master_message(&mut reader).await.transpose();
                let end = !matches!(msg, Some(Ok(_)));
                if let Some(msg) = msg
                    && in_tx.send(msg).await.is_err()
                {
                    return;
                }
                if end {
                    return;
                }
            }
        });
        let _ = self.id_tx.send(Some(id));
        Some((tx, inbound))
    }

    async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        let mut conn: Option<Conn> = None;
        let tick = self.retry_tick();
        self.at(Instant::now() + tick, Timer::Retry);
        loop {
            if conn.is_none() && !self.partitioned {
                conn = self.connect().await;
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                self.resend_heads(&conn).await;
            }
            let next = self
                .timers
                .keys()
                .next()
                .map(|(t, _)| *t)
                .unwrap_or_else(|| Instant::now() + tick);
            tokio::select! {
                c = control.recv() => match c {
                    None | Some(Control::Stop) => return,
                    Some(Control::Partition) => { self.partitioned = true; conn = None; }
                    Some(Control::Heal) => { self.partitioned = false; }
                    Some(Control::Tasks(reply)) => {
                        let _ = reply.send(self.tasks.iter().map(|((_, t), s)| (t.clone(), s.state)).collect());
                    }
                },
                msg = async { match conn.as_mut() { Some((_, s)) => s.recv().await, None => std::future::pending().await } } => {
                    match msg {
                        Some(Ok(m)) => self.on_master(m, &conn).await,
                        _ => { conn = None; tokio::time::sleep(Duration::from_millis(50)).await; }
                    }
                }
                _ = sleep_until(next) => {
                    let Some((key, timer)) = self.timers.pop_first() else { continue };
                    if key.0 > Instant::now() { self.timers.insert(key, timer); continue; }
                    self.on_timer(timer, &conn).await;
                }
            }
        }
    }

    async fn send(&self, conn: &Option<Conn>, msg: v1::agent_message::Message) {
        if let Some((tx, _)) = conn {
            let _ = tx.send(v1::AgentMessage { message: Some(msg) }).await;
        }
    }

    /// After (re)connecting: every head goes again, and its backoff restarts.
    async fn resend_heads(&mut self, conn: &Option<Conn>) {
        let now = Instant::now();
        let retry = self.config.retry_interval;
        for (key, q) in &self.queues {
            if let Some(head) = q.front() {
                self.retry_at.insert(key.clone(), (now + retry, retry));
                self.send(conn, v1::agent_message::Message::StatusUpdate(head.clone()))
                    .await;
            }
        }
    }

    /// Resends the heads whose backoff has passed, doubling it (capped).
    async fn resend_due(&mut self, conn: &Option<Conn>) {
        let now = Instant::now();
        let due: Vec<(FrameworkId, TaskId)> = self
            .retry_at
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(head) = self.queues.get(&key).and_then(|q| q.front()).cloned() else {
                self.retry_at.remove(&key);
                continue;
            };
            if let Some((at, backoff)) = self.retry_at.get_mut(&key) {
                *backoff = (*backoff * 2).min(MAX_RETRY_BACKOFF);
                *at = now + *backoff;
            }
            self.send(conn, v1::agent_message::Message::StatusUpdate(head))
                .await;
        }
    }

    async fn update(
        &mut self,
        conn: &Option<Conn>,
        fw: &FrameworkId,
        task: &TaskId,
        state: TaskState,
        code: Option<i32>,
    ) {
        let key = (fw.clone(), task.clone());
        if let Some(t) = self.tasks.get_mut(&key) {
            t.state = state;
        }
        let mut st = TaskStatus::new(task.clone(), state, StatusSource::Executor, 0.0);
        st.uuid = Some(uuid::Uuid::new_v4());
        st.agent_id = self.agent_id.clone();
        st.framework_id = Some(fw.clone());
        st.exit_code = code;
        st.timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let up = v1::StatusUpdate {
            framework_id: fw.to_string(),
            status: Some(convert::status_to_wire(&st)),
        };
        let q = self.queues.entry(key.clone()).or_default();
        q.push_back(up.clone());
        if q.len() == 1 {
            let retry = self.config.retry_interval;
            self.retry_at.insert(key, (Instant::now() + retry, retry));
            self.send(conn, v1::agent_message::Message::StatusUpdate(up))
                .await;
        }
    }

    /// How often due resends are looked for: a quarter of the first backoff.
    fn retry_tick(&self) -> Duration {
        (self.config.retry_interval / 4).max(Duration::from_millis(20))
    }

    fn behaviour(&self, info: &v1::TaskInfo) -> TaskBehaviour {
        let ms = info
            .labels
            .get("sim.duration_ms")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        match info.labels.get("sim.behaviour").map(String::as_str) {
            Some("finish") => TaskBehaviour::RunFor(ms.unwrap_or(Duration::from_millis(100))),
            Some("fail") => TaskBehaviour::Fail {
                after: ms.unwrap_or(Duration::from_millis(100)),
                code: info
                    .labels
                    .get("sim.exit_code")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            },
            Some("never_start") => TaskBehaviour::NeverStart,
            Some("forever") => TaskBehaviour::RunForever,
            _ => self.config.behaviour,
        }
    }

    async fn on_master(&mut self, m: v1::MasterMessage, conn: &Option<Conn>) {
        let Some(msg) = m.message else { return };
        match msg {
            v1::master_message::Message::Ping(p) => {
                if !self.partitioned {
                    self.send(
                        conn,
                        v1::agent_message::Message::Pong(v1::agent_message::Pong { seq: p.seq }),
                    )
                    .await;
                }
            }
            v1::master_message::Message::Launch(l) => {
                let (Some(fwi), Some(info)) = (l.framework, l.task) else {
                    return;
                };
                let (Ok(fw), Ok(task)) = (
                    FrameworkId::parse(fwi.framework_id.clone()),
                    TaskId::parse(info.task_id.clone()),
                ) else {
                    return;
                };
                let behaviour = self.behaviour(&info);
                self.tasks.insert(
                    (fw.clone(), task.clone()),
                    SimTask {
                        framework: fwi,
                        info,
                        state: TaskState::Staging,
                    },
                );
                if behaviour == TaskBehaviour::NeverStart {
                    return;
                }
                self.update(conn, &fw, &task, TaskState::Starting, None)
                    .await;
                let now = Instant::now();
                self.at(
                    now + Duration::from_millis(10),
                    Timer::Running(fw.clone(), task.clone()),
                );
                match behaviour {
                    TaskBehaviour::RunFor(d) => {
                        self.at(now + d, Timer::End(fw, task, TaskState::Finished, Some(0)))
                    }
                    TaskBehaviour::Fail { after, code } => self.at(
                        now + after,
                        Timer::End(fw, task, TaskState::Failed, Some(code)),
                    ),
                    _ => {}
                }
            }
            v1::master_message::Message::Kill(k) => {
                let (Ok(fw), Ok(task)) =
                    (FrameworkId::parse(k.framework_id), TaskId::parse(k.task_id))
                else {
                    return;
                };
                let live = self
                    .tasks
                    .get(&(fw.clone(), task.clone()))
                    .is_some_and(|t| !t.state.is_terminal());
                if live {
                    self.update(conn, &fw, &task, TaskState::Killed, None).await;
                } else if !self.tasks.contains_key(&(fw.clone(), task.clone())) {
                    self.update(conn, &fw, &task, TaskState::Lost, None).await;
                }
            }
            v1::master_message::Message::Acknowledge(a) => {
                let (Ok(fw), Ok(task)) =
                    (FrameworkId::parse(a.framework_id), TaskId::parse(a.task_id))
                else {
                    return;
                };
                let key = (fw, task);
                let Some(q) = self.queues.get_mut(&key) else {
                    return;
                };
                let head_uuid = q
                    .front()
                    .and_then(|u| u.status.as_ref())
                    .map(|s| s.uuid.clone());
                if head_uuid.as_deref() == Some(a.uuid.as_slice()) {
                    q.pop_front();
                    if let Some(next) = q.front().cloned() {
                        let retry = self.config.retry_interval;
                        self.retry_at.insert(key, (Instant::now() + retry, retry));
                        self.send(conn, v1::agent_message::Message::StatusUpdate(next))
                            .await;
                    } else {
                        self.retry_at.remove(&key);
                        self.queues.remove(&key);
                        // Acknowledged terminal task: forget it (GC).
                        if self.tasks.get(&key).is_some_and(|t| t.state.is_terminal()) {
                            self.tasks.remove(&key);
                        }
                    }
                }
            }
        }
    }

    async fn on_timer(&mut self, t: Timer, conn: &Option<Conn>) {
        match t {
            Timer::Retry => {
                if !self.partitioned {
                    self.resend_due(conn).await;
                }
                self.at(Instant::now() + self.retry_tick(), Timer::Retry);
            }
            Timer::Running(fw, task) => {
                if self
                    .tasks
                    .get(&(fw.clone(), task.clone()))
                    .is_some_and(|t| t.state == TaskState::Starting)
                {
                    self.update(conn, &fw, &task, TaskState::Running, None)
                        .await;
                }
            }
            Timer::End(fw, task, state, code) => {
                if self
                    .tasks
                    .get(&(fw.clone(), task.clone()))
                    .is_some_and(|t| !t.state.is_terminal())
                {
                    self.update(conn, &fw, &task, state, code).await;
                }
            }
        }
    }
}

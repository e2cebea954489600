//! The loop with the fake runtime and a real checkpoint writer on a temp
//! dir: every status update that reaches the master link is already in
//! the task's `updates.json`, also in a burst of launches and kills.
use std::sync::Arc;
use std::time::Duration;

use agora_model::{AgentId, TaskStatus};
use agora_proto::v1;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Command, EVENT_CAPACITY, Event, Identity, State, WriterLink};
use crate::checkpoint::{Checkpoint, writer};
use crate::config::AgentConfig;
use crate::metrics::Metrics;
use crate::runtimes::Runtimes;
use crate::runtimes::fake::FakeRuntime;

const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    events: mpsc::Sender<Event>,
    outbound: mpsc::Receiver<v1::AgentMessage>,
    fake: Arc<FakeRuntime>,
    agent_id: watch::Receiver<Option<AgentId>>,
    work_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> anyhow::Result<Harness> {
        let dir = tempfile::tempdir()?;
        let work_dir = dir.path().to_path_buf();
        let config = AgentConfig {
            work_dir: work_dir.clone(),
            ..AgentConfig::default()
        };
        let checkpoint = Checkpoint::new(&work_dir);
        let fake = Arc::new(FakeRuntime::default());
        let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let (id_tx, agent_id) = watch::channel(None);
        let identity = Identity {
            hostname: "test-host".into(),
            port: 1,
            resources: agora_model::Resources::parse("cpus:64;mem:65536")?,
        };
        let state = State::new(
            config,
            identity,
            checkpoint.clone(),
            Runtimes::fake(fake.clone()),
            Arc::new(Metrics::new()?),
            events.clone(),
            id_tx,
        );
        let (req_tx, req_rx) = mpsc::channel(writer::WRITE_QUEUE);
        let (ans_tx, ans_rx) = mpsc::channel(writer::WRITE_QUEUE);
        let task = tokio::spawn(writer::run(checkpoint, req_rx, ans_tx));
        let link = WriterLink {
            requests: req_tx,
            answers: ans_rx,
            task,
        };
        tokio::spawn(state.run(events_rx, link));
        let (out_tx, outbound) = mpsc::channel(4096);
        events
            .send(Event::Registered {
                agent_id: AgentId::new_unchecked("a1"),
                master: "test".into(),
                outbound: out_tx,
                delivered: vec![],
            })
            .await?;
        Ok(Harness {
            events,
            outbound,
            fake,
            agent_id,
            work_dir,
            _dir: dir,
        })
    }

    async fn send_master(&self, m: v1::master_message::Message) -> anyhow::Result<()> {
        self.events.send(Event::FromMaster(Box::new(m))).await?;
        Ok(())
    }

    fn task_dir(&self, task: &str) -> std::path::PathBuf {
        self.work_dir.join("meta/tasks/f1").join(task)
    }

    /// The next status update sent to the master; asserts it is on disk.
    async fn next_update(&mut self) -> anyhow::Result<TaskStatus> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.outbound.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("outbound closed"))?;
            let Some(v1::agent_message::Message::StatusUpdate(u)) = msg.message else {
                continue;
            };
            let status = agora_proto::convert::status_from_wire(
                u.status
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no status"))?,
            )?;
            let file = self.task_dir(status.task_id.as_str()).join("updates.json");
            let on_disk: Vec<TaskStatus> = serde_json::from_slice(&std::fs::read(&file)?)?;
            assert!(
                on_disk.iter().any(|s| s.uuid == status.uuid),
                "{} {:?} was sent before it was on disk",
                status.task_id,
                status.state
            );
            return Ok(status);
        }
    }

    async fn ack(&self, s: &TaskStatus) -> anyhow::Result<()> {
        let uuid = s.uuid.ok_or_else(|| anyhow::anyhow!("no uuid"))?;
        self.send_master(v1::master_message::Message::Acknowledge(
            v1::master_message::Acknowledge {
                framework_id: "f1".into(),
                task_id: s.task_id.to_string(),
                uuid: uuid.as_bytes().to_vec(),
            },
        ))
        .await
    }

    async fn state(&self) -> anyhow::Result<serde_json::Value> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Command(Command::State(tx))).await?;
        Ok(serde_json::from_slice(&rx.await?)?)
    }
}

fn launch(task: &str) -> v1::master_message::Message {
    let resources = agora_model::Resources::parse("cpus:0.1;mem:32").unwrap_or_default();
    v1::master_message::Message::Launch(v1::master_message::Launch {
        framework: Some(v1::FrameworkInfo {
            framework_id: "f1".into(),
            name: "fw".into(),
            ..Default::default()
        }),
        task: Some(v1::TaskInfo {
            task_id: task.into(),
            name: task.into(),
            agent_id: "a1".into(),
            resources: agora_proto::convert::resources_to_wire(&resources),
            command: Some(v1::CommandInfo {
                shell: true,
                value: "sleep 600".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
}

fn kill(task: &str) -> v1::master_message::Message {
    v1::master_message::Message::Kill(v1::master_message::Kill {
        framework_id: "f1".into(),
        task_id: task.into(),
        kill_policy: None,
    })
}

/// Receives updates (acknowledging each) until every task in `tasks` has
/// reached `state`.
async fn until_all(
    h: &mut Harness,
    tasks: &[String],
    state: agora_model::TaskState,
) -> anyhow::Result<()> {
    let mut left: std::collections::BTreeSet<&str> = tasks.iter().map(String::as_str).collect();
    while !left.is_empty() {
        let s = h.next_update().await?;
        h.ack(&s).await?;
        if s.state == state {
            left.remove(s.task_id.as_str());
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_agent_id_is_published_only_once_it_is_on_disk() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let published = tokio::time::timeout(WAIT, h.agent_id.wait_for(Option::is_some))
        .await??
        .clone();
    assert_eq!(published, Some(AgentId::new_unchecked("a1")));
    // A restart reads this file: an id seen outside must survive a crash.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.work_dir.join("meta/agent.json"))?)?;
    assert_eq!(on_disk["agent_id"], "a1");
    Ok(())
}

#[tokio::test]
async fn updates_reach_the_master_only_after_they_are_on_disk() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    h.send_master(launch("t1")).await?;
    let starting = h.next_update().await?;
    assert_eq!(starting.state, agora_model::TaskState::Starting);
    h.ack(&starting).await?;
    let running = h.next_update().await?;
    assert_eq!(running.state, agora_model::TaskState::Running);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.task_dir("t1").join("task.json"))?)?;
    assert!(record["handle"].is_object(), "{record}");
    let sandbox = record["sandbox"].as_str().unwrap_or_default().to_string();
    assert!(std::path::Path::new(&sandbox).is_dir(), "sandbox created");
    h.ack(&running).await?;
    let ids = h.fake.container_ids();
    h.fake
        .exit(ids.first().map(String::as_str).unwrap_or(""), 0);
    let finished = h.next_update().await?;
    assert_eq!(finished.state, agora_model::TaskState::Finished);
    h.ack(&finished).await?;
    // Forgotten only once its checkpoint is gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = h.state().await?;
        if state["tasks"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!h.task_dir("t1").exists());
    Ok(())
}

#[tokio::test]
async fn a_burst_of_launches_and_kills_keeps_every_update_on_disk_first() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let tasks: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    for t in &tasks {
        h.send_master(launch(t)).await?;
    }
    until_all(&mut h, &tasks, agora_model::TaskState::Running).await?;
    let state = h.state().await?;
    assert_eq!(state["tasks"].as_array().map(Vec::len), Some(100));
    assert_eq!(state["resources"]["used"]["cpus"], 10.0, "{state}");
    for t in &tasks {
        h.send_master(kill(t)).await?;
    }
    until_all(&mut h, &tasks, agora_model::TaskState::Killed).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = h.state().await?;
        if state["tasks"].as_array().is_some_and(Vec::is_empty) {
            assert!(
                state["resources"]["used"]
                    .as_object()
                    .is_none_or(|m| m.get("cpus").is_none_or(|c| c == 0.0)),
                "{state}"
            );
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never forgotten");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in &tasks {
        assert!(!h.task_dir(t).exists(), "{t}");
    }
    Ok(())
}

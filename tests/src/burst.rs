//! The burst scenario, shared by the integration test and the benchmark:
//! `agents` simulated agents, and one framework on the scheduler SDK that
//! launches `tasks` tasks from a single round of offers and waits until every
//! one is RUNNING. Reports how long that took and anything that went wrong.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use agora_model::{FrameworkInfo, Offer, ResourceRequest, TaskId, TaskState, TaskStatus};
use agora_scheduler_sdk::{Driver, OfferResources, Scheduler, SchedulerDriver, TaskBuilder};
use tokio::sync::oneshot;

use crate::{SimAgent, SimAgentConfig, TaskBehaviour, TestMaster, eventually};

/// What one burst run measured.
#[derive(Debug)]
pub struct BurstReport {
    /// Tasks that reached RUNNING at the framework.
    pub running: usize,
    /// Terminal or unexpected updates (must be empty).
    pub bad: Vec<TaskStatus>,
    /// ERROR events or a refused subscription (must be empty).
    pub errors: Vec<String>,
    /// Status updates the framework received.
    pub updates: usize,
    /// From the first ACCEPT to the last task RUNNING.
    pub elapsed: Duration,
    /// Registering every agent.
    pub register_elapsed: Duration,
    /// Tasks the master's /metrics counted RUNNING once the framework had
    /// seen them all.
    pub master_running: Option<u64>,
    /// Events the master could not queue for the framework (its stream was
    /// full); their updates reach it again when the agents resend them.
    pub dropped_events: Option<u64>,
    /// When 50%, 90%, 99% and 100% of the tasks were RUNNING, from the first
    /// offer: a long tail shows updates waiting for a resend.
    pub percentiles: Vec<(u32, Duration)>,
}

/// The shares of tasks RUNNING at which [`BurstReport::percentiles`] notes
/// the time.
const MILESTONES: [u32; 4] = [50, 90, 99, 100];

struct BurstFramework {
    per_agent: usize,
    total: usize,
    launched: usize,
    started: Option<Instant>,
    running: HashSet<TaskId>,
    percentiles: Vec<(u32, Duration)>,
    updates: usize,
    bad: Vec<TaskStatus>,
    errors: Vec<String>,
    done: Option<oneshot::Sender<BurstReport>>,
}

impl BurstFramework {
    /// Notes the time of each milestone the RUNNING count reaches.
    fn note_milestone(&mut self) {
        let done = self.running.len() * 100;
        let next = MILESTONES.get(self.percentiles.len()).copied();
        if let Some(pct) = next.filter(|pct| done >= self.total * *pct as usize) {
            let at = self.started.map(|s| s.elapsed()).unwrap_or_default();
            self.percentiles.push((pct, at));
        }
    }

    fn finish_if_done(&mut self) {
        if self.running.len() >= self.total
            && let Some(done) = self.done.take()
        {
            let _ = done.send(BurstReport {
                running: self.running.len(),
                bad: std::mem::take(&mut self.bad),
                errors: std::mem::take(&mut self.errors),
                updates: self.updates,
                elapsed: self.started.map(|s| s.elapsed()).unwrap_or_default(),
                register_elapsed: Duration::ZERO,
                master_running: None,
                dropped_events: None,
                percentiles: std::mem::take(&mut self.percentiles),
            });
        }
    }
}

impl Scheduler for BurstFramework {
    async fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) {
        let req = ResourceRequest::new(0.01, 1.0);
        self.started.get_or_insert_with(Instant::now);
        for offer in offers {
            let mut pool = OfferResources::new(&offer);
            let mut tasks = Vec::new();
            while tasks.len() < self.per_agent && self.launched < self.total {
                let Some(r) = pool.take(&req) else { break };
                self.launched += 1;
                match TaskBuilder::new(format!("burst-{}", self.launched))
                    .shell("sleep 600")
                    .resources(r)
                    .build(&offer.agent_id)
                {
                    Ok(t) => tasks.push(t),
                    Err(e) => self.errors.push(e.to_string()),
                }
            }
            // Every ACCEPT goes out at once: the burst is the point.
            let driver = driver.clone();
            tokio::spawn(async move {
                if tasks.is_empty() {
                    let _ = driver
                        .decline(vec![offer.id.clone()], Some(Duration::from_secs(600)))
                        .await;
                } else if let Err(e) = driver.launch(&offer, tasks).await {
                    tracing::error!(error = %e, "launch failed");
                }
            });
        }
    }

    async fn update(&mut self, _: &Driver, status: &TaskStatus) {
        self.updates += 1;
        match status.state {
            TaskState::Running => {
                if self.running.insert(status.task_id.clone()) {
                    self.note_milestone();
                }
                self.finish_if_done();
            }
            TaskState::Staging | TaskState::Starting => {}
            _ => self.bad.push(status.clone()),
        }
    }

    async fn error(&mut self, _: &Driver, message: String) {
        self.errors.push(message);
    }
}

/// A framework on the SDK that launches `tasks` tasks, spread over the
/// offers it gets (`tasks / agents` per offer), and reports once every one
/// is RUNNING.
pub struct BurstLauncher {
    driver: Driver,
    done: oneshot::Receiver<BurstReport>,
    run: tokio::task::JoinHandle<Result<(), agora_scheduler_sdk::SdkError>>,
}

impl BurstLauncher {
    /// Subscribes to the master at `host:port`.
    pub async fn start(master: &str, agents: usize, tasks: usize) -> anyhow::Result<BurstLauncher> {
        let (done_tx, done) = oneshot::channel();
        let framework = BurstFramework {
            per_agent: tasks.div_ceil(agents.max(1)),
            total: tasks,
            launched: 0,
            started: None,
            running: HashSet::new(),
            percentiles: Vec::new(),
            updates: 0,
            bad: Vec::new(),
            errors: Vec::new(),
            done: Some(done_tx),
        };
        let sdk = SchedulerDriver::builder([master], FrameworkInfo::named("burst")).build()?;
        let driver = sdk.driver();
        let run = tokio::spawn(sdk.run(framework));
        Ok(BurstLauncher { driver, done, run })
    }

    /// Waits until every task is RUNNING (the framework keeps running).
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<BurstReport> {
        match tokio::time::timeout(timeout, &mut self.done).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => anyhow::bail!("the framework stopped before every task ran"),
            Err(_) => anyhow::bail!("not every task RUNNING within {timeout:?}"),
        }
    }

    /// Stops the framework's driver.
    pub async fn stop(self) {
        self.driver.stop();
        let _ = self.run.await;
    }
}

/// Runs the burst against `master`. The agents are stopped at the end.
pub async fn run_burst(
    master: &TestMaster,
    agents: usize,
    tasks: usize,
    timeout: Duration,
) -> anyhow::Result<BurstReport> {
    let started = Instant::now();
    let config = SimAgentConfig {
        resources: agora_model::Resources::parse("cpus:64;mem:65536;disk:10000")?,
        behaviour: TaskBehaviour::RunForever,
        // Unacknowledged updates come again after the real agent's first
        // backoff (Mesos' 10 s); a shorter one only measures a retry storm.
        retry_interval: Duration::from_secs(10),
        ..SimAgentConfig::default()
    };
    let mut sims = Vec::with_capacity(agents);
    for _ in 0..agents {
        sims.push(SimAgent::start(&master.endpoint(), config.clone()).await);
    }
    eventually("every agent active", timeout, || async {
        let state = master.state().await.ok()?;
        (state["activated_agents"].as_u64()? as usize >= agents).then_some(())
    })
    .await?;
    let register_elapsed = started.elapsed();
    let mut launcher = BurstLauncher::start(&master.host_port(), agents, tasks).await?;
    let report = launcher.wait(timeout).await;
    let metrics = master.metrics().await.unwrap_or_default();
    let metric = |prefix: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse().ok())
    };
    let master_running = metric("agora_master_tasks{state=\"TASK_RUNNING\"} ");
    let dropped_events =
        metric("agora_master_messages_total{type=\"framework_events_dropped\"} ").or(Some(0));
    launcher.stop().await;
    for s in sims {
        s.stop().await;
    }
    let mut report = report?;
    report.register_elapsed = register_elapsed;
    report.master_running = master_running;
    report.dropped_events = dropped_events;
    Ok(report)
}

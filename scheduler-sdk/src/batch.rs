//! A ready-made scheduler: run N copies of a command to completion. It backs
//! the `launch_n` example and doubles as a reference framework.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use agora_model::{AgentId, FrameworkId, Offer, ResourceRequest, TaskId, TaskState, TaskStatus};

use crate::calls::Driver;
use crate::carve::OfferResources;
use crate::driver::SchedulerDriverBuilder;
use crate::error::SdkError;
use crate::scheduler::Scheduler;
use crate::task::TaskBuilder;

/// What to run.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// How many copies.
    pub count: usize,
    /// Task ids are `<id_prefix>-<n>`, n from 1.
    pub id_prefix: String,
    /// Shell command (inside the container if `docker_image` is set; may
    /// then be empty to run the image's entrypoint).
    pub command: String,
    /// Run in Docker from this image.
    pub docker_image: Option<String>,
    /// Resources per task.
    pub request: ResourceRequest,
    /// Filter for offers too small for one task; `None` = master default.
    pub refuse_small_offers: Option<Duration>,
}

impl BatchJob {
    /// `count` copies of `command`, each with `request`.
    pub fn new(count: usize, command: impl Into<String>, request: ResourceRequest) -> BatchJob {
        BatchJob {
            count,
            id_prefix: "task".into(),
            command: command.into(),
            docker_image: None,
            request,
            refuse_small_offers: None,
        }
    }
}

/// How the tasks ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Tasks that reached TASK_FINISHED.
    pub finished: Vec<TaskId>,
    /// Tasks that ended otherwise: id, state, message.
    pub failed: Vec<(TaskId, TaskState, String)>,
}

impl BatchReport {
    /// Did every task finish?
    pub fn success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The scheduler behind [`run_batch`]: launches tasks on offers (several
/// per offer when they fit), declines what it cannot use, suppresses offers
/// once everything is launched, reconciles after re-subscribing, and stops
/// the driver when every task has ended.
#[derive(Debug)]
pub struct BatchLauncher {
    job: BatchJob,
    /// Task numbers not launched yet.
    pending: VecDeque<usize>,
    /// Launched, not yet ended: id → agent.
    running: BTreeMap<TaskId, AgentId>,
    report: BatchReport,
    suppressed: bool,
}

impl BatchLauncher {
    /// A launcher for `job`.
    pub fn new(job: BatchJob) -> BatchLauncher {
        let pending = (1..=job.count).collect();
        BatchLauncher {
            job,
            pending,
            running: BTreeMap::new(),
            report: BatchReport::default(),
            suppressed: false,
        }
    }

    /// Results so far.
    pub fn report(&self) -> &BatchReport {
        &self.report
    }

    /// Have all tasks ended?
    pub fn is_done(&self) -> bool {
        self.report.finished.len() + self.report.failed.len() >= self.job.count
    }

    fn task_id(&self, n: usize) -> TaskId {
        TaskId::new_unchecked(format!("{}-{n}", self.job.id_prefix))
    }

    fn fail(&mut self, id: TaskId, state: TaskState, message: String) {
        self.running.remove(&id);
        self.report.failed.push((id, state, message));
    }

    /// Carves as many pending tasks from `offer` as fit.
    fn tasks_for(&mut self, offer: &Offer) -> Vec<agora_model::TaskSpec> {
        let mut res = OfferResources::new(offer);
        let mut tasks = Vec::new();
        while let Some(&n) = self.pending.front() {
            let Some(carved) = res.take(&self.job.request) else {
                break;
            };
            self.pending.pop_front();
            let mut b = TaskBuilder::new(self.task_id(n)).resources(carved);
            if !self.job.command.trim().is_empty() {
                b = b.shell(self.job.command.clone());
            }
            if let Some(image) = &self.job.docker_image {
                b = b.docker(image.clone());
            }
            match b.build(&offer.agent_id) {
                Ok(t) => tasks.push(t),
                Err(e) => self.fail(self.task_id(n), TaskState::Error, e.to_string()),
            }
        }
        tasks
    }

    async fn stop_if_done(&self, driver: &Driver) {
        if self.is_done() {
            tracing::info!(
                finished = self.report.finished.len(),
                failed = self.report.failed.len(),
                "batch done"
            );
            driver.stop();
        }
    }
}

impl Scheduler for BatchLauncher {
    async fn subscribed(&mut self, driver: &Driver, framework_id: &FrameworkId) {
        tracing::info!(framework = %framework_id, pending = self.pending.len(), "batch subscribed");
        // After a re-subscription, updates sent while disconnected may be
        // gone for good (master-generated ones are not retried): ask again.
        if !self.running.is_empty() {
            let tasks = self
                .running
                .iter()
                .map(|(t, a)| (t.clone(), Some(a.clone())))
                .collect();
            if let Err(e) = driver.reconcile(tasks).await {
                tracing::warn!(error = %e, "reconcile failed");
            }
        }
    }

    async fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) {
        for offer in offers {
            let tasks = self.tasks_for(&offer);
            if tasks.is_empty() {
                let refuse = if self.pending.is_empty() {
                    None
                } else {
                    self.job.refuse_small_offers
                };
                if let Err(e) = driver.decline(vec![offer.id.clone()], refuse).await {
                    tracing::debug!(error = %e, "decline failed");
                }
                continue;
            }
            let ids: Vec<TaskId> = tasks.iter().map(|t| t.id.clone()).collect();
            match driver.launch(&offer, tasks).await {
                Ok(()) => {
                    tracing::info!(offer = %offer.id, tasks = ids.len(), "launched");
                    for id in ids {
                        self.running.insert(id, offer.agent_id.clone());
                    }
                }
                // The master refused this exact launch; repeating it would
                // loop forever, so the tasks count as failed.
                Err(SdkError::Rejected(m)) => {
                    for id in ids {
                        self.fail(id, TaskState::Error, m.clone());
                    }
                }
                // Connection trouble: the offer is void anyway; launch the
                // tasks on a later offer.
                Err(e) => {
                    tracing::warn!(error = %e, "launch failed; will retry on a later offer");
                    for id in ids.iter().rev() {
                        if let Some(n) = id.as_str().rsplit('-').next().and_then(|n| n.parse().ok())
                        {
                            self.pending.push_front(n);
                        }
                    }
                }
            }
        }
        if self.pending.is_empty() && !self.suppressed {
            match driver.suppress(vec![]).await {
                Ok(()) => self.suppressed = true,
                Err(e) => tracing::debug!(error = %e, "suppress failed; will retry"),
            }
        }
        self.stop_if_done(driver).await;
    }

    async fn update(&mut self, driver: &Driver, status: &TaskStatus) {
        tracing::info!(task = %status.task_id, state = %status.state, message = %status.message, "status");
        if !self.running.contains_key(&status.task_id) {
            return; // a duplicate, or not ours
        }
        match status.state {
            TaskState::Finished => {
                self.running.remove(&status.task_id);
                self.report.finished.push(status.task_id.clone());
            }
            s if s.is_terminal() => self.fail(status.task_id.clone(), s, status.message.clone()),
            // Not terminal: after a master restart the master answers
            // TASK_UNKNOWN until the task's agent re-registers, and the
            // agent then delivers the task's real end (at least once).
            TaskState::Unknown => {
                tracing::warn!(task = %status.task_id, "master does not know the task (yet); waiting for its agent");
            }
            _ => {}
        }
        self.stop_if_done(driver).await;
    }
}

/// Runs `job` to completion with a driver configured by `builder`.
pub async fn run_batch(
    builder: SchedulerDriverBuilder,
    job: BatchJob,
) -> Result<BatchReport, SdkError> {
    let mut launcher = BatchLauncher::new(job);
    if launcher.is_done() {
        return Ok(BatchReport::default());
    }
    builder.run(&mut launcher).await?;
    Ok(launcher.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{FrameworkId, OfferId, Resources, Role};

    fn offer(res: &str) -> Offer {
        Offer {
            id: OfferId::new_unchecked("o"),
            framework_id: FrameworkId::new_unchecked("f"),
            agent_id: AgentId::new_unchecked("a"),
            hostname: "h".into(),
            resources: Resources::parse(res).expect("fixture"),
            attributes: Default::default(),
            role: Role::star(),
        }
    }

    #[test]
    fn carves_as_many_pending_tasks_as_fit() {
        let mut l =
            BatchLauncher::new(BatchJob::new(5, "sleep 1", ResourceRequest::new(0.5, 32.0)));
        let tasks = l.tasks_for(&offer("cpus:1.2;mem:256"));
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["task-1", "task-2"]);
        assert_eq!(l.pending.len(), 3);
        assert!(l.tasks_for(&offer("cpus:0.1;mem:256")).is_empty());
        assert!(!l.is_done());
    }

    #[test]
    fn invalid_task_descriptions_fail_instead_of_looping() {
        // No command and no image: every task is invalid.
        let mut l = BatchLauncher::new(BatchJob::new(2, "", ResourceRequest::new(0.1, 32.0)));
        assert!(l.tasks_for(&offer("cpus:1;mem:256")).is_empty());
        assert!(l.is_done());
        assert_eq!(l.report().failed.len(), 2);
        assert!(!l.report().success());
    }
}

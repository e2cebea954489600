//! Tasks after launch: status updates from agents (forwarded to frameworks,
//! at least once), acknowledgements back to agents, KILL and RECONCILE, and
//! the bookkeeping that keeps per-agent and per-framework tallies true.
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, StatusSource, TaskId, TaskState, TaskStatus, TaskStatusReason,
};
use tracing::{debug, info};

use crate::effects::{FrameworkEvent, ToAgent};
use crate::error::CallError;
use crate::state::{AgentConn, Master, TaskEntry, TaskGoal, TaskKey};

impl Master {
    /// Adds a live task and its resources to its agent's and framework's tallies.
    pub(crate) fn insert_task(&mut self, key: TaskKey, t: TaskEntry) {
        let on_known_agent = match self.agents.get_mut(&t.spec.agent_id) {
            Some(a) => {
                a.tasks.insert(key.clone());
                a.used.add(&t.spec.resources);
                a.allocate(&key.framework, &t.role, &t.spec.resources);
                true
            }
            None => false,
        };
        if let Some(f) = self.frameworks.get_mut(&key.framework) {
            f.used.add(&t.spec.resources);
            if on_known_agent {
                f.allocate(&t.role, &t.spec.resources);
            }
        }
        *self.task_counts.entry(t.state).or_default() += 1;
        self.tasks.insert(key, t);
    }

    /// Removes a live task and its resources from the tallies.
    pub(crate) fn remove_task(&mut self, key: &TaskKey) -> Option<TaskEntry> {
        let t = self.tasks.remove(key)?;
        let on_known_agent = match self.agents.get_mut(&t.spec.agent_id) {
            Some(a) => {
                a.tasks.remove(key);
                a.used.subtract(&t.spec.resources);
                a.unallocate(&key.framework, &t.role, &t.spec.resources);
                true
            }
            None => false,
        };
        if let Some(f) = self.frameworks.get_mut(&key.framework) {
            f.used.subtract(&t.spec.resources);
            if on_known_agent {
                f.unallocate(&t.role, &t.spec.resources);
            }
        }
        self.count_state_removed(t.state);
        Some(t)
    }

    pub(crate) fn count_state_removed(&mut self, state: TaskState) {
        if let Some(n) = self.task_counts.get_mut(&state) {
            *n = n.saturating_sub(1);
        }
    }

    pub(crate) fn count_state_change(&mut self, old: TaskState, new: TaskState) {
        if old != new {
            self.count_state_removed(old);
            *self.task_counts.entry(new).or_default() += 1;
        }
    }

    /// The state to report for a lost task of `fw` (precise if partition-aware).
    pub(crate) fn lost_state_for(&self, fw: &FrameworkId, precise: TaskState) -> TaskState {
        self.frameworks
            .get(fw)
            .map_or(TaskState::Lost, |f| f.lost_state(precise))
    }

    /// A status update from an agent (or from its re-registration).
    pub(crate) fn status_update(
        &mut self,
        agent: &AgentId,
        fw: &FrameworkId,
        mut status: TaskStatus,
    ) {
        status.agent_id = Some(agent.clone());
        status.framework_id = Some(fw.clone());
        let key = TaskKey {
            framework: fw.clone(),
            task: status.task_id.clone(),
        };
        self.metrics.message("status_update");
        if let Some(t) = self.tasks.get_mut(&key) {
            let old = t.state;
            t.state = status.state;
            if status.healthy.is_some() {
                t.healthy = status.healthy;
            }
            t.last_status = Some(status.clone());
            self.count_state_change(old, status.state);
            if status.state.is_terminal() {
                self.finish_task(&key);
            }
        }
        if !self.frameworks.contains_key(fw) {
            // Nobody will ever acknowledge this: do it for the gone framework
            // so the agent can garbage-collect the update.
            if let Some(uuid) = status.uuid {
                self.send_to_agent(
                    agent,
                    ToAgent::Acknowledge {
                        framework: fw.clone(),
                        task: status.task_id.clone(),
                        uuid,
                    },
                );
            }
            return;
        }
        let task = status.task_id.clone();
        if !self.send_event(fw, FrameworkEvent::Update(status)) {
            debug!(framework = %fw, %task, "framework not connected; the agent will retry the update");
        }
    }

    /// Moves a terminal task out of the live set; its resources are free.
    pub(crate) fn finish_task(&mut self, key: &TaskKey) {
        let Some(t) = self.remove_task(key) else {
            return;
        };
        let keep = self.cfg.max_completed_tasks_per_framework;
        if let Some(f) = self.frameworks.get_mut(&key.framework) {
            f.completed.push_back(t);
            while f.completed.len() > keep {
                f.completed.pop_front();
            }
        }
        self.allocation_wanted = true;
    }

    pub(crate) fn acknowledge(
        &mut self,
        fw: &FrameworkId,
        agent: &AgentId,
        task: &TaskId,
        uuid: uuid::Uuid,
    ) -> Result<(), CallError> {
        if !self.agents.contains_key(agent) {
            self.metrics.message("invalid_acknowledgement");
            return Err(CallError::InvalidArgument(format!(
                "agent_id: unknown agent {agent}"
            )));
        }
        self.metrics.message("valid_acknowledgement");
        // If the agent is not connected the ack is lost; the agent resends the
        // update later and the framework acknowledges again. The agent checks
        // the uuid against its queue for (framework, task), so an ack cannot
        // touch another framework's updates.
        self.send_to_agent(
            agent,
            ToAgent::Acknowledge {
                framework: fw.clone(),
                task: task.clone(),
                uuid,
            },
        );
        Ok(())
    }

    /// Relays every valid acknowledgement; one with an unknown agent does
    /// not hold back the others, and the call then names the first bad one.
    pub(crate) fn acknowledge_many(
        &mut self,
        fw: &FrameworkId,
        acks: Vec<(AgentId, TaskId, uuid::Uuid)>,
    ) -> Result<(), CallError> {
        let mut first_bad = None;
        for (i, (agent, task, uuid)) in acks.into_iter().enumerate() {
            if let Err(CallError::InvalidArgument(m)) = self.acknowledge(fw, &agent, &task, uuid) {
                first_bad.get_or_insert(format!("acknowledgements[{i}].{m}"));
            }
        }
        match first_bad {
            Some(m) => Err(CallError::InvalidArgument(m)),
            None => Ok(()),
        }
    }

    /// Sets the task's goal to killed and sends the kill if the agent's
    /// stream is open; otherwise it goes when the agent attaches.
    pub(crate) fn kill(&mut self, key: &TaskKey, grace: Option<Duration>) {
        let Some(t) = self.tasks.get(key) else {
            return;
        };
        let agent = t.spec.agent_id.clone();
        let sent = self.send_to_agent(
            &agent,
            ToAgent::Kill {
                framework: key.framework.clone(),
                task: key.task.clone(),
                grace,
            },
        );
        if let Some(t) = self.tasks.get_mut(key) {
            t.goal = TaskGoal::Kill { grace, sent };
        }
    }

    pub(crate) fn kill_task(
        &mut self,
        fw: &FrameworkId,
        task: &TaskId,
        agent: Option<&AgentId>,
        grace: Option<Duration>,
    ) {
        let key = TaskKey {
            framework: fw.clone(),
            task: task.clone(),
        };
        if self.tasks.contains_key(&key) {
            info!(framework = %fw, task = %task, "kill requested");
            self.kill(&key, grace);
            return;
        }
        // Unknown to the master (Mesos): TASK_LOST, or TASK_UNKNOWN for
        // partition-aware frameworks.
        let state = self.lost_state_for(fw, TaskState::Unknown);
        self.update_for_unknown_task(
            fw,
            task.clone(),
            agent,
            state,
            TaskStatusReason::TaskUnknown,
            "kill of a task the master does not know",
        );
    }

    /// RECONCILE: the latest state of the named tasks, or of every
    /// non-terminal task when the list is empty. Answers carry
    /// REASON_RECONCILIATION and no uuid (they are not acknowledged).
    pub(crate) fn reconcile(&mut self, fw: &FrameworkId, tasks: &[(TaskId, Option<AgentId>)]) {
        let mut answers: Vec<TaskStatus> = Vec::new();
        if tasks.is_empty() {
            for (key, t) in self.tasks_of(fw) {
                answers.push(self.reconcile_status(
                    &key.task,
                    Some(t),
                    Some(t.spec.agent_id.clone()),
                ));
            }
        } else {
            for (task, agent) in tasks {
                let key = TaskKey {
                    framework: fw.clone(),
                    task: task.clone(),
                };
                let known = self.tasks.get(&key).or_else(|| {
                    self.frameworks
                        .get(fw)
                        .and_then(|f| f.completed.iter().rev().find(|c| &c.spec.id == task))
                });
                let answer = match known {
                    Some(t) => self.reconcile_status(task, Some(t), Some(t.spec.agent_id.clone())),
                    // After a master start, tasks on agents that have not
                    // re-registered yet are not unknown, just not known yet:
                    // Mesos answers nothing for them in that window.
                    None if self.agent_still_recovering(agent.as_ref()) => continue,
                    None => self.reconcile_status(task, None, agent.clone()),
                };
                answers.push(answer);
            }
        }
        for st in answers {
            self.send_event(fw, FrameworkEvent::Update(st));
        }
    }

    /// The named agent (or, if none is named, any agent) is known from the
    /// registry but has not re-registered since the master started.
    fn agent_still_recovering(&self, agent: Option<&AgentId>) -> bool {
        let recovering = |c: &AgentConn| matches!(c, AgentConn::Recovered { .. });
        match agent {
            Some(a) => self.agents.get(a).is_some_and(|e| recovering(&e.conn)),
            None => self.agents.values().any(|e| recovering(&e.conn)),
        }
    }

    fn reconcile_status(
        &self,
        task: &TaskId,
        known: Option<&TaskEntry>,
        agent: Option<AgentId>,
    ) -> TaskStatus {
        // Unknown tasks are TASK_UNKNOWN for every framework: the issue asks
        // for it, and it is what partition-aware Mesos frameworks get.
        let mut st = TaskStatus::new(
            task.clone(),
            known.map_or(TaskState::Unknown, |t| t.state),
            StatusSource::Master,
            self.now_unix,
        );
        st.reason = TaskStatusReason::Reconciliation;
        st.agent_id = agent;
        if let Some(t) = known {
            st.healthy = t.healthy;
            st.framework_id = Some(t.framework.clone());
            if let Some(l) = &t.last_status {
                st.message = l.message.clone();
                st.exit_code = l.exit_code;
            }
        }
        st
    }

    /// A master-generated update for a known task that changes its state
    /// (agent unreachable or lost); not acknowledged, not retried.
    pub(crate) fn master_task_update(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        reason: TaskStatusReason,
        message: &str,
    ) {
        let now_unix = self.now_unix;
        let Some(t) = self.tasks.get_mut(key) else {
            return;
        };
        let old = t.state;
        t.state = state;
        let mut st = TaskStatus::new(key.task.clone(), state, StatusSource::Master, now_unix);
        st.reason = reason;
        st.message = message.to_string();
        st.agent_id = Some(t.spec.agent_id.clone());
        st.framework_id = Some(key.framework.clone());
        t.last_status = Some(st.clone());
        self.count_state_change(old, state);
        if state.is_terminal() {
            self.finish_task(key);
        }
        self.send_event(&key.framework, FrameworkEvent::Update(st));
    }

    /// A master-generated update for a task the master does not track (a
    /// KILL of an unknown task, a task in a bad ACCEPT): not acknowledged,
    /// not retried (as in Mesos).
    pub(crate) fn update_for_unknown_task(
        &mut self,
        fw: &FrameworkId,
        task: TaskId,
        agent: Option<&AgentId>,
        state: TaskState,
        reason: TaskStatusReason,
        message: &str,
    ) {
        let mut st = TaskStatus::new(task, state, StatusSource::Master, self.now_unix);
        st.reason = reason;
        st.message = message.to_string();
        st.agent_id = agent.cloned();
        st.framework_id = Some(fw.clone());
        self.send_event(fw, FrameworkEvent::Update(st));
    }
}

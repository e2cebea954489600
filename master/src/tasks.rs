//! Tasks after launch: status updates from agents (forwarded to frameworks,
//! at least once), acknowledgements back to agents, KILL and RECONCILE.
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, StatusSource, TaskId, TaskState, TaskStatus, TaskStatusReason,
};
use agora_proto::{convert, v1};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::clock::unix_now;
use crate::state::{AgentStatus, Master, TaskKey};

impl Master {
    /// Sends to an agent without blocking; an unusable stream marks the
    /// agent disconnected (pings then decide whether it is unreachable).
    pub(crate) fn send_to_agent(&mut self, agent: &AgentId, msg: v1::MasterMessage) -> bool {
        let Some(a) = self.agents.get_mut(agent) else {
            return false;
        };
        let Some(tx) = &a.tx else { return false };
        match tx.try_send(Ok(msg)) {
            Ok(()) => true,
            Err(e) => {
                warn!(agent = %agent, error = %e, "agent stream unusable; marking it disconnected");
                a.tx = None;
                if a.status == AgentStatus::Connected {
                    a.status = AgentStatus::Disconnected;
                }
                self.rescind_agent_offers(agent);
                false
            }
        }
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
            t.state = status.state;
            if status.healthy.is_some() {
                t.healthy = status.healthy;
            }
            t.last_status = Some(status.clone());
            if status.state.is_terminal() {
                self.finish_task(&key);
            }
        }
        if !self.frameworks.contains_key(fw) {
            // Nobody will ever acknowledge this: do it for the gone framework
            // so the agent can garbage-collect the update.
            if let Some(uuid) = status.uuid {
                self.send_ack_to_agent(agent, fw, &status.task_id, uuid);
            }
            return;
        }
        let ev = v1::Event {
            event: Some(v1::event::Event::Update(v1::event::Update {
                status: Some(convert::status_to_wire(&status)),
            })),
        };
        if !self.send_event(fw, ev) {
            debug!(framework = %fw, task = %status.task_id, "framework not connected; the agent will retry the update");
        }
    }

    /// Moves a terminal task out of the live set; its resources are free.
    pub(crate) fn finish_task(&mut self, key: &TaskKey) {
        let Some(t) = self.tasks.remove(key) else {
            return;
        };
        if let Some(a) = self.agents.get_mut(&t.spec.agent_id) {
            a.tasks.remove(key);
        }
        let keep = self.cfg.max_completed_tasks_per_framework;
        if let Some(f) = self.frameworks.get_mut(&key.framework) {
            f.completed.push_back(t);
            while f.completed.len() > keep {
                f.completed.pop_front();
            }
        }
        self.allocation_wanted = true;
    }

    pub(crate) fn send_ack_to_agent(
        &mut self,
        agent: &AgentId,
        fw: &FrameworkId,
        task: &TaskId,
        uuid: uuid::Uuid,
    ) {
        let msg = v1::MasterMessage {
            message: Some(v1::master_message::Message::Acknowledge(
                v1::master_message::Acknowledge {
                    framework_id: fw.to_string(),
                    task_id: task.to_string(),
                    uuid: uuid.as_bytes().to_vec(),
                },
            )),
        };
        self.send_to_agent(agent, msg);
    }

    pub(crate) fn acknowledge(
        &mut self,
        fw: &FrameworkId,
        agent: &AgentId,
        task: &TaskId,
        uuid: uuid::Uuid,
    ) -> Result<(), Status> {
        if !self.agents.contains_key(agent) {
            self.metrics.message("invalid_acknowledgement");
            return Err(Status::invalid_argument(format!(
                "agent_id: unknown agent {agent}"
            )));
        }
        self.metrics.message("valid_acknowledgement");
        // If the agent is not connected the ack is lost; the agent resends the
        // update later and the framework acknowledges again.
        self.send_ack_to_agent(agent, fw, task, uuid);
        Ok(())
    }

    /// Sends a kill to the task's agent, or remembers it for when the agent is back.
    pub(crate) fn send_kill(&mut self, key: &TaskKey, grace: Option<Duration>) {
        let Some(t) = self.tasks.get_mut(key) else {
            return;
        };
        let agent = t.spec.agent_id.clone();
        let connected = self.agents.get(&agent).is_some_and(|a| a.tx.is_some());
        if !connected {
            t.kill_requested = true;
            return;
        }
        let msg = v1::MasterMessage {
            message: Some(v1::master_message::Message::Kill(
                v1::master_message::Kill {
                    framework_id: key.framework.to_string(),
                    task_id: key.task.to_string(),
                    kill_policy: grace.map(|g| v1::KillPolicy {
                        grace_period_seconds: Some(g.as_secs_f64()),
                    }),
                },
            )),
        };
        self.send_to_agent(&agent, msg);
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
            self.send_kill(&key, grace);
            return;
        }
        // Unknown to the master (Mesos): TASK_LOST, or TASK_UNKNOWN for
        // partition-aware frameworks.
        let pa = self.frameworks.get(fw).is_some_and(|f| f.partition_aware());
        let state = if pa {
            TaskState::Unknown
        } else {
            TaskState::Lost
        };
        self.master_update_raw(
            fw,
            task.as_str(),
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
                    Some(t.state),
                    Some(&t.spec.agent_id),
                    t.healthy,
                    t.last_status.as_ref(),
                ));
            }
        } else {
            for (task, agent) in tasks {
                let key = TaskKey {
                    framework: fw.clone(),
                    task: task.clone(),
                };
                let answer = if let Some(t) = self.tasks.get(&key) {
                    self.reconcile_status(
                        task,
                        Some(t.state),
                        Some(&t.spec.agent_id),
                        t.healthy,
                        t.last_status.as_ref(),
                    )
                } else if let Some(done) = self
                    .frameworks
                    .get(fw)
                    .and_then(|f| f.completed.iter().rev().find(|c| &c.spec.id == task))
                {
                    self.reconcile_status(
                        task,
                        Some(done.state),
                        Some(&done.spec.agent_id),
                        done.healthy,
                        done.last_status.as_ref(),
                    )
                } else if self.agent_still_recovering(agent.as_ref()) {
                    // After a master restart, tasks on agents that have not
                    // re-registered yet are not unknown, just not known yet:
                    // Mesos answers nothing for them in that window.
                    continue;
                } else {
                    self.reconcile_status(task, None, agent.as_ref(), None, None)
                };
                answers.push(answer);
            }
        }
        for st in answers {
            let ev = v1::Event {
                event: Some(v1::event::Event::Update(v1::event::Update {
                    status: Some(convert::status_to_wire(&st)),
                })),
            };
            self.send_event(fw, ev);
        }
    }

    /// The named agent (or, if none is named, any agent) is known from the
    /// registry but has not re-registered since the master started.
    fn agent_still_recovering(&self, agent: Option<&AgentId>) -> bool {
        match agent {
            Some(a) => self
                .agents
                .get(a)
                .is_some_and(|e| e.status == AgentStatus::Recovered),
            None => self
                .agents
                .values()
                .any(|e| e.status == AgentStatus::Recovered),
        }
    }

    fn reconcile_status(
        &self,
        task: &TaskId,
        state: Option<TaskState>,
        agent: Option<&AgentId>,
        healthy: Option<bool>,
        last: Option<&TaskStatus>,
    ) -> TaskStatus {
        // Unknown tasks are TASK_UNKNOWN for every framework: the issue asks
        // for it, and it is what partition-aware Mesos frameworks get.
        let mut st = TaskStatus::new(
            task.clone(),
            state.unwrap_or(TaskState::Unknown),
            StatusSource::Master,
            unix_now(),
        );
        st.reason = TaskStatusReason::Reconciliation;
        st.agent_id = agent.cloned();
        st.healthy = healthy;
        if let Some(l) = last {
            st.message = l.message.clone();
            st.exit_code = l.exit_code;
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
        let Some(t) = self.tasks.get_mut(key) else {
            return;
        };
        t.state = state;
        let mut st = TaskStatus::new(key.task.clone(), state, StatusSource::Master, unix_now());
        st.reason = reason;
        st.message = message.to_string();
        st.agent_id = Some(t.spec.agent_id.clone());
        st.framework_id = Some(key.framework.clone());
        t.last_status = Some(st.clone());
        if state.is_terminal() {
            self.finish_task(key);
        }
        let ev = v1::Event {
            event: Some(v1::event::Event::Update(v1::event::Update {
                status: Some(convert::status_to_wire(&st)),
            })),
        };
        self.send_event(&key.framework, ev);
    }
}

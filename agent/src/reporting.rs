//! Reporting: every status update is queued, checkpointed by the writer,
//! sent as the head of its task's queue once on disk, and forgotten (with
//! the task, once terminal) when acknowledged.
use std::time::SystemTime;

use agora_model::{FrameworkId, TaskId, TaskStatus};
use agora_proto::v1;

use crate::checkpoint::writer::WriteOp;
use crate::event_loop::{AfterWrite, Completed, Lifecycle, MAX_COMPLETED, State, TaskKey};
use crate::outcome::Outcome;

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl State {
    /// Records `o` for the task: its state (task record written), then the
    /// update (with a fresh uuid) queued and written; it is sent once the
    /// writer says it is on disk.
    pub(crate) fn report(&mut self, key: &TaskKey, o: Outcome) {
        let mut st = TaskStatus::new(key.1.clone(), o.state, o.source, unix_now());
        st.framework_id = Some(key.0.clone());
        st.agent_id = self.agent_id.clone();
        st.reason = o.reason;
        st.message = o.message;
        st.uuid = Some(uuid::Uuid::new_v4());
        st.healthy = o.healthy;
        st.exit_code = o.exit_code;
        self.set_task_state(key, o.state);
        if let Some(task) = self.tasks.get_mut(key) {
            if o.healthy.is_some() {
                task.record.healthy = o.healthy;
            }
            if o.state.is_terminal() {
                task.lifecycle = Lifecycle::Exited;
                if let Some(p) = task.prober.take() {
                    p.abort();
                }
            }
        }
        self.persist_task(key);
        tracing::info!(task = %key.1, state = %st.state, reason = ?st.reason, message = st.message, "status update");
        let now = self.now();
        self.updates.push_unpersisted(key.clone(), st, now);
        self.persist_updates(key);
    }

    pub(crate) fn on_acknowledge(&mut self, a: v1::master_message::Acknowledge) {
        let (Ok(fw), Ok(task), Ok(uuid)) = (
            FrameworkId::parse(a.framework_id),
            TaskId::parse(a.task_id),
            uuid::Uuid::from_slice(&a.uuid),
        ) else {
            tracing::warn!("ignoring a malformed acknowledgement");
            return;
        };
        let key = (fw, task);
        let now = self.now();
        match self.updates.acknowledge(&key, uuid, now) {
            crate::status_updates::AckOutcome::Ignored => {
                tracing::debug!(task = %key.1, %uuid, "duplicate or stale acknowledgement");
            }
            crate::status_updates::AckOutcome::Acked {
                terminal,
                queue_empty,
            } => {
                self.persist_updates(&key);
                let done = self
                    .tasks
                    .get(&key)
                    .is_none_or(|t| t.record.state.is_terminal());
                if queue_empty && (terminal || done) {
                    self.forget_task(&key);
                }
            }
        }
    }

    /// A terminal, fully acknowledged task: drop its checkpoint; once that
    /// is done, forget the task and remember it as completed for GC and
    /// `/state` (so a task gone from `/state` is gone from disk too).
    pub(crate) fn forget_task(&mut self, key: &TaskKey) {
        let op = WriteOp::RemoveTask {
            framework: key.0.clone(),
            task: key.1.clone(),
        };
        self.persist(op, AfterWrite::TaskRemoved { key: key.clone() });
    }

    /// The task's checkpoint is removed.
    pub(crate) fn on_task_removed(&mut self, key: &TaskKey) {
        let Some(task) = self.remove_task(key) else {
            return;
        };
        self.completed.push_back(Completed {
            framework_id: key.0.clone(),
            task_id: key.1.clone(),
            state: task.record.state,
            container_id: task.record.container_id.clone(),
            handle: task.record.handle.clone(),
            sandbox: task.record.sandbox.clone(),
            finished: SystemTime::now(),
        });
        while self.completed.len() > MAX_COMPLETED {
            self.completed.pop_front();
        }
    }

    /// Sends every due head update on the current session.
    pub(crate) fn flush_updates(&mut self) {
        let Some(link) = &self.link else { return };
        let now = self.now();
        for due in self.updates.poll_due(now) {
            if due.retry {
                self.metrics.status_update_retries_total.inc();
            }
            let msg = v1::AgentMessage {
                message: Some(v1::agent_message::Message::StatusUpdate(v1::StatusUpdate {
                    framework_id: due.key.0.to_string(),
                    status: Some(agora_proto::convert::status_to_wire(&due.status)),
                })),
            };
            // A full or closed channel loses nothing: the update stays at
            // the head of its queue and is resent after its backoff.
            if let Err(e) = link.outbound.try_send(msg) {
                tracing::debug!(task = %due.key.1, error = %e, "status update not sent now; will retry");
            }
        }
    }
}

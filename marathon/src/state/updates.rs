//! Task status updates → instance conditions. Updates arrive at least once
//! and may repeat; a repeat changes nothing. A task we do not know is
//! killed (a launch whose record never became durable, or a leftover of
//! a removed app). A terminal task whose goal was running is a failure:
//! the app's launch delay grows and the instance is replaced.
use agora_marathon_planner::{Condition, Goal, InstanceId};
use agora_model::{TaskState, TaskStatus};
use serde_json::json;

use crate::readiness::Probe;
use crate::state::records::{condition_of, encode_instance, instance_key};
use crate::state::{Call, Effects, Now, State, TaskFailure};

impl State {
    /// Applies one status update.
    pub(crate) fn status_update(&mut self, status: &TaskStatus, now: Now) -> Effects {
        let mut fx = Effects::default();
        let id = InstanceId::from_string(status.task_id.to_string());
        let Some(inst) = self.instances.get_mut(&id) else {
            if !status.state.is_terminal() {
                tracing::info!(task = %status.task_id, "killing a task no app knows");
                fx.call(Call::Kill {
                    task: status.task_id.clone(),
                    agent: status.agent_id.clone(),
                });
            }
            return fx;
        };
        let was = (inst.task_state, inst.healthy, inst.condition);
        let condition = condition_of(Some(status.state));
        inst.task_state = Some(status.state);
        inst.condition = condition;
        if status.state == TaskState::Running && inst.started_at_ms.is_none() {
            inst.started_at_ms = Some(now.wall_ms);
        }
        if condition == Condition::Unreachable {
            inst.unreachable_since.get_or_insert(now.mono);
        } else {
            inst.unreachable_since = None;
        }
        if status.healthy.is_some() {
            inst.healthy = status.healthy;
        }
        if condition != Condition::Running {
            inst.healthy = None;
        }
        if (inst.task_state, inst.healthy, inst.condition) == was {
            return fx;
        }
        let app_id = inst.app.clone();
        let state_changed = was.0 != inst.task_state;
        let health_changed = was.1 != inst.healthy && inst.healthy.is_some();
        let body = crate::api::render::status_event(inst, status);
        let health = inst.healthy;
        let version = inst.version;
        if state_changed {
            fx.event("status_update_event", body, &now.stamp());
        }
        if was.2 != condition
            && let Some(inst) = self.instances.get(&id)
        {
            fx.event(
                "instance_changed_event",
                instance_changed(inst, status),
                &now.stamp(),
            );
        }
        if health_changed {
            fx.event(
                "health_status_changed_event",
                json!({
                    "appId": app_id.to_string(),
                    "taskId": id.to_string(),
                    "instanceId": id.to_string(),
                    "version": crate::api::json::format_version(version),
                    "alive": health == Some(true),
                }),
                &now.stamp(),
            );
        }
        for d in self.deployments.values_mut() {
            if d.plan.affected_apps().contains(&app_id) {
                d.last_progress = now.mono;
            }
        }
        self.recount(&id);
        if state_changed && condition == Condition::Running {
            fx.probes.extend(self.readiness_probe(&id));
        }
        if condition.is_terminal() {
            self.terminal(&id, status, now, &mut fx);
        } else if let (true, Some(inst)) = (state_changed, self.instances.get(&id)) {
            fx.write(instance_key(&id), encode_instance(inst));
        }
        fx
    }

    fn terminal(&mut self, id: &InstanceId, status: &TaskStatus, now: Now, fx: &mut Effects) {
        let Some(inst) = self.instances.get(id) else {
            return;
        };
        if inst.goal == Goal::Running {
            let host = inst
                .placed
                .as_ref()
                .map(|p| p.facts.hostname.clone())
                .unwrap_or_default();
            let version = inst.version;
            if let Some(app) = self.apps.get_mut(&inst.app) {
                app.delay.failures += 1;
                let wait = app.app.backoff.delay(app.delay.failures);
                app.delay.until = Some(now.mono.after(wait));
                app.delay.until_wall_ms = now.wall_ms + wait.as_millis() as u64;
                app.last_failure = Some(TaskFailure {
                    task_id: id.to_string(),
                    state: status.state,
                    message: status.message.clone(),
                    host,
                    agent_id: status.agent_id.as_ref().map(|a| a.to_string()),
                    timestamp: now.stamp(),
                    version,
                });
            }
        }
        self.expunge(id, fx);
    }

    /// The readiness probe a running, not yet ready instance needs, if its
    /// app has a readiness check (the first; Marathon allows one).
    pub(crate) fn readiness_probe(&self, id: &InstanceId) -> Option<Probe> {
        let inst = self.instances.get(id)?;
        let app = &self.apps.get(&inst.app)?.app;
        let check = app.readiness_checks.first()?;
        if inst.ready || inst.condition != Condition::Running {
            return None;
        }
        let placed = inst.placed.as_ref()?;
        let index = app
            .ports
            .iter()
            .position(|p| p.name.as_deref() == Some(check.port_name.as_str()))?;
        let port = placed.host_ports.get(index)?;
        let scheme = if check.https { "https" } else { "http" };
        Some(Probe::Start {
            instance: id.clone(),
            url: format!("{scheme}://{}:{port}{}", placed.facts.hostname, check.path),
            interval: check.interval,
            timeout: check.timeout,
            ready_codes: check.http_status_codes_for_ready.clone(),
        })
    }

    /// A readiness check passed.
    pub(crate) fn mark_ready(&mut self, id: &InstanceId) -> Effects {
        let mut fx = Effects::default();
        if let Some(inst) = self.instances.get_mut(id) {
            inst.ready = true;
        }
        fx.probes.push(Probe::Stop(id.clone()));
        fx
    }

    /// After a load: count placed instances and learn their agents.
    pub(crate) fn after_load(&mut self) {
        let placed: Vec<_> = self
            .instances
            .values()
            .filter_map(|i| {
                i.placed
                    .as_ref()
                    .map(|p| (p.agent_id.clone(), p.facts.clone()))
            })
            .collect();
        for (a, f) in placed {
            self.learn_agent(&a, &f);
        }
        let ids: Vec<InstanceId> = self.instances.keys().cloned().collect();
        for id in ids {
            self.recount(&id);
        }
    }
}

/// Marathon's `instance_changed_event` body.
fn instance_changed(inst: &crate::state::Instance, status: &TaskStatus) -> serde_json::Value {
    let condition = match status.state {
        TaskState::Staging => "Staging",
        TaskState::Starting => "Starting",
        TaskState::Running => "Running",
        TaskState::Killing => "Killing",
        TaskState::Finished => "Finished",
        TaskState::Failed => "Failed",
        TaskState::Killed => "Killed",
        TaskState::Error => "Error",
        TaskState::Lost | TaskState::Gone | TaskState::GoneByOperator => "Gone",
        TaskState::Dropped => "Dropped",
        TaskState::Unreachable => "Unreachable",
        TaskState::Unknown => "Unknown",
    };
    let goal = match inst.goal {
        Goal::Running => "Running",
        Goal::Stopped => "Stopped",
        Goal::Decommissioned => "Decommissioned",
    };
    json!({
        "instanceId": inst.id.to_string(),
        "condition": condition,
        "runSpecId": inst.app.to_string(),
        "agentId": inst.placed.as_ref().map(|p| p.agent_id.to_string()),
        "host": inst.placed.as_ref().map(|p| p.facts.hostname.clone()),
        "runSpecVersion": crate::api::json::format_version(inst.version),
        "goal": goal,
    })
}

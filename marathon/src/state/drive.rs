//! Moving towards the definitions: the current step of every deployment
//! (the planner's `step`), replacements for lost instances of apps no
//! deployment is working on, unreachable instances per their app's
//! strategy, and SUPPRESS/REVIVE. Called by the loop after every command,
//! so each change is reacted to at once.
use agora_marathon_planner::{
    Action, Condition, DeploymentAction, DeploymentId, Goal, InstanceId, PathId, StepInput,
    StepStatus, UnreachableDecision, select_to_kill, step, unreachable_decision,
};
use serde_json::json;

use crate::state::records::{
    app_key, deployment_key, encode_deployment, encode_instance, instance_key,
};
use crate::state::{Call, Effects, Instance, Now, RECONCILE_INTERVAL, State};

impl State {
    /// Advances everything that can advance now. `fresh` makes unique ids
    /// for new instances.
    pub(crate) fn drive(&mut self, now: Now, fresh: &mut dyn FnMut() -> String) -> Effects {
        let mut fx = Effects::default();
        // A deployment may start another (a rollback at its deadline): drive
        // each one present once.
        let mut driven = std::collections::BTreeSet::new();
        while let Some(id) = self
            .deployments
            .keys()
            .find(|k| !driven.contains(*k))
            .cloned()
        {
            self.drive_deployment(&id, now, fresh, &mut fx);
            driven.insert(id);
        }
        self.check_unreachable(now, &mut fx);
        let moving = self.move_off_draining(now, fresh, &mut fx);
        self.replace_lost(now, fresh, &moving, &mut fx);
        self.suppress_or_revive(&mut fx);
        fx
    }

    fn drive_deployment(
        &mut self,
        id: &DeploymentId,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) {
        loop {
            let Some(d) = self.deployments.get(id) else {
                return;
            };
            let Some(current) = d.plan.steps.get(d.current_step).cloned() else {
                self.finish_deployment(id, now, fx);
                return;
            };
            let last_progress = d.last_progress;
            let mut done = true;
            for action in &current.actions {
                match self.drive_action(action, now, last_progress, fresh, fx) {
                    StepStatus::Done => {}
                    StepStatus::InProgress => done = false,
                    StepStatus::DeadlineExceeded => {
                        self.deadline_exceeded(id, action.app(), now, fresh, fx);
                        return;
                    }
                }
            }
            if !done {
                return;
            }
            for action in &current.actions {
                if let DeploymentAction::StopApplication(app) = action {
                    self.remove_app(app, now, fx);
                }
            }
            let Some(d) = self.deployments.get_mut(id) else {
                return;
            };
            d.current_step += 1;
            d.last_progress = now.mono;
            fx.write(deployment_key(id), encode_deployment(d));
            let body = json!({
                "plan": crate::api::render::plan_json(d),
                "currentStep": crate::api::render::step_json(d, d.current_step - 1),
            });
            fx.event("deployment_step_success", body, &now.stamp());
        }
    }

    fn drive_action(
        &mut self,
        action: &DeploymentAction,
        now: Now,
        last_progress: agora_model::MonoTime,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> StepStatus {
        let Some(app) = self.apps.get(action.app()).map(|a| a.app.clone()) else {
            return StepStatus::Done;
        };
        let views = self.views_of(&app);
        let outcome = step(&StepInput {
            action,
            app: &app,
            instances: &views,
            now: now.mono,
            last_progress,
        });
        for a in outcome.actions {
            match a {
                Action::Launch { app: id, count, .. } => {
                    self.launch_instances(&id, count, now, fresh, fx)
                }
                Action::Kill { instances, .. } => {
                    for i in instances {
                        self.kill_instance(&i, Goal::Stopped, now, fx);
                    }
                }
            }
        }
        outcome.status
    }

    /// A step made no progress within its app's deadline: the deployment
    /// fails, and rolls back when the app asks for it (an Agora addition:
    /// Marathon waited forever).
    fn deadline_exceeded(
        &mut self,
        id: &DeploymentId,
        app: &PathId,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) {
        let rollback = self
            .apps
            .get(app)
            .is_some_and(|a| a.app.rollback_on_deadline);
        tracing::warn!(deployment = %id, %app, rollback, "a deployment step passed its progress deadline");
        if !rollback {
            self.drop_deployment(id, now, fx, "deployment_failed");
            return;
        }
        match self.cancel_deployment(id, false, now, DeploymentId(fresh())) {
            Ok((_, more)) => fx.absorb(more),
            Err(e) => tracing::error!(error = %e, "the rollback could not be planned"),
        }
    }

    fn finish_deployment(&mut self, id: &DeploymentId, now: Now, fx: &mut Effects) {
        if let Some(d) = self.deployments.remove(id) {
            fx.delete(deployment_key(id));
            fx.event(
                "deployment_success",
                json!({"id": d.id.0, "plan": crate::api::render::plan_json(&d)}),
                &now.stamp(),
            );
        }
    }

    /// A stopped app leaves: its versions and any leftover instance
    /// records go.
    fn remove_app(&mut self, id: &PathId, now: Now, fx: &mut Effects) {
        let Some(app) = self.apps.get(id) else {
            return;
        };
        if !app.removing {
            return;
        }
        for v in app.versions.keys() {
            fx.delete(app_key(id, *v));
        }
        let left: Vec<InstanceId> = self.instances_of(id).map(|i| i.id.clone()).collect();
        for i in left {
            self.instances.remove(&i);
            fx.delete(instance_key(&i));
        }
        self.apps.remove(id);
        fx.event(
            "app_terminated_event",
            json!({"appId": id.to_string()}),
            &now.stamp(),
        );
    }

    /// Creates `count` instances of `app`'s current definition, waiting for
    /// offers.
    pub(crate) fn launch_instances(
        &mut self,
        id: &PathId,
        count: u32,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) {
        let Some(app) = self.apps.get(id).map(|a| &a.app) else {
            return;
        };
        for _ in 0..count {
            let inst = Instance {
                id: InstanceId::new(id, &fresh()),
                app: id.clone(),
                version: app.version,
                config_version: app.config_version(),
                goal: Goal::Running,
                condition: Condition::Scheduled,
                task_state: None,
                healthy: None,
                ready: false,
                placed: None,
                staged_at_ms: now.wall_ms,
                started_at_ms: None,
                unreachable_since: None,
                counted: false,
            };
            fx.write(instance_key(&inst.id), encode_instance(&inst));
            self.instances.insert(inst.id.clone(), inst);
        }
    }

    /// Sets an instance's goal and kills its task; an instance that never
    /// launched just goes.
    pub(crate) fn kill_instance(
        &mut self,
        id: &InstanceId,
        goal: Goal,
        now: Now,
        fx: &mut Effects,
    ) {
        let Some(inst) = self.instances.get_mut(id) else {
            return;
        };
        if inst.placed.is_none() || inst.condition.is_terminal() {
            self.expunge(id, fx);
            return;
        }
        let first = inst.goal == Goal::Running;
        inst.goal = goal;
        let task = agora_model::TaskId::parse(inst.id.as_str()).ok();
        let agent = inst.placed.as_ref().map(|p| p.agent_id.clone());
        if first {
            fx.write(instance_key(id), encode_instance(inst));
        }
        if let Some(task) = task {
            fx.call(Call::Kill { task, agent });
        }
        let _ = now;
        self.recount(id);
    }

    /// Forgets an instance and its record.
    pub(crate) fn expunge(&mut self, id: &InstanceId, fx: &mut Effects) {
        if let Some(mut inst) = self.instances.remove(id) {
            let probed = self
                .apps
                .get(&inst.app)
                .is_some_and(|a| !a.app.readiness_checks.is_empty());
            if probed && !inst.ready {
                fx.probes.push(crate::readiness::Probe::Stop(id.clone()));
            }
            if inst.counted {
                inst.goal = agora_marathon_planner::Goal::Decommissioned;
                self.instances.insert(id.clone(), inst);
                self.recount(id);
                self.instances.remove(id);
            }
            fx.delete(instance_key(id));
        }
    }

    /// Apps no deployment works on keep their instance count: a lost
    /// instance is replaced (after the app's launch delay), and a surplus
    /// (an unreachable original that came back after its replacement, or
    /// what a forced cancel left) is killed as a scale-down would
    /// (Marathon's scale check).
    fn replace_lost(
        &mut self,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        moving: &std::collections::BTreeSet<PathId>,
        fx: &mut Effects,
    ) {
        let mut locked = self.locked_apps();
        // Apps moving off draining agents keep their count in that restart.
        locked.extend(moving.iter().cloned());
        let mut short: Vec<(PathId, u32)> = Vec::new();
        let mut surplus: Vec<InstanceId> = Vec::new();
        for (id, a) in self
            .apps
            .iter()
            .filter(|(id, a)| !a.removing && !locked.contains(*id))
        {
            // Counted without building views: this runs after every command.
            let active = self.instances_of(id).filter(|i| i.is_active()).count() as u32;
            if active < a.app.instances {
                short.push((id.clone(), a.app.instances - active));
            } else if active > a.app.instances {
                let k = (active - a.app.instances) as usize;
                surplus.extend(select_to_kill(
                    &self.views_of(&a.app),
                    k,
                    &a.app.constraints,
                    a.app.kill_selection,
                ));
            }
        }
        for (id, missing) in short {
            self.launch_instances(&id, missing, now, fresh, fx);
        }
        for id in surplus {
            self.kill_instance(&id, Goal::Decommissioned, now, fx);
        }
    }

    /// Unreachable instances: replaced after `inactiveAfterSeconds`, killed
    /// and forgotten after `expungeAfterSeconds`.
    fn check_unreachable(&mut self, now: Now, fx: &mut Effects) {
        let mut inactive = Vec::new();
        let mut gone = Vec::new();
        for inst in self.instances.values() {
            let Some(since) = inst.unreachable_since else {
                continue;
            };
            let Some(app) = self.apps.get(&inst.app) else {
                continue;
            };
            match unreachable_decision(&app.app.unreachable_strategy, since, now.mono) {
                UnreachableDecision::Wait => {}
                UnreachableDecision::Replace if inst.condition == Condition::Unreachable => {
                    inactive.push(inst.id.clone())
                }
                UnreachableDecision::Replace => {}
                UnreachableDecision::Expunge => gone.push(inst.id.clone()),
            }
        }
        for id in inactive {
            if let Some(i) = self.instances.get_mut(&id) {
                i.condition = Condition::UnreachableInactive;
            }
            self.recount(&id);
        }
        for id in gone {
            self.kill_instance(&id, Goal::Decommissioned, now, fx);
            self.expunge(&id, fx);
        }
    }

    fn suppress_or_revive(&mut self, fx: &mut Effects) {
        let waits = self.anything_waits();
        if waits && self.suppressed {
            self.suppressed = false;
            fx.call(Call::Revive);
        } else if !waits && !self.suppressed {
            self.suppressed = true;
            fx.call(Call::Suppress);
        }
    }

    /// Every launched task, for reconciliation.
    pub(crate) fn reconcile_all(&mut self, now: Now) -> Effects {
        let mut fx = Effects::default();
        let tasks = self
            .instances
            .values()
            .filter_map(|i| {
                let p = i.placed.as_ref()?;
                let t = agora_model::TaskId::parse(i.id.as_str()).ok()?;
                Some((t, Some(p.agent_id.clone())))
            })
            .collect();
        fx.call(Call::Reconcile(tasks));
        // A new leader probes readiness again where it is still unknown.
        let ids: Vec<InstanceId> = self.instances.keys().cloned().collect();
        for id in ids {
            fx.probes.extend(self.readiness_probe(&id));
        }
        // An implicit reconciliation too: tasks we do not know are reported
        // and killed (`updates.rs`).
        fx.call(Call::Reconcile(Vec::new()));
        self.last_reconcile = Some(now.mono);
        fx
    }

    /// Periodic work: reconciliation every [`RECONCILE_INTERVAL`].
    pub(crate) fn tick(&mut self, now: Now) -> Effects {
        let due = self
            .last_reconcile
            .is_none_or(|t| now.mono.since(t) >= RECONCILE_INTERVAL);
        if due {
            self.reconcile_all(now)
        } else {
            Effects::default()
        }
    }
}

//! Agents in maintenance: the master says which agents the operator
//! drains (`AgentMaintenance` events, sent again after every subscription).
//! Their offers are declined (the master sends none; this guards against a
//! late one), and the instances on them move: for each app no deployment
//! works on, the planner's rolling restart runs over the app's instances
//! with those on draining agents as the "old" ones, so the upgrade
//! strategy holds exactly as in a restart: replacements are launched first
//! while `maximumOverCapacity` allows, and an instance on a draining agent
//! is killed only while `ceil(n × minimumHealthCapacity)` healthy remain.
//! An app a deployment works on waits for it to end.
use std::collections::BTreeSet;

use agora_marathon_planner::{
    Action, DeploymentAction, Goal, InstanceView, PathId, StepInput, Version, step,
};
use agora_model::{AgentId, Drain};

use crate::state::{Effects, Instance, Now, State};

impl State {
    /// The master's notice: `agent` drains (`Some`) or no longer does.
    pub(crate) fn agent_maintenance(&mut self, agent: AgentId, drain: Option<Drain>) -> Effects {
        match drain {
            Some(d) => {
                tracing::info!(%agent, "agent draining: its instances move");
                self.draining.insert(agent, d);
            }
            None => {
                tracing::info!(%agent, "agent no longer draining");
                self.draining.remove(&agent);
            }
        }
        Effects::default()
    }

    /// Whether the instance runs on an agent the operator drains.
    pub(crate) fn on_draining_agent(&self, inst: &Instance) -> bool {
        inst.placed
            .as_ref()
            .is_some_and(|p| self.draining.contains_key(&p.agent_id))
    }

    /// Moves instances off draining agents; returns the apps it worked on
    /// (their instance count is kept by the restart, not by `replace_lost`).
    pub(super) fn move_off_draining(
        &mut self,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) -> BTreeSet<PathId> {
        if self.draining.is_empty() {
            return BTreeSet::new();
        }
        let locked = self.locked_apps();
        let apps: BTreeSet<PathId> = self
            .instances
            .values()
            .filter(|i| i.is_active() && self.on_draining_agent(i))
            .map(|i| i.app.clone())
            .filter(|a| !locked.contains(a))
            .filter(|a| self.apps.get(a).is_some_and(|s| !s.removing))
            .collect();
        for app in &apps {
            self.move_app_off_draining(app, now, fresh, fx);
        }
        apps
    }

    fn move_app_off_draining(
        &mut self,
        id: &PathId,
        now: Now,
        fresh: &mut dyn FnMut() -> String,
        fx: &mut Effects,
    ) {
        let Some(app) = self.apps.get(id).map(|a| a.app.clone()) else {
            return;
        };
        let views = self.drain_views(&app);
        let outcome = step(&StepInput {
            action: &DeploymentAction::RestartApplication(id.clone()),
            app: &app,
            instances: &views,
            now: now.mono,
            // No progress deadline: a drain waits as long as it takes.
            last_progress: now.mono,
        });
        for a in outcome.actions {
            match a {
                Action::Launch { count, .. } => self.launch_instances(id, count, now, fresh, fx),
                Action::Kill { instances, .. } => {
                    for i in instances {
                        tracing::info!(instance = %i, "moving off a draining agent");
                        self.kill_instance(&i, Goal::Stopped, now, fx);
                    }
                }
            }
        }
    }

    /// The app's instances as a restart sees them: those on draining agents
    /// are the old version, every other one the current.
    fn drain_views(&self, app: &agora_marathon_planner::App) -> Vec<InstanceView> {
        let current = app.config_version();
        let old = Version(current.0.wrapping_add(1));
        self.instances_of(&app.id)
            .map(|i| {
                let mut v = i.view(app);
                v.config_version = if self.on_draining_agent(i) {
                    old
                } else {
                    current
                };
                v
            })
            .collect()
    }
}

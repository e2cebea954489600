//! `plan(current, target) -> DeploymentPlan`, as Marathon's
//! `DeploymentPlan.apply`: steps run one after another, the actions of a
//! step at once.
//!
//! 1. `StopApplication` for every app absent from the target;
//! 2. `StartApplication` (at 0 instances) for every new app;
//! 3. then, grouped by the length of their longest dependency path (apps
//!    with no dependencies first): `ScaleApplication` for new apps and
//!    scale-only changes, `RestartApplication` for any other change.
//!
//! Unchanged apps get no action; empty steps are dropped.
use std::collections::{BTreeMap, BTreeSet};

use crate::app::{App, AppChange, change};
use crate::error::PlanError;
use crate::ids::{DeploymentId, InstanceId, PathId};

/// Apps by id.
pub type Apps = BTreeMap<PathId, App>;

/// One action of a step (Marathon's names, as `/v2/deployments` shows them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentAction {
    /// Kill every instance and remove the app.
    StopApplication(PathId),
    /// Create the app with no instances.
    StartApplication(PathId),
    /// Bring the instance count to the target's, without restarting any.
    ScaleApplication {
        /// The app.
        app: PathId,
        /// Target instances.
        instances: u32,
        /// Instances to kill first (`DELETE .../tasks?scale=true`,
        /// `POST /v2/tasks/delete?scale=true`: Marathon's `sentencedToKill`).
        kill: Vec<InstanceId>,
    },
    /// Replace every instance with the target version, per its upgrade
    /// strategy.
    RestartApplication(PathId),
}

impl DeploymentAction {
    /// Marathon's action name.
    pub fn name(&self) -> &'static str {
        match self {
            DeploymentAction::StopApplication(_) => "StopApplication",
            DeploymentAction::StartApplication(_) => "StartApplication",
            DeploymentAction::ScaleApplication { .. } => "ScaleApplication",
            DeploymentAction::RestartApplication(_) => "RestartApplication",
        }
    }

    /// The app it acts on.
    pub fn app(&self) -> &PathId {
        match self {
            DeploymentAction::StopApplication(a)
            | DeploymentAction::StartApplication(a)
            | DeploymentAction::RestartApplication(a)
            | DeploymentAction::ScaleApplication { app: a, .. } => a,
        }
    }
}

/// Actions that run at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// The actions, in app-id order.
    pub actions: Vec<DeploymentAction>,
}

/// What to do to get from `original` to `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPlan {
    /// The apps before (kept so the deployment can be reverted).
    pub original: Apps,
    /// The apps after.
    pub target: Apps,
    /// Steps, in order.
    pub steps: Vec<Step>,
}

impl DeploymentPlan {
    /// Apps some step acts on (`affectedApps`), in id order.
    pub fn affected_apps(&self) -> BTreeSet<PathId> {
        self.steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.app().clone()))
            .collect()
    }

    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The running deployments that lock an app this plan affects (each app
    /// may be in one deployment at a time): Marathon answers 409 with their
    /// ids unless `force=true`, which cancels them.
    pub fn blocked_by<'a>(
        &self,
        running: impl IntoIterator<Item = (&'a DeploymentId, &'a DeploymentPlan)>,
    ) -> Vec<DeploymentId> {
        let mine = self.affected_apps();
        running
            .into_iter()
            .filter(|(_, other)| other.affected_apps().iter().any(|a| mine.contains(a)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The plan that undoes this one from `current` (what is deployed now,
    /// possibly halfway): back to `original`, as `DELETE /v2/deployments/{id}`
    /// does without `force`.
    pub fn revert(&self, current: &Apps) -> Result<DeploymentPlan, PlanError> {
        plan(current, &self.original)
    }
}

/// Plans the deployment from `current` to `target`. Fails if the target's
/// dependencies are cyclic or name apps (or groups) it does not have.
pub fn plan(current: &Apps, target: &Apps) -> Result<DeploymentPlan, PlanError> {
    plan_with_kills(current, target, &BTreeMap::new())
}

/// [`plan`], where the scale-downs of some apps kill given instances first
/// (the API's `scale=true` kills: the target's instance count already
/// excludes them).
pub fn plan_with_kills(
    current: &Apps,
    target: &Apps,
    sentenced: &BTreeMap<PathId, Vec<InstanceId>>,
) -> Result<DeploymentPlan, PlanError> {
    for (key, app) in current.iter().chain(target.iter()) {
        if *key != app.id {
            return Err(PlanError::KeyMismatch {
                key: key.clone(),
                id: app.id.clone(),
            });
        }
    }
    let depth = dependency_depths(target)?;
    let mut steps = Vec::new();
    let stops = current
        .keys()
        .filter(|id| !target.contains_key(*id))
        .map(|id| DeploymentAction::StopApplication(id.clone()))
        .collect();
    steps.push(Step { actions: stops });
    let starts = target
        .keys()
        .filter(|id| !current.contains_key(*id))
        .map(|id| DeploymentAction::StartApplication(id.clone()))
        .collect();
    steps.push(Step { actions: starts });
    let mut by_depth: BTreeMap<u32, Vec<DeploymentAction>> = BTreeMap::new();
    for (id, app) in target {
        let action = match current.get(id) {
            None if app.instances == 0 => None,
            None => Some(scale(app, Vec::new())),
            Some(old) => match change(old, app) {
                AppChange::Unchanged if !sentenced.contains_key(id) => None,
                AppChange::Unchanged | AppChange::ScaleOnly { .. } => {
                    Some(scale(app, sentenced.get(id).cloned().unwrap_or_default()))
                }
                AppChange::Restart => Some(DeploymentAction::RestartApplication(id.clone())),
            },
        };
        if let Some(a) = action {
            by_depth
                .entry(depth.get(id).copied().unwrap_or(0))
                .or_default()
                .push(a);
        }
    }
    steps.extend(by_depth.into_values().map(|actions| Step { actions }));
    steps.retain(|s| !s.actions.is_empty());
    Ok(DeploymentPlan {
        original: current.clone(),
        target: target.clone(),
        steps,
    })
}

fn scale(app: &App, kill: Vec<InstanceId>) -> DeploymentAction {
    DeploymentAction::ScaleApplication {
        app: app.id.clone(),
        instances: app.instances,
        kill,
    }
}

/// Each app's dependencies as app ids: a dependency naming a group stands
/// for every app inside it (Marathon allows both); one naming nothing is an
/// error.
fn resolve_dependencies(apps: &Apps) -> Result<BTreeMap<&PathId, Vec<&PathId>>, PlanError> {
    let mut out = BTreeMap::new();
    for (id, app) in apps {
        let mut deps = Vec::new();
        for dep in &app.dependencies {
            if let Some((key, _)) = apps.get_key_value(dep) {
                deps.push(key);
                continue;
            }
            let before = deps.len();
            deps.extend(apps.keys().filter(|k| *k != id && k.is_within(dep)));
            if deps.len() == before {
                return Err(PlanError::UnknownDependency {
                    app: id.clone(),
                    missing: dep.clone(),
                });
            }
        }
        out.insert(id, deps);
    }
    Ok(out)
}

/// Per app, the length of its longest dependency path (0: no dependencies),
/// by an iterative depth-first search; a cycle is an error naming its apps.
fn dependency_depths(apps: &Apps) -> Result<BTreeMap<PathId, u32>, PlanError> {
    let edges = resolve_dependencies(apps)?;
    let mut depth: BTreeMap<&PathId, u32> = BTreeMap::new();
    let mut on_path: BTreeSet<&PathId> = BTreeSet::new();
    for root in apps.keys() {
        // (app, index of the next dependency to visit)
        let mut stack: Vec<(&PathId, usize)> = vec![(root, 0)];
        while let Some((id, next)) = stack.pop() {
            if depth.contains_key(id) {
                continue;
            }
            let deps = edges.get(id).map_or(&[][..], Vec::as_slice);
            on_path.insert(id);
            if let Some(&dep) = deps.get(next) {
                stack.push((id, next + 1));
                if on_path.contains(dep) {
                    let from = stack.iter().position(|(p, _)| *p == dep).unwrap_or(0);
                    let cycle = stack[from..].iter().map(|(p, _)| (*p).clone()).collect();
                    return Err(PlanError::Cycle(cycle));
                }
                if !depth.contains_key(dep) {
                    stack.push((dep, 0));
                }
                continue;
            }
            let d = deps
                .iter()
                .map(|d| depth.get(d).map_or(0, |x| x + 1))
                .max()
                .unwrap_or(0);
            depth.insert(id, d);
            on_path.remove(id);
        }
    }
    Ok(depth.into_iter().map(|(k, v)| (k.clone(), v)).collect())
}

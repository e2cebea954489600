//! The API's mutations: deploy new or changed definitions (POST, PUT, PATCH,
//! DELETE of apps, restarts, rollbacks to a version), kill tasks, cancel or
//! revert deployments, reset a launch delay. Each checks, plans with the
//! planner, records new versions and the deployment, and returns the
//! effects; the deployment itself advances in `drive.rs`.
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use agora_marathon_planner::{
    App, AppChange, DeploymentId, DeploymentPlan, Goal, InstanceId, NetworkMode, PathId, Version,
    Violation, change, plan_with_kills,
};
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::state::records::{app_key, deployment_key, encode_app, encode_deployment};
use crate::state::{AppState, Deployment, Effects, LaunchDelay, MAX_VERSIONS, Now, State};

/// Where Marathon assigns service ports from.
const SERVICE_PORTS: std::ops::RangeInclusive<u16> = 10000..=20000;

/// An app port's service port: in host networking, the port definition's
/// `port`; else the mapping's `servicePort`.
pub(crate) fn service_port(app: &App, p: &agora_marathon_planner::PortSpec) -> u16 {
    match app.network {
        NetworkMode::Host => p.port,
        NetworkMode::Bridge | NetworkMode::Container => p.service_port,
    }
}

/// The API layer's error is the state's: every refusal is an answer to a
/// caller.
pub(crate) type StateError = ApiError;

/// A change to deploy.
#[derive(Debug, Default)]
pub(crate) struct DeployRequest {
    /// New or changed definitions (their version is assigned here).
    pub(crate) apps: Vec<App>,
    /// Apps to remove.
    pub(crate) remove: Vec<PathId>,
    /// Cancel deployments that lock these apps instead of answering 409.
    pub(crate) force: bool,
    /// Instances to kill first while scaling down (`scale=true` kills).
    pub(crate) kills: BTreeMap<PathId, Vec<InstanceId>>,
    /// A restart: bump the config version of these apps even if unchanged.
    pub(crate) restart: Vec<PathId>,
    /// Keep the given apps' version info (a rollback to a stored version).
    pub(crate) keep_version_info: bool,
    /// POST: refuse (409) if an app exists already.
    pub(crate) create_only: bool,
}

/// What a deploy answered.
#[derive(Debug, Clone)]
pub(crate) struct Deployed {
    pub(crate) deployment: DeploymentId,
    pub(crate) version: Version,
}

impl AppState {
    pub(crate) fn new(app: App) -> AppState {
        let counters = agora_marathon_planner::PlacementCounters::for_constraints(&app.constraints);
        AppState {
            versions: BTreeMap::from([(app.version, app.clone())]),
            app,
            removing: false,
            counters,
            delay: LaunchDelay::default(),
            offer_stats: Default::default(),
            last_offer_wall_ms: None,
            last_failure: None,
        }
    }
}

impl State {
    /// A version for a new definition of `id`: now, or later than any it
    /// had (versions of one app strictly increase, even if the clock steps
    /// back).
    fn next_version(&self, id: &PathId, now: Now) -> Version {
        let last = self
            .apps
            .get(id)
            .and_then(|a| a.versions.keys().next_back().copied())
            .unwrap_or_default();
        Version(now.wall_ms.max(last.0 + 1))
    }

    /// Marathon assigns service ports from 10000-20000 (its
    /// `--local_port_min/max`) where a definition leaves them 0; an app keeps
    /// the ones it has across versions, so a new version is no change.
    fn assign_service_ports(&self, app: &mut App) {
        let current = self
            .apps
            .get(&app.id)
            .filter(|a| !a.removing)
            .map(|a| &a.app);
        let mut used: BTreeSet<u16> = self
            .apps
            .values()
            .filter(|a| a.app.id != app.id && !a.removing)
            .flat_map(|a| a.app.ports.iter().map(|p| service_port(&a.app, p)))
            .collect();
        used.extend(app.ports.iter().map(|p| service_port(app, p)));
        let host = app.network == NetworkMode::Host;
        for (i, p) in app.ports.iter_mut().enumerate() {
            let slot = if host {
                &mut p.port
            } else {
                &mut p.service_port
            };
            if *slot != 0 {
                continue;
            }
            let kept = current
                .and_then(|c| c.ports.get(i).map(|cp| service_port(c, cp)))
                .filter(|v| *v != 0);
            let next = kept.or_else(|| SERVICE_PORTS.clone().find(|v| !used.contains(v)));
            if let Some(v) = next {
                *slot = v;
                used.insert(v);
            }
        }
    }

    /// Versions a definition for `target`, given what runs now.
    fn versioned(&self, mut target: App, now: Now, restart: bool, keep_info: bool) -> App {
        self.assign_service_ports(&mut target);
        let v = self.next_version(&target.id, now);
        target.version = v;
        if keep_info {
            return target;
        }
        match self.apps.get(&target.id).filter(|a| !a.removing) {
            None => {
                target.version_info.last_config_change_at = v;
                target.version_info.last_scaling_at = v;
            }
            Some(cur) => {
                target.version_info = cur.app.version_info;
                match change(&cur.app, &target) {
                    AppChange::Restart => {
                        target.version_info.last_config_change_at = v;
                        target.version_info.last_scaling_at = v;
                    }
                    AppChange::ScaleOnly { .. } => target.version_info.last_scaling_at = v,
                    AppChange::Unchanged if restart => {
                        target.version_info.last_config_change_at = v;
                        target.version_info.last_scaling_at = v;
                    }
                    AppChange::Unchanged => {}
                }
            }
        }
        target
    }

    /// Plans and starts a deployment.
    pub(crate) fn deploy(
        &mut self,
        req: DeployRequest,
        now: Now,
        deployment_id: DeploymentId,
    ) -> Result<(Deployed, Effects), StateError> {
        let current = self.current_apps();
        let exists = req.apps.iter().find(|a| current.contains_key(&a.id));
        if let (true, Some(a)) = (req.create_only, exists) {
            return Err(ApiError::AppExists(a.id.clone()));
        }
        let mut target = current.clone();
        let mut version = Version::default();
        for app in req.apps {
            let restart = req.restart.contains(&app.id);
            let app = self.versioned(app, now, restart, req.keep_version_info);
            version = app.version;
            target.insert(app.id.clone(), app);
        }
        for id in &req.remove {
            if target.remove(id).is_none() {
                return Err(ApiError::AppNotFound(id.clone()));
            }
            version = Version(now.wall_ms);
        }
        check_groups(&current, &target)?;
        let plan = plan_with_kills(&current, &target, &req.kills)
            .map_err(|e| ApiError::Unplannable(e.to_string()))?;
        let blocked = plan.blocked_by(self.deployments.iter().map(|(id, d)| (id, &d.plan)));
        if !blocked.is_empty() && !req.force {
            return Err(ApiError::AppLocked(blocked));
        }
        let mut fx = Effects::default();
        for id in blocked {
            self.drop_deployment(&id, now, &mut fx, "deployment_failed");
        }
        self.record_targets(&current, &target, &mut fx);
        for app in target
            .values()
            .filter(|a| current.get(&a.id).is_none_or(|c| c.version != a.version))
        {
            fx.event(
                "api_post_event",
                json!({
                    "clientIp": Value::Null,
                    "uri": format!("/v2/apps{}", app.id),
                    "appDefinition": crate::api::convert::render_app(app),
                }),
                &now.stamp(),
            );
        }
        let deployment = Deployment {
            id: deployment_id.clone(),
            plan,
            version: Version(now.wall_ms),
            current_step: 0,
            last_progress: now.mono,
            revert_of: None,
        };
        self.start_deployment(deployment, now, &mut fx);
        Ok((
            Deployed {
                deployment: deployment_id,
                version: if version == Version::default() {
                    Version(now.wall_ms)
                } else {
                    version
                },
            },
            fx,
        ))
    }

    /// Stores every target definition that differs from the current one,
    /// marks removed apps, and trims old versions.
    fn record_targets(
        &mut self,
        current: &BTreeMap<PathId, App>,
        target: &BTreeMap<PathId, App>,
        fx: &mut Effects,
    ) {
        let mut recount: Vec<PathId> = Vec::new();
        for (id, app) in target {
            if current.get(id).is_some_and(|c| c.version == app.version) {
                continue;
            }
            fx.write(app_key(id, app.version), encode_app(app));
            let config_changed = current
                .get(id)
                .is_none_or(|c| c.config_version() != app.config_version());
            let entry = self
                .apps
                .entry(id.clone())
                .or_insert_with(|| AppState::new(app.clone()));
            if entry.removing || config_changed {
                // A new config starts from a clean launch queue (Marathon
                // resets the backoff on a new version).
                entry.delay = LaunchDelay::default();
                entry.offer_stats = Default::default();
            }
            entry.removing = false;
            if entry.app.constraints != app.constraints {
                entry.counters =
                    agora_marathon_planner::PlacementCounters::for_constraints(&app.constraints);
                recount.push(id.clone());
            }
            entry.app = app.clone();
            entry.versions.insert(app.version, app.clone());
            while entry.versions.len() > MAX_VERSIONS {
                if let Some((v, _)) = entry.versions.pop_first() {
                    fx.delete(app_key(id, v));
                }
            }
        }
        // Only apps whose constraints changed have fresh counters to fill.
        for app in recount {
            let ids: Vec<InstanceId> = self.instances_of(&app).map(|i| i.id.clone()).collect();
            for i in &ids {
                if let Some(inst) = self.instances.get_mut(i) {
                    inst.counted = false;
                }
                self.recount(i);
            }
        }
        for id in current.keys().filter(|id| !target.contains_key(*id)) {
            if let Some(a) = self.apps.get_mut(id) {
                a.removing = true;
            }
        }
    }

    fn start_deployment(&mut self, d: Deployment, now: Now, fx: &mut Effects) {
        fx.write(deployment_key(&d.id), encode_deployment(&d));
        let body = json!({
            "plan": crate::api::render::plan_json(&d),
            "currentStep": crate::api::render::step_json(&d, 0),
        });
        fx.event("deployment_info", body, &now.stamp());
        fx.event(
            "group_change_success",
            json!({"groupId": "/", "version": now.stamp()}),
            &now.stamp(),
        );
        self.deployments.insert(d.id.clone(), d);
    }

    /// Forgets a deployment without undoing anything (`force=true`).
    pub(crate) fn drop_deployment(
        &mut self,
        id: &DeploymentId,
        now: Now,
        fx: &mut Effects,
        event: &'static str,
    ) {
        if let Some(d) = self.deployments.remove(id) {
            fx.delete(deployment_key(id));
            fx.event(
                event,
                json!({"id": d.id.0, "plan": crate::api::render::plan_json(&d)}),
                &now.stamp(),
            );
        }
    }

    /// `DELETE /v2/deployments/{id}`: with `force` only forget it; without,
    /// start a deployment back to the original definitions (stored as new
    /// versions so a new leader loads them as current). A revert that
    /// cannot be planned, or would put an app where a group of apps now is,
    /// is refused with nothing changed.
    pub(crate) fn cancel_deployment(
        &mut self,
        id: &DeploymentId,
        force: bool,
        now: Now,
        revert_id: DeploymentId,
    ) -> Result<(Option<Deployed>, Effects), StateError> {
        let Some(d) = self.deployments.get(id) else {
            return Err(ApiError::DeploymentNotFound(id.0.clone()));
        };
        let revert = if force {
            None
        } else {
            Some(self.revert_of(&d.plan, now)?)
        };
        let mut fx = Effects::default();
        self.drop_deployment(id, now, &mut fx, "deployment_failed");
        let Some(revert) = revert else {
            return Ok((None, fx));
        };
        self.record_targets(&revert.current, &revert.target, &mut fx);
        let back = Deployment {
            id: revert_id.clone(),
            plan: revert.plan,
            version: Version(now.wall_ms),
            current_step: 0,
            last_progress: now.mono,
            revert_of: Some(id.clone()),
        };
        self.start_deployment(back, now, &mut fx);
        Ok((
            Some(Deployed {
                deployment: revert_id,
                version: Version(now.wall_ms),
            }),
            fx,
        ))
    }

    /// The apps now, the apps with `cancelled`'s affected apps back at
    /// their original definitions, and the plan between the two.
    fn revert_of(&self, cancelled: &DeploymentPlan, now: Now) -> Result<Revert, StateError> {
        let current = self.current_apps();
        let mut target = current.clone();
        for app_id in &cancelled.affected_apps() {
            match cancelled.original.get(app_id) {
                Some(app) => {
                    let mut back = app.clone();
                    back.version = self.next_version(app_id, now);
                    target.insert(app_id.clone(), back);
                }
                None => {
                    target.remove(app_id);
                }
            }
        }
        check_groups(&current, &target)?;
        let plan = agora_marathon_planner::plan(&current, &target)
            .map_err(|e| ApiError::Unplannable(e.to_string()))?;
        Ok(Revert {
            current,
            target,
            plan,
        })
    }

    /// Kills tasks without scaling: each is replaced (Marathon's `DELETE
    /// /v2/apps/{id}/tasks/{taskId}` without `scale`).
    pub(crate) fn kill_instances(&mut self, ids: &[InstanceId], now: Now) -> Effects {
        let mut fx = Effects::default();
        for id in ids {
            self.kill_instance(id, Goal::Stopped, now, &mut fx);
        }
        fx
    }

    /// `DELETE /v2/queue/{id}/delay`.
    pub(crate) fn reset_delay(&mut self, id: &PathId) -> Result<Effects, StateError> {
        let app = self
            .apps
            .get_mut(id)
            .filter(|a| !a.removing)
            .ok_or_else(|| ApiError::AppNotFound(id.clone()))?;
        app.delay = LaunchDelay::default();
        let mut fx = Effects::default();
        if self.anything_waits() {
            fx.call(crate::state::Call::Revive);
            self.suppressed = false;
        }
        Ok(fx)
    }
}

/// A cancelled deployment's revert, checked and planned before anything
/// changes.
struct Revert {
    current: BTreeMap<PathId, App>,
    target: BTreeMap<PathId, App>,
    plan: DeploymentPlan,
}

/// Refuses a target where an app's id is also another app's group (`/a`
/// and `/a/b`), as Marathon does ("Groups and Applications may not have the
/// same identifier", a 422): the tree `/v2/groups` shows has no place for
/// it. Only ids new in `target` are checked, so such a pair already stored
/// (before this check existed) does not block unrelated changes.
fn check_groups(
    current: &BTreeMap<PathId, App>,
    target: &BTreeMap<PathId, App>,
) -> Result<(), StateError> {
    let conflict = target
        .keys()
        .filter(|id| !current.contains_key(*id))
        .find_map(|id| group_conflict(target, id));
    match conflict {
        None => Ok(()),
        Some((app, inside)) => Err(ApiError::Invalid(vec![Violation::at(
            "/id",
            format!(
                "Groups and Applications may not have the same identifier: {app} is an app, so it cannot also be the group of the app {inside}"
            ),
        )])),
    }
}

/// `(app, inside)` when `id` or one of its groups is an app of `apps` with
/// another app within it.
fn group_conflict(apps: &BTreeMap<PathId, App>, id: &PathId) -> Option<(PathId, PathId)> {
    // An app at one of `id`'s groups.
    let mut group = id.parent();
    while !group.is_root() {
        if apps.contains_key(&group) {
            return Some((group, id.clone()));
        }
        group = group.parent();
    }
    // An app within `id`: ids sort by segments, so the next one after `id`
    // is within it if any is.
    apps.range::<PathId, _>((Bound::Excluded(id), Bound::Unbounded))
        .next()
        .filter(|(next, _)| next.is_within(id))
        .map(|(next, _)| (id.clone(), next.clone()))
}

impl State {
    /// `DELETE /v2/apps/{id}/tasks`, `POST /v2/tasks/delete`: kill tasks;
    /// with `scale`, lower each app's instance count by as many (a
    /// deployment that kills exactly those), else they are replaced.
    pub(crate) fn kill_tasks(
        &mut self,
        ids: &[InstanceId],
        scale: bool,
        force: bool,
        now: Now,
        deployment_id: DeploymentId,
    ) -> Result<(Option<Deployed>, Effects), StateError> {
        let mut by_app: BTreeMap<PathId, Vec<InstanceId>> = BTreeMap::new();
        for id in ids {
            let inst = self
                .instances
                .get(id)
                .ok_or_else(|| ApiError::TaskNotFound(id.to_string()))?;
            by_app.entry(inst.app.clone()).or_default().push(id.clone());
        }
        if !scale {
            return Ok((None, self.kill_instances(ids, now)));
        }
        let mut req = DeployRequest {
            force,
            ..DeployRequest::default()
        };
        for (app_id, kill) in by_app {
            let Some(a) = self.apps.get(&app_id).filter(|a| !a.removing) else {
                return Err(ApiError::AppNotFound(app_id));
            };
            let mut target = a.app.clone();
            target.instances = target.instances.saturating_sub(kill.len() as u32);
            req.apps.push(target);
            req.kills.insert(app_id, kill);
        }
        let (d, fx) = self.deploy(req, now, deployment_id)?;
        Ok((Some(d), fx))
    }

    /// Launches the master refused: the instances wait for offers again.
    pub(crate) fn unplace(&mut self, ids: &[InstanceId]) -> Effects {
        let mut fx = Effects::default();
        for id in ids {
            if let Some(inst) = self
                .instances
                .get_mut(id)
                .filter(|i| i.task_state == Some(agora_model::TaskState::Staging))
            {
                {
                    inst.placed = None;
                    inst.task_state = None;
                    inst.condition = agora_marathon_planner::Condition::Scheduled;
                    fx.write(
                        crate::state::records::instance_key(id),
                        crate::state::records::encode_instance(inst),
                    );
                }
            }
            self.recount(id);
        }
        fx
    }
}

//! The Marathon leader's whole state, owned by the event loop: app
//! definitions with their versions, instances (goal and observed condition
//! apart), deployments in flight and the launch queue's bookkeeping.
//!
//! Sans-IO: every transition is a plain method that takes the time ([`Now`])
//! and fresh ids as arguments and returns [`Effects`] (store writes, SDK
//! calls, events) for the loop to carry out. Decisions are the planner's
//! (`agora-marathon-planner`); this module keeps the data they need
//! (placement counters, the agent inventory) up to date incrementally.
//!
//! Files: `apps.rs` (API mutations: deploy, delete, restart, kill tasks,
//! cancel deployments), `drive.rs` (deployment steps, replacing lost
//! instances, unreachable handling, suppress/revive), `offers.rs`
//! (placement → launches), `updates.rs` (task status updates), `records.rs`
//! (what is stored, one key per app version, instance and deployment),
//! `maintenance.rs` (instances move off agents the operator drains).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agora_marathon_planner::{
    AgentFacts, App, Condition, DeploymentId, DeploymentPlan, Goal, InstanceId, InstanceView,
    Inventory, PathId, PlacementCounters, RejectSummary, Version,
};
use agora_model::{AgentId, Drain, FrameworkId, MonoTime, TaskState};

pub(crate) mod apps;
mod drive;
pub(crate) mod effects;
mod maintenance;
mod offers;
pub(crate) mod records;
#[cfg(test)]
mod tests;
mod updates;

pub(crate) use apps::DeployRequest;
pub(crate) use effects::{Call, Effects, Event};

/// At most this many versions of one app are kept (Marathon's
/// `--zk_max_versions` default is 50).
pub(crate) const MAX_VERSIONS: usize = 50;
/// Unused offers are declined for this long (Marathon's
/// `--decline_offer_duration`, 120 s).
pub(crate) const DECLINE_FILTER: Duration = Duration::from_secs(120);
/// Launch at most this many instances from one offer (Marathon's
/// `--max_instances_per_offer`).
pub(crate) const MAX_INSTANCES_PER_OFFER: u32 = 5;
/// Launch at most this many instances per offers event, so a burst of
/// launches cannot starve status updates in the loop.
pub(crate) const MAX_LAUNCHES_PER_ROUND: u32 = 1000;
/// Launch rate limit: at most this many launches per second on average,
/// with bursts up to [`LAUNCH_BURST`] (Marathon's launch tokens, which it
/// hands out 100 per 30 s by default; ours are sized for fast deploys while
/// still keeping a runaway app from flooding the master).
pub(crate) const LAUNCH_RATE_PER_SEC: u64 = 500;
/// See [`LAUNCH_RATE_PER_SEC`].
pub(crate) const LAUNCH_BURST: u64 = 1000;

/// A token bucket for launches; time comes in as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchTokens {
    /// Tokens in thousandths.
    milli: u64,
    last: MonoTime,
}

impl Default for LaunchTokens {
    fn default() -> Self {
        LaunchTokens {
            milli: LAUNCH_BURST * 1000,
            last: MonoTime(0),
        }
    }
}

impl LaunchTokens {
    /// Whole tokens available at `now`.
    pub(crate) fn available(&mut self, now: MonoTime) -> u32 {
        let ms = now.since(self.last).as_millis() as u64;
        self.milli = (self.milli + ms * LAUNCH_RATE_PER_SEC).min(LAUNCH_BURST * 1000);
        self.last = now;
        u32::try_from(self.milli / 1000).unwrap_or(u32::MAX)
    }

    /// Spends `n` tokens.
    pub(crate) fn spend(&mut self, n: u32) {
        self.milli = self.milli.saturating_sub(u64::from(n) * 1000);
    }
}

/// Reconcile every task this often (Marathon's `--reconciliation_interval`,
/// 600 s).
pub(crate) const RECONCILE_INTERVAL: Duration = Duration::from_secs(600);

/// The time, as the loop read it: a monotonic clock for deadlines and the
/// wall clock (Unix ms) for versions and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    pub(crate) mono: MonoTime,
    pub(crate) wall_ms: u64,
}

impl Now {
    pub(crate) fn stamp(&self) -> String {
        crate::api::json::format_version(Version(self.wall_ms))
    }
}

/// One app: its current definition, older versions, and the launch queue's
/// bookkeeping for it.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The current definition (the target of a running deployment).
    pub(crate) app: App,
    /// Definitions by version, the current one included.
    pub(crate) versions: BTreeMap<Version, App>,
    /// Being removed: a deployment stops it; hidden from the API.
    pub(crate) removing: bool,
    /// Where counted instances run, per constraint field.
    pub(crate) counters: PlacementCounters,
    /// Launch backoff after failures.
    pub(crate) delay: LaunchDelay,
    /// Offers looked at for this app since it last had to wait from zero.
    pub(crate) offer_stats: RejectSummary,
    /// When an offer was last looked at for it (wall ms).
    pub(crate) last_offer_wall_ms: Option<u64>,
    /// The last failure of one of its tasks (Marathon's `lastTaskFailure`).
    pub(crate) last_failure: Option<TaskFailure>,
}

/// Launch backoff: after each failure `backoff × factor^(failures-1)`, capped
/// (the planner's `BackoffPolicy::delay`); reset by a new config version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LaunchDelay {
    pub(crate) failures: u32,
    pub(crate) until: Option<MonoTime>,
    pub(crate) until_wall_ms: u64,
}

/// What `lastTaskFailure` shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskFailure {
    pub(crate) task_id: String,
    pub(crate) state: TaskState,
    pub(crate) message: String,
    pub(crate) host: String,
    pub(crate) agent_id: Option<String>,
    pub(crate) timestamp: String,
    pub(crate) version: Version,
}

/// Where an instance was launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) agent_id: AgentId,
    pub(crate) facts: AgentFacts,
    pub(crate) host_ports: Vec<u64>,
}

/// One instance (Marathon's task): goal and observed condition apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instance {
    pub(crate) id: InstanceId,
    pub(crate) app: PathId,
    /// The app version it was launched from.
    pub(crate) version: Version,
    /// Its definition's config version (old vs new during a restart).
    pub(crate) config_version: Version,
    pub(crate) goal: Goal,
    pub(crate) condition: Condition,
    /// The last task state reported (None before the first update).
    pub(crate) task_state: Option<TaskState>,
    /// Health from the agent's checks; None while unknown.
    pub(crate) healthy: Option<bool>,
    /// A readiness check answered with a ready status (apps with checks).
    pub(crate) ready: bool,
    pub(crate) placed: Option<Placed>,
    /// When it was created (wall ms) and when it started running.
    pub(crate) staged_at_ms: u64,
    pub(crate) started_at_ms: Option<u64>,
    /// Since when it has been unreachable.
    pub(crate) unreachable_since: Option<MonoTime>,
    /// Counted in its app's placement counters.
    pub(crate) counted: bool,
}

impl Instance {
    /// Counts toward its app (the planner's `InstanceView::is_active`):
    /// wanted, not terminal, not given up on as unreachable.
    pub(crate) fn is_active(&self) -> bool {
        self.goal == Goal::Running
            && !self.condition.is_terminal()
            && self.condition != Condition::UnreachableInactive
    }

    /// What the planner sees.
    pub(crate) fn view(&self, app: &App) -> InstanceView {
        let has_checks = !app.health_checks.is_empty();
        let healthy = if has_checks {
            self.healthy == Some(true)
        } else {
            self.condition == Condition::Running
        };
        InstanceView {
            id: self.id.clone(),
            config_version: self.config_version,
            goal: self.goal,
            condition: self.condition,
            healthy,
            ready: healthy && (app.readiness_checks.is_empty() || self.ready),
            started_at: MonoTime(self.staged_at_ms),
            agent: self
                .placed
                .as_ref()
                .map(|p| p.facts.clone())
                .unwrap_or_default(),
        }
    }
}

/// A deployment in flight.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub(crate) id: DeploymentId,
    pub(crate) plan: DeploymentPlan,
    /// When it started (wall ms; its `version`).
    pub(crate) version: Version,
    /// Index of the step being worked on.
    pub(crate) current_step: usize,
    /// Last time an instance of an affected app changed.
    pub(crate) last_progress: MonoTime,
    /// A rollback started on a deadline, or a revert: told apart in events.
    pub(crate) revert_of: Option<DeploymentId>,
}

/// The leader's state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) apps: BTreeMap<PathId, AppState>,
    pub(crate) instances: BTreeMap<InstanceId, Instance>,
    pub(crate) deployments: BTreeMap<DeploymentId, Deployment>,
    /// Agents seen in offers or placements, and the values they give each
    /// constraint field (GROUP_BY balances over these).
    pub(crate) agents: BTreeMap<AgentId, AgentFacts>,
    pub(crate) inventory: Inventory,
    pub(crate) framework_id: Option<FrameworkId>,
    /// Offers are suppressed (nothing waits).
    pub(crate) suppressed: bool,
    /// Wall ms of the last explicit reconciliation.
    pub(crate) last_reconcile: Option<MonoTime>,
    /// The launch rate limit.
    pub(crate) launch_tokens: LaunchTokens,
    /// Agents the operator drains, as the master last said (not stored:
    /// the master tells every new subscription).
    pub(crate) draining: BTreeMap<AgentId, Drain>,
}

impl State {
    /// Apps as the planner sees them (current definitions, removed ones
    /// excluded).
    pub(crate) fn current_apps(&self) -> BTreeMap<PathId, App> {
        self.apps
            .iter()
            .filter(|(_, a)| !a.removing)
            .map(|(id, a)| (id.clone(), a.app.clone()))
            .collect()
    }

    /// Instances of one app (every instance id starts with its safe path).
    pub(crate) fn instances_of<'a>(
        &'a self,
        app: &'a PathId,
    ) -> impl Iterator<Item = &'a Instance> {
        let prefix = format!("{}.", app.safe_path());
        self.instances
            .range(InstanceId::from_string(prefix.clone())..)
            .take_while(move |(id, _)| id.as_str().starts_with(&prefix))
            .map(|(_, i)| i)
            .filter(move |i| &i.app == app)
    }

    /// Planner views of one app's instances.
    pub(crate) fn views_of(&self, app: &App) -> Vec<InstanceView> {
        self.instances_of(&app.id).map(|i| i.view(app)).collect()
    }

    /// Deployments that touch `app`.
    pub(crate) fn deployments_of(&self, app: &PathId) -> Vec<&Deployment> {
        self.deployments
            .values()
            .filter(|d| d.plan.affected_apps().contains(app))
            .collect()
    }

    /// Apps some deployment is working on.
    pub(crate) fn locked_apps(&self) -> BTreeSet<PathId> {
        self.deployments
            .values()
            .flat_map(|d| d.plan.affected_apps())
            .collect()
    }

    /// Learns an agent's facts (from an offer or a stored instance).
    pub(crate) fn learn_agent(&mut self, agent_id: &AgentId, facts: &AgentFacts) {
        if self.agents.get(agent_id) != Some(facts) {
            self.inventory.add_agent(facts);
            self.agents.insert(agent_id.clone(), facts.clone());
        }
    }

    /// Counts or uncounts an instance in its app's placement counters, so
    /// the counters always hold exactly the active, placed instances.
    pub(crate) fn recount(&mut self, id: &InstanceId) {
        let Some(inst) = self.instances.get_mut(id) else {
            return;
        };
        let Some(app) = self.apps.get_mut(&inst.app) else {
            return;
        };
        let should = inst.placed.is_some() && inst.is_active();
        if should == inst.counted {
            return;
        }
        if let Some(p) = &inst.placed {
            if should {
                app.counters.add(&p.facts);
            } else {
                app.counters.remove(&p.facts);
            }
        }
        inst.counted = should;
    }

    /// Instances waiting for an offer, per app, in app order.
    pub(crate) fn waiting(&self, now: Now) -> Vec<(PathId, Vec<InstanceId>)> {
        let mut out: BTreeMap<PathId, Vec<InstanceId>> = BTreeMap::new();
        for inst in self.instances.values() {
            if inst.goal != Goal::Running || inst.condition != Condition::Scheduled {
                continue;
            }
            let delayed = self
                .apps
                .get(&inst.app)
                .and_then(|a| a.delay.until)
                .is_some_and(|u| u > now.mono);
            if !delayed {
                out.entry(inst.app.clone())
                    .or_default()
                    .push(inst.id.clone());
            }
        }
        out.into_iter().collect()
    }

    /// Does any instance wait for an offer (delayed ones included)?
    pub(crate) fn anything_waits(&self) -> bool {
        self.instances
            .values()
            .any(|i| i.goal == Goal::Running && i.condition == Condition::Scheduled)
    }
}

//! `step(&StepInput) -> StepOutcome`: what to do next for one action of a
//! deployment, given the app's instances as observed now.
//!
//! The function is stateless: the caller calls it again whenever an
//! instance changes (launched, running, healthy, ready, gone) and applies
//! the returned [`Action`]s: a `Launch` creates that many new instances
//! (scheduled, waiting for offers), a `Kill` sets their goal to stopped.
//! Both show up in the next call's instances, so a repeated call asks for
//! nothing twice.
//!
//! Rolling restart (Marathon's `TaskReplaceActor.computeRestartStrategy`),
//! for `n` target instances and the app's upgrade strategy:
//! - `min_healthy = ceil(n × minimumHealthCapacity)`,
//!   `max_capacity = floor(n × (1 + maximumOverCapacity))`, plus one when the
//!   two are equal and the app is already at capacity (else nothing could
//!   move);
//! - old instances that are not healthy never count toward the floor and
//!   are killed at once; healthy old instances are killed only while the
//!   healthy total (old healthy + new healthy-and-ready) stays ≥ `min_healthy`;
//! - new instances are launched while old + new ≤ the capacity;
//! - blue-green ({1.0, 1.0}, capacity 2n): no healthy old instance is killed
//!   until all `n` new ones are healthy and ready;
//! - done when no old instance is left and `n` new ones are healthy and ready.
use agora_model::MonoTime;

use crate::app::App;
use crate::deploy::plan::DeploymentAction;
use crate::ids::{InstanceId, PathId, Version};
use crate::instance::{Condition, InstanceView};
use crate::scale::select_to_kill;

/// One thing for the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create `count` new instances of `app` at `config_version`; they wait
    /// in the launch queue for offers.
    Launch {
        /// The app.
        app: PathId,
        /// How many.
        count: u32,
        /// The definition's config version they run.
        config_version: Version,
    },
    /// Kill these instances.
    Kill {
        /// The app.
        app: PathId,
        /// Which.
        instances: Vec<InstanceId>,
    },
}

/// Where the action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// More to do; call again when an instance changes.
    InProgress,
    /// Finished.
    Done,
    /// The app's progress deadline passed without progress.
    DeadlineExceeded,
}

/// Inputs of [`step`].
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The action being carried out.
    pub action: &'a DeploymentAction,
    /// The target definition (for `StopApplication`, the current one).
    pub app: &'a App,
    /// Every known instance of the app, including those being killed.
    pub instances: &'a [InstanceView],
    /// Now.
    pub now: MonoTime,
    /// When the caller last saw this action progress (an instance launched,
    /// became healthy or ready, or died as asked); starts at the action's start.
    pub last_progress: MonoTime,
}

/// What [`step`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// What to do now (kills first).
    pub actions: Vec<Action>,
    /// Where the action stands.
    pub status: StepStatus,
}

/// Decides the next actions for one deployment action.
pub fn step(input: &StepInput<'_>) -> StepOutcome {
    let app = input.app;
    let outcome = match input.action {
        DeploymentAction::StopApplication(_) => stop(app, input.instances),
        DeploymentAction::StartApplication(_) => StepOutcome {
            actions: Vec::new(),
            status: StepStatus::Done,
        },
        DeploymentAction::ScaleApplication {
            instances, kill, ..
        } => scale(app, *instances, kill, input.instances),
        DeploymentAction::RestartApplication(_) => restart(app, input.instances),
    };
    match app.progress_deadline {
        Some(d)
            if outcome.status == StepStatus::InProgress
                && input.now.since(input.last_progress) >= d =>
        {
            StepOutcome {
                actions: Vec::new(),
                status: StepStatus::DeadlineExceeded,
            }
        }
        _ => outcome,
    }
}

fn stop(app: &App, instances: &[InstanceView]) -> StepOutcome {
    let kill: Vec<InstanceId> = instances
        .iter()
        .filter(|i| i.is_wanted())
        .map(|i| i.id.clone())
        .collect();
    let done = instances.iter().all(|i| i.condition.is_terminal());
    outcome(app, kill, 0, done)
}

/// Scale to `n` without restarting anything: kill the sentenced instances,
/// then launch the missing ones or kill the surplus (GROUP_BY-aware, then
/// `killSelection`); done when `n` are active, healthy and ready.
fn scale(app: &App, n: u32, sentenced: &[InstanceId], instances: &[InstanceView]) -> StepOutcome {
    let (doomed, rest): (Vec<&InstanceView>, Vec<&InstanceView>) = instances
        .iter()
        .filter(|i| i.is_active())
        .partition(|i| sentenced.contains(&i.id));
    let mut kill: Vec<InstanceId> = doomed.iter().map(|i| i.id.clone()).collect();
    let active = count(rest.iter());
    let ready = count(rest.iter().filter(|i| i.is_healthy_ready()));
    if active > n {
        let surplus = usize::try_from(active - n).unwrap_or(usize::MAX);
        kill.extend(select_to_kill(
            rest.iter().copied(),
            surplus,
            &app.constraints,
            app.kill_selection,
        ));
    }
    let done = doomed.is_empty() && active == n && ready >= n;
    outcome(app, kill, n.saturating_sub(active), done)
}

fn restart(app: &App, instances: &[InstanceView]) -> StepOutcome {
    let n = app.instances;
    let new_version = app.config_version();
    let (new, old): (Vec<&InstanceView>, Vec<&InstanceView>) = instances
        .iter()
        .filter(|i| i.is_active())
        .partition(|i| i.config_version == new_version);
    // New instances beyond `n` (left by an earlier, cancelled deployment)
    // go first; select_to_kill takes the ones not serving first.
    let extra_new = usize::try_from(count(new.iter()).saturating_sub(n)).unwrap_or(0);
    let mut kill = select_to_kill(
        new.iter().copied(),
        extra_new,
        &app.constraints,
        app.kill_selection,
    );
    let new: Vec<&InstanceView> = new.into_iter().filter(|i| !kill.contains(&i.id)).collect();
    let new_started = count(new.iter());
    let new_ready = count(new.iter().filter(|i| i.is_healthy_ready()));

    let (old_healthy, old_unhealthy): (Vec<&InstanceView>, Vec<&InstanceView>) =
        old.iter().copied().partition(|i| i.is_healthy());
    let min_healthy = app.upgrade_strategy.min_healthy(n);
    let healthy_now = count(old_healthy.iter()) + new_ready;
    // Blue-green ({1.0, 1.0}): the whole new version runs beside the old
    // one, and no healthy old instance stops until all of it is healthy and
    // ready.
    // Saturating: `n` comes from a request (bounded there, but the planner
    // must not overflow on whatever definition it is given).
    let blue_green =
        min_healthy >= n && app.upgrade_strategy.max_capacity(n) >= n.saturating_mul(2);
    let surplus = if blue_green && new_ready < n {
        0
    } else {
        usize::try_from(healthy_now.saturating_sub(min_healthy)).unwrap_or(0)
    };
    // Old instances that do not serve go at once (unhealthy ones here,
    // inactive unreachable ones below); healthy ones only above the floor.
    let old_kill = old_unhealthy
        .iter()
        .map(|i| i.id.clone())
        .chain(select_to_kill(
            old_healthy.iter().copied(),
            surplus,
            &app.constraints,
            app.kill_selection,
        ));
    let before = kill.len();
    kill.extend(old_kill);
    let old_left = count(old.iter()).saturating_sub(count(kill[before..].iter()));
    kill.extend(
        instances
            .iter()
            .filter(|i| i.condition == Condition::UnreachableInactive && i.is_wanted())
            .filter(|i| i.config_version != new_version)
            .map(|i| i.id.clone()),
    );

    let total = old_left + new_started;
    let to_launch = n
        .saturating_sub(new_started)
        .min(capacity(app, total).saturating_sub(total));
    let old_gone = instances
        .iter()
        .all(|i| i.config_version == new_version || i.condition.is_terminal());
    let done = old_gone && extra_new == 0 && new_ready >= n;
    outcome(app, kill, to_launch, done)
}

/// Kills first, then the launch; the status from `done`.
fn outcome(app: &App, kill: Vec<InstanceId>, to_launch: u32, done: bool) -> StepOutcome {
    let mut actions = Vec::new();
    if !kill.is_empty() {
        actions.push(Action::Kill {
            app: app.id.clone(),
            instances: kill,
        });
    }
    if to_launch > 0 {
        actions.push(launch(app, to_launch));
    }
    StepOutcome {
        actions,
        status: if done {
            StepStatus::Done
        } else {
            StepStatus::InProgress
        },
    }
}

/// How many instances may be active at once during a restart, given
/// `total` active now: `max_capacity`, plus one when it equals
/// `min_healthy` and the app is at capacity (Marathon's rule for
/// non-resident apps; without it a {1.0, 0.0} restart could not start).
pub fn capacity(app: &App, total: u32) -> u32 {
    let s = &app.upgrade_strategy;
    let (min, max) = (s.min_healthy(app.instances), s.max_capacity(app.instances));
    if min == max && total >= max {
        max.saturating_add(1)
    } else {
        max
    }
}

fn launch(app: &App, count: u32) -> Action {
    Action::Launch {
        app: app.id.clone(),
        count,
        config_version: app.config_version(),
    }
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

//! The member's leadership task: it follows the Raft runner's status and
//! runs this member's master core exactly while this member leads.
//!
//! On election it reads the registry through a ReadIndex (so every entry a
//! previous leader committed is applied here first), starts a core from it
//! (agents in the registry then have `agent_reregister_timeout` to come
//! back, frameworks their failover timeout to re-subscribe, as after a
//! Mesos master failover) and routes clients to it. When leadership is
//! lost or the term changes, the core is stopped at once (its links and
//! streams end, so clients reconnect and are redirected) before anything
//! else is published: two cores never act for the same member.
use std::sync::Arc;
use std::time::Duration;

use agora_raft::runner::{Access, Status};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::directory::Directory;
use super::machine::MasterMachine;
use super::writer::spawn_replicated_writer;
use crate::MasterConfig;
use crate::clock;
use crate::event_loop;
use crate::registry::Registry;
use crate::route::{ActiveCore, Route};
use crate::state::Master;

/// How long a stopping core may take to finish its loop iteration.
const CORE_STOP_GRACE: Duration = Duration::from_secs(2);
/// Pause between attempts to read the registry after an election.
const REGISTRY_READ_RETRY: Duration = Duration::from_millis(50);

/// What the leadership task needs from the running replica.
#[derive(Clone)]
pub(crate) struct GroupHandles {
    pub(crate) proposals: mpsc::Sender<agora_raft::runner::Proposal>,
    pub(crate) access: mpsc::Sender<Access<MasterMachine>>,
    pub(crate) status: watch::Receiver<Status>,
}

/// A core this member runs while it leads.
struct RunningCore {
    stop: Option<oneshot::Sender<()>>,
    stopped: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningCore {
    async fn stop(mut self) {
        self.stopped.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(CORE_STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Runs until `shutdown` is cancelled or the replica stops.
pub(crate) async fn lead_while_elected(
    cfg: MasterConfig,
    group: GroupHandles,
    directory: Arc<Directory>,
    route: watch::Sender<Route>,
    shutdown: CancellationToken,
) {
    let mut status = group.status.clone();
    loop {
        let now = status.borrow_and_update().clone();
        if !now.is_leader() {
            let leader = now.leadership.leader.and_then(|id| directory.api_addr(id));
            route.send_replace(Route::Standby { leader });
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = status.changed() => if changed.is_err() {
                    // The replica stopped (removed from the group, or a
                    // storage failure): serve nobody, redirect nobody.
                    route.send_replace(Route::Standby { leader: None });
                    return;
                },
            }
            continue;
        }
        let term = now.leadership.term;
        let Some(registry) = read_registry(&group, &mut status, term, &shutdown).await else {
            continue;
        };
        info!(
            term,
            agents = registry.agents.len(),
            frameworks = registry.frameworks.len(),
            "elected: starting the master core"
        );
        let core = start_core(&cfg, &group, &directory, registry);
        route.send_replace(Route::Active(ActiveCore {
            tx: core.1.clone(),
            stopped: core.0.stopped.clone(),
            abort: core.0.task.abort_handle(),
        }));
        let still_leading = wait_while_leading(&mut status, term, &shutdown).await;
        // Stop routing to the core first, then stop it.
        route.send_replace(Route::Standby { leader: None });
        core.0.stop().await;
        info!(term, "leadership lost: master core stopped");
        if !still_leading {
            return;
        }
    }
}

/// The registry as of a ReadIndex on this member, while it still leads
/// `term`; `None` when leadership was lost meanwhile.
async fn read_registry(
    group: &GroupHandles,
    status: &mut watch::Receiver<Status>,
    term: u64,
    shutdown: &CancellationToken,
) -> Option<Registry> {
    loop {
        let now = status.borrow().clone();
        if shutdown.is_cancelled() || !now.is_leader() || now.leadership.term != term {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        let read = Access::Linearizable(Box::new(move |machine| {
            let registry = machine.map(|m: &mut MasterMachine| m.registry().clone());
            let _ = reply.send(registry);
        }));
        if group.access.send(read).await.is_err() {
            return None;
        }
        match answer.await {
            Ok(Ok(registry)) => return Some(registry),
            Ok(Err(error)) => {
                warn!(%error, "reading the registry after the election failed; retrying")
            }
            Err(_) => return None,
        }
        tokio::time::sleep(REGISTRY_READ_RETRY).await;
    }
}

/// Waits until this member no longer leads `term`; false on shutdown.
async fn wait_while_leading(
    status: &mut watch::Receiver<Status>,
    term: u64,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        {
            let now = status.borrow_and_update();
            if !now.is_leader() || now.leadership.term != term {
                return true;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            changed = status.changed() => if changed.is_err() { return true },
        }
    }
}

fn start_core(
    cfg: &MasterConfig,
    group: &GroupHandles,
    directory: &Directory,
    registry: Registry,
) -> (RunningCore, mpsc::Sender<event_loop::Command>) {
    let writer = spawn_replicated_writer(group.proposals.clone());
    let master = Master::new(
        cfg.clone(),
        registry,
        uuid::Uuid::new_v4().to_string(),
        directory.own_api_addr(),
        clock::unix_now(),
        rand::random(),
    );
    let (tx, rx) = mpsc::channel(event_loop::COMMAND_QUEUE);
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(event_loop::run(master, writer, rx, stop_rx));
    let core = RunningCore {
        stop: Some(stop),
        stopped: CancellationToken::new(),
        task,
    };
    (core, tx)
}

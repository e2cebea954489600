//! Leadership: every process campaigns on the coordination service (a
//! lease-backed election); the elected one loads the state from the store,
//! subscribes to the master with the stored framework id, reconciles and
//! runs the event loop until its lease is lost, the loop ends (a failed
//! write) or it is asked to abdicate. Standbys learn the leader's address
//! and proxy API calls to it.
use std::sync::Arc;
use std::time::Duration;

use agora_model::{FrameworkInfo, Role};
use agora_scheduler_sdk::SchedulerDriver;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::config::{FAILOVER_TIMEOUT, MarathonConfig};
use crate::dispatch::{CALL_QUEUE, SEQUENCER_QUEUE, make_calls, sequence};
use crate::election::{ElectionConfig, campaign, current_leader};
use crate::event_loop::{COMMAND_QUEUE, Clock, Command, run};
use crate::state::Event;
use crate::state::records::load_state;
use crate::store::Store;

/// Where API calls go.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// This process leads: its loop takes commands.
    Leading(mpsc::Sender<Command>),
    /// Another process leads (its address), or none is known.
    Following(Option<String>),
}

/// Standbys look up the leader this often.
const LEADER_POLL: Duration = Duration::from_millis(500);
/// Wait this long after abdicating before campaigning again, so another
/// process can take over.
const ABDICATE_PAUSE: Duration = Duration::from_secs(3);
/// Write batches the store writer queues at most (the sequencer waits
/// beyond).
const WRITER_QUEUE: usize = 1024;

/// Shared between the API and the leadership task.
pub(crate) struct Shared {
    pub(crate) route: watch::Sender<Route>,
    pub(crate) events: broadcast::Sender<Event>,
    /// Set by `DELETE /v2/leader`.
    pub(crate) abdicate: Notify,
    pub(crate) me: String,
    pub(crate) config: MarathonConfig,
    pub(crate) framework_id: watch::Sender<Option<String>>,
    /// What standbys forward API calls to the leader with.
    pub(crate) proxy: crate::api::http::proxy::Proxy,
}

/// Campaigns, leads, and campaigns again, until `stop` fires.
pub(crate) async fn lead_forever(
    store: Store,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let election = ElectionConfig {
        name: format!("{}/leader", shared.config.prefix.trim_end_matches('/')),
        value: shared.me.clone(),
        lease_ttl: shared.config.leader_lease,
    };
    let follower = tokio::spawn(follow(store.clone(), shared.clone(), election.name.clone()));
    loop {
        let stopping = {
            let mut stop = stop.clone();
            async move {
                let _ = stop.wait_for(|s| *s).await;
            }
        };
        let leadership = match campaign(store.client(), &election, stopping).await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "campaign failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        tracing::info!(me = %shared.me, "elected Marathon leader");
        let abdicated = lead(&store, &shared, leadership, &mut stop).await;
        shared.route.send_replace(Route::Following(None));
        if *stop.borrow() {
            break;
        }
        if abdicated {
            tokio::time::sleep(ABDICATE_PAUSE).await;
        }
    }
    follower.abort();
}

/// Keeps the standby's idea of the leader fresh.
async fn follow(store: Store, shared: Arc<Shared>, name: String) {
    loop {
        let leading = matches!(*shared.route.borrow(), Route::Leading(_));
        if !leading {
            let leader = current_leader(store.client(), &name).await.ok().flatten();
            let leader = leader.filter(|l| *l != shared.me);
            shared.route.send_if_modified(|r| match r {
                Route::Following(cur) if *cur != leader => {
                    *cur = leader;
                    true
                }
                _ => false,
            });
        }
        tokio::time::sleep(LEADER_POLL).await;
    }
}

/// Leads until the lease is lost, the loop ends, abdication or stop.
/// Returns whether it abdicated.
async fn lead(
    store: &Store,
    shared: &Arc<Shared>,
    leadership: crate::election::Leadership,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let records = match store.load("").await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot load the state; resigning");
            let _ = leadership.resign().await;
            return true;
        }
    };
    let state = match load_state(records, Clock::new().now().mono) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "stored state unreadable; resigning");
            let _ = leadership.resign().await;
            return true;
        }
    };
    shared
        .framework_id
        .send_replace(state.framework_id.as_ref().map(|f| f.to_string()));
    let mut info = FrameworkInfo::named(&shared.config.framework_name);
    info.id = state.framework_id.clone();
    info.failover_timeout = FAILOVER_TIMEOUT;
    info.checkpoint = true;
    if let Ok(role) = Role::parse(shared.config.role.clone()) {
        info.roles = vec![role];
    }
    info.hostname = shared.me.clone();
    // Where the masters' /ui/apps page finds this Marathon's API.
    info.labels
        .insert("webui_url".into(), format!("http://{}", shared.me));
    let driver = match SchedulerDriver::builder(shared.config.masters.clone(), info).build() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the scheduler driver; resigning");
            let _ = leadership.resign().await;
            return true;
        }
    };
    let handle = driver.driver();
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (seq_tx, seq_rx) = mpsc::channel(SEQUENCER_QUEUE);
    let (call_tx, call_rx) = mpsc::channel(CALL_QUEUE);
    // Fenced by the election key: once the lease is gone, nothing this
    // process still sends can land, whatever it believes.
    let writer = store.fenced(leadership.key()).writer(WRITER_QUEUE);
    let mut loop_task = tokio::spawn(run(state, cmd_rx, seq_tx));
    let (probe_tx, probe_rx) = mpsc::channel(crate::readiness::PROBE_QUEUE);
    let probe_task = tokio::spawn(crate::readiness::run(probe_rx, cmd_tx.clone()));
    let seq_task = tokio::spawn(sequence(
        seq_rx,
        writer,
        call_tx,
        shared.events.clone(),
        probe_tx,
    ));
    let calls_task = tokio::spawn(make_calls(call_rx, handle.clone(), cmd_tx.clone()));
    let forwarder = crate::framework::Forwarder { tx: cmd_tx.clone() };
    let driver_task = tokio::spawn(async move {
        if let Err(e) = driver.run(forwarder).await {
            tracing::error!(error = %e, "scheduler driver ended");
        }
    });
    shared.route.send_replace(Route::Leading(cmd_tx));
    let mut lost = leadership.lost();
    let abdicated = tokio::select! {
        _ = lost.wait_for(|l| *l) => {
            tracing::warn!("leadership lost");
            false
        }
        _ = &mut loop_task => {
            tracing::warn!("the event loop ended");
            true
        }
        _ = shared.abdicate.notified() => {
            tracing::info!("abdicating");
            true
        }
        _ = stop.wait_for(|s| *s) => false,
    };
    shared.route.send_replace(Route::Following(None));
    handle.stop();
    loop_task.abort();
    seq_task.abort();
    calls_task.abort();
    probe_task.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), driver_task).await;
    let _ = leadership.resign().await;
    abdicated
}

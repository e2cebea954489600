//! Leader election of Marathon processes on etcd's v3 Election service.
//!
//! Marathon processes are stateless; exactly one of them may schedule. Each
//! candidate grants a lease, keeps it alive, and campaigns under the election
//! name with its advertised HTTP address as the value (what `GET /v2/leader`
//! reports and where non-leaders proxy to).
//!
//! Detecting the loss of leadership matters more than winning it: a process
//! that believes it leads when it does not would schedule twice. So a
//! [`Leadership`] reports lost, through [`Leadership::lost`], as soon as any
//! of these holds: no keep-alive was acknowledged for a whole TTL counted
//! from when the acknowledged request was *sent* (the lease can only have
//! been extended after that instant, so this errs on the side of giving up
//! early); etcd answers a keep-alive with TTL 0 (the lease expired or was
//! revoked); the campaign's key was deleted (seen by a watch, or by a read
//! after the watch broke).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, EventType, GetOptions, LeaderKey, ResignOptions, SortOrder, SortTarget, WatchOptions,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{StoreError, within};

/// Lease TTL when none is configured: Marathon's ZooKeeper session timeout
/// is of the same order, and etcd's minimum lease TTL is a few seconds.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// Time allowed for each unary election or lease request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before retrying a failed campaign, keep-alive stream or watch.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Which election to run and what to announce.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Election name (a key prefix), e.g. `/marathon/leader`.
    pub name: String,
    /// This process's advertised HTTP address, `host:port`.
    pub value: String,
    /// Lease TTL; rounded up to whole seconds, at least one.
    pub lease_ttl: Duration,
}

impl ElectionConfig {
    /// A configuration with [`DEFAULT_LEASE_TTL`].
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> ElectionConfig {
        ElectionConfig {
            name: name.into(),
            value: value.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

/// Being the leader. Dropping it stops the keep-alive and revokes the lease
/// in the background (best effort), so another candidate takes over quickly.
pub struct Leadership {
    client: Client,
    value: String,
    leader: LeaderKey,
    lease_id: i64,
    /// Set to `true` once by whichever guard task notices the loss first,
    /// and by `resign`/drop; never set back.
    lost_tx: Arc<watch::Sender<bool>>,
    /// The keep-alive and key-watch tasks; aborted on drop.
    guards: Vec<JoinHandle<()>>,
    /// Whether `resign` already revoked the lease (so drop need not).
    revoked: bool,
}

impl Leadership {
    /// Becomes `true` once leadership is lost (see the module docs). Stop
    /// acting as leader as soon as it does.
    pub fn lost(&self) -> watch::Receiver<bool> {
        self.lost_tx.subscribe()
    }

    /// Gives leadership up (Marathon's `DELETE /v2/leader`): resigns, then
    /// revokes the lease. `lost` becomes true whatever the outcome.
    pub async fn resign(mut self) -> Result<(), StoreError> {
        self.lost_tx.send_replace(true);
        for guard in &self.guards {
            guard.abort();
        }
        let resign = within(
            REQUEST_TIMEOUT,
            self.client
                .election_client()
                .resign(Some(ResignOptions::new().with_leader(self.leader.clone()))),
        )
        .await;
        let revoke = within(
            REQUEST_TIMEOUT,
            self.client.lease_client().revoke(self.lease_id),
        )
        .await;
        self.revoked = revoke.is_ok();
        tracing::info!(value = %self.value, "resigned leadership");
        resign.and(revoke).map(|_| ())
    }

    /// This process's advertised address, the election value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The lease that holds the election key (tests revoke it from outside).
    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    /// The election key this campaign created, `{name}/{lease id in hex}`.
    pub fn key(&self) -> &[u8] {
        self.leader.key()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.lost_tx.send_replace(true);
        for guard in &self.guards {
            guard.abort();
        }
        if !self.revoked
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(revoke_quietly(self.client.clone(), self.lease_id));
        }
    }
}

/// Waits until this process is elected (`Some`) or `stop` completes
/// (`None`, with the candidacy withdrawn). Unavailable etcd is retried
/// until one of those happens; other errors are returned.
pub async fn campaign(
    client: Client,
    cfg: &ElectionConfig,
    stop: impl Future,
) -> Result<Option<Leadership>, StoreError> {
    let ttl_secs = cfg.lease_ttl.as_secs_f64().ceil().max(1.0) as i64;
    let ttl = Duration::from_secs(ttl_secs as u64);
    tokio::pin!(stop);
    loop {
        let granted_at = Instant::now();
        let mut leases = client.lease_client();
        let grant = tokio::select! {
            _ = &mut stop => return Ok(None),
            grant = within(REQUEST_TIMEOUT, leases.grant(ttl_secs, None)) => grant,
        };
        let lease_id = match grant {
            Ok(lease) => lease.id(),
            Err(err) if err.is_retryable() => {
                tracing::warn!(error = %err, "lease grant failed; retrying");
                tokio::select! {
                    _ = &mut stop => return Ok(None),
                    _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
            Err(err) => return Err(err),
        };
        let (lost_tx, mut lost_rx) = watch::channel(false);
        let lost_tx = Arc::new(lost_tx);
        let keeper = tokio::spawn(keep_alive(
            client.clone(),
            lease_id,
            ttl,
            granted_at,
            lost_tx.clone(),
        ));
        let mut election = client.election_client();
        let outcome = tokio::select! {
            _ = &mut stop => None,
            _ = until_lost(&mut lost_rx) => Some(Err(StoreError::Unavailable("lease lost while campaigning".to_owned()))),
            won = election.campaign(cfg.name.clone(), cfg.value.clone(), lease_id) => Some(won.map_err(StoreError::from)),
        };
        let leader = match outcome {
            Some(Ok(mut won)) => won.take_leader(),
            None => {
                keeper.abort();
                revoke_quietly(client.clone(), lease_id).await;
                return Ok(None);
            }
            Some(Err(err)) => {
                keeper.abort();
                revoke_quietly(client.clone(), lease_id).await;
                if !err.is_retryable() {
                    return Err(err);
                }
                tracing::warn!(error = %err, "campaign failed; retrying");
                tokio::select! {
                    _ = &mut stop => return Ok(None),
                    _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
        };
        let Some(leader) = leader else {
            keeper.abort();
            revoke_quietly(client.clone(), lease_id).await;
            return Err(StoreError::Rejected(
                "campaign answered without a leader key".to_owned(),
            ));
        };
        // etcd's campaign returns once the earlier candidates' keys are gone,
        // without checking that ours survived the wait (the lease may have
        // expired meanwhile). Read it back before claiming leadership.
        match confirm(&client, &leader, lease_id).await {
            Ok(Some(revision)) => {
                let watcher = tokio::spawn(watch_key(
                    client.clone(),
                    leader.key().to_vec(),
                    lease_id,
                    revision + 1,
                    lost_tx.clone(),
                ));
                tracing::info!(name = %cfg.name, value = %cfg.value, lease_id, "elected leader");
                return Ok(Some(Leadership {
                    client,
                    value: cfg.value.clone(),
                    leader,
                    lease_id,
                    lost_tx,
                    guards: vec![keeper, watcher],
                    revoked: false,
                }));
            }
            Ok(None) => tracing::warn!("elected, but the campaign key is gone; campaigning again"),
            Err(err) => {
                tracing::warn!(error = %err, "could not confirm the election; campaigning again")
            }
        }
        keeper.abort();
        revoke_quietly(client.clone(), lease_id).await;
    }
}

/// The current leader's value, `None` when nobody leads. This is the read
/// etcd's Election/Leader performs (the key under `{name}/` with the lowest
/// create revision), done on the KV API because Leader reports "no leader"
/// only as an error message.
pub async fn current_leader(client: Client, name: &str) -> Result<Option<String>, StoreError> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let answer = within(
        REQUEST_TIMEOUT,
        client.kv_client().get(format!("{name}/"), Some(options)),
    )
    .await?;
    match answer.kvs().first() {
        None => Ok(None),
        Some(kv) => match std::str::from_utf8(kv.value()) {
            Ok(value) => Ok(Some(value.to_owned())),
            Err(e) => Err(StoreError::Corrupt {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                reason: format!("leader value is not UTF-8: {e}"),
            }),
        },
    }
}

/// The revision at which our campaign key was seen held by our lease, or
/// `None` when it is gone.
async fn confirm(
    client: &Client,
    leader: &LeaderKey,
    lease_id: i64,
) -> Result<Option<i64>, StoreError> {
    let answer = within(REQUEST_TIMEOUT, client.kv_client().get(leader.key(), None)).await?;
    let held = answer
        .kvs()
        .first()
        .is_some_and(|kv| kv.lease() == lease_id);
    Ok(held.then(|| answer.header().map_or(0, |h| h.revision())))
}

async fn revoke_quietly(client: Client, lease_id: i64) {
    if let Err(err) = within(REQUEST_TIMEOUT, client.lease_client().revoke(lease_id)).await {
        tracing::debug!(error = %err, lease_id, "lease revoke failed; it will expire");
    }
}

/// Completes once `lost` is true (or its sender is gone). Holds no
/// `watch::Ref` across awaits, which would make the task not `Send`.
async fn until_lost(lost: &mut watch::Receiver<bool>) {
    let _ = lost.wait_for(|l| *l).await;
}

fn set_lost(lost: &watch::Sender<bool>, why: &str) {
    if !lost.send_replace(true) {
        tracing::warn!(reason = why, "leadership lost");
    }
}

/// Keeps the lease alive every TTL/3 until the lease is found lost. The
/// lease is certainly alive until `acked_until`: TTL after the send time
/// of the newest acknowledged keep-alive (or of the grant).
async fn keep_alive(
    client: Client,
    lease_id: i64,
    ttl: Duration,
    granted_at: Instant,
    lost: Arc<watch::Sender<bool>>,
) {
    let mut lost_rx = lost.subscribe();
    let mut acked_until = granted_at + ttl;
    let period = ttl / 3;
    loop {
        let opened_at = Instant::now();
        let mut leases = client.lease_client();
        let opened = tokio::select! {
            _ = until_lost(&mut lost_rx) => return,
            _ = tokio::time::sleep_until(acked_until) => {
                set_lost(&lost, "no keep-alive acknowledged within the lease TTL");
                return;
            }
            opened = leases.keep_alive(lease_id) => opened,
        };
        let (mut keeper, mut stream) = match opened {
            // Opening the stream renews once; etcd-client refuses a TTL of 0.
            Ok(pair) => pair,
            Err(err) => {
                tracing::debug!(error = %err, "lease keep-alive stream failed to open; retrying");
                tokio::select! {
                    _ = until_lost(&mut lost_rx) => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
        };
        acked_until = acked_until.max(opened_at + ttl);
        // Send times of keep-alives not yet answered; etcd answers in order.
        let mut in_flight: VecDeque<Instant> = VecDeque::new();
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = until_lost(&mut lost_rx) => return,
                _ = tokio::time::sleep_until(acked_until) => {
                    set_lost(&lost, "no keep-alive acknowledged within the lease TTL");
                    return;
                }
                _ = tick.tick() => {
                    in_flight.push_back(Instant::now());
                    if keeper.keep_alive().await.is_err() {
                        break;
                    }
                }
                answer = stream.message() => match answer {
                    Ok(Some(answer)) => {
                        let sent_at = in_flight.pop_front();
                        if answer.ttl() <= 0 {
                            set_lost(&lost, "lease expired or revoked");
                            return;
                        }
                        if let Some(sent_at) = sent_at {
                            acked_until = acked_until.max(sent_at + ttl);
                        }
                    }
                    Ok(None) | Err(_) => break,
                },
            }
        }
        tracing::debug!("lease keep-alive stream broke; reopening");
    }
}

/// Watches the campaign key from `from_revision` and reports lost when it
/// is deleted. After a broken or cancelled watch (for example, compacted
/// history), reads the key instead of trusting the gap.
async fn watch_key(
    client: Client,
    key: Vec<u8>,
    lease_id: i64,
    mut from_revision: i64,
    lost: Arc<watch::Sender<bool>>,
) {
    let mut lost_rx = lost.subscribe();
    loop {
        let options = WatchOptions::new().with_start_revision(from_revision);
        let mut watches = client.watch_client();
        let opened = tokio::select! {
            _ = until_lost(&mut lost_rx) => return,
            opened = watches.watch(key.clone(), Some(options)) => opened,
        };
        if let Ok(mut stream) = opened {
            loop {
                let answer = tokio::select! {
                    _ = until_lost(&mut lost_rx) => return,
                    answer = stream.message() => answer,
                };
                let Ok(Some(answer)) = answer else { break };
                if answer
                    .events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
                {
                    set_lost(&lost, "election key deleted");
                    return;
                }
                if answer.canceled() {
                    break;
                }
                if let Some(header) = answer.header() {
                    from_revision = from_revision.max(header.revision() + 1);
                }
            }
        }
        tokio::select! {
            _ = until_lost(&mut lost_rx) => return,
            _ = tokio::time::sleep(RETRY_PAUSE) => {}
        }
        // The watch broke: read the key to learn what the gap may hide. If
        // etcd is unreachable, the keep-alive guard decides by the TTL.
        let leader = LeaderKey::new().with_key(key.clone());
        match confirm(&client, &leader, lease_id).await {
            Ok(Some(revision)) => from_revision = revision + 1,
            Ok(None) => {
                set_lost(&lost, "election key deleted");
                return;
            }
            Err(err) => tracing::debug!(error = %err, "election key check failed; retrying"),
        }
    }
}

//! The backend's timers: the leader's lease duties, auto-compaction
//! (`compactor.rs` decides; the leader proposes `Compact`) and progress
//! notices.
//!
//! Only the leader finds expired leases, on its own clock, and proposes
//! `ExpireLeases` (re-checked on apply, so a keep-alive in between wins).
//! First, in each term it leads, it proposes `LeasePromote`: every lease
//! gets a full TTL from the new leader's clock, as etcd does on election.
//! Until that is applied it expires nothing, because the old leader's
//! times are on another clock and would look expired (or far off) here.
//! Once it is applied no lease time from the old clock is left: every
//! entry the old leader stamped that survives was in the new leader's log
//! when it was elected, so it comes before the promotion.

use std::sync::{Arc, Weak};

use agora_kv::{Command, CompactRequest, Response};
use agora_raft::KvHost;
use tokio::time::{Instant, MissedTickBehavior};

use super::compactor::Compactor;
use super::{Inner, Retry};

/// What woke the duty task.
enum Duty {
    Leases,
    Progress,
    Compaction,
}

/// Runs until the backend is dropped.
pub(super) async fn run<S: KvHost>(inner: Weak<Inner<S>>) {
    let Some((mut expiry, mut progress, mut compaction, mut compactor)) =
        inner.upgrade().map(|inner| {
            (
                every(inner.timings.expiry_interval),
                every(inner.timings.progress_interval),
                inner.auto_compaction.check_interval().map(every),
                Compactor::new(inner.auto_compaction),
            )
        })
    else {
        return;
    };
    let Some(mut status) = inner.upgrade().map(|inner| inner.status.clone()) else {
        return;
    };
    // The term in which this member's LeasePromote was applied, and the
    // last term a status change woke it for (one wake per term: a failed
    // promotion is retried on the expiry timer, not on every drive).
    let mut promoted_term = None;
    let mut woken_for = None;
    loop {
        let duty = tokio::select! {
            _ = expiry.tick() => Duty::Leases,
            _ = progress.tick() => Duty::Progress,
            _ = async {
                match compaction.as_mut() {
                    Some(interval) => interval.tick().await,
                    None => std::future::pending().await,
                }
            } => Duty::Compaction,
            // A new leader promotes at once, not at the next expiry tick.
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                // A change of leader or voters: only a term this member
                // leads and has not promoted in is worth the lease duties.
                let now = status.borrow_and_update().clone();
                let term = Some(now.leadership.term);
                if !now.is_leader() || promoted_term == term || woken_for == term {
                    continue;
                }
                woken_for = term;
                Duty::Leases
            }
        };
        let Some(inner) = inner.upgrade() else {
            break;
        };
        match duty {
            Duty::Leases => promoted_term = lease_duties(&inner, promoted_term).await,
            Duty::Progress => inner.note(|s: &mut S| s.kv_mut().progress_notices()),
            Duty::Compaction => compaction_duty(&inner, &mut compactor).await,
        }
    }
    tracing::debug!("raft etcd backend duties stopped");
}

fn every(period: std::time::Duration) -> tokio::time::Interval {
    let period = period.max(std::time::Duration::from_millis(1));
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// One round of the leader's lease work; answers the promoted term.
async fn lease_duties<S: KvHost>(inner: &Arc<Inner<S>>, promoted: Option<u64>) -> Option<u64> {
    let status = inner.status();
    if !status.is_leader() {
        return None;
    }
    let term = status.leadership.term;
    if promoted != Some(term) {
        return match inner.propose(Command::LeasePromote { now_ms: 0 }).await {
            Ok(Ok(Response::LeasePromote { revision })) => {
                tracing::debug!(term, revision, "leases promoted");
                Some(term)
            }
            Ok(Ok(_)) | Ok(Err(_)) | Err(Retry) => None,
        };
    }
    let now = inner.clock.now_ms();
    let expired = inner
        .local(move |s: &mut S| s.kv().state().expired_leases(now))
        .await;
    let ids = match expired {
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) | Err(_) => return promoted,
    };
    match inner
        .propose(Command::ExpireLeases { ids, now_ms: 0 })
        .await
    {
        Ok(Ok(Response::ExpireLeases(expired))) => {
            tracing::debug!(leases = ?expired.revoked, revision = expired.revision, "leases expired");
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "expiring leases failed"),
        Err(Retry) => {}
    }
    promoted
}

/// One auto-compaction check: the policy decides from this member's clock,
/// role and revisions; a leader proposes the `Compact` it asks for.
async fn compaction_duty<S: KvHost>(inner: &Arc<Inner<S>>, compactor: &mut Compactor) {
    if !inner.status().is_leader() {
        compactor.forget();
        return;
    }
    let current = inner.revision.get();
    let compacted = inner.local(|s: &mut S| s.kv().state().compact_revision());
    let Ok(compacted) = compacted.await else {
        return;
    };
    let now = inner.clock.now_ms();
    let Some(revision) = compactor.decide(now, current, compacted) else {
        return;
    };
    match inner
        .propose(Command::Compact(CompactRequest { revision }))
        .await
    {
        Ok(Ok(_)) => tracing::info!(revision, "keyspace auto-compacted"),
        // A client compacted further meanwhile, or leadership moved on.
        Ok(Err(error)) => tracing::debug!(%error, revision, "auto-compaction refused"),
        Err(Retry) => {}
    }
}

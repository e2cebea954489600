//! What the Lock and Election services share: etcd's client-side
//! concurrency recipes, run inside the server against the backend.
//!
//! Both queue callers by creating one key per caller under a prefix (the
//! lock or election name plus "/"), bound to the caller's lease; the key
//! with the lowest create revision owns the lock or leads. A waiter watches
//! the key created just before its own until it is deleted, then looks
//! again (etcd's `waitDeletes`), so a released lock wakes exactly one
//! waiter and an expired lease releases its holder's place.

use std::sync::Arc;

use agora_kv::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Event, EventType, KeyValue, LeaseId,
    NO_LEASE, RangeRequest, Revision, SortOrder, SortTarget, WatchId, WatchRequest, WatchUpdate,
    prefix_range_end,
};
use tokio::sync::mpsc;

use crate::backend::WatchMessage;
use crate::context::Context;
use crate::{ApiError, Backend};

/// TTL of the lease etcd's servers grant when a Lock or Campaign names no
/// lease (the concurrency package's default session TTL).
const DEFAULT_SESSION_TTL: i64 = 60;

/// The prefix the callers' keys live under.
pub(crate) fn prefix_of(name: &[u8]) -> Vec<u8> {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    prefix
}

/// A caller's key: the prefix and its lease id in lowercase hex (etcd's
/// `fmt.Sprintf("%s%x", prefix, lease)`).
pub(crate) fn key_of(prefix: &[u8], lease: LeaseId) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{lease:x}").as_bytes());
    key
}

/// The caller's lease, or a fresh one if it named none (as etcd's servers
/// do by opening a session without a lease).
pub(crate) async fn lease_or_grant(ctx: &Context, lease: LeaseId) -> Result<LeaseId, ApiError> {
    if lease != NO_LEASE {
        return Ok(lease);
    }
    let granted = ctx.lease_grant(NO_LEASE, DEFAULT_SESSION_TTL).await?;
    Ok(granted.id)
}

/// "This key's create revision is `revision`" (0: the key does not exist).
pub(crate) fn created_at(key: &[u8], revision: Revision) -> Compare {
    Compare {
        result: CompareResult::Equal,
        target: CompareTarget::Create(revision),
        key: key.to_vec(),
        range_end: Vec::new(),
    }
}

/// The key under `prefix` with the lowest create revision: the owner.
pub(crate) fn first_created(prefix: &[u8]) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_range_end(prefix),
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Create,
        limit: 1,
        ..RangeRequest::default()
    }
}

/// Waits until no key under `prefix` created at or before
/// `max_create_revision` is left; answers the revision it last read at.
pub(crate) async fn wait_deletes(
    ctx: &Context,
    prefix: &[u8],
    max_create_revision: Revision,
) -> Result<Revision, ApiError> {
    loop {
        let last_before = RangeRequest {
            sort_order: SortOrder::Descend,
            max_create_revision,
            ..first_created(prefix)
        };
        let found = ctx.range(last_before).await?;
        let Some(last) = found.kvs.first() else {
            return Ok(found.revision);
        };
        wait_delete(&ctx.backend, &last.key, found.revision).await?;
    }
}

/// Waits for `key` to be deleted after revision `seen` (or for its watch to
/// be cancelled, after which the caller looks again).
async fn wait_delete(
    backend: &Arc<dyn Backend>,
    key: &[u8],
    seen: Revision,
) -> Result<(), ApiError> {
    let request = WatchRequest {
        key: key.to_vec(),
        start_revision: seen.saturating_add(1),
        no_put: true,
        ..WatchRequest::default()
    };
    let mut subscription = Subscription::open(backend.clone(), request).await?;
    while let Some(events) = subscription.next_events().await? {
        if events.iter().any(|e| e.kind == EventType::Delete) {
            return Ok(());
        }
    }
    Ok(())
}

/// One watcher of the backend used from inside the server. Cancelled on
/// drop, so an abandoned lock or election wait leaves no watcher behind.
pub(crate) struct Subscription {
    backend: Arc<dyn Backend>,
    id: WatchId,
    updates: mpsc::UnboundedReceiver<WatchMessage>,
}

impl Subscription {
    pub(crate) async fn open(
        backend: Arc<dyn Backend>,
        request: WatchRequest,
    ) -> Result<Subscription, ApiError> {
        let (sink, updates) = mpsc::unbounded_channel();
        let (id, _) = backend.watch(request, sink).await?;
        Ok(Subscription {
            backend,
            id,
            updates,
        })
    }

    /// The next batch of events; `None` once the backend cancelled the
    /// watcher (compaction or too slow: the caller re-reads and watches again).
    pub(crate) async fn next_events(&mut self) -> Result<Option<Vec<Event>>, ApiError> {
        loop {
            match self.updates.recv().await {
                None => return Err(ApiError::Stopped),
                Some(WatchMessage::Update { update, .. }) => match update {
                    WatchUpdate::Events { events, .. } => {
                        self.backend.acknowledge(self.id, events.len());
                        return Ok(Some(events));
                    }
                    WatchUpdate::Cancelled { .. } => return Ok(None),
                    WatchUpdate::Progress { .. } => {}
                },
                Some(WatchMessage::Progress { .. }) => {}
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.backend.cancel_watch(self.id);
    }
}

/// Deletes a caller's queue key if the call ends before it succeeded: a
/// cancelled Lock or Campaign must not stay queued (etcd's recipes delete
/// their key on error too). Disarmed once the call has succeeded.
pub(crate) struct QueuedKey {
    ctx: Option<Context>,
    key: Vec<u8>,
    /// Only delete the key while it is still the generation we created.
    create_revision: Revision,
}

impl QueuedKey {
    pub(crate) fn new(ctx: &Context, key: Vec<u8>) -> QueuedKey {
        QueuedKey {
            ctx: Some(ctx.clone()),
            key,
            create_revision: 0,
        }
    }

    /// Records the create revision of the key once it is known.
    pub(crate) fn created(&mut self, revision: Revision) {
        self.create_revision = revision;
    }

    pub(crate) fn disarm(mut self) {
        self.ctx = None;
    }
}

impl Drop for QueuedKey {
    fn drop(&mut self) {
        let Some(ctx) = self.ctx.take() else {
            return;
        };
        if self.create_revision == 0 {
            return;
        }
        let key = std::mem::take(&mut self.key);
        let revision = self.create_revision;
        // Drop cannot wait; the delete runs on its own and only if the key
        // is still ours.
        tokio::spawn(async move {
            let txn = agora_kv::TxnRequest {
                compare: vec![created_at(&key, revision)],
                success: vec![agora_kv::RequestOp::DeleteRange(DeleteRangeRequest {
                    key,
                    ..DeleteRangeRequest::default()
                })],
                failure: Vec::new(),
            };
            if let Err(e) = ctx.txn(txn).await {
                tracing::warn!(error = %e, "could not withdraw an abandoned lock or campaign key");
            }
        });
    }
}

/// The first key-value of a txn branch's `index`-th response, if a range.
pub(crate) fn first_kv(response: &agora_kv::TxnResponse, index: usize) -> Option<&KeyValue> {
    match response.responses.get(index) {
        Some(agora_kv::ResponseOp::Range(range)) => range.kvs.first(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_are_etcds() {
        let prefix = prefix_of(b"jobs");
        assert_eq!(prefix, b"jobs/");
        assert_eq!(key_of(&prefix, 0x694d_77aa), b"jobs/694d77aa");
        let owner = first_created(&prefix);
        assert_eq!(owner.range_end, b"jobs0");
        assert_eq!(
            (owner.sort_order, owner.sort_target, owner.limit),
            (SortOrder::Ascend, SortTarget::Create, 1)
        );
    }
}

//! The watch side of a keyspace replica: agora-kv's [`WatchHub`] plus where
//! each watcher's updates go. Not replicated: every member has its own
//! watchers, fed from its own applied history, and none of this is in a
//! snapshot or the state hash.
//!
//! The same routing serves the single-member backend of agora-etcd and
//! [`crate::KvMachine`] (which delivers after every `drive`, on the thread
//! that applied the events), so the rules live here once.

use std::collections::HashMap;

use agora_kv::{KvError, KvState, Revision, WatchHub, WatchId, WatchRequest, WatchUpdate};
use tokio::sync::mpsc;

/// One message from the keyspace's owner to a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// An update of one watcher, with the store's revision when it was routed.
    Update {
        /// What happened.
        update: WatchUpdate,
        /// The store's revision at that moment.
        revision: Revision,
    },
    /// Answer to a progress request: every named watcher has been handed
    /// every event up to `revision`.
    Progress {
        /// The store's revision.
        revision: Revision,
    },
}

/// Where a watch stream's messages go. Unbounded on purpose: agora-kv's
/// `WatchHub` already bounds what each watcher may have handed out and
/// unacknowledged, and a watcher replaying history waits there.
pub type WatchSink = mpsc::UnboundedSender<WatchMessage>;

/// The watchers of one member and their sinks.
#[derive(Debug, Clone)]
pub struct Watchers {
    hub: WatchHub,
    /// Where each watcher's updates go.
    sinks: HashMap<WatchId, WatchSink>,
    /// Progress requests waiting for their watchers to catch up.
    pending_progress: Vec<(Vec<WatchId>, WatchSink)>,
    /// Something a watcher may care about changed since the last delivery.
    dirty: bool,
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers::with_buffer_limit(agora_kv::WATCHER_BUFFER_LIMIT)
    }
}

impl Watchers {
    /// No watchers; each may hold `buffer_limit` unacknowledged events.
    pub fn with_buffer_limit(buffer_limit: usize) -> Self {
        Watchers {
            hub: WatchHub::with_buffer_limit(buffer_limit),
            sinks: HashMap::new(),
            pending_progress: Vec::new(),
            dirty: false,
        }
    }

    /// Registers a watcher over `kv` whose updates go to `sink`; answers
    /// its id and the store's revision. Its first events come with the
    /// next [`Watchers::deliver`].
    pub fn watch(
        &mut self,
        kv: &KvState,
        request: WatchRequest,
        sink: WatchSink,
    ) -> Result<(WatchId, Revision), KvError> {
        let id = self.hub.watch(kv, request)?;
        self.sinks.insert(id, sink);
        self.dirty = true;
        Ok((id, kv.current_revision()))
    }

    /// Removes a watcher; nothing more is sent for it.
    pub fn cancel(&mut self, id: WatchId) {
        self.hub.cancel(id);
        self.sinks.remove(&id);
    }

    /// The stream passed `count` events of `id` on to its client.
    pub fn acknowledge(&mut self, id: WatchId, count: usize) {
        self.hub.acknowledge(id, count);
        self.dirty = true;
    }

    /// Answers on `sink` once every watcher in `ids` has caught up.
    pub fn request_progress(&mut self, ids: Vec<WatchId>, sink: WatchSink) {
        self.pending_progress.push((ids, sink));
        self.dirty = true;
    }

    /// The keyspace changed (a write, a compaction, a restore): the next
    /// [`Watchers::deliver`] must look.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Number of live watchers.
    pub fn len(&self) -> usize {
        self.hub.len()
    }

    /// True if no watcher is registered.
    pub fn is_empty(&self) -> bool {
        self.hub.is_empty()
    }

    /// Progress notices for the caught-up watchers that asked for them;
    /// the caller's timer decides when.
    pub fn progress_notices(&mut self, kv: &KvState) {
        let revision = kv.current_revision();
        for update in self.hub.progress(kv) {
            self.route(update, revision);
        }
    }

    /// Hands every watcher what it may take now, then answers the progress
    /// requests whose watchers are all caught up (after their events, since
    /// both go down the same sink). Cheap when nothing changed.
    pub fn deliver(&mut self, kv: &KvState) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let revision = kv.current_revision();
        for update in self.hub.poll(kv) {
            self.route(update, revision);
        }
        let hub = &self.hub;
        self.pending_progress.retain(|(ids, sink)| {
            let synced = ids
                .iter()
                .all(|id| !hub.contains(*id) || hub.is_synced(*id, kv));
            if synced {
                let _ = sink.send(WatchMessage::Progress { revision });
            }
            !synced && !sink.is_closed()
        });
    }

    fn route(&mut self, update: WatchUpdate, revision: Revision) {
        let id = watch_id(&update);
        let finished = matches!(update, WatchUpdate::Cancelled { .. });
        let delivered = self
            .sinks
            .get(&id)
            .is_some_and(|sink| sink.send(WatchMessage::Update { update, revision }).is_ok());
        if finished || !delivered {
            // Its stream is gone, or the hub dropped it: forget it.
            self.hub.cancel(id);
            self.sinks.remove(&id);
        }
    }
}

fn watch_id(update: &WatchUpdate) -> WatchId {
    match update {
        WatchUpdate::Events { watch_id, .. }
        | WatchUpdate::Cancelled { watch_id, .. }
        | WatchUpdate::Progress { watch_id, .. } => *watch_id,
    }
}

//! Watches. A [`WatchHub`] holds the watchers of one member and hands each
//! the events of its key range, read from the store's own history: the
//! history is the buffer of a watcher that is behind, so a watcher catching
//! up from an old revision costs no extra memory.
//!
//! Delivery protocol: after applying entries, the caller runs
//! [`WatchHub::poll`] and sends each [`WatchUpdate`] on the watcher's
//! stream; when the stream has taken events off its queue it calls
//! [`WatchHub::acknowledge`]. At most [`WATCHER_BUFFER_LIMIT`] events per
//! watcher are handed out and unacknowledged. A watcher that was caught up
//! and cannot take a new revision's events is cancelled (`SlowConsumer`),
//! with the revision to resume from; one still replaying history just
//! waits. Events are handed out in revision order, whole revisions at a
//! time, never twice and never skipping one.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::mvcc::KeyRange;
use crate::{Event, EventType, KvError, KvState, Revision};

/// Most events handed to one watcher's stream and not yet acknowledged.
/// Caps the memory a slow client can pin on a master; etcd's comparable
/// per-stream channel holds 128 responses of several events each.
pub const WATCHER_BUFFER_LIMIT: usize = 1024;

/// Identifies a watcher within one hub.
pub type WatchId = i64;

/// What to watch, as etcd's `WatchCreateRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchRequest {
    /// First key; same range conventions as [`crate::RangeRequest`].
    pub key: Vec<u8>,
    /// End of the range.
    pub range_end: Vec<u8>,
    /// First revision to report; 0 or less means "from the next write".
    pub start_revision: Revision,
    /// Include each event's previous version.
    pub prev_kv: bool,
    /// Do not report puts (etcd's `NOPUT` filter).
    pub no_put: bool,
    /// Do not report deletes (etcd's `NODELETE` filter).
    pub no_delete: bool,
    /// Report progress when idle (see [`WatchHub::progress`]).
    pub progress_notify: bool,
}

/// Why the hub cancelled a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Its stream fell more than [`WATCHER_BUFFER_LIMIT`] events behind.
    SlowConsumer,
    /// The history it still needed was compacted away.
    Compacted {
        /// Where history now starts.
        compact_revision: Revision,
    },
}

/// One message for one watcher's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchUpdate {
    /// Events, in order, of whole revisions.
    Events {
        /// The watcher.
        watch_id: WatchId,
        /// The events.
        events: Vec<Event>,
    },
    /// The watcher is gone. A client re-watches from `resume_revision`,
    /// the first revision it has not been handed.
    Cancelled {
        /// The watcher.
        watch_id: WatchId,
        /// Why.
        reason: CancelReason,
        /// First revision not handed out.
        resume_revision: Revision,
    },
    /// The watcher has seen every change up to `revision`.
    Progress {
        /// The watcher.
        watch_id: WatchId,
        /// The store's revision.
        revision: Revision,
    },
}

#[derive(Debug, Clone)]
struct Watcher {
    range: KeyRange,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    /// First revision not yet handed out.
    next_revision: Revision,
    /// Handed out but not acknowledged.
    in_flight: usize,
    /// Had every event up to the store's revision at its last poll; such a
    /// watcher is cancelled, not paused, when it cannot keep up.
    caught_up: bool,
}

impl Watcher {
    fn wants(&self, event: &Event) -> bool {
        let filtered = match event.kind {
            EventType::Put => self.no_put,
            EventType::Delete => self.no_delete,
        };
        !filtered && self.range.contains(&event.kv.key)
    }
}

/// The watchers of one member. Pure: it reads a [`KvState`] it is given.
#[derive(Debug, Clone)]
pub struct WatchHub {
    watchers: BTreeMap<WatchId, Watcher>,
    next_id: WatchId,
    /// Per-watcher cap on unacknowledged events ([`WATCHER_BUFFER_LIMIT`]
    /// unless a test shrinks it).
    buffer_limit: usize,
}

impl Default for WatchHub {
    fn default() -> Self {
        WatchHub::with_buffer_limit(WATCHER_BUFFER_LIMIT)
    }
}

impl WatchHub {
    /// An empty hub.
    pub fn new() -> Self {
        WatchHub::default()
    }

    /// An empty hub with another per-watcher buffer limit (at least 1).
    pub fn with_buffer_limit(buffer_limit: usize) -> Self {
        WatchHub {
            watchers: BTreeMap::new(),
            next_id: 0,
            buffer_limit: buffer_limit.max(1),
        }
    }

    /// Registers a watcher; its events come from the next [`WatchHub::poll`].
    /// Fails with `Compacted` if `start_revision` is below the compaction.
    pub fn watch(&mut self, kv: &KvState, request: WatchRequest) -> Result<WatchId, KvError> {
        let current = kv.current_revision();
        let next_revision = if request.start_revision <= 0 {
            current.saturating_add(1)
        } else {
            request.start_revision
        };
        kv.check_watchable(next_revision)?;
        let watcher = Watcher {
            range: KeyRange::new(&request.key, &request.range_end),
            prev_kv: request.prev_kv,
            no_put: request.no_put,
            no_delete: request.no_delete,
            progress_notify: request.progress_notify,
            next_revision,
            in_flight: 0,
            caught_up: next_revision > current,
        };
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.watchers.insert(id, watcher);
        Ok(id)
    }

    /// Removes a watcher; false if it did not exist.
    pub fn cancel(&mut self, id: WatchId) -> bool {
        self.watchers.remove(&id).is_some()
    }

    /// True if watcher `id` exists.
    pub fn contains(&self, id: WatchId) -> bool {
        self.watchers.contains_key(&id)
    }

    /// True if watcher `id` has been handed every event up to the store's
    /// current revision, so a progress notice at that revision is truthful;
    /// false while it replays history, and for an unknown id.
    pub fn is_synced(&self, id: WatchId, kv: &KvState) -> bool {
        self.watchers
            .get(&id)
            .is_some_and(|w| w.next_revision > kv.current_revision())
    }

    /// Number of live watchers.
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// True if no watcher is registered.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// The stream of `id` has sent `count` events: they no longer count
    /// against its buffer.
    pub fn acknowledge(&mut self, id: WatchId, count: usize) {
        if let Some(watcher) = self.watchers.get_mut(&id) {
            watcher.in_flight = watcher.in_flight.saturating_sub(count);
        }
    }

    /// Hands every watcher the events it may take now, in watch-id order.
    pub fn poll(&mut self, kv: &KvState) -> Vec<WatchUpdate> {
        let current = kv.current_revision();
        // Caught-up watchers all want the few revisions written since the
        // last poll: rebuild those events once, not once per watcher.
        let fresh_from = self
            .watchers
            .values()
            .filter(|w| w.caught_up)
            .map(|w| w.next_revision)
            .min();
        let fresh = fresh_from.map_or_else(Vec::new, |from| kv.store().events(from, current));
        let mut updates = Vec::new();
        let mut cancelled = Vec::new();
        for (id, watcher) in &mut self.watchers {
            let (events, cancel) = if watcher.caught_up {
                let start = fresh.partition_point(|e| e.revision() < watcher.next_revision);
                let source = fresh
                    .get(start..)
                    .unwrap_or_default()
                    .iter()
                    .map(Cow::Borrowed);
                poll_one(watcher, kv, self.buffer_limit, source)
            } else {
                let source = kv
                    .store()
                    .events_iter(watcher.next_revision, current)
                    .map(Cow::Owned);
                poll_one(watcher, kv, self.buffer_limit, source)
            };
            if !events.is_empty() {
                updates.push(WatchUpdate::Events {
                    watch_id: *id,
                    events,
                });
            }
            if let Some(reason) = cancel {
                let resume_revision = watcher.next_revision;
                updates.push(WatchUpdate::Cancelled {
                    watch_id: *id,
                    reason,
                    resume_revision,
                });
                cancelled.push(*id);
            }
        }
        for id in cancelled {
            self.watchers.remove(&id);
        }
        updates
    }

    /// Progress notices for caught-up watchers that asked for them. The
    /// caller decides when (etcd: every 10 minutes of silence); time is not
    /// this crate's business.
    pub fn progress(&self, kv: &KvState) -> Vec<WatchUpdate> {
        let revision = kv.current_revision();
        self.watchers
            .iter()
            .filter(|(_, w)| w.progress_notify && w.next_revision > revision)
            .map(|(id, _)| WatchUpdate::Progress {
                watch_id: *id,
                revision,
            })
            .collect()
    }
}

/// The events `watcher` takes now and whether it must be cancelled.
/// `source` yields the events from the watcher's next revision to the
/// store's current one, in revision order.
fn poll_one<'e>(
    watcher: &mut Watcher,
    kv: &KvState,
    limit: usize,
    source: impl Iterator<Item = Cow<'e, Event>>,
) -> (Vec<Event>, Option<CancelReason>) {
    let compact_revision = kv.compact_revision();
    if watcher.next_revision < compact_revision {
        return (
            Vec::new(),
            Some(CancelReason::Compacted { compact_revision }),
        );
    }
    let current = kv.current_revision();
    let mut taken = Vec::new();
    let mut group: Vec<Event> = Vec::new();
    let mut group_revision = watcher.next_revision;
    for event in source {
        if event.revision() != group_revision {
            if !take_group(watcher, &mut taken, &mut group, limit) {
                return stalled(watcher, taken);
            }
            group_revision = event.revision();
            watcher.next_revision = group_revision;
        }
        if watcher.wants(&event) {
            group.push(strip(event.into_owned(), watcher.prev_kv));
        }
    }
    if !take_group(watcher, &mut taken, &mut group, limit) {
        return stalled(watcher, taken);
    }
    watcher.next_revision = current.saturating_add(1).max(watcher.next_revision);
    watcher.caught_up = true;
    (taken, None)
}

/// Moves one revision's events into `taken` if the buffer has room (or is
/// empty: a revision bigger than the buffer still goes, alone, so no
/// watcher can be stuck forever).
fn take_group(
    watcher: &mut Watcher,
    taken: &mut Vec<Event>,
    group: &mut Vec<Event>,
    limit: usize,
) -> bool {
    let after = watcher.in_flight.saturating_add(group.len());
    if after > limit && watcher.in_flight > 0 {
        return false;
    }
    watcher.in_flight = after;
    taken.append(group);
    true
}

/// A watcher that could not take everything: a caught-up one is too slow
/// and is cancelled; one replaying history waits for acknowledgements.
fn stalled(watcher: &mut Watcher, taken: Vec<Event>) -> (Vec<Event>, Option<CancelReason>) {
    let cancel = watcher.caught_up.then_some(CancelReason::SlowConsumer);
    (taken, cancel)
}

fn strip(mut event: Event, keep_prev_kv: bool) -> Event {
    if !keep_prev_kv {
        event.prev_kv = None;
    }
    event
}

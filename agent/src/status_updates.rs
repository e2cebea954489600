//! Reliable status updates, sans IO: one ordered queue per task; only the
//! head of each queue is in flight; it is resent with exponential backoff
//! until the master forwards the framework's acknowledgement of its uuid
//! (Mesos `TaskStatusUpdateManager`).
//!
//! An update is on disk before it is ever sent: the agent queues a new one
//! with `push_unpersisted`, has the checkpoint writer write the queue, and
//! calls `mark_persisted` when the write is done; until then the update is
//! neither due nor part of `all_pending`. (`push` is for updates already on
//! disk, e.g. recovered ones.) Time is passed in; nothing here reads a clock.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use agora_model::{MonoTime, TaskStatus};
use uuid::Uuid;

/// The queue of one task.
#[derive(Debug, Clone)]
struct Queue {
    pending: VecDeque<TaskStatus>,
    /// Uuids of updates in `pending` whose write is not done yet; a head
    /// in here is not sent.
    unpersisted: Vec<Uuid>,
    /// When the head is to be sent (again).
    next_send: MonoTime,
    /// The wait after the next send.
    backoff: Duration,
    /// How often the head has been sent.
    sends: u32,
}

impl Queue {
    fn head_persisted(&self) -> bool {
        self.pending
            .front()
            .and_then(|s| s.uuid)
            .is_none_or(|u| !self.unpersisted.contains(&u))
    }
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The head was acknowledged and removed.
    Acked {
        /// The acknowledged update was terminal.
        terminal: bool,
        /// Nothing is left in the task's queue.
        queue_empty: bool,
    },
    /// Unknown task, or not the head's uuid (duplicate or stale): ignored.
    Ignored,
}

/// One update to put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Due<K> {
    /// The task's key.
    pub key: K,
    /// The update.
    pub status: TaskStatus,
    /// It was sent before (for the retries metric).
    pub retry: bool,
}

/// All tasks' queues.
#[derive(Debug, Clone)]
pub struct StatusUpdates<K> {
    queues: BTreeMap<K, Queue>,
    min: Duration,
    max: Duration,
}

impl<K: Ord + Clone> StatusUpdates<K> {
    /// Empty, resending after `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        StatusUpdates {
            queues: BTreeMap::new(),
            min,
            max,
        }
    }

    /// Appends an update (which must carry a uuid and be on disk already)
    /// to the task's queue. A new head is due at once.
    pub fn push(&mut self, key: K, status: TaskStatus, now: MonoTime) {
        self.push_with(key, status, now, true);
    }

    /// Appends an update that is not on disk yet: it is not sent (nor
    /// listed by `all_pending`) before `mark_persisted` names its uuid.
    pub fn push_unpersisted(&mut self, key: K, status: TaskStatus, now: MonoTime) {
        self.push_with(key, status, now, false);
    }

    fn push_with(&mut self, key: K, status: TaskStatus, now: MonoTime, persisted: bool) {
        let min = self.min;
        let q = self.queues.entry(key).or_insert_with(|| Queue {
            pending: VecDeque::new(),
            unpersisted: Vec::new(),
            next_send: now,
            backoff: min,
            sends: 0,
        });
        if q.pending.is_empty() {
            q.next_send = now;
            q.backoff = min;
            q.sends = 0;
        }
        if !persisted && let Some(u) = status.uuid {
            q.unpersisted.push(u);
        }
        q.pending.push_back(status);
    }

    /// The updates with these uuids are on disk now; a head among them is
    /// due at once if it was never sent.
    pub fn mark_persisted(&mut self, key: &K, uuids: &[Uuid], now: MonoTime) {
        let Some(q) = self.queues.get_mut(key) else {
            return;
        };
        q.unpersisted.retain(|u| !uuids.contains(u));
        if q.sends == 0 && q.next_send > now {
            q.next_send = now;
        }
    }

    /// Handles an acknowledgement. Only the head's uuid counts.
    pub fn acknowledge(&mut self, key: &K, uuid: Uuid, now: MonoTime) -> AckOutcome {
        let Some(q) = self.queues.get_mut(key) else {
            return AckOutcome::Ignored;
        };
        if q.pending.front().and_then(|s| s.uuid) != Some(uuid) {
            return AckOutcome::Ignored;
        }
        let acked = q.pending.pop_front();
        q.next_send = now;
        q.backoff = self.min;
        q.sends = 0;
        let queue_empty = q.pending.is_empty();
        if queue_empty {
            self.queues.remove(key);
        }
        AckOutcome::Acked {
            terminal: acked.is_some_and(|s| s.state.is_terminal()),
            queue_empty,
        }
    }

    /// Heads whose time has come; each is marked sent and its next send
    /// scheduled with doubled backoff (capped).
    pub fn poll_due(&mut self, now: MonoTime) -> Vec<Due<K>> {
        let (min, max) = (self.min, self.max);
        let mut out = Vec::new();
        for (key, q) in &mut self.queues {
            let Some(head) = q.pending.front() else {
                continue;
            };
            if q.next_send > now || !q.head_persisted() {
                continue;
            }
            out.push(Due {
                key: key.clone(),
                status: head.clone(),
                retry: q.sends > 0,
            });
            q.sends += 1;
            q.next_send = now + q.backoff;
            q.backoff = (q.backoff * 2).clamp(min, max);
        }
        out
    }

    /// The heads with these uuids were just delivered another way (in the
    /// RegisterRequest): next resend after the minimum backoff.
    pub fn mark_sent(&mut self, uuids: &[Uuid], now: MonoTime) {
        for q in self.queues.values_mut() {
            if q.pending
                .front()
                .and_then(|s| s.uuid)
                .is_some_and(|u| uuids.contains(&u))
            {
                q.sends = q.sends.max(1);
                q.next_send = now + self.min;
                q.backoff = (self.min * 2).min(self.max);
            }
        }
    }

    /// The earliest time a head is due, if any.
    pub fn next_deadline(&self) -> Option<MonoTime> {
        self.queues
            .values()
            .filter(|q| !q.pending.is_empty() && q.head_persisted())
            .map(|q| q.next_send)
            .min()
    }

    /// The task's unacknowledged updates, oldest first.
    pub fn pending(&self, key: &K) -> Vec<TaskStatus> {
        self.queues
            .get(key)
            .map(|q| q.pending.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many unacknowledged updates the task has.
    pub fn pending_len(&self, key: &K) -> usize {
        self.queues.get(key).map_or(0, |q| q.pending.len())
    }

    /// Every unacknowledged update that is on disk, per task in order
    /// (what may be sent inside a RegisterRequest).
    pub fn all_pending(&self) -> impl Iterator<Item = (&K, &TaskStatus)> {
        self.queues.iter().flat_map(|(k, q)| {
            q.pending
                .iter()
                .take_while(|s| s.uuid.is_none_or(|u| !q.unpersisted.contains(&u)))
                .map(move |s| (k, s))
        })
    }

    /// Has the task unacknowledged updates?
    pub fn has_pending(&self, key: &K) -> bool {
        self.queues.get(key).is_some_and(|q| !q.pending.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{StatusSource, TaskId, TaskState};

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_millis(350);

    fn st(task: &str, state: TaskState) -> TaskStatus {
        let mut s = TaskStatus::new(
            TaskId::new_unchecked(task),
            state,
            StatusSource::Executor,
            0.0,
        );
        s.uuid = Some(Uuid::new_v4());
        s
    }

    fn t(ms: u64) -> MonoTime {
        MonoTime(ms)
    }

    #[test]
    fn only_the_head_is_in_flight_and_resent_with_capped_backoff() {
        let mut q = StatusUpdates::new(MIN, MAX);
        let a = st("a", TaskState::Starting);
        let b = st("a", TaskState::Running);
        q.push("a", a.clone(), t(0));
        q.push("a", b.clone(), t(0));
        let due = q.poll_due(t(0));
        assert_eq!(
            due,
            vec![Due {
                key: "a",
                status: a.clone(),
                retry: false
            }]
        );
        assert!(q.poll_due(t(99)).is_empty());
        // 100, then 200, then capped at 350 between sends.
        let mut sends = vec![];
        for ms in (100..=1500).step_by(10) {
            for d in q.poll_due(t(ms)) {
                assert!(d.retry);
                assert_eq!(d.status, a);
                sends.push(ms);
            }
        }
        assert_eq!(sends, vec![100, 300, 650, 1000, 1350]);
        assert_eq!(q.next_deadline(), Some(t(1700)));
    }

    #[test]
    fn ack_of_head_releases_the_next_and_stale_acks_are_ignored() {
        let mut q = StatusUpdates::new(MIN, MAX);
        let a = st("a", TaskState::Running);
        let b = st("a", TaskState::Finished);
        q.push("a", a.clone(), t(0));
        q.push("a", b.clone(), t(0));
        q.poll_due(t(0));
        // An ack for the second before the first: ignored.
        assert_eq!(
            q.acknowledge(&"a", b.uuid.unwrap(), t(5)),
            AckOutcome::Ignored
        );
        assert_eq!(
            q.acknowledge(&"zzz", a.uuid.unwrap(), t(5)),
            AckOutcome::Ignored
        );
        assert_eq!(
            q.acknowledge(&"a", a.uuid.unwrap(), t(10)),
            AckOutcome::Acked {
                terminal: false,
                queue_empty: false
            }
        );
        // Duplicate ack of the old head: harmless.
        assert_eq!(
            q.acknowledge(&"a", a.uuid.unwrap(), t(11)),
            AckOutcome::Ignored
        );
        let due = q.poll_due(t(10));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status, b);
        assert!(!due[0].retry);
        assert_eq!(
            q.acknowledge(&"a", b.uuid.unwrap(), t(20)),
            AckOutcome::Acked {
                terminal: true,
                queue_empty: true
            }
        );
        assert!(!q.has_pending(&"a"));
        assert_eq!(q.next_deadline(), None);
        assert!(q.poll_due(t(10_000)).is_empty());
    }

    #[test]
    fn tasks_are_independent() {
        let mut q = StatusUpdates::new(MIN, MAX);
        q.push("a", st("a", TaskState::Running), t(0));
        q.push("b", st("b", TaskState::Running), t(50));
        assert_eq!(q.poll_due(t(0)).len(), 1);
        assert_eq!(q.poll_due(t(50)).len(), 1);
        assert_eq!(q.all_pending().count(), 2);
    }

    #[test]
    fn updates_delivered_with_the_registration_wait_a_backoff() {
        let mut q = StatusUpdates::new(MIN, MAX);
        let a = st("a", TaskState::Running);
        let b = st("b", TaskState::Running);
        q.push("a", a.clone(), t(0));
        q.push("b", b.clone(), t(0));
        q.mark_sent(&[a.uuid.unwrap()], t(0));
        let due = q.poll_due(t(0));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].key, "b");
        let due = q.poll_due(t(100));
        assert!(due.iter().any(|d| d.key == "a" && d.retry));
    }

    #[test]
    fn an_update_is_not_sent_or_registered_before_it_is_persisted() {
        let mut q = StatusUpdates::new(MIN, MAX);
        let a = st("a", TaskState::Starting);
        let b = st("a", TaskState::Running);
        q.push_unpersisted("a", a.clone(), t(0));
        assert!(q.poll_due(t(0)).is_empty());
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.all_pending().count(), 0);
        assert_eq!(q.pending(&"a").len(), 1, "written with the queue");
        q.mark_persisted(&"a", &[a.uuid.unwrap()], t(5));
        q.push_unpersisted("a", b.clone(), t(6));
        assert_eq!(q.next_deadline(), Some(t(0)));
        let due = q.poll_due(t(6));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status, a);
        assert_eq!(q.all_pending().count(), 1, "b is not on disk yet");
        q.acknowledge(&"a", a.uuid.unwrap(), t(10));
        assert!(q.poll_due(t(10)).is_empty(), "b is not on disk yet");
        q.mark_persisted(&"a", &[b.uuid.unwrap()], t(12));
        let due = q.poll_due(t(12));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status, b);
    }
}

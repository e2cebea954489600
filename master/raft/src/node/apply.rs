//! Applying what raft-rs committed: normal entries go to the state
//! machine, membership entries to raft-rs's configuration, snapshots
//! replace both. Also taking snapshots and compacting the log.

use std::collections::{BTreeMap, BTreeSet};

use protobuf::Message as _;
use raft::StateRole;
use raft::eraftpb::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Snapshot};

use super::{EntryKind, Lifecycle, Replica};
use crate::RaftError;
use crate::output::{Applied, Completion, EncodedSnapshot, Output, ReadCompletion, SnapshotJob};
use crate::state_machine::StateMachine;
use crate::storage::LogStore;

impl<L: LogStore, S: StateMachine> Replica<L, S> {
    /// Applies committed entries in order and answers this member's proposals.
    pub(super) fn apply_committed(
        &mut self,
        entries: Vec<Entry>,
        out: &mut Output,
    ) -> Result<(), RaftError> {
        for entry in entries {
            let (kind, result) = match entry.get_entry_type() {
                EntryType::EntryNormal => (EntryKind::Normal, Ok(self.apply_normal(&entry))),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let outcome = self.apply_membership(&entry, out)?;
                    let result = outcome.map(|()| Vec::new()).map_err(RaftError::ConfChange);
                    (EntryKind::ConfChange, result)
                }
            };
            self.applied = entry.index;
            self.answer(entry.index, entry.term, kind, result, out);
        }
        Ok(())
    }

    fn apply_normal(&mut self, entry: &Entry) -> Vec<u8> {
        // A new leader's first entry is empty: it only commits the
        // previous terms' entries and means nothing to the state machine.
        if entry.get_data().is_empty() {
            return Vec::new();
        }
        // A state machine that persists itself may already hold it (see
        // `resume_point`); applying twice would not be idempotent.
        if entry.index <= self.state_machine.applied_index() {
            return Vec::new();
        }
        self.state_machine.apply(entry.index, entry.get_data())
    }

    /// Applies a membership entry. `Ok(Err(why))` means the change is refused;
    /// every member refuses it the same way, so the group stays consistent.
    fn apply_membership(
        &mut self,
        entry: &Entry,
        out: &mut Output,
    ) -> Result<Result<(), String>, RaftError> {
        let matched = self.follower_matches();
        let applied = match entry.get_entry_type() {
            EntryType::EntryConfChange => ConfChange::parse_from_bytes(entry.get_data())
                .map_err(|error| error.to_string())
                .and_then(|change| {
                    let result = self.raw.apply_conf_change(&change);
                    result.map_err(|error| error.to_string())
                }),
            _ => ConfChangeV2::parse_from_bytes(entry.get_data())
                .map_err(|error| error.to_string())
                .and_then(|change| {
                    let result = self.raw.apply_conf_change(&change);
                    result.map_err(|error| error.to_string())
                }),
        };
        let conf_state = match applied {
            Ok(conf_state) => conf_state,
            Err(why) => {
                tracing::warn!(member = self.id, index = entry.index, %why, "membership change refused");
                return Ok(Err(why));
            }
        };
        self.raw.mut_store().set_conf_state(&conf_state)?;
        let gone = self.switch_membership(conf_state);
        for member in gone {
            self.farewell_on_removal(member, &matched, out);
        }
        Ok(Ok(()))
    }

    /// Replaces the membership; returns the members it removed (other than
    /// this one) and marks this replica removed if it is no longer a member.
    fn switch_membership(&mut self, conf_state: ConfState) -> Vec<u64> {
        let before = members(&self.conf_state);
        let after = members(&conf_state);
        self.conf_state = conf_state;
        self.conf_changed = true;
        let gone: Vec<u64> = before.difference(&after).copied().collect();
        self.removed_members.extend(gone.iter().copied());
        if before.contains(&self.id) && !after.contains(&self.id) {
            self.become_removed();
        }
        gone.into_iter().filter(|id| *id != self.id).collect()
    }

    /// Leader: followers' matched indexes, read before a change removes
    /// their progress.
    fn follower_matches(&self) -> BTreeMap<u64, u64> {
        if self.raw.raft.state != StateRole::Leader {
            return BTreeMap::new();
        }
        (self.raw.raft.prs().iter())
            .map(|(id, progress)| (*id, progress.matched))
            .collect()
    }

    /// The leader stops replicating to a removed member at once, so the
    /// member may never learn that its removal committed. One last
    /// heartbeat carries the commit index up to what it is known to hold.
    fn farewell_on_removal(&mut self, member: u64, matched: &BTreeMap<u64, u64>, out: &mut Output) {
        let Some(held) = matched.get(&member) else {
            return;
        };
        let commit = (*held).min(self.raw.raft.raft_log.committed);
        if commit > 0 {
            out.messages.push(self.heartbeat(member, commit));
        }
    }

    pub(super) fn become_removed(&mut self) {
        tracing::info!(member = self.id, "removed from the group");
        self.lifecycle = Lifecycle::Removed;
        // Our own leftover proposals may still commit on the others.
        for (_, pending) in std::mem::take(&mut self.pending) {
            self.outbox.completions.push(Completion {
                token: pending.token,
                result: Err(RaftError::Unknown),
            });
        }
        let waiting = std::mem::take(&mut self.reads_waiting).into_keys();
        let confirmed = std::mem::take(&mut self.reads_confirmed)
            .into_iter()
            .map(|(token, _)| token);
        for token in waiting.chain(confirmed).collect::<Vec<_>>() {
            self.outbox.reads.push(ReadCompletion {
                token,
                result: Err(RaftError::Removed),
            });
        }
    }

    /// Answers the proposal at `index`, if it is ours (see `node.rs`).
    fn answer(
        &mut self,
        index: u64,
        term: u64,
        kind: EntryKind,
        result: Result<Vec<u8>, RaftError>,
        out: &mut Output,
    ) {
        // Defensive: a slot we skipped without applying cannot be judged.
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= index {
                break;
            }
            let pending = entry.remove();
            out.completions.push(Completion {
                token: pending.token,
                result: Err(RaftError::Unknown),
            });
        }
        let Some(pending) = self.pending.remove(&index) else {
            return;
        };
        let result = if pending.term != term {
            // Another leader's entry holds the slot: ours was never committed.
            Err(RaftError::Dropped)
        } else if pending.kind != kind {
            // raft-rs turns a membership change into an empty entry when
            // another change is still in flight.
            Err(RaftError::ConfChange(
                "raft-rs replaced it with a no-op: another change was in flight".to_string(),
            ))
        } else {
            result.map(|response| Applied {
                index,
                term,
                response,
            })
        };
        out.completions.push(Completion {
            token: pending.token,
            result,
        });
    }

    /// Installs a snapshot from the leader (Ready step 2).
    pub(super) fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        out: &mut Output,
    ) -> Result<(), RaftError> {
        let meta = snapshot.get_metadata();
        self.state_machine
            .restore(snapshot.get_data())
            .map_err(|error| RaftError::Corrupt {
                what: "snapshot from the leader",
                reason: error.to_string(),
            })?;
        self.raw.mut_store().apply_snapshot(snapshot)?;
        self.applied = meta.index;
        self.snapshot_index = meta.index;
        // Our proposals at or below the snapshot are folded into it or were
        // replaced; the snapshot does not say which.
        let later = self.pending.split_off(&(meta.index + 1));
        for (_, pending) in std::mem::replace(&mut self.pending, later) {
            out.completions.push(Completion {
                token: pending.token,
                result: Err(RaftError::Unknown),
            });
        }
        self.switch_membership(meta.get_conf_state().clone());
        // The snapshot we just stored already has this membership.
        self.conf_changed = false;
        Ok(())
    }

    /// Takes a snapshot every `snapshot_interval` applied entries, and after
    /// every membership change (a member that joins must get a snapshot
    /// that includes it, or raft-rs refuses it). Then compacts the log,
    /// keeping `log_tail_kept` entries for followers slightly behind.
    ///
    /// With `background_snapshots`, a periodic snapshot leaves as
    /// `out.snapshot_job` (a copy of the state to encode elsewhere) and is
    /// stored by [`Replica::finish_snapshot`]; one after a membership
    /// change is still taken here, at once, and supersedes it.
    pub(super) fn maybe_snapshot(&mut self, out: &mut Output) -> Result<(), RaftError> {
        let interval = self.config.snapshot_interval;
        let due = interval > 0 && self.applied >= self.snapshot_index.saturating_add(interval);
        if !(due || self.conf_changed) || self.applied <= self.snapshot_index {
            return Ok(());
        }
        let background = self.config.background_snapshots && !self.conf_changed;
        if background && self.snapshot_in_flight.is_some() {
            return Ok(());
        }
        let job = SnapshotJob {
            index: self.applied,
            term: self.raw.raft.raft_log.term(self.applied)?,
            conf_state: self.conf_state.clone(),
            task: if background {
                self.state_machine.snapshot_task()
            } else {
                let bytes = self.state_machine.snapshot();
                Box::new(move || bytes)
            },
            stager: if background {
                self.raw.store().snapshot_stager()
            } else {
                None
            },
        };
        if background {
            self.snapshot_in_flight = Some(self.applied);
            out.snapshot_job = Some(job);
            return Ok(());
        }
        self.conf_changed = false;
        self.store_snapshot(job.run())
    }

    /// Stores a snapshot this member took and compacts the log behind it,
    /// keeping `log_tail_kept` entries for followers slightly behind.
    fn store_snapshot(&mut self, encoded: EncodedSnapshot) -> Result<(), RaftError> {
        let EncodedSnapshot { snapshot, staged } = encoded;
        let index = snapshot.get_metadata().index;
        let compact_to = index.saturating_sub(self.config.log_tail_kept);
        let store = self.raw.mut_store();
        if staged {
            store.save_staged_snapshot_and_compact(snapshot, compact_to)?;
        } else {
            store.save_snapshot_and_compact(&snapshot, compact_to)?;
        }
        self.snapshot_index = index;
        Ok(())
    }

    /// A snapshot job that produced nothing (its task panicked): periodic
    /// snapshots start again from the next `drive`.
    pub fn abandon_snapshot(&mut self) {
        self.snapshot_in_flight = None;
    }

    /// Stores a snapshot encoded from an `Output::snapshot_job`. One that
    /// a newer snapshot overtook meanwhile (a membership change, or one
    /// installed from the leader) is dropped. A store error stops the
    /// replica, as in `drive`.
    pub fn finish_snapshot(&mut self, encoded: EncodedSnapshot) -> Result<(), RaftError> {
        self.check_running()?;
        let index = encoded.snapshot.get_metadata().index;
        if self.snapshot_in_flight == Some(index) {
            self.snapshot_in_flight = None;
        }
        if index <= self.snapshot_index {
            return Ok(());
        }
        let stored = self.store_snapshot(encoded);
        self.stop_on_error(stored)
    }
}

fn members(conf_state: &ConfState) -> BTreeSet<u64> {
    (conf_state.voters.iter())
        .chain(conf_state.learners.iter())
        .copied()
        .collect()
}

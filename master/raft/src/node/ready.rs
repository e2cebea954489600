//! `drive`: raft-rs's Ready protocol, in the order its documentation
//! gives ("Processing the `Ready` State" in raft-rs's `lib.rs`).

use raft::StateRole;

use super::{Lifecycle, Replica, leadership_of};
use crate::RaftError;
use crate::output::{Completion, Early, Output, ReadCompletion, Token};
use crate::state_machine::StateMachine;
use crate::storage::LogStore;

/// Readies handled per `drive`. Applying a membership change or a commit
/// can make raft-rs ready again at once; a handful of rounds drains that,
/// and the bound keeps one call from running unboundedly if it does not.
const MAX_READY_ROUNDS: usize = 8;

impl<L: LogStore, S: StateMachine> Replica<L, S> {
    /// Does all the work raft-rs has queued and returns what the owner must
    /// act on. Call after every batch of inputs (ticks, messages, proposals).
    ///
    /// An error (the store failed, or a committed entry or snapshot could
    /// not be applied) stops the replica: every request not yet answered
    /// has an unknown outcome, and the owner restarts it from its store.
    pub fn drive(&mut self) -> Result<Output, RaftError> {
        self.drive_with(None)
    }

    /// [`Replica::drive`], but what need not wait for this member's log
    /// write goes to `send` before it: the messages a leader may send before
    /// its own fsync (Ready step 1), so the followers' writes overlap the
    /// leader's (raft thesis 10.2.1) and a commit costs one fsync's time
    /// instead of two; and the answers to proposals applied in step 3, which
    /// are committed already and need not wait for the fsync of the entries
    /// behind them (the state machine's `after_drive` runs then too, so
    /// watchers get their events as early). Everything else is in the
    /// output as with `drive`.
    pub fn drive_sending_early(
        &mut self,
        send: &mut dyn FnMut(Early),
    ) -> Result<Output, RaftError> {
        self.drive_with(Some(send))
    }

    fn drive_with(&mut self, early: Option<&mut dyn FnMut(Early)>) -> Result<Output, RaftError> {
        self.check_running()?;
        let mut out = std::mem::take(&mut self.outbox);
        let driven = self.drive_into(&mut out, early);
        self.stop_on_error(driven).map(|()| out)
    }

    /// A store or apply error stops the replica (see `drive`).
    pub(super) fn stop_on_error<T>(
        &mut self,
        result: Result<T, RaftError>,
    ) -> Result<T, RaftError> {
        if let Err(error) = &result {
            tracing::error!(member = self.id, %error, "replica stopped");
            self.lifecycle = Lifecycle::Stopped;
        }
        result
    }

    fn drive_into(
        &mut self,
        out: &mut Output,
        mut early: Option<&mut dyn FnMut(Early)>,
    ) -> Result<(), RaftError> {
        self.issue_deferred_reads();
        let mut rounds = 0;
        while self.raw.has_ready() && rounds < MAX_READY_ROUNDS {
            self.handle_ready(out, &mut early)?;
            rounds += 1;
            if self.lifecycle != Lifecycle::Running {
                break;
            }
            // A leader's first commit of its term may have happened just
            // now (a group of one commits when it persists).
            self.issue_deferred_reads();
        }
        if self.lifecycle == Lifecycle::Running {
            self.maybe_snapshot(out)?;
            self.release_orphans(out);
        }
        self.report_leadership(out);
        self.complete_reads(out);
        // What `apply` left for the owner after removal, and any farewells.
        out.absorb(&mut self.outbox);
        out.applied_index = self.applied;
        out.removed = self.lifecycle == Lifecycle::Removed;
        Ok(())
    }

    /// One Ready, steps 1-7, then the LightReady.
    fn handle_ready(
        &mut self,
        out: &mut Output,
        early: &mut Option<&mut dyn FnMut(Early)>,
    ) -> Result<(), RaftError> {
        let mut ready = self.raw.ready();

        // 1. Messages a leader may send before its own log write: it
        //    replicates while persisting (raft thesis 10.2.1), so they leave
        //    now if the owner takes them early, before step 4's fsync. A
        //    follower's messages all wait for step 6 (raft-rs puts them there).
        match early {
            Some(send) => {
                for message in ready.take_messages() {
                    send(Early::Message(message));
                }
            }
            None => out.messages.extend(ready.take_messages()),
        }

        // 2. A snapshot from the leader: restore the state machine, then
        //    replace the log with it (never the other way round: a crash in
        //    between must not leave a log claiming state we do not have).
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.install_snapshot(&snapshot, out)?;
        }

        // 3. Committed entries: apply them and answer their proposers.
        //    raft-rs only hands out entries that are persisted; their commit
        //    index is persisted in step 5. A state machine that is durable
        //    on its own may thus be ahead of the stored commit index after a
        //    crash; `resume_point` and the skip in `apply_normal` handle that.
        self.apply_committed(ready.take_committed_entries(), out)?;
        let writes = !ready.entries().is_empty() || ready.hs().is_some();
        if let (Some(send), true) = (early.as_mut(), writes) {
            //    Their answers leave now rather than after step 4's fsync.
            for completion in out.completions.drain(..) {
                send(Early::Completion(completion));
            }
            self.state_machine.after_drive();
        }

        // 4. New entries (uncommitted) to the log, and
        // 5. term, vote and commit index, in one atomic store write. The
        //    hard state is applied after the entries: a stored commit index
        //    must never point past the stored log.
        if writes {
            let (entries, hard_state) = (ready.entries(), ready.hs());
            self.raw.mut_store().persist_ready(entries, hard_state)?;
        }

        // ReadIndex confirmations; served once applied (see `complete_reads`).
        for read in ready.take_read_states() {
            self.confirm_read(&read.request_ctx, read.index);
        }

        // 6. Messages that may leave only once steps 2-5 are durable: votes
        //    and append acknowledgements promise what we stored.
        out.messages.extend(ready.take_persisted_messages());

        // 7. Tell raft-rs the Ready is done. It answers with a LightReady:
        //    what became possible because the writes above are durable.
        let mut light = self.raw.advance(ready);

        //    7a. The commit index moved (a leader's own append completed a quorum).
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        //    7b. Messages that follow from it (commit broadcasts).
        out.messages.extend(light.take_messages());
        //    7c. Entries committed by it.
        self.apply_committed(light.take_committed_entries(), out)?;
        //    7d. Everything handed out is applied.
        self.raw.advance_apply();
        Ok(())
    }

    /// A follower whose log no longer holds one of its proposals (a new
    /// leader overwrote the uncommitted tail) answers it `Unknown` now
    /// instead of waiting for the log to grow past its index, which may take
    /// arbitrarily long. Not `Dropped`: another member may still hold the
    /// entry and commit it as a later leader (raft paper, figure 8). When
    /// the overwriting entry is already committed, `apply` answered
    /// `Dropped` before this runs.
    fn release_orphans(&mut self, out: &mut Output) {
        if self.raw.raft.state == StateRole::Leader || self.pending.is_empty() {
            return;
        }
        let log = &self.raw.raft.raft_log;
        let orphans: Vec<u64> = (self.pending.iter())
            .filter(|(index, pending)| log.term(**index).ok() != Some(pending.term))
            .map(|(index, _)| *index)
            .collect();
        for index in orphans {
            if let Some(pending) = self.pending.remove(&index) {
                out.completions.push(Completion {
                    token: pending.token,
                    result: Err(RaftError::Unknown),
                });
            }
        }
    }

    /// A read confirmed by the leader at `index`. The token comes back from
    /// the network (a follower's read travels to the leader and back), so a
    /// malformed or unknown one is ignored.
    fn confirm_read(&mut self, context: &[u8], index: u64) {
        let Ok(bytes) = <[u8; 8]>::try_from(context) else {
            tracing::debug!(
                member = self.id,
                "read state with a malformed context ignored"
            );
            return;
        };
        let token = Token::from_be_bytes(bytes);
        if self.reads_waiting.remove(&token).is_some() {
            self.reads_confirmed.push((token, index));
        }
    }

    /// Serves confirmed reads whose index is applied.
    fn complete_reads(&mut self, out: &mut Output) {
        let applied = self.applied;
        let (done, waiting): (Vec<_>, Vec<_>) =
            (self.reads_confirmed.drain(..)).partition(|(_, index)| *index <= applied);
        self.reads_confirmed = waiting;
        out.reads
            .extend(done.into_iter().map(|(token, index)| ReadCompletion {
                token,
                result: Ok(index),
            }));
    }

    /// Reports a changed role, term or leader. Reads waiting for a
    /// confirmation fail when the term or the leader changes: the old
    /// leader will not answer them, and the caller may simply retry.
    fn report_leadership(&mut self, out: &mut Output) {
        let now = leadership_of(&self.raw);
        if now == self.reported {
            return;
        }
        if now.term != self.reported.term || now.leader != self.reported.leader {
            let dropped: Vec<Token> = self.reads_waiting.keys().copied().collect();
            self.reads_waiting.clear();
            self.reads_deferred.clear();
            out.reads
                .extend(dropped.into_iter().map(|token| ReadCompletion {
                    token,
                    result: Err(RaftError::Dropped),
                }));
        }
        self.reported = now;
        out.leadership = Some(now);
    }
}

//! Alarms, as etcd's: raised through the log, so every member refuses the
//! same writes, and kept in snapshots, so a restart or a new leader keeps
//! them. `NoSpace` is raised when a write would take the keyspace past its
//! space quota; until an operator disarms it, writes that add data (puts,
//! txns that write, lease grants) are refused with etcd's "database space
//! exceeded", while reads, deletes, compaction and lease revokes go on, so
//! the operator can free space.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::txn::only_reads;
use crate::{Command, KvError};

/// What an alarm reports (etcd's `AlarmType`, without `NONE`, which names
/// no alarm, and `CORRUPT`, which Agora never raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmKind {
    /// The keyspace reached its space quota.
    NoSpace,
}

/// One raised alarm: which member raised it and why (etcd's `AlarmMember`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlarmMember {
    /// The member that raised it.
    pub member_id: u64,
    /// What it reports.
    pub alarm: AlarmKind,
}

/// Raise or clear an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmAction {
    /// Raise it (no change if already raised).
    Activate,
    /// Clear it (no change if not raised).
    Deactivate,
}

/// The raised alarms, in (member, kind) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Alarms(BTreeSet<AlarmMember>);

impl Alarms {
    pub(crate) fn from_list(list: Vec<AlarmMember>) -> Self {
        Alarms(list.into_iter().collect())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &AlarmMember> {
        self.0.iter()
    }

    /// Applies one action; answers the alarms it changed (none when it was
    /// already as asked), as etcd's Alarm response.
    pub(crate) fn change(&mut self, action: AlarmAction, member: AlarmMember) -> Vec<AlarmMember> {
        let changed = match action {
            AlarmAction::Activate => self.0.insert(member),
            AlarmAction::Deactivate => self.0.remove(&member),
        };
        if changed { vec![member] } else { Vec::new() }
    }

    pub(crate) fn raised(&self, kind: AlarmKind) -> bool {
        self.0.iter().any(|member| member.alarm == kind)
    }

    /// Refuses `command` if a raised alarm forbids it: under `NoSpace`,
    /// whatever adds data (etcd's capped applier: puts, txns that write,
    /// lease grants).
    pub(crate) fn check(&self, command: &Command) -> Result<(), KvError> {
        if !self.raised(AlarmKind::NoSpace) {
            return Ok(());
        }
        match command {
            Command::Put(_) | Command::LeaseGrant { .. } => Err(KvError::NoSpace),
            Command::Txn(txn) if !only_reads(txn) => Err(KvError::NoSpace),
            _ => Ok(()),
        }
    }
}

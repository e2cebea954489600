//! Leases. Time is data: every instant is a `now_ms` (milliseconds on the
//! leader's clock) carried inside a replicated command or passed by the
//! caller, so every member computes the same expiries. The leader alone
//! decides when a lease has expired ([`Lessor::expired`]) and proposes
//! `Command::ExpireLeases`; applying it re-checks the expiry against the
//! command's own `now_ms`, so a keep-alive applied in between wins.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{KvError, LeaseId, LeaseTimeToLive, NO_LEASE};

/// Longest TTL a lease may be granted, in seconds (etcd's `MaxLeaseTTL`).
pub const MAX_LEASE_TTL_SECONDS: i64 = 9_000_000_000;

/// Shortest TTL, in seconds: shorter requests are raised to it. etcd derives
/// it as 1.5 election timeouts, rounded up; with its defaults (10 ticks of
/// 100 ms) that is 2 s. A lease shorter than an election could expire just
/// because a leader change paused keep-alives.
pub const MIN_LEASE_TTL_SECONDS: i64 = 2;

/// Points and durations on the leader's clock, in milliseconds.
pub type Millis = i64;

/// One lease: its TTL, when it expires, and the keys attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) id: LeaseId,
    /// TTL in seconds, as granted (after raising it to the minimum).
    pub(crate) ttl_seconds: i64,
    /// When the lease expires unless renewed.
    pub(crate) expires_at_ms: Millis,
    /// Attached keys. Derived from the keyspace, so not in snapshots.
    #[serde(skip)]
    pub(crate) keys: BTreeSet<Vec<u8>>,
}

/// All leases, indexed by id and by expiry so the leader's expiry scan costs
/// O(log n + expired).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lessor {
    leases: BTreeMap<LeaseId, Lease>,
    by_expiry: BTreeSet<(Millis, LeaseId)>,
    /// Highest id ever granted. Assigned ids go above it, so a revoked id
    /// is not handed out again while a client may still hold it.
    highest_id: LeaseId,
}

impl Lessor {
    /// Grants a lease. `id == 0` assigns the id after the highest ever
    /// granted in this state, so every member assigns the same id.
    pub(crate) fn grant(
        &mut self,
        id: LeaseId,
        ttl_seconds: i64,
        now_ms: Millis,
    ) -> Result<&Lease, KvError> {
        if ttl_seconds > MAX_LEASE_TTL_SECONDS {
            return Err(KvError::LeaseTtlTooLarge);
        }
        let id = if id == NO_LEASE {
            self.next_free_id()?
        } else {
            id
        };
        if self.leases.contains_key(&id) {
            return Err(KvError::LeaseExists);
        }
        let ttl_seconds = ttl_seconds.max(MIN_LEASE_TTL_SECONDS);
        let lease = Lease {
            id,
            ttl_seconds,
            expires_at_ms: expiry(now_ms, ttl_seconds),
            keys: BTreeSet::new(),
        };
        self.by_expiry.insert((lease.expires_at_ms, id));
        self.highest_id = self.highest_id.max(id);
        Ok(self.leases.entry(id).or_insert(lease))
    }

    fn next_free_id(&self) -> Result<LeaseId, KvError> {
        match self.highest_id.checked_add(1) {
            Some(id) if id > NO_LEASE => Ok(id),
            // Someone asked for id i64::MAX: take the lowest free positive
            // id; there are fewer leases than ids, so one is free.
            _ => (1..=LeaseId::MAX)
                .find(|id| !self.leases.contains_key(id))
                .ok_or(KvError::LeaseExists),
        }
    }

    pub(crate) fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    /// Removes a lease and returns it (with its keys, which the caller
    /// deletes from the keyspace).
    pub(crate) fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        let lease = self.leases.remove(&id)?;
        self.by_expiry.remove(&(lease.expires_at_ms, id));
        Some(lease)
    }

    /// Renews a lease for its full TTL from `now_ms`; returns the TTL. A
    /// lease already past its expiry cannot be renewed (etcd answers
    /// "lease not found" too: its revocation is on the way).
    pub(crate) fn keep_alive(&mut self, id: LeaseId, now_ms: Millis) -> Result<i64, KvError> {
        let lease = self.leases.get_mut(&id).ok_or(KvError::LeaseNotFound)?;
        if lease.expires_at_ms <= now_ms {
            return Err(KvError::LeaseNotFound);
        }
        self.by_expiry.remove(&(lease.expires_at_ms, id));
        lease.expires_at_ms = expiry(now_ms, lease.ttl_seconds);
        self.by_expiry.insert((lease.expires_at_ms, id));
        Ok(lease.ttl_seconds)
    }

    /// Gives every lease a full TTL from `now_ms`. etcd does this when a new
    /// leader takes over, so leases do not expire because keep-alives could
    /// not reach anyone during the election.
    pub(crate) fn promote_all(&mut self, now_ms: Millis) {
        self.by_expiry.clear();
        for lease in self.leases.values_mut() {
            lease.expires_at_ms = expiry(now_ms, lease.ttl_seconds);
            self.by_expiry.insert((lease.expires_at_ms, lease.id));
        }
    }

    /// Leases whose expiry is at or before `now_ms`, in expiry order.
    pub(crate) fn expired(&self, now_ms: Millis) -> Vec<LeaseId> {
        self.by_expiry
            .range(..=(now_ms, LeaseId::MAX))
            .map(|(_, id)| *id)
            .collect()
    }

    pub(crate) fn is_expired(&self, id: LeaseId, now_ms: Millis) -> bool {
        self.leases
            .get(&id)
            .is_some_and(|lease| lease.expires_at_ms <= now_ms)
    }

    pub(crate) fn attach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key.to_vec());
        }
    }

    pub(crate) fn detach(&mut self, id: LeaseId, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    pub(crate) fn ids(&self) -> Vec<LeaseId> {
        self.leases.keys().copied().collect()
    }

    pub(crate) fn highest_id(&self) -> LeaseId {
        self.highest_id
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    pub(crate) fn time_to_live(
        &self,
        id: LeaseId,
        now_ms: Millis,
        with_keys: bool,
    ) -> Result<LeaseTimeToLive, KvError> {
        let lease = self.leases.get(&id).ok_or(KvError::LeaseNotFound)?;
        let remaining_ms = lease.expires_at_ms.saturating_sub(now_ms);
        // etcd truncates to whole seconds and reports -1 once expired.
        let ttl = if remaining_ms <= 0 {
            -1
        } else {
            remaining_ms / 1000
        };
        let keys = if with_keys {
            lease.keys.iter().cloned().collect()
        } else {
            Vec::new()
        };
        Ok(LeaseTimeToLive {
            id,
            ttl,
            granted_ttl: lease.ttl_seconds,
            keys,
        })
    }

    /// Rebuilds the index from snapshot leases (keys are re-attached by the
    /// caller from the keyspace).
    pub(crate) fn from_leases(leases: Vec<Lease>, highest_id: LeaseId) -> Result<Self, String> {
        let mut lessor = Lessor {
            highest_id,
            ..Lessor::default()
        };
        for lease in leases {
            if lease.id == NO_LEASE || lease.id > highest_id {
                return Err(format!(
                    "lease id {} in snapshot, highest {highest_id}",
                    lease.id
                ));
            }
            lessor.by_expiry.insert((lease.expires_at_ms, lease.id));
            if lessor.leases.insert(lease.id, lease).is_some() {
                return Err("duplicate lease in snapshot".to_string());
            }
        }
        Ok(lessor)
    }
}

fn expiry(now_ms: Millis, ttl_seconds: i64) -> Millis {
    now_ms.saturating_add(ttl_seconds.saturating_mul(1000))
}

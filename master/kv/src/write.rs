//! One write transaction: every change it makes shares one main revision
//! and gets the next sub-revision. Requests reaching the writer have been
//! checked already, so nothing here fails and a transaction never half
//! applies.

use crate::lease::Lessor;
use crate::mvcc::{KeyRange, MvccStore, Rev};
use crate::{
    DeleteRangeRequest, DeleteRangeResponse, KeyValue, KvError, NO_LEASE, PutRequest, PutResponse,
    Revision,
};

/// Writes of one transaction in progress.
pub(crate) struct Writer<'a> {
    pub(crate) store: &'a mut MvccStore,
    pub(crate) leases: &'a mut Lessor,
    /// The main revision this transaction will commit as.
    main: Revision,
    /// Sub-revision of the next change.
    next_sub: i64,
}

impl<'a> Writer<'a> {
    pub(crate) fn begin(store: &'a mut MvccStore, leases: &'a mut Lessor) -> Self {
        let main = store.current_revision().saturating_add(1);
        Writer {
            store,
            leases,
            main,
            next_sub: 0,
        }
    }

    /// The revision reads inside the transaction use, so they see its
    /// earlier writes.
    pub(crate) fn read_revision(&self) -> Revision {
        self.main
    }

    fn next_rev(&mut self) -> Rev {
        let rev = Rev {
            main: self.main,
            sub: self.next_sub,
        };
        self.next_sub = self.next_sub.saturating_add(1);
        rev
    }

    /// Commits and returns the store's revision afterwards. A transaction
    /// that changed nothing does not consume a revision (as in etcd).
    pub(crate) fn finish(self) -> Revision {
        if self.next_sub > 0 {
            self.store.commit(self.main);
        }
        self.store.current_revision()
    }

    /// Applies a checked put (see [`check_put`]).
    pub(crate) fn put(&mut self, request: &PutRequest) -> PutResponse {
        let previous = self.store.get(&request.key, self.main);
        let value = match (&previous, request.ignore_value) {
            (Some(previous), true) => previous.value.clone(),
            _ => request.value.clone(),
        };
        let lease = match (&previous, request.ignore_lease) {
            (Some(previous), true) => previous.lease,
            _ => request.lease,
        };
        let rev = self.next_rev();
        self.store.put(rev, &request.key, value, lease);
        if let Some(old_lease) = previous.as_ref().map(|kv| kv.lease)
            && old_lease != NO_LEASE
            && old_lease != lease
        {
            self.leases.detach(old_lease, &request.key);
        }
        if lease != NO_LEASE {
            self.leases.attach(lease, &request.key);
        }
        PutResponse {
            revision: 0,
            prev_kv: previous.filter(|_| request.prev_kv),
        }
    }

    /// Deletes every live key in the request's range.
    pub(crate) fn delete_range(&mut self, request: &DeleteRangeRequest) -> DeleteRangeResponse {
        let range = KeyRange::new(&request.key, &request.range_end);
        let doomed = self.store.live_in(&range, self.main);
        let deleted = self.delete_keys(doomed.iter().map(|kv| kv.key.as_slice()));
        let count = i64::try_from(deleted.len()).unwrap_or(i64::MAX);
        let prev_kvs = if request.prev_kv { deleted } else { Vec::new() };
        DeleteRangeResponse {
            revision: 0,
            deleted: count,
            prev_kvs,
        }
    }

    /// Deletes the given keys (those not live are skipped) and detaches them
    /// from their leases; returns the versions deleted.
    pub(crate) fn delete_keys<'k>(
        &mut self,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Vec<KeyValue> {
        let mut deleted = Vec::new();
        for key in keys {
            let rev = Rev {
                main: self.main,
                sub: self.next_sub,
            };
            if let Some(previous) = self.store.delete(rev, key) {
                self.next_sub = self.next_sub.saturating_add(1);
                if previous.lease != NO_LEASE {
                    self.leases.detach(previous.lease, key);
                }
                deleted.push(previous);
            }
        }
        deleted
    }
}

/// Checks a put against the state before the transaction: the fields agree
/// with each other, `ignore_*` finds the key, the lease exists.
pub(crate) fn check_put(
    store: &MvccStore,
    leases: &Lessor,
    request: &PutRequest,
) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    if request.ignore_value && !request.value.is_empty() {
        return Err(KvError::ValueProvided);
    }
    if request.ignore_lease && request.lease != NO_LEASE {
        return Err(KvError::LeaseProvided);
    }
    if (request.ignore_value || request.ignore_lease)
        && store.get(&request.key, store.current_revision()).is_none()
    {
        return Err(KvError::KeyNotFound);
    }
    if request.lease != NO_LEASE && !leases.contains(request.lease) {
        return Err(KvError::LeaseNotFound);
    }
    Ok(())
}

/// Checks a delete: only that it names a key.
pub(crate) fn check_delete(request: &DeleteRangeRequest) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    Ok(())
}

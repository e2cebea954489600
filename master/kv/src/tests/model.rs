//! A deliberately naive reference for the keyspace: every version ever
//! written in one `Vec`, every read a linear scan, compaction only moves a
//! watermark. Covers ranges, puts (without leases), deletes, flat txns and
//! compaction; the property tests compare it with [`KvState`].

use std::collections::BTreeSet;

use crate::{
    Command, CompactResponse, CompareResult, CompareTarget, DeleteRangeResponse, Event, EventType,
    KeyValue, KvError, PutResponse, RangeRequest, RangeResponse, RequestOp, Response, ResponseOp,
    SortOrder, SortTarget, TxnRequest, TxnResponse,
};

struct Entry {
    key: Vec<u8>,
    main: i64,
    /// `(create_revision, version, value)`, `None` for a delete.
    live: Option<(i64, i64, Vec<u8>)>,
}

pub(super) struct Model {
    entries: Vec<Entry>,
    current: i64,
    compact: i64,
}

fn in_range(key: &[u8], range_end: &[u8], candidate: &[u8]) -> bool {
    if range_end.is_empty() {
        candidate == key
    } else if range_end == [0] {
        candidate >= key
    } else {
        candidate >= key && candidate < range_end
    }
}

impl Model {
    pub(super) fn new() -> Self {
        Model {
            entries: Vec::new(),
            current: 1,
            compact: 0,
        }
    }

    fn visible(&self, key: &[u8], at: i64) -> Option<KeyValue> {
        let entry = self
            .entries
            .iter()
            .rfind(|e| e.key == key && e.main <= at)?;
        let (create_revision, version, value) = entry.live.clone()?;
        Some(KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: entry.main,
            version,
            value,
            lease: 0,
        })
    }

    fn live_in(&self, key: &[u8], range_end: &[u8], at: i64) -> Vec<KeyValue> {
        let keys: BTreeSet<&Vec<u8>> = self.entries.iter().map(|e| &e.key).collect();
        keys.into_iter()
            .filter(|k| in_range(key, range_end, k))
            .filter_map(|k| self.visible(k, at))
            .collect()
    }

    pub(super) fn apply(&mut self, command: &Command) -> Result<Response, KvError> {
        match command {
            Command::Range(request) => self.range(request, self.current).map(Response::Range),
            Command::Put(_) | Command::DeleteRange(_) => {
                let op = match command {
                    Command::Put(p) => RequestOp::Put(p.clone()),
                    Command::DeleteRange(d) => RequestOp::DeleteRange(d.clone()),
                    _ => unreachable!(),
                };
                let txn = TxnRequest {
                    success: vec![op],
                    ..TxnRequest::default()
                };
                let response = self.txn(&txn)?;
                Ok(match response.responses.into_iter().next() {
                    Some(ResponseOp::Put(p)) => Response::Put(p),
                    Some(ResponseOp::DeleteRange(d)) => Response::DeleteRange(d),
                    other => panic!("model: {other:?}"),
                })
            }
            Command::Txn(request) => self.txn(request).map(Response::Txn),
            Command::Compact(request) => {
                if request.revision <= self.compact {
                    return Err(KvError::Compacted {
                        compact_revision: self.compact,
                    });
                }
                if request.revision > self.current {
                    return Err(KvError::FutureRevision);
                }
                self.compact = request.revision;
                Ok(Response::Compact(CompactResponse {
                    revision: self.current,
                }))
            }
            other => panic!("the model does not cover {other:?}"),
        }
    }

    fn range(&self, request: &RangeRequest, now: i64) -> Result<RangeResponse, KvError> {
        if request.key.is_empty() {
            return Err(KvError::EmptyKey);
        }
        let at = match request.revision {
            r if r <= 0 => now,
            r if r > self.current => return Err(KvError::FutureRevision),
            r if r < self.compact => {
                return Err(KvError::Compacted {
                    compact_revision: self.compact,
                });
            }
            r => r,
        };
        let mut kvs = self.live_in(&request.key, &request.range_end, at);
        let count = kvs.len() as i64;
        if request.count_only {
            return Ok(RangeResponse {
                revision: self.current,
                kvs: vec![],
                more: false,
                count,
            });
        }
        let ok = |bound: i64, pass: bool| bound == 0 || pass;
        kvs.retain(|kv| {
            ok(
                request.min_mod_revision,
                kv.mod_revision >= request.min_mod_revision,
            ) && ok(
                request.max_mod_revision,
                kv.mod_revision <= request.max_mod_revision,
            ) && ok(
                request.min_create_revision,
                kv.create_revision >= request.min_create_revision,
            ) && ok(
                request.max_create_revision,
                kv.create_revision <= request.max_create_revision,
            )
        });
        sort_model(&mut kvs, request.sort_order, request.sort_target);
        let mut more = false;
        if request.limit > 0 && kvs.len() as i64 > request.limit {
            kvs.truncate(request.limit as usize);
            more = true;
        }
        if request.keys_only {
            for kv in &mut kvs {
                kv.value = vec![];
            }
        }
        Ok(RangeResponse {
            revision: self.current,
            kvs,
            more,
            count,
        })
    }

    fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, KvError> {
        for branch in [&request.success, &request.failure] {
            check_duplicates(branch)?;
        }
        let succeeded = request.compare.iter().all(|c| self.compare_holds(c));
        let branch = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        for op in branch.iter() {
            self.check(op)?;
        }
        let main = self.current + 1;
        let mut wrote = false;
        let mut responses = Vec::new();
        for op in branch.iter() {
            responses.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range(r, main)?),
                RequestOp::Put(p) => {
                    let prev = self.visible(&p.key, main);
                    let value = if p.ignore_value {
                        prev.clone().map(|kv| kv.value).unwrap_or_default()
                    } else {
                        p.value.clone()
                    };
                    let (create, version) = prev
                        .as_ref()
                        .map_or((main, 1), |kv| (kv.create_revision, kv.version + 1));
                    self.entries.push(Entry {
                        key: p.key.clone(),
                        main,
                        live: Some((create, version, value)),
                    });
                    wrote = true;
                    ResponseOp::Put(PutResponse {
                        revision: 0,
                        prev_kv: prev.filter(|_| p.prev_kv),
                    })
                }
                RequestOp::DeleteRange(d) => {
                    let doomed = self.live_in(&d.key, &d.range_end, main);
                    for kv in &doomed {
                        self.entries.push(Entry {
                            key: kv.key.clone(),
                            main,
                            live: None,
                        });
                        wrote = true;
                    }
                    let deleted = doomed.len() as i64;
                    let prev_kvs = if d.prev_kv { doomed } else { vec![] };
                    ResponseOp::DeleteRange(DeleteRangeResponse {
                        revision: 0,
                        deleted,
                        prev_kvs,
                    })
                }
                RequestOp::Txn(_) => panic!("the model covers flat txns only"),
            });
        }
        if wrote {
            self.current = main;
        }
        for response in &mut responses {
            match response {
                ResponseOp::Range(r) => r.revision = self.current,
                ResponseOp::Put(p) => p.revision = self.current,
                ResponseOp::DeleteRange(d) => d.revision = self.current,
                ResponseOp::Txn(_) => {}
            }
        }
        Ok(TxnResponse {
            revision: self.current,
            succeeded,
            responses,
        })
    }

    fn check(&self, op: &RequestOp) -> Result<(), KvError> {
        match op {
            RequestOp::Range(r) => self.range(r, self.current).map(|_| ()),
            RequestOp::Put(p) if p.key.is_empty() => Err(KvError::EmptyKey),
            RequestOp::Put(p) if p.ignore_value && !p.value.is_empty() => {
                Err(KvError::ValueProvided)
            }
            RequestOp::Put(p) if p.ignore_value && self.visible(&p.key, self.current).is_none() => {
                Err(KvError::KeyNotFound)
            }
            RequestOp::DeleteRange(d) if d.key.is_empty() => Err(KvError::EmptyKey),
            _ => Ok(()),
        }
    }

    fn compare_holds(&self, compare: &crate::Compare) -> bool {
        let kvs = self.live_in(&compare.key, &compare.range_end, self.current);
        let zero = KeyValue {
            key: vec![],
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            value: vec![],
            lease: 0,
        };
        let candidates = match (&compare.target, kvs.is_empty()) {
            (CompareTarget::Value(_), true) => return false,
            (_, true) => vec![zero],
            (_, false) => kvs,
        };
        candidates.iter().all(|kv| {
            let ordering = match &compare.target {
                CompareTarget::Version(v) => kv.version.cmp(v),
                CompareTarget::Create(v) => kv.create_revision.cmp(v),
                CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
                CompareTarget::Value(v) => kv.value.cmp(v),
                CompareTarget::Lease(v) => kv.lease.cmp(v),
            };
            match compare.result {
                CompareResult::Equal => ordering.is_eq(),
                CompareResult::NotEqual => !ordering.is_eq(),
                CompareResult::Greater => ordering.is_gt(),
                CompareResult::Less => ordering.is_lt(),
            }
        })
    }

    /// Every change with revision `>= from`, with its previous version.
    pub(super) fn events_since(&self, from: i64) -> Vec<Event> {
        let mut events = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.main < from {
                continue;
            }
            let previous = self.entries[..index].iter().rfind(|e| e.key == entry.key);
            // etcd reads prev_kv at the event's revision minus one, which
            // is compacted for an event at the compact revision.
            let prev_kv = previous
                .filter(|p| p.main >= self.compact || entry.main > self.compact)
                .and_then(|p| {
                    self.visible(&p.key, p.main)
                        .filter(|kv| kv.mod_revision == p.main)
                });
            let (kind, kv) = match &entry.live {
                Some(_) => (
                    EventType::Put,
                    self.visible(&entry.key, entry.main).unwrap(),
                ),
                None => {
                    let kv = KeyValue {
                        key: entry.key.clone(),
                        create_revision: 0,
                        mod_revision: entry.main,
                        version: 0,
                        value: vec![],
                        lease: 0,
                    };
                    (EventType::Delete, kv)
                }
            };
            events.push(Event { kind, kv, prev_kv });
        }
        events
    }

    pub(super) fn current(&self) -> i64 {
        self.current
    }

    pub(super) fn compact(&self) -> i64 {
        self.compact
    }
}

/// The flat-txn form of etcd's rule: no key put twice, none both put and
/// deleted.
fn check_duplicates(ops: &[RequestOp]) -> Result<(), KvError> {
    let puts: Vec<&Vec<u8>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::Put(p) => Some(&p.key),
            _ => None,
        })
        .collect();
    for (i, key) in puts.iter().enumerate() {
        let twice = puts[..i].contains(key);
        let deleted = ops.iter().any(
            |op| matches!(op, RequestOp::DeleteRange(d) if in_range(&d.key, &d.range_end, key)),
        );
        if twice || deleted {
            return Err(KvError::DuplicateKey);
        }
    }
    Ok(())
}

fn sort_model(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
        match target {
            SortTarget::Key => (0, kv.key.clone()),
            SortTarget::Version => (kv.version, vec![]),
            SortTarget::Create => (kv.create_revision, vec![]),
            SortTarget::Mod => (kv.mod_revision, vec![]),
            SortTarget::Value => (0, kv.value.clone()),
        }
    };
    match (order, target) {
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key) => {}
        (SortOrder::Descend, _) => {
            kvs.sort_by_key(|kv| (std::cmp::Reverse(field(kv)), kv.key.clone()))
        }
        _ => kvs.sort_by_key(|kv| (field(kv), kv.key.clone())),
    }
}

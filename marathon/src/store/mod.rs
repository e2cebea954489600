//! Persistence of Marathon's state on an etcd v3 keyspace, so that Marathon
//! processes hold no state of their own: a restarted or newly elected
//! process rebuilds itself with [`Store::load`].
//!
//! The store is a thin, generic key/value layer: callers pass bytes (record
//! encoding is theirs) and keys relative to a prefix (`/marathon`), which
//! the store joins as `{prefix}/{key}`. Writes go to etcd as Txns of at most
//! [`MAX_TXN_OPS`] operations and [`MAX_TXN_BYTES`] bytes, so a batch within
//! those limits lands atomically. [`StoreWriter`] (in `writer.rs`) is the
//! ordered, bounded, group-committing queue in front of it.
//!
//! API boundary: plain data in and out (`String` keys, `Vec<u8>` values,
//! [`StoreError`]); etcd-client types appear only in [`Store::client`], which
//! the election module uses.

mod error;
mod writer;

pub use error::StoreError;
pub(crate) use error::within;
pub use writer::StoreWriter;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};

/// Operations per Txn: etcd's default `--max-txn-ops`; a larger Txn is refused.
pub const MAX_TXN_OPS: usize = 128;
/// Largest value accepted, so that one value always fits in one request
/// under etcd's default `--max-request-bytes` of 1.5 MiB.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Key and value bytes per Txn: below etcd's 1.5 MiB request limit, with
/// room for the protobuf framing of up to [`MAX_TXN_OPS`] operations.
pub const MAX_TXN_BYTES: usize = 1_400_000;
/// Largest key accepted (after the prefix is added); etcd's own limit is the
/// request size, this one keeps keys from eating a Txn's byte budget.
pub const MAX_KEY_BYTES: usize = 4096;
/// Keys per Range request in [`Store::load`]: a big keyspace is read in
/// pages rather than in one response that could exceed gRPC's message limit.
pub const LOAD_PAGE_KEYS: i64 = 500;
/// How long the writer retries an unavailable etcd before failing a batch.
pub const WRITE_RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// Where the store lives and how long it waits.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// etcd client URLs, e.g. `http://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix of this Marathon's state, e.g. `/marathon`; a trailing `/` is ignored.
    pub prefix: String,
    /// Time allowed to establish a connection (and for the probe in [`Store::connect`]).
    pub connect_timeout: Duration,
    /// Time allowed for each request.
    pub request_timeout: Duration,
}

impl StoreConfig {
    /// A configuration with 5 s connect and request timeouts.
    pub fn new(endpoints: Vec<String>, prefix: impl Into<String>) -> StoreConfig {
        StoreConfig {
            endpoints,
            prefix: prefix.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// One write: a put of `value` at `key`, or a delete of `key` when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Relative to the store's prefix, e.g. `apps/web`.
    pub key: String,
    /// The new value, or `None` to delete the key.
    pub value: Option<Vec<u8>>,
}

impl Write {
    /// A put.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Write {
        Write {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A delete.
    pub fn delete(key: impl Into<String>) -> Write {
        Write {
            key: key.into(),
            value: None,
        }
    }
}

/// A handle on the keyspace; cheap to clone (etcd-client's client is a set of channels).
#[derive(Clone)]
pub struct Store {
    client: Client,
    /// Without a trailing slash.
    prefix: Arc<str>,
    request_timeout: Duration,
    /// Writes land only while this key exists (a leader's election key,
    /// which goes with its lease): a deposed leader cannot write.
    fence: Option<Arc<[u8]>>,
}

/// A validated write with its full key: what goes into a Txn.
#[derive(Debug, Clone)]
struct Op {
    key: String,
    value: Option<Vec<u8>>,
}

impl Op {
    fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len)
    }
}

impl Store {
    /// Connects to etcd and checks that it answers (one key-count request on the prefix).
    pub async fn connect(cfg: StoreConfig) -> Result<Store, StoreError> {
        if cfg.endpoints.is_empty() {
            return Err(StoreError::Config("no etcd endpoints".to_owned()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(cfg.connect_timeout)
            // HTTP/2 pings notice a dead or frozen server on an idle connection.
            .with_keep_alive(Duration::from_secs(5), cfg.request_timeout)
            .with_keep_alive_while_idle(true);
        let client = within(
            cfg.connect_timeout,
            Client::connect(&cfg.endpoints, Some(options)),
        )
        .await?;
        let store = Store {
            client,
            prefix: Arc::from(cfg.prefix.trim_end_matches('/')),
            request_timeout: cfg.request_timeout,
            fence: None,
        };
        let probe = GetOptions::new().with_prefix().with_count_only();
        within(
            cfg.connect_timeout,
            store
                .client
                .kv_client()
                .get(format!("{}/", store.prefix), Some(probe)),
        )
        .await?;
        tracing::debug!(endpoints = ?cfg.endpoints, prefix = %store.prefix, "store connected");
        Ok(store)
    }

    /// The underlying etcd client, for the election module.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The prefix, without a trailing slash.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every key under `{prefix}/{under}` with its value, keys relative to
    /// the prefix and sorted. Read in pages of [`LOAD_PAGE_KEYS`], all at
    /// the revision of the first page, so the result is one consistent snapshot
    /// (if etcd compacts past that revision mid-load, the load fails with
    /// [`StoreError::Rejected`] and can be retried).
    pub async fn load(&self, under: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        if under.starts_with('/') {
            return Err(StoreError::InvalidKey {
                key: under.to_owned(),
                reason: "starts with '/' (keys are relative to the prefix)".to_owned(),
            });
        }
        let start = format!("{}/{under}", self.prefix);
        let end = prefix_end(start.as_bytes());
        let mut from = start.into_bytes();
        let mut revision = 0;
        let mut out = Vec::new();
        let mut kv = self.client.kv_client();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LOAD_PAGE_KEYS);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let page = within(self.request_timeout, kv.get(from.clone(), Some(options))).await?;
            if revision == 0 {
                revision = page.header().map_or(0, |h| h.revision());
            }
            for item in page.kvs() {
                out.push((self.relative(item.key())?, item.value().to_vec()));
            }
            match page.kvs().last() {
                Some(last) if page.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        // etcd returns keys in byte order already; sorting again is cheap insurance.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The value at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let full = self.full_key(key)?;
        let answer = within(
            self.request_timeout,
            self.client.kv_client().get(full, None),
        )
        .await?;
        Ok(answer.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// Applies `writes` in order, as one Txn when they fit in [`MAX_TXN_OPS`]
    /// operations and [`MAX_TXN_BYTES`] bytes (atomic), otherwise as several
    /// Txns in order (not atomic: a failure may leave a prefix applied).
    /// Every write is validated first: a bad key or an oversized value is an
    /// error before anything is sent. No retries; [`StoreWriter`] retries.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let ops = self.prepare(writes)?;
        for txn in plan_txns(ops) {
            self.commit(txn).await?;
        }
        Ok(())
    }

    /// This store, writing only while `key` exists: every Txn compares it
    /// first and fails with [`StoreError::Fenced`] once it is gone. A leader
    /// fences its writes with its election key, so that after its lease
    /// expired (and another process may lead) nothing it still sends lands.
    pub fn fenced(&self, key: &[u8]) -> Store {
        Store {
            fence: Some(Arc::from(key)),
            ..self.clone()
        }
    }

    /// Starts the writer task with a queue of `queue` batches and the default
    /// retry deadline [`WRITE_RETRY_DEADLINE`]. Needs a Tokio runtime.
    pub fn writer(&self, queue: usize) -> StoreWriter {
        StoreWriter::spawn(self.clone(), queue, WRITE_RETRY_DEADLINE)
    }

    /// [`Store::writer`] with another retry deadline (tests use a short one).
    pub fn writer_with_deadline(&self, queue: usize, retry_deadline: Duration) -> StoreWriter {
        StoreWriter::spawn(self.clone(), queue, retry_deadline)
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidKey {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if key.is_empty() {
            return Err(invalid("empty"));
        }
        if key.starts_with('/') {
            return Err(invalid("starts with '/' (keys are relative to the prefix)"));
        }
        let full = format!("{}/{key}", self.prefix);
        if full.len() > MAX_KEY_BYTES {
            return Err(invalid("longer than MAX_KEY_BYTES"));
        }
        Ok(full)
    }

    fn relative(&self, full: &[u8]) -> Result<String, StoreError> {
        let text = std::str::from_utf8(full).map_err(|e| StoreError::Corrupt {
            key: String::from_utf8_lossy(full).into_owned(),
            reason: format!("key is not UTF-8: {e}"),
        })?;
        text.strip_prefix(&*self.prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt {
                key: text.to_owned(),
                reason: "outside the store's prefix".to_owned(),
            })
    }

    /// Validates every write and turns it into an [`Op`]; nothing is sent.
    fn prepare(&self, writes: Vec<Write>) -> Result<Vec<Op>, StoreError> {
        writes
            .into_iter()
            .map(|w| {
                if let Some(value) = &w.value
                    && value.len() > MAX_VALUE_BYTES
                {
                    return Err(StoreError::TooLarge {
                        bytes: value.len(),
                        key: w.key,
                    });
                }
                Ok(Op {
                    key: self.full_key(&w.key)?,
                    value: w.value,
                })
            })
            .collect()
    }

    /// Sends one Txn of operations that fit the limits (see [`plan_txns`]).
    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.commit_within(ops, self.request_timeout).await
    }

    async fn commit_within(&self, ops: Vec<Op>, timeout: Duration) -> Result<(), StoreError> {
        let mut txn = Txn::new();
        if let Some(key) = &self.fence {
            txn = txn.when([Compare::version(key.to_vec(), CompareOp::Greater, 0)]);
        }
        let txn = txn.and_then(
            ops.into_iter()
                .map(|op| match op.value {
                    Some(value) => TxnOp::put(op.key, value, None),
                    None => TxnOp::delete(op.key, None),
                })
                .collect::<Vec<_>>(),
        );
        let resp = within(timeout, self.client.kv_client().txn(txn)).await?;
        if !resp.succeeded() {
            return Err(StoreError::Fenced);
        }
        Ok(())
    }
}

/// Whether `ops` fit in one Txn, counted before duplicate keys are merged.
fn fits_one_txn(ops: usize, bytes: usize) -> bool {
    ops <= MAX_TXN_OPS && bytes <= MAX_TXN_BYTES
}

/// Splits `ops` into Txns within the limits, in order. etcd refuses a Txn
/// that names a key twice, so within the whole sequence only the last write
/// of each key is kept (for one Txn that is exactly its atomic effect; for
/// several, the end state is the same).
fn plan_txns(ops: Vec<Op>) -> Vec<Vec<Op>> {
    let mut seen = HashSet::new();
    let mut last_writes: Vec<Op> = ops
        .into_iter()
        .rev()
        .filter(|op| seen.insert(op.key.clone()))
        .collect();
    last_writes.reverse();

    let mut txns = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut bytes = 0;
    for op in last_writes {
        if !current.is_empty() && !fits_one_txn(current.len() + 1, bytes + op.bytes()) {
            txns.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += op.bytes();
        current.push(op);
    }
    if !current.is_empty() {
        txns.push(current);
    }
    txns
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: "\0" means "to the end of the keyspace" to etcd.
    vec![0]
}

#[cfg(test)]
mod tests;

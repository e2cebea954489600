//! Named limits and timings of the API layer.

use std::time::Duration;

/// Request limits, with etcd's defaults and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded request (etcd's `--max-request-bytes`, 1.5 MiB). A
    /// larger one is refused with "etcdserver: request is too large" before
    /// it reaches the log: every member would hold it in memory.
    pub max_request_bytes: usize,
    /// Most operations in one list of a txn (etcd's `--max-txn-ops`, 128).
    pub max_txn_ops: usize,
    /// Bytes the keyspace may hold before writes that add data are refused
    /// and the `NoSpace` alarm is raised (etcd's `--quota-backend-bytes`,
    /// 2 GiB). See `quota.rs`.
    pub quota_backend_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: agora_kv::MAX_REQUEST_BYTES,
            max_txn_ops: agora_kv::MAX_TXN_OPS,
            quota_backend_bytes: crate::quota::DEFAULT_QUOTA_BACKEND_BYTES,
        }
    }
}

impl Limits {
    /// What gRPC itself accepts: the request limit plus etcd's 512 KiB
    /// allowance for the envelope, so a request just over the limit gets
    /// etcd's "request is too large" rather than a transport error.
    pub fn max_message_bytes(&self) -> usize {
        self.max_request_bytes.saturating_add(GRPC_OVERHEAD_BYTES)
    }
}

/// etcd's `grpcOverheadBytes`.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Configuration of [`crate::serve_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Request limits.
    pub limits: Limits,
    /// Responses queued per stream (watch, keep-alive, observe) before the
    /// handler waits for the client to read. Small: a watch stream's real
    /// buffer is the store's history, bounded per watcher by agora-kv.
    pub stream_buffer: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            stream_buffer: 16,
        }
    }
}

/// How often a watcher that asked for progress notices gets one (etcd's
/// default is 10 minutes; [`crate::LocalConfig`] can shorten it).
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(600);

//! The follower → leader hop: what a backend sends over the internal
//! `agora.etcd.internal.v1.Forward` service, what comes back, and the
//! client side. postcard (compact binary serde) inside the protobuf bytes: both ends are this crate,
//! and agora-kv's commands and responses are already serde types.
//!
//! Retry rules: a request is retried only when it is known not to have
//! taken effect: the connection could not be made (nothing was sent), or
//! the leader answered [`ForwardAnswer::Retry`] (not the leader any more,
//! or its proposal was dropped). A failure after sending (timeout, reset)
//! has an unknown outcome and is etcd's "request timed out".

use agora_kv::{Command, LeaseId, LeaseTimeToLive, Response, Revision};
use serde::{Deserialize, Serialize};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use super::{Attempt, Inner, Retry};
use crate::ApiError;
use crate::pb::forward::ForwardRequest;
use crate::pb::forward::forward_client::ForwardClient;
use agora_kv::KvError;
use agora_raft::KvHost;

/// A connection to one member's Forward service.
pub(super) type Client = ForwardClient<Channel>;

/// Longest wait for a connection to the leader's etcd port.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a member asks the leader to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Forwarded {
    /// Stamp with the leader's clock and propose.
    Apply(Command),
    /// A lease's remaining time on the leader's clock.
    TimeToLive {
        /// The lease.
        id: LeaseId,
        /// Also list its keys.
        keys: bool,
    },
}

impl Forwarded {
    /// Decodes a forwarded request; garbage is `InvalidArgument`.
    pub(super) fn decode(bytes: &[u8]) -> Result<Forwarded, tonic::Status> {
        postcard::from_bytes(bytes).map_err(|error| {
            tonic::Status::invalid_argument(format!("agora: bad forwarded request: {error}"))
        })
    }
}

/// A successful answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Answer {
    /// The applied command's response.
    Response(Response),
    /// The lease's remaining time.
    TimeToLive(LeaseTimeToLive),
}

/// The leader's answer to a [`Forwarded`] request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum ForwardAnswer {
    /// Done.
    Done(Answer),
    /// Failed with this gRPC code and etcd's text.
    Failed {
        /// `tonic::Code` as its number.
        code: i32,
        /// The error's text.
        message: String,
        /// For a compaction error: where history starts.
        compact_revision: Option<Revision>,
    },
    /// Not committed (not the leader, or dropped): ask again.
    Retry,
}

impl ForwardAnswer {
    pub(super) fn failed(error: &ApiError) -> ForwardAnswer {
        ForwardAnswer::Failed {
            code: error.code() as i32,
            message: error.to_string(),
            compact_revision: match error {
                ApiError::Kv(KvError::Compacted { compact_revision }) => Some(*compact_revision),
                _ => None,
            },
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: serializing cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    fn into_attempt(self) -> Attempt<Answer> {
        match self {
            ForwardAnswer::Done(answer) => Ok(Ok(answer)),
            ForwardAnswer::Retry => Err(Retry),
            ForwardAnswer::Failed {
                compact_revision: Some(compact_revision),
                ..
            } => Ok(Err(ApiError::Kv(KvError::Compacted { compact_revision }))),
            ForwardAnswer::Failed { code, message, .. } => Ok(Err(ApiError::Remote {
                code: Code::from_i32(code),
                message,
            })),
        }
    }
}

/// Whether `status` comes from a refused connection (so the request was
/// never sent): an `io::Error` of kind `ConnectionRefused` in its sources.
fn never_sent(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        let refused = error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return true;
        }
        source = error.source();
    }
    false
}

impl<S: KvHost> Inner<S> {
    /// Sends `request` to `leader`'s Forward service.
    pub(super) async fn forward(&self, leader: u64, request: &Forwarded) -> Attempt<Answer> {
        let mut client = self.client(leader).await?;
        let command = postcard::to_stdvec(request).unwrap_or_default();
        let call = client.apply(ForwardRequest { command });
        let reply = match tokio::time::timeout(self.timings.forward_timeout, call).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) => {
                tracing::debug!(leader, %status, "forwarding failed");
                self.forget(leader);
                if never_sent(&status) {
                    // The cached connection's reconnect was refused: the
                    // request never left, so asking again is safe.
                    return Err(Retry);
                }
                // Sent, or maybe sent: the outcome is unknown.
                return Ok(Err(ApiError::Timeout));
            }
            Err(_) => {
                self.forget(leader);
                return Ok(Err(ApiError::Timeout));
            }
        };
        match postcard::from_bytes::<ForwardAnswer>(&reply.answer) {
            Ok(answer) => answer.into_attempt(),
            Err(_) => Ok(Err(ApiError::WrongResponse("a forwarded request"))),
        }
    }

    /// A connected client to `member`, cached; `Retry` if its address is
    /// unknown or it cannot be reached (nothing was sent).
    async fn client(&self, member: u64) -> Result<Client, Retry> {
        if let Some(client) = self.lock_clients().get(&member) {
            return Ok(client.clone());
        }
        let url = (self.directory.member(member))
            .and_then(|m| m.client_urls.into_iter().next())
            .ok_or(Retry)?;
        let url = if url.contains("://") {
            url
        } else {
            format!("http://{url}")
        };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|_| Retry)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|error| {
            tracing::debug!(member, %error, "cannot reach the leader's etcd port");
            Retry
        })?;
        let client = ForwardClient::new(channel);
        self.lock_clients().insert(member, client.clone());
        Ok(client)
    }

    fn forget(&self, member: u64) {
        self.lock_clients().remove(&member);
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Client>> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

//! The follower → leader hop: what a backend sends over the internal
//! `agora.etcd.internal.v1.Forward` service, what comes back, and the
//! client side. postcard (compact binary serde) inside the protobuf bytes: both ends are this crate,
//! and agora-kv's commands and responses are already serde types.
//!
//! Requests travel over one long-lived `Pipe` stream per leader
//! (`pipe.rs`), batched; the unary `Apply` is still served for members
//! that call it.
//!
//! Retry rules: a request is retried only when it is known not to have
//! taken effect: it never left this member (no connection, or the pipe
//! ended while it was queued), or the leader answered
//! [`ForwardAnswer::Retry`] (not the leader any more, or its proposal was
//! dropped). A failure after sending (timeout, broken stream) has an
//! unknown outcome and is etcd's "request timed out".

use agora_kv::{Command, LeaseId, LeaseTimeToLive, Response, Revision};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use tonic::Code;
use tonic::transport::Endpoint;

use super::membership::MemberRequest;
use super::pipe::{Outcome, Pipe};
use super::{Attempt, Inner, Retry};
use crate::ApiError;
use crate::backend::Member;
use agora_kv::KvError;
use agora_raft::KvHost;

/// Longest wait for a connection to the leader's etcd port.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 pings on an open pipe, so a leader that hangs (rather than
/// closing) is noticed and its pipe replaced.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// A ping unanswered this long closes the pipe.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// A membership change (`membership.rs`).
    Members(MemberRequest),
}

impl Forwarded {
    /// Decodes a forwarded request; garbage is `InvalidArgument`, and so
    /// is a command members never forward. The Forward service shares the
    /// etcd port with clients, so what arrives here may come from anyone:
    /// it must be no more than a client could ask through the etcd API.
    /// Lease promotion and expiry are the leader's own duties
    /// (`duties.rs`, proposed locally); a forged `LeasePromote` repeated
    /// would keep every lease alive forever.
    pub(super) fn decode(bytes: &[u8]) -> Result<Forwarded, tonic::Status> {
        let request = agora_kv::from_postcard(bytes).map_err(|error| {
            tonic::Status::invalid_argument(format!("agora: bad forwarded request: {error}"))
        })?;
        match request {
            Forwarded::Apply(Command::LeasePromote { .. } | Command::ExpireLeases { .. }) => Err(
                tonic::Status::invalid_argument("agora: only the leader proposes lease duties"),
            ),
            request => Ok(request),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Answer {
    /// The applied command's response.
    Response(Response),
    /// The lease's remaining time.
    TimeToLive(LeaseTimeToLive),
    /// A membership change was made (the added member, for MemberAdd).
    Member(Option<Member>),
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

    /// A refusal with `status`'s code and message (garbage in a Pipe item).
    pub(super) fn refused(status: &tonic::Status) -> ForwardAnswer {
        ForwardAnswer::Failed {
            code: status.code() as i32,
            message: status.message().to_string(),
            compact_revision: None,
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

impl<S: KvHost> Inner<S> {
    /// Sends `request` to `leader`'s Forward service over this member's
    /// pipe to it.
    pub(super) async fn forward(&self, leader: u64, request: &Forwarded) -> Attempt<Answer> {
        let pipe = self.pipe(leader)?;
        let command = postcard::to_stdvec(request).unwrap_or_default();
        let answer = pipe.send(command).await;
        // Not held while waiting: a forgotten pipe ends once it has
        // answered what it sent.
        drop(pipe);
        let outcome = match tokio::time::timeout(self.timings.forward_timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            // The pipe's task always answers; a dropped reply is a bug, and
            // its outcome is unknown.
            Ok(Err(_)) => Outcome::Lost,
            Err(_) => {
                // A leader this slow may be hung: the next request opens a new pipe.
                self.forget(leader);
                return Ok(Err(ApiError::Timeout));
            }
        };
        match outcome {
            Outcome::Answered(bytes) => match postcard::from_bytes::<ForwardAnswer>(&bytes) {
                Ok(answer) => answer.into_attempt(),
                Err(_) => Ok(Err(ApiError::WrongResponse("a forwarded request"))),
            },
            // Either way the pipe has ended; `pipe` replaces an ended one.
            Outcome::NeverSent => Err(Retry),
            Outcome::Lost => Ok(Err(ApiError::Timeout)),
        }
    }

    /// This member's pipe to `member`, opened if there is none or it ended;
    /// `Retry` if its address is unknown (nothing was sent).
    fn pipe(&self, member: u64) -> Result<Pipe, Retry> {
        let mut pipes = self.lock_pipes();
        if let Some(pipe) = pipes.get(&member).filter(|pipe| !pipe.is_closed()) {
            return Ok(pipe.clone());
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
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let pipe = Pipe::open(endpoint, member);
        pipes.insert(member, pipe.clone());
        Ok(pipe)
    }

    fn forget(&self, member: u64) {
        self.lock_pipes().remove(&member);
    }

    fn lock_pipes(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Pipe>> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.pipes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

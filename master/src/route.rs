//! Where a request goes: to this member's core while it leads the group,
//! or back to the client with the leader's address while it stands by.
//!
//! The member's leadership task (`replication::member`) publishes a
//! [`Route`] on a watch channel; every handler (agent links, the Scheduler
//! API, HTTP) reads it once per connection or call. A core that loses
//! leadership is stopped and its links and streams end, so clients come
//! back and are sent to the new leader.
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::event_loop::Command;

/// The running core of a leading member.
#[derive(Clone)]
pub(crate) struct ActiveCore {
    /// Commands to its event loop.
    pub(crate) tx: mpsc::Sender<Command>,
    /// Cancelled when the core stops: ends its agent links.
    pub(crate) stopped: CancellationToken,
    /// Aborts the core's loop at once (a crash, in tests).
    pub(crate) abort: tokio::task::AbortHandle,
}

/// How this member answers clients right now.
#[derive(Clone)]
pub(crate) enum Route {
    /// It leads and its core runs.
    Active(ActiveCore),
    /// It stands by (or its core is starting); the leader's client address
    /// if one is known.
    Standby { leader: Option<String> },
}

impl Route {
    /// The core's command queue, or the status a standby answers with.
    pub(crate) fn core(&self) -> Result<&ActiveCore, Status> {
        match self {
            Route::Active(core) => Ok(core),
            Route::Standby { leader } => Err(agora_proto::not_leader_status(leader.as_deref())),
        }
    }

    /// The leader's client address, for redirects; `None` while this
    /// member leads or no leader is known.
    pub(crate) fn leader(&self) -> Option<&str> {
        match self {
            Route::Active(_) => None,
            Route::Standby { leader } => leader.as_deref(),
        }
    }
}

/// The receiving side every handler holds.
pub(crate) type RouteRx = watch::Receiver<Route>;

/// The current route, cloned out so no lock is held across an await.
pub(crate) fn current(route: &RouteRx) -> Route {
    route.borrow().clone()
}

/// The current core's command queue or a standby's redirect status.
pub(crate) fn core_tx(route: &RouteRx) -> Result<mpsc::Sender<Command>, Status> {
    current(route).core().map(|core| core.tx.clone())
}

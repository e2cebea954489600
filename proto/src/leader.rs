//! "Not the leading master": how a standby master refuses a client and
//! names the leader, shared by the master (which refuses) and the agent and
//! scheduler SDK (which follow the hint), so both sides use one definition.
//!
//! - Scheduler gRPC API: every call is answered with
//!   [`not_leader_status`]: `UNAVAILABLE`, the message
//!   `"not the leading master; leader is at HOST:PORT"` (or `"...; no
//!   leader is known"`) and the ASCII metadata [`LEADER_METADATA_KEY`]
//!   `HOST:PORT` (absent when no leader is known). [`leader_hint`] reads it.
//! - Agent link: a registration is answered with a `LinkError` made by
//!   `LinkError::not_leader` (code 14, the same message, `leader` =
//!   `HOST:PORT` or empty), then the link is closed. `LinkError::leader_hint`
//!   reads it, and `link::status_of` carries it over into the status's
//!   metadata, so [`leader_hint`] works on a refused registration too.
//!
//! A hint is only ever used as "try this address next": it is validated
//! ([`leader_address`]) and never trusted for anything else. [`MasterWalk`]
//! is the clients' policy for walking their masters and following hints.
use std::net::Ipv6Addr;

/// The gRPC metadata key naming the leader on a standby's refusal.
pub const LEADER_METADATA_KEY: &str = "agora-leader";

/// How a not-leader refusal's message starts.
pub const NOT_LEADER: &str = "not the leading master";

/// The longest leader address accepted (a DNS name is at most 253 bytes,
/// plus `:` and a port); anything longer is garbage, not an address.
const MAX_ADDRESS_LEN: usize = 260;

/// Consecutive redirects a client follows without a pause. A leader change
/// settles in one or two hops; more means the hints point at each other
/// (e.g. two standbys each believing the other leads during an election),
/// and the client then falls back to its normal backoff.
pub const MAX_REDIRECT_HOPS: u32 = 3;

/// `leader` as a bare `host:port` if it is one: ASCII, a host of letters,
/// digits, `.`, `-`, `_` (or a bracketed IPv6 address), and a port 1-65535.
/// A leading `http://` and a trailing `/` are accepted and removed, since
/// masters' and agents' configurations name masters either way.
pub fn leader_address(leader: &str) -> Option<String> {
    let s = leader.trim();
    let s = s.strip_prefix("http://").unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.is_empty() || s.len() > MAX_ADDRESS_LEN || !s.is_ascii() {
        return None;
    }
    let (host, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if port.parse::<u16>().ok().filter(|p| *p != 0).is_none() {
        return None;
    }
    let host_ok = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    host_ok.then(|| s.to_string())
}

/// The refusal's message: names the leader if `leader` is a valid address.
pub fn not_leader_message(leader: Option<&str>) -> String {
    match leader.and_then(leader_address) {
        Some(l) => format!("{NOT_LEADER}; leader is at {l}"),
        None => format!("{NOT_LEADER}; no leader is known"),
    }
}

/// What a standby answers every Scheduler API call with: `UNAVAILABLE`,
/// [`not_leader_message`], and [`LEADER_METADATA_KEY`] when `leader` is a
/// valid address (an invalid one is treated as unknown).
pub fn not_leader_status(leader: Option<&str>) -> tonic::Status {
    let leader = leader.and_then(leader_address);
    let mut status = tonic::Status::unavailable(not_leader_message(leader.as_deref()));
    if let Some(l) = leader {
        insert_hint(&mut status, &l);
    }
    status
}

/// Adds the leader metadata to `status` (a validated address always parses
/// as an ASCII metadata value; if it did not, the hint is left out).
pub(crate) fn insert_hint(status: &mut tonic::Status, leader: &str) {
    if let Ok(v) = leader.parse::<tonic::metadata::AsciiMetadataValue>() {
        status.metadata_mut().insert(LEADER_METADATA_KEY, v);
    }
}

/// The leader a standby named in `status`: `None` unless the status is
/// `UNAVAILABLE` and carries a valid [`LEADER_METADATA_KEY`] (garbage,
/// non-ASCII or empty values are `None`, never a panic).
pub fn leader_hint(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let value = status.metadata().get(LEADER_METADATA_KEY)?;
    leader_address(value.to_str().ok()?)
}

/// Is `status` a standby's "not the leading master" refusal (with or
/// without a hint)?
pub fn is_not_leader(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.message().starts_with(NOT_LEADER)
}

/// What a client does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try [`MasterWalk::current`] at once.
    Now,
    /// Wait the client's backoff first, then try [`MasterWalk::current`].
    AfterBackoff,
}

/// A client's way through its configured masters, following leader hints
/// (sans-IO: the client connects, this only decides where next).
///
/// The configured list is walked in order. A not-leader refusal with a
/// hint makes the hinted address the next one, at once, even if it is not
/// in the list (a group may have members the client was not told of);
/// after [`MAX_REDIRECT_HOPS`] hints in a row the walk stops following
/// them, moves on in the list and asks for a backoff, so hints pointing at
/// each other cannot spin. Any other failure moves on in the list.
#[derive(Debug, Clone)]
pub struct MasterWalk {
    masters: Vec<String>,
    /// Position in `masters` (modulo its length).
    index: usize,
    /// A hinted leader being tried instead of `masters[index]`.
    redirect: Option<String>,
    /// Hints followed since the last success or plain failure.
    hops: u32,
    /// Back off after every plain failure (`true`), or only after a whole
    /// round of the list failed (`false`).
    backoff_each_failure: bool,
}

impl MasterWalk {
    /// A walk over `masters` (an empty list walks nothing: `current` is
    /// empty). `backoff_each_failure`: see [`MasterWalk::failed`].
    pub fn new(masters: Vec<String>, backoff_each_failure: bool) -> MasterWalk {
        MasterWalk {
            masters,
            index: 0,
            redirect: None,
            hops: 0,
            backoff_each_failure,
        }
    }

    /// The master to try now, as configured or as hinted (`host:port`).
    pub fn current(&self) -> &str {
        match &self.redirect {
            Some(r) => r,
            None => self
                .masters
                .get(self.index % self.masters.len().max(1))
                .map_or("", String::as_str),
        }
    }

    /// Is `current` a hinted leader rather than a configured master?
    pub fn is_redirected(&self) -> bool {
        self.redirect.is_some()
    }

    /// The current master accepted: stay with it; hints count from zero.
    pub fn succeeded(&mut self) {
        self.hops = 0;
    }

    /// The current master failed, refusing with `hint` (`None` for a plain
    /// failure: unreachable, reset, refused without a leader). Returns
    /// whether to try the new [`current`](MasterWalk::current) at once.
    /// A hint is followed at once if it is valid, not the current master
    /// and fewer than [`MAX_REDIRECT_HOPS`] were followed in a row. A plain
    /// failure moves on in the list and backs off (after each failure, or
    /// after each whole round, as configured); running out of hops does the
    /// same, always with a backoff.
    pub fn failed(&mut self, hint: Option<&str>) -> Retry {
        let hint = hint.and_then(leader_address);
        if let Some(h) = hint
            && !same_address(&h, self.current())
        {
            if self.hops < MAX_REDIRECT_HOPS {
                self.hops += 1;
                self.redirect = Some(h);
                return Retry::Now;
            }
            self.move_on();
            return Retry::AfterBackoff;
        }
        self.move_on();
        let round_done = self.index.is_multiple_of(self.masters.len().max(1));
        if self.backoff_each_failure || round_done {
            Retry::AfterBackoff
        } else {
            Retry::Now
        }
    }

    /// The next configured master; a redirect is dropped (its target is
    /// tried again only if it is hinted again).
    fn move_on(&mut self) {
        self.redirect = None;
        self.hops = 0;
        self.index = self.index.wrapping_add(1);
    }
}

/// Do `a` and `b` name the same `host:port` (ignoring `http://`)?
pub fn same_address(a: &str, b: &str) -> bool {
    let bare = |s: &str| leader_address(s).unwrap_or_else(|| s.trim().to_string());
    bare(a) == bare(b)
}

#[cfg(test)]
mod tests;

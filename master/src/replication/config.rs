//! How a master joins its group: its member id, the founding members'
//! addresses, where the etcd API listens, and the Raft tick.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::MasterError;

/// The etcd v3 API's port when none is given (etcd's client port).
pub const DEFAULT_ETCD_PORT: u16 = 2379;

/// One founding member as given on the command line or in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Where agents, frameworks, operators and the other masters reach it.
    pub api_addr: String,
    /// Where its etcd v3 API listens.
    pub etcd_addr: String,
}

/// The group settings of one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// This member's Raft id (≥ 1).
    pub member_id: u64,
    /// The founding members, this one included; empty means a group of one
    /// at the master's own address (what `agora dev` runs). Ignored once
    /// the data dir holds a group.
    pub peers: BTreeMap<u64, PeerSpec>,
    /// Start empty and wait to be added by the group's leader
    /// (`agora members add`), instead of founding a group with `peers`.
    /// `peers` then lists the members known so far (for redirects).
    pub join: bool,
    /// Where this member serves the etcd v3 API; `None` turns it off (the
    /// library default, so tests can run many masters; `agora master`
    /// serves it on port 2379 unless told otherwise).
    pub etcd_listen: Option<SocketAddr>,
    /// How much keyspace history the leader keeps before compacting it
    /// (etcd's `--auto-compaction-mode`/`--auto-compaction-retention`;
    /// default one hour, since the keyspace lives in memory).
    pub etcd_auto_compaction: agora_etcd::AutoCompaction,
    /// Bytes the keyspace may hold in memory before writes that add data
    /// are refused with the NOSPACE alarm (etcd's `--quota-backend-bytes`;
    /// default 2 GiB, as etcd's).
    pub etcd_quota_backend_bytes: u64,
    /// The Raft tick: elections take 10–20 ticks, heartbeats one.
    pub tick: Duration,
    /// Entries applied between snapshots (then the log is compacted); see
    /// `agora_raft::SNAPSHOT_INTERVAL`.
    pub snapshot_entries: u64,
    /// Entries kept behind a snapshot for followers slightly behind; see
    /// `agora_raft::LOG_TAIL_KEPT`.
    pub log_tail_entries: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            member_id: 1,
            peers: BTreeMap::new(),
            join: false,
            etcd_listen: None,
            etcd_auto_compaction: agora_etcd::AutoCompaction::default(),
            etcd_quota_backend_bytes: agora_etcd::DEFAULT_QUOTA_BACKEND_BYTES,
            tick: agora_raft::runner::TICK_INTERVAL,
            snapshot_entries: agora_raft::SNAPSHOT_INTERVAL,
            log_tail_entries: agora_raft::LOG_TAIL_KEPT,
        }
    }
}

impl GroupConfig {
    /// Parses `1=HOST:PORT,2=HOST:PORT/ETCD_PORT,...`: each member's id and
    /// client address, optionally with its etcd port after a slash (else
    /// [`DEFAULT_ETCD_PORT`] on the same host).
    pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, PeerSpec>, MasterError> {
        let mut peers = BTreeMap::new();
        for (i, item) in text.split(',').map(str::trim).enumerate() {
            let bad = |why: &str| MasterError::Config(format!("peers[{i}] {item:?}: {why}"));
            let (id, addr) = item
                .split_once('=')
                .ok_or_else(|| bad("expected ID=HOST:PORT"))?;
            let id = parse_member_id(id.trim())
                .ok_or_else(|| bad("the id must be a positive integer (or 0x and hex)"))?;
            if id == 0 {
                return Err(bad("member id 0 is reserved"));
            }
            let (api_addr, etcd_port) = match addr.split_once('/') {
                Some((api, port)) => (api, Some(port)),
                None => (addr, None),
            };
            let (host, port) = api_addr
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("expected HOST:PORT with a port number"));
            }
            let etcd_port = match etcd_port {
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| bad("the etcd port after '/' must be a port number"))?,
                None => DEFAULT_ETCD_PORT,
            };
            let spec = PeerSpec {
                api_addr: api_addr.to_string(),
                etcd_addr: format!("{host}:{etcd_port}"),
            };
            if peers.insert(id, spec).is_some() {
                return Err(bad("duplicate member id"));
            }
        }
        Ok(peers)
    }

    /// Checks the member is among its peers (when peers are given).
    pub fn validate(&self) -> Result<(), MasterError> {
        if self.member_id == 0 {
            return Err(MasterError::Config("member_id: 0 is reserved".into()));
        }
        if !self.peers.is_empty() && !self.peers.contains_key(&self.member_id) {
            return Err(MasterError::Config(format!(
                "peers: member {} is not in its own peer list",
                self.member_id
            )));
        }
        if self.tick.is_zero() {
            return Err(MasterError::Config("raft tick must be positive".into()));
        }
        if self.etcd_quota_backend_bytes == 0 {
            return Err(MasterError::Config(
                "etcd_quota_backend_bytes must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// A member id as Agora lists it (decimal), or as etcdctl prints it
/// (hexadecimal) with a `0x` prefix: `0xa` is member 10.
pub fn parse_member_id(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_with_and_without_etcd_ports_and_errors_name_the_item() {
        let peers = GroupConfig::parse_peers("1=a:5050, 2=b:6000/7000").unwrap();
        assert_eq!(peers[&1].etcd_addr, "a:2379");
        assert_eq!(peers[&2].api_addr, "b:6000");
        assert_eq!(peers[&2].etcd_addr, "b:7000");
        for bad in [
            "1",
            "x=a:1",
            "0=a:1",
            "1=a",
            "1=a:b",
            "1=a:1,1=b:2",
            "1=a:1/x",
            "0x=a:1",
            "0xg=a:1",
            "1,2=a:1",
        ] {
            let error = GroupConfig::parse_peers(bad).unwrap_err().to_string();
            assert!(error.contains("peers["), "{bad}: {error}");
        }
    }

    #[test]
    fn member_ids_are_decimal_or_hex_as_etcdctl_prints_them() {
        assert_eq!(parse_member_id("10"), Some(10));
        assert_eq!(parse_member_id("0xa"), Some(10));
        assert_eq!(parse_member_id("0XA"), Some(10));
        for bad in ["", "a", "0x", "-1", "1.5", "0x1g", "99999999999999999999"] {
            assert_eq!(parse_member_id(bad), None, "{bad:?}");
        }
        let peers = GroupConfig::parse_peers("1=a:5050,0xa=b:5050").unwrap();
        assert_eq!(peers.keys().copied().collect::<Vec<_>>(), [1, 10]);
    }
}

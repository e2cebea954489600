//! An in-process group of masters on loopback (each a real master with its
//! own sockets and Raft replica, in-memory or RocksDB logs), for tests of
//! failover with simulated agents and SDK frameworks in the same process.
//! `crash` is the in-process stand-in for kill -9 (see `TestMaster::crash`);
//! the process tests in `cli/tests/ha` kill real processes.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_master::MasterConfig;
use agora_master::replication::{GroupConfig, PeerSpec};

use crate::TestMaster;

/// Masters of one group, by member id.
pub struct TestGroup {
    /// The members; a crashed one stays here, stopped, until restarted.
    pub masters: BTreeMap<u64, TestMaster>,
}

impl TestGroup {
    /// `n` members on 127.0.0.1 with `config`'s timings (its group settings
    /// are replaced). Returns once they are started, not once one leads.
    pub async fn start(n: u64, config: MasterConfig) -> anyhow::Result<TestGroup> {
        Self::start_inner(n, config, false).await
    }

    /// Like [`TestGroup::start`], and every member serves the etcd API on a
    /// port of its own, known to the others (followers forward writes to
    /// the leader's etcd port).
    pub async fn start_with_etcd(n: u64, config: MasterConfig) -> anyhow::Result<TestGroup> {
        Self::start_inner(n, config, true).await
    }

    async fn start_inner(n: u64, config: MasterConfig, etcd: bool) -> anyhow::Result<TestGroup> {
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            listeners.insert(id, tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        }
        let mut peers = BTreeMap::new();
        let mut etcd_listen = BTreeMap::new();
        // Free ports for the etcd API, released for the members to bind only
        // once all are chosen: a probe dropped earlier could be handed out
        // again to the next member.
        let mut probes = Vec::new();
        for (id, listener) in &listeners {
            let addr = listener.local_addr()?.to_string();
            let etcd_addr = if etcd {
                let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
                let a = probe.local_addr()?;
                probes.push(probe);
                etcd_listen.insert(*id, a);
                a.to_string()
            } else {
                addr.clone()
            };
            let spec = PeerSpec {
                api_addr: addr,
                etcd_addr,
            };
            peers.insert(*id, spec);
        }
        drop(probes);
        let mut masters = BTreeMap::new();
        for (id, listener) in listeners {
            let mut member_config = config.clone();
            member_config.group = GroupConfig {
                member_id: id,
                peers: peers.clone(),
                ..config.group.clone()
            };
            if let Some(a) = etcd_listen.get(&id) {
                member_config.group.etcd_listen = Some(*a);
            }
            masters.insert(id, TestMaster::start_member(member_config, listener).await?);
        }
        Ok(TestGroup { masters })
    }

    /// `host:port` of every member, comma separated (an agent's `--master`).
    pub fn addresses(&self) -> String {
        let list: Vec<String> = self.masters.values().map(|m| m.host_port()).collect();
        list.join(",")
    }

    /// The member whose core runs, waiting up to `timeout` for one.
    pub async fn leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        crate::eventually("a leading master", timeout, || async {
            self.masters
                .iter()
                .find(|(_, m)| m.is_active())
                .map(|(id, _)| *id)
        })
        .await
    }
}

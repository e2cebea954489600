//! Who the members are and where clients reach them: the configured peer
//! list, plus what members added at run time published through the log.
//! Used to redirect clients to the leader and to list the group.
use std::collections::BTreeMap;
use std::sync::RwLock;

use super::machine::MemberInfo;

/// The group's address book, shared by the handlers and the leadership task.
#[derive(Debug)]
pub(crate) struct Directory {
    own_id: u64,
    members: RwLock<BTreeMap<u64, MemberInfo>>,
}

impl Directory {
    /// From the configured members (this one included).
    pub(crate) fn new(own_id: u64, members: BTreeMap<u64, MemberInfo>) -> Directory {
        Directory {
            own_id,
            members: RwLock::new(members),
        }
    }

    /// This member's id.
    pub(crate) fn own_id(&self) -> u64 {
        self.own_id
    }

    /// Member `id`'s client address (`host:port`).
    pub(crate) fn api_addr(&self, id: u64) -> Option<String> {
        self.member(id).map(|m| m.api_addr)
    }

    /// This member's client address.
    pub(crate) fn own_api_addr(&self) -> String {
        self.api_addr(self.own_id).unwrap_or_default()
    }

    /// Member `id`, if known.
    pub(crate) fn member(&self, id: u64) -> Option<MemberInfo> {
        // A poisoned lock only means a reader panicked; the map is intact.
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        members.get(&id).cloned()
    }

    /// Every member id this member knows of.
    pub(crate) fn ids(&self) -> Vec<u64> {
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        members.keys().copied().collect()
    }

    /// Adds or replaces what the log says about members.
    pub(crate) fn merge(&self, published: &BTreeMap<u64, MemberInfo>) {
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        for (id, info) in published {
            members.insert(*id, info.clone());
        }
    }
}

impl agora_etcd::MemberDirectory for Directory {
    fn member(&self, id: u64) -> Option<agora_etcd::Member> {
        Directory::member(self, id).map(|m| agora_etcd::Member {
            id: m.id,
            name: m.name,
            peer_urls: vec![format!("http://{}", m.api_addr)],
            // MemberList reports it as `http://host:port`, as etcd does
            // (agora-etcd's `cluster.rs`); the etcd port takes the scheme
            // off the :authority etcdctl then sends (`authority.rs`).
            client_urls: vec![m.etcd_addr],
            is_learner: false,
        })
    }
}

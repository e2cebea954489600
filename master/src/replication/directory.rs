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

    fn learn(&self, member: &agora_etcd::Member) {
        // Back from the URLs `member` above makes (the peer URL with a
        // scheme, the client URL as published).
        let address = |urls: &[String]| {
            let url = urls.first().map_or("", String::as_str);
            url.strip_prefix("http://").unwrap_or(url).to_string()
        };
        let info = MemberInfo {
            id: member.id,
            name: member.name.clone(),
            api_addr: address(&member.peer_urls),
            etcd_addr: address(&member.client_urls),
        };
        self.merge(&BTreeMap::from([(member.id, info)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_etcd::MemberDirectory;

    #[test]
    fn a_learned_member_lists_as_the_leader_answered_it() {
        let published = MemberInfo {
            id: 4,
            name: "master-4".to_string(),
            api_addr: "10.0.0.4:5050".to_string(),
            etcd_addr: "10.0.0.4:2379".to_string(),
        };
        let leaders = Directory::new(1, BTreeMap::from([(4, published.clone())]));
        let answered = MemberDirectory::member(&leaders, 4).unwrap();
        let follower = Directory::new(2, BTreeMap::new());
        follower.learn(&answered);
        assert_eq!(follower.member(4), Some(published));
        assert_eq!(MemberDirectory::member(&follower, 4), Some(answered));
    }
}

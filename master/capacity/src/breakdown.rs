//! Total, reserved per role, allocated, offered and free, per agent, per
//! attribute value, per role and for the cluster.
//!
//! For every row: `allocated + offered + free == total`, and
//! `unreserved + Σ reserved[role] == total` (exactly: fixed-point sums).
use std::collections::BTreeMap;

use agora_model::{AgentId, Attributes, Resources};
use serde::Serialize;

use crate::amount::Amount;

/// One agent, as the master holds it.
#[derive(Debug, Clone)]
pub struct AgentSnapshot {
    /// Its id.
    pub id: AgentId,
    /// Its hostname.
    pub hostname: String,
    /// Its attributes.
    pub attributes: Attributes,
    /// Everything it has (reservations included).
    pub total: Resources,
    /// Held by its live tasks.
    pub allocated: Resources,
    /// Held by its outstanding offers.
    pub offered: Resources,
    /// Connected and taking tasks (a disconnected, unreachable or draining
    /// agent's free resources are not free to use).
    pub active: bool,
    /// The operator drains it: it takes no new tasks (`active` is false
    /// too); what it has free still shows in the breakdown.
    pub draining: bool,
}

/// The master's agents at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every registered agent.
    pub agents: Vec<AgentSnapshot>,
}

/// One row of the breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Breakdown {
    /// Everything.
    pub total: Amount,
    /// Reserved for each role (a part of `total`).
    pub reserved: BTreeMap<String, Amount>,
    /// Not reserved for any role.
    pub unreserved: Amount,
    /// Held by running tasks.
    pub allocated: Amount,
    /// Held by outstanding offers.
    pub offered: Amount,
    /// Neither allocated nor offered.
    pub free: Amount,
}

impl Breakdown {
    /// Reserved for any role: `total - unreserved`, summed per role.
    pub fn reserved_total(&self) -> Amount {
        self.reserved
            .values()
            .fold(Amount::default(), |acc, a| acc.plus(*a))
    }

    fn of(a: &AgentSnapshot) -> Breakdown {
        let total = Amount::of(&a.total);
        let mut reserved = BTreeMap::new();
        for role in a.total.reservation_roles() {
            let r = a.total.filter_roles(|x| *x == role);
            reserved.insert(role.to_string(), Amount::of(&r));
        }
        let allocated = Amount::of(&a.allocated);
        let offered = Amount::of(&a.offered);
        Breakdown {
            total,
            reserved,
            unreserved: Amount::of(&a.total.unreserved()),
            allocated,
            offered,
            free: total.minus(allocated).minus(offered),
        }
    }

    fn add(&mut self, o: &Breakdown) {
        self.total = self.total.plus(o.total);
        for (role, amount) in &o.reserved {
            let e = self.reserved.entry(role.clone()).or_default();
            *e = e.plus(*amount);
        }
        self.unreserved = self.unreserved.plus(o.unreserved);
        self.allocated = self.allocated.plus(o.allocated);
        self.offered = self.offered.plus(o.offered);
        self.free = self.free.plus(o.free);
    }
}

/// One agent's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentCapacity {
    /// Its id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its attributes, as text.
    pub attributes: BTreeMap<String, String>,
    /// Whether it takes tasks now.
    pub active: bool,
    /// The operator drains it (its maintenance state).
    pub draining: bool,
    /// Its numbers.
    #[serde(flatten)]
    pub capacity: Breakdown,
}

/// The whole answer of [`breakdown`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Capacity {
    /// The cluster row (every agent).
    pub cluster: Breakdown,
    /// One row per agent, in id order.
    pub agents: Vec<AgentCapacity>,
    /// Per attribute name, per value: the agents that have it.
    pub by_attribute: BTreeMap<String, BTreeMap<String, Breakdown>>,
    /// Per role: what is reserved for it across the cluster.
    pub roles: BTreeMap<String, Amount>,
}

/// Computes the breakdown of a snapshot.
pub fn breakdown(s: &Snapshot) -> Capacity {
    let mut out = Capacity::default();
    let mut agents: Vec<&AgentSnapshot> = s.agents.iter().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    for a in agents {
        let row = Breakdown::of(a);
        out.cluster.add(&row);
        let attributes: BTreeMap<String, String> = a
            .attributes
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        for (name, value) in &attributes {
            out.by_attribute
                .entry(name.clone())
                .or_default()
                .entry(value.clone())
                .or_default()
                .add(&row);
        }
        out.agents.push(AgentCapacity {
            id: a.id.to_string(),
            hostname: a.hostname.clone(),
            attributes,
            active: a.active,
            draining: a.draining,
            capacity: row,
        });
    }
    out.roles = out.cluster.reserved.clone();
    out
}

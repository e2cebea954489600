//! Fragmentation for reference task shapes — how many of each shape fit
//! per agent and cluster-wide, the largest task each agent could still
//! take, and the free resources stranded on agents that cannot take even
//! the smallest shape (because one dimension is exhausted) — and "what if"
//! variants of a snapshot: an agent added, an agent drained.
use std::collections::BTreeMap;

use agora_model::{AgentId, Attributes, Resources, Role, Scalar};
use serde::Serialize;

use crate::amount::Amount;
use crate::breakdown::{AgentSnapshot, Snapshot};
use crate::fit::{FitRequest, fit};

/// A task shape capacity is counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceShape {
    /// Its name.
    pub name: String,
    /// CPUs.
    pub cpus: Scalar,
    /// Memory, MB.
    pub mem: Scalar,
}

/// The shapes used when none are configured: small, medium, large.
pub fn default_shapes() -> Vec<ReferenceShape> {
    [
        ("small", 500, 512),
        ("medium", 1000, 2048),
        ("large", 4000, 8192),
    ]
    .into_iter()
    .map(|(name, milli_cpus, mem)| ReferenceShape {
        name: name.into(),
        cpus: Scalar::from_milli(milli_cpus),
        mem: Scalar::from_units(mem),
    })
    .collect()
}

/// How many of one shape fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeCount {
    /// The shape.
    #[serde(flatten)]
    pub shape: ReferenceShape,
    /// Cluster-wide.
    pub cluster: u32,
    /// Per agent id.
    pub agents: BTreeMap<String, u32>,
}

/// One agent's fragmentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFragment {
    /// Its id.
    pub id: String,
    /// The largest single task it could take now (its free resources).
    pub largest: Amount,
    /// Free resources no reference shape can use (all of them when not
    /// even the smallest shape fits), and the dimension that blocks.
    pub stranded: Amount,
    /// The exhausted dimension that strands them.
    pub exhausted: Option<String>,
}

/// The answer of [`fragmentation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragmentation {
    /// Per reference shape.
    pub shapes: Vec<ShapeCount>,
    /// Per agent, in id order.
    pub agents: Vec<AgentFragment>,
}

fn shape_request(s: &ReferenceShape) -> FitRequest {
    FitRequest {
        cpus: s.cpus,
        mem: s.mem,
        disk: Scalar::ZERO,
        gpus: 0,
        ports: 0,
        role: Role::star(),
        constraints: Vec::new(),
        count: None,
    }
}

/// Fragmentation of `s` for `shapes` (the smallest is the one with the
/// fewest cpus, then memory).
pub fn fragmentation(s: &Snapshot, shapes: &[ReferenceShape]) -> Fragmentation {
    let mut counts = Vec::new();
    let mut smallest: Option<(&ReferenceShape, crate::FitAnswer)> = None;
    for shape in shapes {
        let answer = fit(s, &shape_request(shape));
        counts.push(ShapeCount {
            shape: shape.clone(),
            cluster: answer.placeable,
            agents: answer
                .agents
                .iter()
                .map(|a| (a.id.clone(), a.placeable))
                .collect(),
        });
        let smaller = smallest
            .as_ref()
            .is_none_or(|(cur, _)| (shape.cpus, shape.mem) < (cur.cpus, cur.mem));
        if smaller {
            smallest = Some((shape, answer));
        }
    }
    let mut agents: Vec<&AgentSnapshot> = s.agents.iter().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    let frags = agents
        .iter()
        .map(|a| {
            let free = if a.active {
                Amount::of(&a.total)
                    .minus(Amount::of(&a.allocated))
                    .minus(Amount::of(&a.offered))
            } else {
                Amount::default()
            };
            let blocked = smallest.as_ref().and_then(|(_, ans)| {
                ans.agents
                    .iter()
                    .find(|x| x.id == a.id.to_string())
                    .filter(|x| x.placeable == 0)
                    .map(|x| x.bottleneck.clone())
            });
            let (stranded, exhausted) = match blocked {
                Some(why) if a.active => (free, why),
                _ => (Amount::default(), None),
            };
            AgentFragment {
                id: a.id.to_string(),
                largest: free,
                stranded,
                exhausted,
            }
        })
        .collect();
    Fragmentation {
        shapes: counts,
        agents: frags,
    }
}

/// A change to consider before making it.
#[derive(Debug, Clone)]
pub enum WhatIf {
    /// One more agent with these resources and attributes.
    AddAgent {
        /// Its resources.
        resources: Resources,
        /// Its attributes.
        attributes: Attributes,
    },
    /// This agent drained: it takes no new tasks.
    Drain(AgentId),
}

/// `s` with the changes applied (added agents are named `what-if-N`).
pub fn what_if(s: &Snapshot, changes: &[WhatIf]) -> Snapshot {
    let mut out = s.clone();
    for (n, change) in changes.iter().enumerate() {
        match change {
            WhatIf::AddAgent {
                resources,
                attributes,
            } => {
                let Ok(id) = AgentId::parse(format!("what-if-{n}")) else {
                    continue;
                };
                out.agents.push(AgentSnapshot {
                    id: id.clone(),
                    hostname: id.to_string(),
                    attributes: attributes.clone(),
                    total: resources.clone(),
                    allocated: Resources::new(),
                    offered: Resources::new(),
                    active: true,
                    draining: false,
                });
            }
            WhatIf::Drain(id) => {
                for a in out.agents.iter_mut().filter(|a| &a.id == id) {
                    a.active = false;
                }
            }
        }
    }
    out
}

//! Carving task resources out of an offer, several tasks per offer.
use agora_model::{AgentId, Offer, OfferId, ResourceRequest, Resources, Role};

use crate::error::SdkError;

/// What is left of one offer while tasks are carved from it.
///
/// Each successful [`take`](OfferResources::take) removes the carved
/// resources, so tasks carved from the same `OfferResources` never overlap
/// (ports included). Carving prefers resources reserved for the offer's role,
/// then unreserved ones (see `Resources::carve`).
#[derive(Debug, Clone)]
pub struct OfferResources {
    offer_id: OfferId,
    agent_id: AgentId,
    role: Role,
    remaining: Resources,
}

impl OfferResources {
    /// Starts from everything in `offer`.
    pub fn new(offer: &Offer) -> OfferResources {
        OfferResources {
            offer_id: offer.id.clone(),
            agent_id: offer.agent_id.clone(),
            role: offer.role.clone(),
            remaining: offer.resources.clone(),
        }
    }

    /// Carves `req` out of what is left, or `None` (and nothing changes) if it
    /// does not fit.
    pub fn take(&mut self, req: &ResourceRequest) -> Option<Resources> {
        self.try_take(req).ok()
    }

    /// Like [`take`](OfferResources::take), but says what was missing.
    pub fn try_take(&mut self, req: &ResourceRequest) -> Result<Resources, SdkError> {
        let carved = self
            .remaining
            .carve(req, &self.role)
            .map_err(|e| SdkError::Insufficient(e.to_string()))?;
        self.remaining.subtract(&carved);
        Ok(carved)
    }

    /// Would `req` fit in what is left?
    pub fn fits(&self, req: &ResourceRequest) -> bool {
        self.remaining.carve(req, &self.role).is_ok()
    }

    /// Gives carved resources back (e.g. when a task was dropped after carving).
    pub fn give_back(&mut self, resources: &Resources) {
        self.remaining.add(resources);
    }

    /// What has not been carved yet.
    pub fn remaining(&self) -> &Resources {
        &self.remaining
    }

    /// The offer these came from.
    pub fn offer_id(&self) -> &OfferId {
        &self.offer_id
    }

    /// The offer's agent: tasks carved here must be built for it.
    pub fn agent_id(&self) -> &AgentId {
        &self.agent_id
    }

    /// The role the offer was made to.
    pub fn role(&self) -> &Role {
        &self.role
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{Attributes, FrameworkId};

    fn offer(resources: &str, role: &str) -> Offer {
        Offer {
            id: OfferId::new_unchecked("o1"),
            framework_id: FrameworkId::new_unchecked("f1"),
            agent_id: AgentId::new_unchecked("a1"),
            hostname: "h".into(),
            resources: Resources::parse(resources).expect("fixture parses"),
            attributes: Attributes::default(),
            role: Role::parse(role).expect("fixture role"),
        }
    }

    #[test]
    fn several_tasks_from_one_offer_until_it_runs_out() {
        let mut res = OfferResources::new(&offer("cpus:1;mem:128;ports:[31000-31002]", "*"));
        let req = ResourceRequest::new(0.3, 32.0).ports(1);
        let carved: Vec<Resources> = std::iter::from_fn(|| res.take(&req)).collect();
        assert_eq!(carved.len(), 3, "ports run out first");
        let ports: Vec<String> = carved.iter().map(|r| r.ports().to_string()).collect();
        assert_eq!(ports, ["[31000-31000]", "[31001-31001]", "[31002-31002]"]);
        assert_eq!(res.remaining().cpus().as_f64(), 0.1);
        assert_eq!(res.remaining().mem().as_f64(), 32.0);
        assert!(res.remaining().ports().is_empty());
        // A failed take leaves everything as it was.
        let before = res.remaining().clone();
        assert!(res.take(&ResourceRequest::new(0.2, 1.0)).is_none());
        assert_eq!(res.remaining(), &before);
        assert!(res.fits(&ResourceRequest::new(0.1, 32.0)));
    }

    #[test]
    fn reserved_resources_of_the_offer_role_go_first() {
        let mut res = OfferResources::new(&offer("cpus:1;cpus(web):0.5;mem:64;mem(web):64", "web"));
        let first = res.take(&ResourceRequest::new(0.5, 64.0)).expect("fits");
        assert_eq!(first.to_string(), "cpus(web):0.5;mem(web):64");
        let second = res.take(&ResourceRequest::new(0.7, 64.0)).expect("fits");
        assert_eq!(second.to_string(), "cpus:0.7;mem:64");
        assert!(
            res.take(&ResourceRequest::new(0.1, 1.0)).is_none(),
            "mem is gone"
        );
    }

    #[test]
    fn try_take_names_what_is_missing_and_give_back_restores() {
        let mut res = OfferResources::new(&offer("cpus:1;mem:64", "*"));
        let err = res
            .try_take(&ResourceRequest::new(2.0, 16.0))
            .expect_err("too big");
        assert!(err.to_string().contains("cpus"), "{err}");
        let got = res.take(&ResourceRequest::new(1.0, 64.0)).expect("fits");
        assert!(res.remaining().is_empty());
        res.give_back(&got);
        assert_eq!(res.remaining().cpus().as_f64(), 1.0);
        assert_eq!(res.offer_id().as_str(), "o1");
        assert_eq!(res.agent_id().as_str(), "a1");
        assert!(res.role().is_star());
    }
}

//! Why an offer was not used, per offer and aggregated as Marathon's
//! `/v2/queue` `processedOffersSummary` funnel: the "why is my app waiting"
//! answer.
use std::collections::BTreeMap;

/// One reason an offer could not take (another) instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeclineReason {
    /// None of the offer's resources belong to an accepted role.
    UnfulfilledRole,
    /// A constraint rejects the agent.
    UnfulfilledConstraint {
        /// Its index in the app's `constraints`.
        index: usize,
        /// Its text form, e.g. `hostname:UNIQUE`.
        constraint: String,
    },
    /// Not enough cpus left.
    InsufficientCpus,
    /// Not enough memory left.
    InsufficientMemory,
    /// Not enough disk left.
    InsufficientDisk,
    /// Not enough GPUs left.
    InsufficientGpus,
    /// Not enough (or not the required) host ports left.
    InsufficientPorts,
}

/// A reason without its details, in Marathon's funnel order (its
/// `NoOfferMatchReason.reasonFunnel`): the order in which an offer meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonKind {
    /// `UnfulfilledRole`.
    UnfulfilledRole,
    /// `UnfulfilledConstraint`.
    UnfulfilledConstraint,
    /// `InsufficientCpus`.
    InsufficientCpus,
    /// `InsufficientMemory`.
    InsufficientMemory,
    /// `InsufficientDisk`.
    InsufficientDisk,
    /// `InsufficientGpus`.
    InsufficientGpus,
    /// `InsufficientPorts`.
    InsufficientPorts,
}

/// Every kind, in funnel order.
pub const FUNNEL: [ReasonKind; 7] = [
    ReasonKind::UnfulfilledRole,
    ReasonKind::UnfulfilledConstraint,
    ReasonKind::InsufficientCpus,
    ReasonKind::InsufficientMemory,
    ReasonKind::InsufficientDisk,
    ReasonKind::InsufficientGpus,
    ReasonKind::InsufficientPorts,
];

impl ReasonKind {
    /// Marathon's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::UnfulfilledRole => "UnfulfilledRole",
            ReasonKind::UnfulfilledConstraint => "UnfulfilledConstraint",
            ReasonKind::InsufficientCpus => "InsufficientCpus",
            ReasonKind::InsufficientMemory => "InsufficientMemory",
            ReasonKind::InsufficientDisk => "InsufficientDisk",
            ReasonKind::InsufficientGpus => "InsufficientGpus",
            ReasonKind::InsufficientPorts => "InsufficientPorts",
        }
    }
}

impl DeclineReason {
    /// Without details.
    pub fn kind(&self) -> ReasonKind {
        match self {
            DeclineReason::UnfulfilledRole => ReasonKind::UnfulfilledRole,
            DeclineReason::UnfulfilledConstraint { .. } => ReasonKind::UnfulfilledConstraint,
            DeclineReason::InsufficientCpus => ReasonKind::InsufficientCpus,
            DeclineReason::InsufficientMemory => ReasonKind::InsufficientMemory,
            DeclineReason::InsufficientDisk => ReasonKind::InsufficientDisk,
            DeclineReason::InsufficientGpus => ReasonKind::InsufficientGpus,
            DeclineReason::InsufficientPorts => ReasonKind::InsufficientPorts,
        }
    }
}

/// One stage of the funnel: of `processed` offers that got this far,
/// `declined` stopped here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelStage {
    /// The reason.
    pub reason: ReasonKind,
    /// Offers stopped at this stage.
    pub declined: u32,
    /// Offers that reached this stage.
    pub processed: u32,
}

/// Offers processed for one app and why the unused ones were not used.
/// Summaries of successive rounds add up with [`RejectSummary::merge`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RejectSummary {
    /// Offers looked at.
    pub processed_offers: u32,
    /// Offers that launched nothing.
    pub unused_offers: u32,
    /// Unused offers by their first reason in funnel order.
    pub declined: BTreeMap<ReasonKind, u32>,
}

impl RejectSummary {
    /// Counts one offer; `reasons` is empty if it was used.
    pub fn record(&mut self, used: bool, reasons: &[DeclineReason]) {
        self.processed_offers += 1;
        if used {
            return;
        }
        self.unused_offers += 1;
        if let Some(first) = reasons.iter().map(DeclineReason::kind).min() {
            *self.declined.entry(first).or_insert(0) += 1;
        }
    }

    /// Adds another round's counts.
    pub fn merge(&mut self, other: &RejectSummary) {
        self.processed_offers += other.processed_offers;
        self.unused_offers += other.unused_offers;
        for (k, n) in &other.declined {
            *self.declined.entry(*k).or_insert(0) += n;
        }
    }

    /// The funnel over the unused offers, as `rejectSummaryLastOffers`:
    /// every stage, in order, with the offers that reached and stopped at it.
    pub fn funnel(&self) -> Vec<FunnelStage> {
        let mut reaching = self.unused_offers;
        FUNNEL
            .iter()
            .map(|&reason| {
                let declined = self.declined.get(&reason).copied().unwrap_or(0);
                let stage = FunnelStage {
                    reason,
                    declined,
                    processed: reaching,
                };
                reaching = reaching.saturating_sub(declined);
                stage
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_funnel_counts_each_unused_offer_at_its_first_reason() {
        let mut s = RejectSummary::default();
        s.record(true, &[]);
        s.record(
            false,
            &[
                DeclineReason::InsufficientMemory,
                DeclineReason::InsufficientCpus,
            ],
        );
        s.record(false, &[DeclineReason::InsufficientPorts]);
        s.record(
            false,
            &[DeclineReason::UnfulfilledConstraint {
                index: 0,
                constraint: "hostname:UNIQUE".into(),
            }],
        );
        assert_eq!((s.processed_offers, s.unused_offers), (4, 3));
        let f = s.funnel();
        assert_eq!(
            f[0],
            FunnelStage {
                reason: ReasonKind::UnfulfilledRole,
                declined: 0,
                processed: 3
            }
        );
        assert_eq!(f[1].declined, 1);
        assert_eq!(
            f[2],
            FunnelStage {
                reason: ReasonKind::InsufficientCpus,
                declined: 1,
                processed: 2
            }
        );
        assert_eq!(
            f[6],
            FunnelStage {
                reason: ReasonKind::InsufficientPorts,
                declined: 1,
                processed: 1
            }
        );
        let mut t = s.clone();
        t.merge(&s);
        assert_eq!(t.unused_offers, 6);
        assert_eq!(t.declined[&ReasonKind::InsufficientCpus], 2);
    }
}

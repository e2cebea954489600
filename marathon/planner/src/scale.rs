//! Scale-down: which instances to kill. Instances are taken one at a time
//! from the largest GROUP_BY bucket (so the spread narrows, as Marathon's
//! `selectInstancesToKill`), then the least useful first (unreachable, then
//! not yet running, then unhealthy, then not ready, then serving), then in
//! `killSelection`
//! order (YOUNGEST_FIRST by default), then by id so the choice is stable.
use std::cmp::Ordering;

use crate::app::KillSelection;
use crate::constraint::{Constraint, Operator};
use crate::ids::InstanceId;
use crate::instance::{Condition, InstanceView};
use crate::placement::FieldCounter;

/// Picks `count` of the active instances to kill (fewer if there are fewer).
pub fn select_to_kill<'a>(
    instances: impl IntoIterator<Item = &'a InstanceView>,
    count: usize,
    constraints: &[Constraint],
    selection: KillSelection,
) -> Vec<InstanceId> {
    let group_by: Vec<&Constraint> = constraints
        .iter()
        .filter(|c| matches!(c.op, Operator::GroupBy(_)))
        .collect();
    let mut candidates: Vec<&InstanceView> =
        instances.into_iter().filter(|i| i.is_active()).collect();
    let mut buckets: Vec<FieldCounter> = group_by
        .iter()
        .map(|c| {
            let mut counter = FieldCounter::default();
            for i in &candidates {
                if let Some(v) = i.agent.value(&c.field) {
                    counter.add(v);
                }
            }
            counter
        })
        .collect();
    let mut out = Vec::with_capacity(count.min(candidates.len()));
    while out.len() < count {
        let sizes = |i: &InstanceView| -> Vec<u32> {
            group_by
                .iter()
                .zip(&buckets)
                .map(|(c, b)| i.agent.value(&c.field).map_or(0, |v| b.count(v)))
                .collect()
        };
        let best = candidates
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                sizes(a)
                    .cmp(&sizes(b))
                    .then_with(|| uselessness(a).cmp(&uselessness(b)))
                    .then_with(|| by_selection(a, b, selection))
                    .then_with(|| b.id.cmp(&a.id))
            })
            .map(|(idx, _)| idx);
        let Some(idx) = best else { break };
        let victim = candidates.swap_remove(idx);
        for (c, b) in group_by.iter().zip(&mut buckets) {
            if let Some(v) = victim.agent.value(&c.field) {
                b.remove(v);
            }
        }
        out.push(victim.id.clone());
    }
    out
}

/// Higher dies first: unreachable, then not running yet, then unhealthy,
/// then healthy but not ready.
fn uselessness(i: &InstanceView) -> u8 {
    match i.condition {
        Condition::Unreachable | Condition::UnreachableInactive => 5,
        Condition::Scheduled | Condition::Staging => 4,
        Condition::Running if !i.healthy => 3,
        Condition::Running if !i.ready => 2,
        Condition::Running => 1,
        Condition::Killing | Condition::Terminal => 0,
    }
}

/// `Greater` means `a` should die before `b`.
fn by_selection(a: &InstanceView, b: &InstanceView, selection: KillSelection) -> Ordering {
    match selection {
        KillSelection::YoungestFirst => a.started_at.cmp(&b.started_at),
        KillSelection::OldestFirst => b.started_at.cmp(&a.started_at),
    }
}

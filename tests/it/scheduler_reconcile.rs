//! Reconciliation through the scheduler SDK: explicit (named tasks, including
//! unknown ones) and implicit (every non-terminal task).
use std::collections::BTreeMap;
use std::time::Duration;

use agora_scheduler_sdk::model::{
    AgentId, Offer, TaskId, TaskSpec, TaskState, TaskStatus, TaskStatusReason,
};
use agora_scheduler_sdk::{OfferResources, TaskBuilder};
use agora_tests::{TaskBehaviour, TestMaster};

use crate::scheduler_support::{Ev, Fw, agent, info};

/// `n` tasks on one offer; those named in `finish` finish after 50 ms (the
/// simulator reads the `sim.*` labels), the rest run forever.
fn tasks(offer: &Offer, names: &[&str], finish: &[&str]) -> Vec<TaskSpec> {
    let mut res = OfferResources::new(offer);
    names
        .iter()
        .map(|n| {
            let carved = res
                .take(&agora_scheduler_sdk::model::ResourceRequest::new(0.1, 32.0))
                .expect("fits");
            let mut b = TaskBuilder::new(*n).shell("sleep 1000").resources(carved);
            if finish.contains(n) {
                b = b
                    .label("sim.behaviour", "finish")
                    .label("sim.duration_ms", "50");
            }
            b.build(&offer.agent_id).expect("valid task")
        })
        .collect()
}

/// The next reconciliation answer (reason RECONCILIATION) for each task in
/// `names`, in any order.
async fn answers(fw: &mut Fw, names: &[&str]) -> BTreeMap<String, TaskStatus> {
    let mut out = BTreeMap::new();
    for _ in names {
        let st = fw
            .expect("a reconciliation answer", |e| match e {
                Ev::Update(s)
                    if s.reason == TaskStatusReason::Reconciliation
                        && names.contains(&s.task_id.as_str()) =>
                {
                    Some(s.clone())
                }
                _ => None,
            })
            .await;
        out.insert(st.task_id.to_string(), st);
    }
    out
}

#[tokio::test]
async fn explicit_reconciliation_answers_running_finished_and_unknown_tasks() -> anyhow::Result<()>
{
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("reconcile-explicit")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, tasks(&offer, &["run", "done"], &["done"]))
        .await?;
    fw.state("run", TaskState::Running).await;
    fw.state("done", TaskState::Finished).await;

    let ask = vec![
        (TaskId::new_unchecked("run"), Some(agent_id.clone())),
        (TaskId::new_unchecked("done"), None),
        (
            TaskId::new_unchecked("ghost"),
            Some(AgentId::new_unchecked("nowhere")),
        ),
    ];
    fw.driver.reconcile(ask).await?;
    let got = answers(&mut fw, &["run", "done", "ghost"]).await;
    assert_eq!(got["run"].state, TaskState::Running);
    assert_eq!(got["run"].agent_id.as_ref(), Some(&agent_id));
    assert_eq!(got["done"].state, TaskState::Finished);
    assert_eq!(got["ghost"].state, TaskState::Unknown);
    assert!(
        got.values().all(|s| s.uuid.is_none()),
        "reconciliation answers are not acknowledged"
    );
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn implicit_reconciliation_reports_every_non_terminal_task_only() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("reconcile-implicit")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, tasks(&offer, &["a", "b", "c"], &["c"]))
        .await?;
    fw.state("a", TaskState::Running).await;
    fw.state("b", TaskState::Running).await;
    fw.state("c", TaskState::Finished).await;

    fw.driver.reconcile(vec![]).await?;
    let got = answers(&mut fw, &["a", "b"]).await;
    assert!(
        got.values().all(|s| s.state == TaskState::Running),
        "{got:?}"
    );
    let extra = fw
        .try_expect(Duration::from_millis(500), |e| match e {
            Ev::Update(s) if s.reason == TaskStatusReason::Reconciliation => Some(s.clone()),
            _ => None,
        })
        .await;
    assert!(extra.is_none(), "a terminal task was reported: {extra:?}");
    fw.stop().await;
    Ok(())
}

//! The Scheduler gRPC service (Mesos v1 scheduler calls as RPCs).
use std::time::Duration;

use agora_model::{AgentId, FrameworkId, OfferId, Role, StreamId, TaskId};
use agora_proto::{convert, v1};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::ask;
use super::stream::NotifyOnDrop;
use crate::core::{InvalidTask, SchedulerCall};
use crate::event_loop::{Command, FRAMEWORK_EVENT_BUFFER};
use crate::route::{self, RouteRx};

pub(crate) struct SchedulerApi {
    /// The leading core, or a redirect to it.
    pub(crate) route: RouteRx,
}

/// Acknowledgements in one AcknowledgeMany call: enough for a burst, small
/// enough that one call is a few hundred kilobytes.
const MAX_ACKNOWLEDGEMENTS: usize = 10_000;

fn bad(field: &str, e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {e}"))
}

fn header(h: Option<v1::CallHeader>) -> Result<(FrameworkId, StreamId), Status> {
    let h =
        h.ok_or_else(|| Status::invalid_argument("header: missing (framework_id and stream_id)"))?;
    let fw = FrameworkId::parse(h.framework_id).map_err(|e| bad("header.framework_id", e))?;
    if h.stream_id.is_empty() {
        return Err(Status::invalid_argument(
            "header.stream_id: must not be empty",
        ));
    }
    let stream = StreamId::parse(h.stream_id).map_err(|e| bad("header.stream_id", e))?;
    Ok((fw, stream))
}

/// Decodes an ACCEPT's task descriptions. A task that fails validation does
/// not fail the call: it is answered with TASK_ERROR naming the field, as in
/// Mesos, so the other tasks of the ACCEPT still launch.
fn task_templates(infos: Vec<v1::TaskInfo>) -> Vec<Result<agora_model::TaskTemplate, InvalidTask>> {
    infos
        .iter()
        .map(|t| {
            convert::task_template_from_wire(t).map_err(|e| InvalidTask {
                task_id: t.task_id.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn roles(list: Vec<String>, field: &str) -> Result<Vec<Role>, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, r)| Role::parse(r).map_err(|e| bad(&format!("{field}[{i}]"), e)))
        .collect()
}

fn offer_ids(list: Vec<String>) -> Result<Vec<OfferId>, Status> {
    list.into_iter()
        .enumerate()
        .map(|(i, o)| OfferId::parse(o).map_err(|e| bad(&format!("offer_ids[{i}]"), e)))
        .collect()
}

fn refuse(f: Option<v1::Filters>) -> Option<f64> {
    f.and_then(|f| f.refuse_seconds)
}

impl SchedulerApi {
    async fn call(
        &self,
        h: Option<v1::CallHeader>,
        call: SchedulerCall,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let (framework, stream) = header(h)?;
        let tx = route::core_tx(&self.route)?;
        ask(&tx, |reply| Command::Call {
            framework,
            stream,
            call,
            reply,
        })
        .await?;
        Ok(Response::new(v1::CallResponse {}))
    }
}

#[tonic::async_trait]
impl v1::scheduler_server::Scheduler for SchedulerApi {
    type SubscribeStream = NotifyOnDrop<v1::Event>;

    async fn subscribe(
        &self,
        req: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = req.into_inner();
        let info = req
            .framework_info
            .ok_or_else(|| Status::invalid_argument("framework_info: missing"))?;
        let info = convert::framework_from_wire(&info)?;
        let suppressed = roles(req.suppressed_roles, "suppressed_roles")?;
        let tx = route::core_tx(&self.route)?;
        let (events, rx) = mpsc::channel(FRAMEWORK_EVENT_BUFFER);
        let sub = ask(&tx, |reply| Command::Subscribe {
            info,
            suppressed,
            events,
            reply,
        })
        .await?;
        let closed = Command::FrameworkStreamClosed {
            framework: sub.framework_id,
            stream: sub.stream_id,
        };
        Ok(Response::new(NotifyOnDrop::new(rx, tx, closed)))
    }

    async fn accept(
        &self,
        req: Request<v1::AcceptRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let mut tasks = Vec::new();
        for (i, op) in r.operations.into_iter().enumerate() {
            match op.operation {
                Some(v1::operation::Operation::Launch(l)) => tasks.extend(l.task_infos),
                None => {
                    return Err(Status::invalid_argument(format!(
                        "operations[{i}]: missing or unsupported operation"
                    )));
                }
            }
        }
        let call = SchedulerCall::Accept {
            offer_ids: offer_ids(r.offer_ids)?,
            tasks: task_templates(tasks),
            refuse_seconds: refuse(r.filters),
        };
        self.call(r.header, call).await
    }

    async fn decline(
        &self,
        req: Request<v1::DeclineRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let call = SchedulerCall::Decline {
            offer_ids: offer_ids(r.offer_ids)?,
            refuse_seconds: refuse(r.filters),
        };
        self.call(r.header, call).await
    }

    async fn revive(
        &self,
        req: Request<v1::ReviveRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        self.call(
            r.header,
            SchedulerCall::Revive {
                roles: roles(r.roles, "roles")?,
            },
        )
        .await
    }

    async fn suppress(
        &self,
        req: Request<v1::SuppressRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        self.call(
            r.header,
            SchedulerCall::Suppress {
                roles: roles(r.roles, "roles")?,
            },
        )
        .await
    }

    async fn kill(
        &self,
        req: Request<v1::KillRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let task = TaskId::parse(r.task_id).map_err(|e| bad("task_id", e))?;
        let agent = if r.agent_id.is_empty() {
            None
        } else {
            Some(AgentId::parse(r.agent_id).map_err(|e| bad("agent_id", e))?)
        };
        let grace = match r.kill_policy.and_then(|k| k.grace_period_seconds) {
            Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            Some(s) => {
                return Err(bad(
                    "kill_policy.grace_period_seconds",
                    format!("{s} is out of range"),
                ));
            }
            None => None,
        };
        self.call(r.header, SchedulerCall::Kill { task, agent, grace })
            .await
    }

    async fn acknowledge(
        &self,
        req: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let agent = AgentId::parse(r.agent_id).map_err(|e| bad("agent_id", e))?;
        let task = TaskId::parse(r.task_id).map_err(|e| bad("task_id", e))?;
        let uuid = uuid::Uuid::from_slice(&r.uuid).map_err(|_| bad("uuid", "must be 16 bytes"))?;
        self.call(r.header, SchedulerCall::Acknowledge { agent, task, uuid })
            .await
    }

    async fn acknowledge_many(
        &self,
        req: Request<v1::AcknowledgeManyRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        if r.acknowledgements.len() > MAX_ACKNOWLEDGEMENTS {
            return Err(bad(
                "acknowledgements",
                format!("more than {MAX_ACKNOWLEDGEMENTS} in one call"),
            ));
        }
        let mut acks = Vec::with_capacity(r.acknowledgements.len());
        for (i, a) in r.acknowledgements.into_iter().enumerate() {
            let f = |name: &str| format!("acknowledgements[{i}].{name}");
            let agent = AgentId::parse(a.agent_id).map_err(|e| bad(&f("agent_id"), e))?;
            let task = TaskId::parse(a.task_id).map_err(|e| bad(&f("task_id"), e))?;
            let uuid =
                uuid::Uuid::from_slice(&a.uuid).map_err(|_| bad(&f("uuid"), "must be 16 bytes"))?;
            acks.push((agent, task, uuid));
        }
        self.call(r.header, SchedulerCall::AcknowledgeMany { acks })
            .await
    }

    async fn reconcile(
        &self,
        req: Request<v1::ReconcileRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let mut tasks = Vec::new();
        for (i, t) in r.tasks.into_iter().enumerate() {
            let task =
                TaskId::parse(t.task_id).map_err(|e| bad(&format!("tasks[{i}].task_id"), e))?;
            let agent = if t.agent_id.is_empty() {
                None
            } else {
                Some(
                    AgentId::parse(t.agent_id)
                        .map_err(|e| bad(&format!("tasks[{i}].agent_id"), e))?,
                )
            };
            tasks.push((task, agent));
        }
        self.call(r.header, SchedulerCall::Reconcile { tasks })
            .await
    }

    async fn teardown(
        &self,
        req: Request<v1::TeardownRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        self.call(req.into_inner().header, SchedulerCall::Teardown)
            .await
    }

    async fn update_framework(
        &self,
        req: Request<v1::UpdateFrameworkRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = req.into_inner();
        let info = r
            .framework_info
            .ok_or_else(|| Status::invalid_argument("framework_info: missing"))?;
        let info = convert::framework_from_wire(&info)?;
        let suppressed = roles(r.suppressed_roles, "suppressed_roles")?;
        self.call(
            r.header,
            SchedulerCall::UpdateFramework { info, suppressed },
        )
        .await
    }
}

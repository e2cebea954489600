//! The AgentService gRPC service: Register, then one Attach stream.
use agora_model::{AgentId, FrameworkId, SessionId};
use agora_proto::{convert, v1};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use super::ask;
use super::stream::NotifyOnDrop;
use super::wire;
use crate::core::{AgentRegistration, ReportedTask};
use crate::event_loop::Command;

/// Messages buffered towards one agent. Launches and kills are small; an
/// agent this far behind is treated as disconnected and re-registers.
pub(crate) const AGENT_MESSAGE_BUFFER: usize = 4096;

pub(crate) struct AgentApi {
    pub(crate) tx: mpsc::Sender<Command>,
    /// Every Attach stream's forwarder runs here, so shutdown can stop them
    /// and wait for them instead of leaving them to the runtime.
    pub(crate) forwarders: TaskTracker,
    pub(crate) stop: CancellationToken,
}

fn decode_registration(r: v1::RegisterRequest) -> Result<AgentRegistration, Status> {
    let info = r
        .agent_info
        .ok_or_else(|| Status::invalid_argument("agent_info: missing"))?;
    let info = convert::agent_info_from_wire(&info)?;
    let Some(agent_id) = info.id.clone() else {
        if !r.tasks.is_empty() {
            return Err(Status::invalid_argument(
                "tasks: a first registration cannot report tasks",
            ));
        }
        return Ok(AgentRegistration {
            info,
            tasks: vec![],
            frameworks: vec![],
            updates: vec![],
        });
    };
    let mut tasks = Vec::new();
    for (i, t) in r.tasks.iter().enumerate() {
        let f = format!("tasks[{i}]");
        let framework = FrameworkId::parse(t.framework_id.clone())
            .map_err(|e| Status::invalid_argument(format!("{f}.framework_id: {e}")))?;
        let spec = t
            .task
            .as_ref()
            .ok_or_else(|| Status::invalid_argument(format!("{f}.task: missing")))?;
        let spec = convert::task_from_wire(spec, &agent_id).map_err(|e| e.at(&f))?;
        let state = convert::state_from_wire(t.state).map_err(|e| e.at(&f))?;
        tasks.push(ReportedTask {
            framework,
            spec,
            state,
            healthy: t.healthy,
        });
    }
    let mut frameworks = Vec::new();
    for (i, f) in r.frameworks.iter().enumerate() {
        frameworks
            .push(convert::framework_from_wire(f).map_err(|e| e.at(&format!("frameworks[{i}]")))?);
    }
    let mut updates = Vec::new();
    for (i, u) in r.unacknowledged_updates.iter().enumerate() {
        let f = format!("unacknowledged_updates[{i}]");
        let fw = FrameworkId::parse(u.framework_id.clone())
            .map_err(|e| Status::invalid_argument(format!("{f}.framework_id: {e}")))?;
        let st = u
            .status
            .as_ref()
            .ok_or_else(|| Status::invalid_argument(format!("{f}.status: missing")))?;
        updates.push((fw, convert::status_from_wire(st).map_err(|e| e.at(&f))?));
    }
    Ok(AgentRegistration {
        info,
        tasks,
        frameworks,
        updates,
    })
}

#[tonic::async_trait]
impl v1::agent_service_server::AgentService for AgentApi {
    type AttachStream = NotifyOnDrop<v1::MasterMessage>;

    async fn register(
        &self,
        req: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::RegisterResponse>, Status> {
        let reg = Box::new(decode_registration(req.into_inner())?);
        let resp = ask(&self.tx, |reply| Command::RegisterAgent { reg, reply }).await?;
        Ok(Response::new(resp))
    }

    async fn attach(
        &self,
        req: Request<Streaming<v1::AgentMessage>>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let mut inbound = req.into_inner();
        // The first message says who is attaching.
        let hello = match inbound.next().await {
            Some(Ok(v1::AgentMessage {
                message: Some(v1::agent_message::Message::Hello(h)),
            })) => h,
            Some(Ok(_)) => return Err(Status::invalid_argument("the first message must be Hello")),
            Some(Err(e)) => return Err(e),
            None => return Err(Status::invalid_argument("stream ended before Hello")),
        };
        let agent = AgentId::parse(hello.agent_id)
            .map_err(|e| Status::invalid_argument(format!("hello.agent_id: {e}")))?;
        let session = SessionId::parse(hello.session_id)
            .map_err(|e| Status::invalid_argument(format!("hello.session_id: {e}")))?;
        let (out_tx, out_rx) = mpsc::channel(AGENT_MESSAGE_BUFFER);
        let (a, s) = (agent.clone(), session.clone());
        ask(&self.tx, |reply| Command::AttachAgent {
            agent: a,
            session: s,
            tx: out_tx,
            reply,
        })
        .await?;
        // Forward the agent's messages to the loop until the stream ends.
        let loop_tx = self.tx.clone();
        let (a, s) = (agent.clone(), session.clone());
        let stop = self.stop.clone();
        self.forwarders.spawn(async move {
            loop {
                let item = tokio::select! {
                    () = stop.cancelled() => return,
                    item = inbound.next() => item,
                };
                let Some(item) = item else { break };
                match item {
                    Ok(v1::AgentMessage { message: Some(msg) }) => {
                        let msg = match wire::from_agent_wire(msg) {
                            Ok(Some(m)) => m,
                            Ok(None) => continue,
                            Err(e) => {
                                warn!(agent = %a, error = %e, "malformed message from agent dropped");
                                continue;
                            }
                        };
                        let cmd = Command::AgentMessage {
                            agent: a.clone(),
                            session: s.clone(),
                            msg,
                        };
                        if loop_tx.send(cmd).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!(agent = %a, error = %e, "agent stream error");
                        break;
                    }
                }
            }
            let _ = loop_tx
                .send(Command::AgentStreamClosed {
                    agent: a,
                    session: s,
                })
                .await;
        });
        let closed = Command::AgentStreamClosed { agent, session };
        Ok(Response::new(NotifyOnDrop::new(
            out_rx,
            self.tx.clone(),
            closed,
        )))
    }
}

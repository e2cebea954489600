//! The agent link (see `agent.proto`): on one TCP connection an agent
//! registers, says Hello with the session it got, and then the connection
//! is its stream. A writer task drains the loop's messages to the socket;
//! this connection's task forwards what the agent sends to the loop.
use std::time::Duration;

use agora_model::{AgentId, FrameworkId, SessionId};
use agora_proto::link::{FrameReader, FrameWriter, error_frame, not_leader_frame};
use agora_proto::v1::link_frame::Frame;
use agora_proto::{convert, v1};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tracing::{debug, warn};

use super::ask;
use super::wire;
use crate::core::{AgentRegistration, ReportedTask};
use crate::event_loop::Command;
use crate::route::{self, RouteRx};

/// How long an agent has for each of Register and Hello once connected.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A burst of messages the agent's socket has not taken within this long
/// ends the link: an agent that stopped reading is treated as gone (it
/// re-registers when it comes back) instead of holding the writer forever.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages buffered towards one agent. Launches and kills are small; an
/// agent this far behind is treated as disconnected and re-registers.
pub(crate) const AGENT_MESSAGE_BUFFER: usize = 4096;

#[derive(Clone)]
pub(crate) struct AgentApi {
    /// Where links go: the leading core, or a redirect.
    pub(crate) route: RouteRx,
    /// Every Attach stream's forwarder runs here, so shutdown can stop them
    /// and wait for them instead of leaving them to the runtime.
    pub(crate) forwarders: TaskTracker,
}

/// One link's view of the core it is attached to.
#[derive(Clone)]
struct CoreLink {
    tx: mpsc::Sender<Command>,
    forwarders: TaskTracker,
    /// Cancelled when the core stops (leadership lost) or on shutdown.
    stop: CancellationToken,
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

impl AgentApi {
    /// Serves one agent link until either side ends it. `stream` is
    /// positioned at the magic bytes. A standby answers the registration
    /// with the leader's address and closes.
    pub(crate) async fn serve_link(self, stream: TcpStream) {
        let (rd, wr) = stream.into_split();
        let mut writer = FrameWriter::new(wr);
        let reader = match FrameReader::after_magic(rd).await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "not an agent link");
                return;
            }
        };
        let route = route::current(&self.route);
        let core = match route.core() {
            Ok(core) => core.clone(),
            Err(status) => {
                debug!(leader = ?route.leader(), "agent link redirected: not the leader");
                debug!(%status, "agent link refused");
                let _ = writer.send_now(&not_leader_frame(route.leader())).await;
                return;
            }
        };
        // The core's token: it is cancelled when the core stops, which
        // shutdown and a lost leadership both do.
        let link = CoreLink {
            tx: core.tx,
            forwarders: self.forwarders,
            stop: core.stopped,
        };
        link.serve(reader, writer).await;
    }
}

impl CoreLink {
    async fn serve(
        self,
        mut reader: FrameReader<OwnedReadHalf>,
        mut writer: FrameWriter<OwnedWriteHalf>,
    ) {
        let attached = match self.handshake(&mut reader, &mut writer).await {
            Ok(a) => a,
            Err(status) => {
                debug!(code = ?status.code(), message = status.message(), "agent link refused");
                let _ = writer
                    .send_now(&error_frame(status.code(), status.message()))
                    .await;
                return;
            }
        };
        let (agent, session, out_rx) = attached;
        let link_done = self.stop.child_token();
        self.forwarders.spawn(write_to_agent(
            writer,
            out_rx,
            link_done.clone(),
            self.tx.clone(),
            Command::AgentStreamClosed {
                agent: agent.clone(),
                session: session.clone(),
            },
        ));
        self.forward_from_agent(reader, agent, session, link_done)
            .await;
    }

    /// Register, answer, Hello, attach. Returns the attached agent's id,
    /// session and the loop's messages for it.
    async fn handshake(
        &self,
        reader: &mut FrameReader<OwnedReadHalf>,
        writer: &mut FrameWriter<OwnedWriteHalf>,
    ) -> Result<(AgentId, SessionId, mpsc::Receiver<Box<v1::MasterMessage>>), Status> {
        let request = match next_frame(reader).await? {
            Frame::Register(r) => r,
            _ => return Err(Status::invalid_argument("the first frame must be Register")),
        };
        let reg = Box::new(decode_registration(request)?);
        let resp = ask(&self.tx, |reply| Command::RegisterAgent { reg, reply }).await?;
        let registered = v1::LinkFrame {
            frame: Some(Frame::Registered(resp)),
        };
        writer
            .send_now(&registered)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let hello = match next_frame(reader).await? {
            Frame::Agent(v1::AgentMessage {
                message: Some(v1::agent_message::Message::Hello(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the frame after Register must be Hello",
                ));
            }
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
        Ok((agent, session, out_rx))
    }

    /// Passes the agent's messages to the loop until the link ends.
    async fn forward_from_agent(
        self,
        mut reader: FrameReader<OwnedReadHalf>,
        agent: AgentId,
        session: SessionId,
        link_done: CancellationToken,
    ) {
        loop {
            let frame = tokio::select! {
                () = link_done.cancelled() => break,
                frame = reader.next() => frame,
            };
            let msg = match frame {
                Ok(Some(v1::LinkFrame {
                    frame: Some(Frame::Agent(v1::AgentMessage { message: Some(msg) })),
                })) => msg,
                Ok(Some(_)) => {
                    warn!(agent = %agent, "unexpected frame on an agent's stream dropped");
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(agent = %agent, error = %e, "agent link failed");
                    break;
                }
            };
            let msg = match wire::from_agent_wire(msg) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    warn!(agent = %agent, error = %e, "malformed message from agent dropped");
                    continue;
                }
            };
            let cmd = Command::AgentMessage {
                agent: agent.clone(),
                session: session.clone(),
                msg,
            };
            if self.tx.send(cmd).await.is_err() {
                return;
            }
        }
        link_done.cancel();
        let _ = self
            .tx
            .send(Command::AgentStreamClosed { agent, session })
            .await;
    }
}

/// The next frame of a handshake, within [`HANDSHAKE_TIMEOUT`].
async fn next_frame(reader: &mut FrameReader<OwnedReadHalf>) -> Result<Frame, Status> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next()).await {
        Err(_) => Err(Status::deadline_exceeded(
            "no frame within the handshake timeout",
        )),
        Ok(Err(e)) => Err(Status::invalid_argument(e.to_string())),
        Ok(Ok(None)) => Err(Status::cancelled("the agent closed the link")),
        Ok(Ok(Some(v1::LinkFrame { frame: None }))) => {
            Err(Status::invalid_argument("frame: missing"))
        }
        Ok(Ok(Some(v1::LinkFrame { frame: Some(f) }))) => Ok(f),
    }
}

/// Writes the loop's messages to the agent, a burst at a time, until the
/// loop drops the channel, the socket fails or stalls, or the link ends;
/// then tells the loop the stream is gone and ends the link.
async fn write_to_agent(
    mut writer: FrameWriter<OwnedWriteHalf>,
    mut out_rx: mpsc::Receiver<Box<v1::MasterMessage>>,
    link_done: CancellationToken,
    loop_tx: mpsc::Sender<Command>,
    closed: Command,
) {
    loop {
        let first = tokio::select! {
            () = link_done.cancelled() => break,
            m = out_rx.recv() => m,
        };
        let Some(first) = first else { break };
        let burst = writer.send_burst(first, &mut out_rx, master_frame);
        let written = tokio::select! {
            () = link_done.cancelled() => break,
            r = tokio::time::timeout(WRITE_STALL_TIMEOUT, burst) => r,
        };
        if !matches!(written, Ok(Ok(()))) {
            break;
        }
    }
    link_done.cancel();
    let _ = loop_tx.send(closed).await;
}

fn master_frame(msg: Box<v1::MasterMessage>) -> v1::LinkFrame {
    v1::LinkFrame {
        frame: Some(Frame::Master(*msg)),
    }
}

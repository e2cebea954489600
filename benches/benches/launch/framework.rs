//! A minimal framework over the raw scheduler gRPC API for the launch bench.
//! A reader task stamps every event the moment it arrives, so the time a
//! status update waits in our own channel is not charged to Agora, and
//! acknowledges updates at once: the agent sends a task's next update only
//! after the previous one is acknowledged, so a slow ack would be charged
//! to Agora too.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use agora_proto::v1;
use agora_proto::v1::scheduler_client::SchedulerClient;
use anyhow::Context;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Longest wait for one offer or one expected update.
const WAIT: Duration = Duration::from_secs(60);

/// Seconds since the Unix epoch: the clock of status update timestamps.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A status update and when it reached us.
pub(crate) struct Arrived {
    pub(crate) status: v1::TaskStatus,
    pub(crate) at: Instant,
    pub(crate) at_unix: f64,
}

/// One launch, timed from the ACCEPT to TASK_RUNNING.
pub(crate) struct Launch {
    /// ACCEPT sent (the clock starts here) to TASK_RUNNING received.
    pub(crate) total: Duration,
    /// Unix time just before the ACCEPT was sent.
    pub(crate) accept_unix: f64,
    /// The agent's timestamp of TASK_STARTING (taken when it handles LAUNCH).
    pub(crate) starting_ts: f64,
    /// Unix time TASK_STARTING reached the framework.
    pub(crate) starting_unix: f64,
    /// Unix time the acknowledgement of TASK_STARTING returned (the master
    /// has passed it on to the agent by then).
    pub(crate) starting_acked_unix: Option<f64>,
    /// The agent's timestamp of TASK_RUNNING (taken when the runtime's
    /// launch returned, before the update is checkpointed and sent).
    pub(crate) running_ts: f64,
    /// Unix time TASK_RUNNING reached the framework.
    pub(crate) running_unix: f64,
}

pub(crate) struct Framework {
    client: SchedulerClient<Channel>,
    header: v1::CallHeader,
    offers: mpsc::UnboundedReceiver<v1::Offer>,
    updates: mpsc::UnboundedReceiver<Arrived>,
    /// Updates of other tasks than the one being waited for.
    parked: VecDeque<Arrived>,
    /// When the Acknowledge call of each update (by uuid) returned.
    acked: Arc<Mutex<HashMap<Vec<u8>, f64>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Framework {
    pub(crate) async fn subscribe(endpoint: String) -> anyhow::Result<Framework> {
        let mut client = SchedulerClient::connect(endpoint).await?;
        let info = v1::FrameworkInfo {
            name: "launch-bench".into(),
            failover_timeout_seconds: 3600.0,
            checkpoint: true,
            ..Default::default()
        };
        let request = v1::SubscribeRequest {
            framework_info: Some(info),
            suppressed_roles: vec![],
        };
        let mut events = client.subscribe(request).await?.into_inner();
        let header = match tokio::time::timeout(WAIT, events.next()).await? {
            Some(Ok(v1::Event {
                event: Some(v1::event::Event::Subscribed(s)),
            })) => v1::CallHeader {
                framework_id: s.framework_id,
                stream_id: s.stream_id,
            },
            other => anyhow::bail!("expected SUBSCRIBED, got {other:?}"),
        };
        let (offer_tx, offers) = mpsc::unbounded_channel();
        let (update_tx, updates) = mpsc::unbounded_channel();
        let (acker, ack_header) = (client.clone(), header.clone());
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let acked_w = acked.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(ev)) = events.next().await {
                let (at, at_unix) = (Instant::now(), unix_now());
                match ev.event {
                    Some(v1::event::Event::Offers(o)) => {
                        o.offers.into_iter().for_each(|o| drop(offer_tx.send(o)));
                    }
                    Some(v1::event::Event::Update(v1::event::Update {
                        status: Some(status),
                    })) => {
                        if !status.uuid.is_empty() {
                            let ack = v1::AcknowledgeRequest {
                                header: Some(ack_header.clone()),
                                agent_id: status.agent_id.clone(),
                                task_id: status.task_id.clone(),
                                uuid: status.uuid.clone(),
                            };
                            let (mut c, acked) = (acker.clone(), acked_w.clone());
                            tokio::spawn(async move {
                                let uuid = ack.uuid.clone();
                                if c.acknowledge(ack).await.is_ok() {
                                    let mut acked =
                                        acked.lock().unwrap_or_else(PoisonError::into_inner);
                                    acked.insert(uuid, unix_now());
                                }
                            });
                        }
                        let _ = update_tx.send(Arrived {
                            status,
                            at,
                            at_unix,
                        });
                    }
                    _ => {}
                }
            }
        });
        Ok(Framework {
            client,
            header,
            offers,
            updates,
            parked: VecDeque::new(),
            acked,
            reader,
        })
    }

    /// The next offer (offers are never rescinded: no offer timeout).
    pub(crate) async fn offer(&mut self) -> anyhow::Result<v1::Offer> {
        tokio::time::timeout(WAIT, self.offers.recv())
            .await
            .context("no offer")?
            .context("event stream ended")
    }

    /// The next update of `task_id`.
    pub(crate) async fn update(&mut self, task_id: &str) -> anyhow::Result<Arrived> {
        if let Some(i) = self.parked.iter().position(|a| a.status.task_id == task_id) {
            return self.parked.remove(i).context("parked update vanished");
        }
        loop {
            let a = tokio::time::timeout(WAIT, self.updates.recv())
                .await
                .with_context(|| format!("no update of {task_id}"))?
                .context("event stream ended")?;
            if a.status.task_id == task_id {
                return Ok(a);
            }
            self.parked.push_back(a);
        }
    }

    /// Waits for `task_id` to reach `state`, passing over non-terminal
    /// updates; any other terminal state is an error.
    pub(crate) async fn wait_state(
        &mut self,
        task_id: &str,
        state: v1::TaskState,
    ) -> anyhow::Result<Arrived> {
        use v1::TaskState as S;
        loop {
            let a = self.update(task_id).await?;
            let s = &a.status;
            if s.state == state as i32 {
                return Ok(a);
            }
            let live = [
                S::TaskStaging,
                S::TaskStarting,
                S::TaskRunning,
                S::TaskKilling,
            ];
            anyhow::ensure!(
                live.iter().any(|k| *k as i32 == s.state),
                "{task_id}: {:?} ({:?}): {}",
                S::try_from(s.state),
                v1::task_status::Reason::try_from(s.reason),
                s.message
            );
        }
    }

    /// Launches `task` on `offer` and waits for TASK_RUNNING. The offer is
    /// already in hand, so no offer-cycle wait is inside the timing.
    pub(crate) async fn launch(
        &mut self,
        offer: v1::Offer,
        mut task: v1::TaskInfo,
    ) -> anyhow::Result<Launch> {
        task.agent_id = offer.agent_id.clone();
        let task_id = task.task_id.clone();
        let op = v1::Operation {
            operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                task_infos: vec![task],
            })),
        };
        let request = v1::AcceptRequest {
            header: Some(self.header.clone()),
            offer_ids: vec![offer.offer_id],
            operations: vec![op],
            // The rest of the offer comes straight back in the next cycle.
            filters: Some(v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        };
        let (start, accept_unix) = (Instant::now(), unix_now());
        self.client.accept(request).await?;
        // TASK_STARTING always comes first: an agent sends a task's next
        // update only once the previous one is acknowledged.
        let starting = self
            .wait_state(&task_id, v1::TaskState::TaskStarting)
            .await?;
        let running = self
            .wait_state(&task_id, v1::TaskState::TaskRunning)
            .await?;
        Ok(Launch {
            total: running.at.duration_since(start),
            accept_unix,
            starting_ts: starting.status.timestamp,
            starting_unix: starting.at_unix,
            starting_acked_unix: (self.acked.lock().unwrap_or_else(PoisonError::into_inner))
                .remove(&starting.status.uuid),
            running_ts: running.status.timestamp,
            running_unix: running.at_unix,
        })
    }

    /// Kills a task without a grace period (`sleep` as a container's pid 1
    /// ignores SIGTERM, so a grace period would only be waited out).
    pub(crate) async fn kill(&mut self, agent_id: &str, task_id: &str) -> anyhow::Result<()> {
        let request = v1::KillRequest {
            header: Some(self.header.clone()),
            task_id: task_id.into(),
            agent_id: agent_id.into(),
            kill_policy: Some(v1::KillPolicy {
                grace_period_seconds: Some(0.0),
            }),
        };
        self.client.kill(request).await?;
        Ok(())
    }
}

impl Drop for Framework {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

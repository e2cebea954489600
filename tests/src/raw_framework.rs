//! A framework speaking the raw Scheduler gRPC API (no SDK), for tests that
//! need exact control over every call and event.
use std::time::Duration;

use agora_proto::v1;
use tokio_stream::StreamExt;
use tonic::Streaming;

/// How long one expected event may take.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// The raw gRPC client type.
pub type SchedulerClient = v1::scheduler_client::SchedulerClient<tonic::transport::Channel>;

/// A subscribed framework: client, event stream, ids.
pub struct RawFramework {
    /// Unary calls go here.
    pub client: SchedulerClient,
    /// The Subscribe stream.
    pub events: Streaming<v1::Event>,
    /// Framework id from SUBSCRIBED.
    pub id: String,
    /// Stream id from SUBSCRIBED.
    pub stream: String,
}

impl RawFramework {
    /// Subscribes to the master at `endpoint` ("http://host:port") with
    /// `info` (framework_id set = re-subscribe) and waits for SUBSCRIBED.
    pub async fn subscribe(
        endpoint: &str,
        info: v1::FrameworkInfo,
    ) -> anyhow::Result<RawFramework> {
        let mut client = SchedulerClient::connect(endpoint.to_string()).await?;
        let mut events = client
            .subscribe(v1::SubscribeRequest {
                framework_info: Some(info),
                suppressed_roles: vec![],
            })
            .await?
            .into_inner();
        match events.next().await {
            Some(Ok(v1::Event {
                event: Some(v1::event::Event::Subscribed(s)),
            })) => Ok(RawFramework {
                client,
                events,
                id: s.framework_id,
                stream: s.stream_id,
            }),
            other => anyhow::bail!("expected SUBSCRIBED first, got {other:?}"),
        }
    }

    /// The call header for this subscription.
    pub fn header(&self) -> Option<v1::CallHeader> {
        Some(v1::CallHeader {
            framework_id: self.id.clone(),
            stream_id: self.stream.clone(),
        })
    }

    /// The next event that `pick` accepts, skipping others (heartbeats...).
    pub async fn next<T>(
        &mut self,
        mut pick: impl FnMut(v1::event::Event) -> Option<T>,
    ) -> anyhow::Result<T> {
        loop {
            match tokio::time::timeout(EVENT_WAIT, self.events.next()).await? {
                Some(Ok(v1::Event { event: Some(e) })) => {
                    if let Some(t) = pick(e) {
                        return Ok(t);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => anyhow::bail!("stream error: {e}"),
                None => anyhow::bail!("stream ended"),
            }
        }
    }

    /// The first offer of the next OFFERS event.
    pub async fn offer(&mut self) -> anyhow::Result<v1::Offer> {
        self.next(|e| match e {
            v1::event::Event::Offers(o) => o.offers.into_iter().next(),
            _ => None,
        })
        .await
    }

    /// The next status update; acknowledged if it carries a uuid.
    pub async fn update_acked(&mut self) -> anyhow::Result<v1::TaskStatus> {
        let st = self
            .next(|e| match e {
                v1::event::Event::Update(u) => u.status,
                _ => None,
            })
            .await?;
        if !st.uuid.is_empty() {
            let ack = v1::AcknowledgeRequest {
                header: self.header(),
                agent_id: st.agent_id.clone(),
                task_id: st.task_id.clone(),
                uuid: st.uuid.clone(),
            };
            self.client.acknowledge(ack).await?;
        }
        Ok(st)
    }

    /// Acknowledges updates until one in `state` arrives; returns it.
    pub async fn until_state(&mut self, state: v1::TaskState) -> anyhow::Result<v1::TaskStatus> {
        loop {
            let st = self.update_acked().await?;
            if st.state == state as i32 {
                return Ok(st);
            }
        }
    }

    /// ACCEPTs `offer_id` with one LAUNCH of `tasks`.
    pub async fn launch(&mut self, offer_id: &str, tasks: Vec<v1::TaskInfo>) -> anyhow::Result<()> {
        let launch = v1::Operation {
            operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                task_infos: tasks,
            })),
        };
        let req = v1::AcceptRequest {
            header: self.header(),
            offer_ids: vec![offer_id.to_string()],
            operations: vec![launch],
            filters: None,
        };
        self.client.accept(req).await?;
        Ok(())
    }
}

/// A shell-command task with the given resources (Mesos text form) and labels.
pub fn shell_task(
    id: &str,
    resources: &str,
    cmd: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<v1::TaskInfo> {
    let res = agora_model::Resources::parse(resources)?;
    Ok(v1::TaskInfo {
        task_id: id.into(),
        name: id.into(),
        resources: agora_proto::convert::resources_to_wire(&res),
        command: Some(v1::CommandInfo {
            shell: true,
            value: cmd.into(),
            ..Default::default()
        }),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

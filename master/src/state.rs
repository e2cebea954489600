//! The master's in-memory state, owned by the event loop. Only the loop
//! mutates it; handlers reach it through `Command`s.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use agora_model::{
    AgentId, Attributes, FrameworkId, FrameworkInfo, MonoTime, Offer, OfferId, Resources, Role,
    TaskId, TaskSpec, TaskState, TaskStatus,
};
use agora_proto::v1;
use tokio::sync::mpsc;

use crate::config::MasterConfig;
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistryStore};

/// Events to a framework's Subscribe stream.
pub(crate) type EventTx = mpsc::Sender<Result<v1::Event, tonic::Status>>;
/// Messages down an agent's Attach stream.
pub(crate) type AgentTx = mpsc::Sender<Result<v1::MasterMessage, tonic::Status>>;

/// Tasks are unique per framework, so the key is the pair. Framework first so
/// a range over the map yields one framework's tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TaskKey {
    pub(crate) framework: FrameworkId,
    pub(crate) task: TaskId,
}

/// Where an agent stands with the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentStatus {
    /// Registered and its Attach stream is open: gets offers.
    Connected,
    /// Registered, stream not (yet) open; pings count as missed.
    Disconnected,
    /// Known from the registry after a master restart; waiting to re-register.
    Recovered,
    /// Missed too many pings.
    Unreachable,
}

impl AgentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Connected => "connected",
            AgentStatus::Disconnected => "disconnected",
            AgentStatus::Recovered => "recovered",
            AgentStatus::Unreachable => "unreachable",
        }
    }
}

pub(crate) struct AgentEntry {
    pub(crate) id: AgentId,
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) total: Resources,
    pub(crate) attributes: Attributes,
    pub(crate) status: AgentStatus,
    /// The session issued by the latest Register; Attach must match it.
    pub(crate) session: String,
    pub(crate) tx: Option<AgentTx>,
    pub(crate) ping_seq: u64,
    pub(crate) outstanding_ping: Option<u64>,
    pub(crate) misses: u32,
    pub(crate) registered_unix: f64,
    pub(crate) unreachable_since_unix: Option<f64>,
    /// For `Recovered` agents: when they become unreachable if still absent.
    pub(crate) reregister_deadline: Option<MonoTime>,
    pub(crate) tasks: BTreeSet<TaskKey>,
    /// Kills to send once the Attach stream opens.
    pub(crate) pending_kills: Vec<(FrameworkId, TaskId)>,
}

pub(crate) struct FrameworkEntry {
    pub(crate) id: FrameworkId,
    pub(crate) info: FrameworkInfo,
    pub(crate) stream_id: Option<String>,
    pub(crate) tx: Option<EventTx>,
    pub(crate) registered_unix: f64,
    pub(crate) failover_deadline: Option<MonoTime>,
    pub(crate) suppressed: BTreeSet<Role>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) completed: VecDeque<TaskEntry>,
}

impl FrameworkEntry {
    pub(crate) fn connected(&self) -> bool {
        self.tx.is_some()
    }
    pub(crate) fn partition_aware(&self) -> bool {
        self.info.has(agora_model::Capability::PartitionAware)
    }
}

/// A refusal: don't offer (a subset of) `resources` on `agent` to this
/// framework's `role` until `expires`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) agent: AgentId,
    pub(crate) role: Role,
    pub(crate) resources: Resources,
    pub(crate) expires: MonoTime,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskEntry {
    pub(crate) spec: TaskSpec,
    pub(crate) framework: FrameworkId,
    pub(crate) role: Role,
    pub(crate) state: TaskState,
    pub(crate) last_status: Option<TaskStatus>,
    pub(crate) healthy: Option<bool>,
    /// A kill was asked for while the agent could not be reached.
    pub(crate) kill_requested: bool,
}

pub(crate) struct OfferEntry {
    pub(crate) offer: Offer,
    pub(crate) created: MonoTime,
}

/// All mutable master state.
pub(crate) struct Master {
    pub(crate) cfg: MasterConfig,
    pub(crate) master_id: String,
    pub(crate) leader: String,
    pub(crate) start_unix: f64,
    pub(crate) agents: BTreeMap<AgentId, AgentEntry>,
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkEntry>,
    /// Frameworks torn down or timed out; they may not come back.
    pub(crate) removed_frameworks: BTreeSet<FrameworkId>,
    pub(crate) tasks: BTreeMap<TaskKey, TaskEntry>,
    pub(crate) offers: HashMap<OfferId, OfferEntry>,
    pub(crate) registry: Registry,
    pub(crate) store: RegistryStore,
    pub(crate) metrics: Metrics,
    /// Set by events that may free or add resources; the loop runs an
    /// allocation soon after (coalescing bursts into one run).
    pub(crate) allocation_wanted: bool,
    pub(crate) allocation_seed: u64,
}

impl Master {
    /// One framework's live tasks: keys are ordered framework first, so this
    /// is a range, not a scan of every task in the cluster.
    pub(crate) fn tasks_of<'a>(
        &'a self,
        fw: &'a FrameworkId,
    ) -> impl Iterator<Item = (&'a TaskKey, &'a TaskEntry)> + 'a {
        let start = TaskKey {
            framework: fw.clone(),
            task: TaskId::new_unchecked(""),
        };
        self.tasks
            .range(start..)
            .take_while(move |(k, _)| &k.framework == fw)
    }
}

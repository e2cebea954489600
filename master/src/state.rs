//! The master's in-memory state, owned by the event loop. Only the loop
//! mutates it; handlers reach it through `Command`s. Nothing here holds a
//! channel: connections live in the loop (`connections.rs`), and the state
//! names them by `StreamId` and `SessionId`.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use agora_model::{
    AgentId, Attributes, FrameworkId, FrameworkInfo, MonoTime, Offer, OfferId, Resources, Role,
    SessionId, StreamId, TaskId, TaskSpec, TaskState, TaskStatus,
};

use crate::config::MasterConfig;
use crate::effects::{Outbox, ReplyToken};
use crate::metrics::Metrics;
use crate::registry::{LogEntry, Registry};

/// Tasks are unique per framework, so the key is the pair. Framework first so
/// a range over the map yields one framework's tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TaskKey {
    pub(crate) framework: FrameworkId,
    pub(crate) task: TaskId,
}

/// Where an agent stands with the master, with what each state needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AgentConn {
    /// Registered and its Attach stream is open: gets offers.
    Connected { session: SessionId },
    /// Registered, stream not (yet) open; pings count as missed.
    Disconnected { session: SessionId },
    /// Known from the registry after a master start; waiting to re-register
    /// until the deadline, then unreachable.
    Recovered { deadline: MonoTime },
    /// Missed too many pings (or never came back); since then, Unix seconds.
    Unreachable { since_unix: f64 },
}

/// `AgentConn` without its data, for counting and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AgentStatus {
    Connected,
    Disconnected,
    Recovered,
    Unreachable,
}

impl AgentStatus {
    pub(crate) const ALL: [AgentStatus; 4] = [
        AgentStatus::Connected,
        AgentStatus::Disconnected,
        AgentStatus::Recovered,
        AgentStatus::Unreachable,
    ];
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Connected => "connected",
            AgentStatus::Disconnected => "disconnected",
            AgentStatus::Recovered => "recovered",
            AgentStatus::Unreachable => "unreachable",
        }
    }
}

impl AgentConn {
    pub(crate) fn status(&self) -> AgentStatus {
        match self {
            AgentConn::Connected { .. } => AgentStatus::Connected,
            AgentConn::Disconnected { .. } => AgentStatus::Disconnected,
            AgentConn::Recovered { .. } => AgentStatus::Recovered,
            AgentConn::Unreachable { .. } => AgentStatus::Unreachable,
        }
    }
    /// The session messages must go to, if the stream is open.
    pub(crate) fn open_session(&self) -> Option<&SessionId> {
        match self {
            AgentConn::Connected { session } => Some(session),
            _ => None,
        }
    }
    /// The current registration's session, open or not.
    pub(crate) fn session(&self) -> Option<&SessionId> {
        match self {
            AgentConn::Connected { session } | AgentConn::Disconnected { session } => Some(session),
            _ => None,
        }
    }
}

pub(crate) struct AgentEntry {
    pub(crate) id: AgentId,
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) total: Resources,
    pub(crate) attributes: Attributes,
    pub(crate) conn: AgentConn,
    pub(crate) ping_seq: u64,
    pub(crate) outstanding_ping: Option<u64>,
    pub(crate) misses: u32,
    pub(crate) registered_unix: f64,
    pub(crate) tasks: BTreeSet<TaskKey>,
    /// Held by its live tasks; kept as tasks come and go so that /state,
    /// /metrics and the allocator's snapshot need no scan of every task.
    pub(crate) used: Resources,
    /// Held by its outstanding offers, kept the same way.
    pub(crate) offered: Resources,
    pub(crate) offers: BTreeSet<OfferId>,
    /// Tasks' and offers' resources on this agent by (framework, role): what
    /// the allocator's snapshot needs, without a scan of every task.
    pub(crate) allocated: BTreeMap<(FrameworkId, Role), Resources>,
    /// Kills for tasks the master does not track (a removed framework's,
    /// reported at re-registration), sent once the Attach stream opens.
    pub(crate) orphan_kills: Vec<(FrameworkId, TaskId)>,
}

impl AgentEntry {
    pub(crate) fn new(id: AgentId, registered_unix: f64, conn: AgentConn) -> AgentEntry {
        AgentEntry {
            id,
            hostname: String::new(),
            port: 0,
            total: Resources::new(),
            attributes: Attributes::default(),
            conn,
            ping_seq: 0,
            outstanding_ping: None,
            misses: 0,
            registered_unix,
            tasks: BTreeSet::new(),
            used: Resources::new(),
            offered: Resources::new(),
            offers: BTreeSet::new(),
            allocated: BTreeMap::new(),
            orphan_kills: Vec::new(),
        }
    }
    pub(crate) fn status(&self) -> AgentStatus {
        self.conn.status()
    }
    pub(crate) fn allocate(&mut self, fw: &FrameworkId, role: &Role, r: &Resources) {
        hold(&mut self.allocated, (fw.clone(), role.clone()), r);
    }
    pub(crate) fn unallocate(&mut self, fw: &FrameworkId, role: &Role, r: &Resources) {
        release(&mut self.allocated, &(fw.clone(), role.clone()), r);
    }
}

/// Where a framework stands with the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameworkConn {
    /// Its event stream is open.
    Subscribed { stream: StreamId },
    /// No stream; its tasks are kept until the deadline, then it is removed.
    Failover { deadline: MonoTime },
}

pub(crate) struct FrameworkEntry {
    pub(crate) id: FrameworkId,
    pub(crate) info: FrameworkInfo,
    pub(crate) conn: FrameworkConn,
    pub(crate) registered_unix: f64,
    pub(crate) suppressed: BTreeSet<Role>,
    /// At most one refusal per (agent, role): a newer decline replaces the
    /// older, so a framework that declines in a loop cannot pile them up.
    pub(crate) filters: BTreeMap<(AgentId, Role), Filter>,
    pub(crate) completed: VecDeque<TaskEntry>,
    /// Held by its live tasks and outstanding offers (kept incrementally).
    pub(crate) used: Resources,
    pub(crate) offered: Resources,
    pub(crate) offers: BTreeSet<OfferId>,
    /// Tasks' and offers' resources on known agents by role: the sum of
    /// the agents' `allocated` for this framework, kept as they change so
    /// the allocator's snapshot needs no pass over (agent, framework) pairs.
    pub(crate) allocated: BTreeMap<Role, Resources>,
}

impl FrameworkEntry {
    pub(crate) fn new(
        info: FrameworkInfo,
        id: FrameworkId,
        conn: FrameworkConn,
        registered_unix: f64,
    ) -> FrameworkEntry {
        FrameworkEntry {
            id,
            info,
            conn,
            registered_unix,
            suppressed: BTreeSet::new(),
            filters: BTreeMap::new(),
            completed: VecDeque::new(),
            used: Resources::new(),
            offered: Resources::new(),
            offers: BTreeSet::new(),
            allocated: BTreeMap::new(),
        }
    }
    pub(crate) fn stream(&self) -> Option<&StreamId> {
        match &self.conn {
            FrameworkConn::Subscribed { stream } => Some(stream),
            FrameworkConn::Failover { .. } => None,
        }
    }
    pub(crate) fn connected(&self) -> bool {
        self.stream().is_some()
    }
    pub(crate) fn allocate(&mut self, role: &Role, r: &Resources) {
        hold(&mut self.allocated, role.clone(), r);
    }
    pub(crate) fn unallocate(&mut self, role: &Role, r: &Resources) {
        release(&mut self.allocated, role, r);
    }
    pub(crate) fn partition_aware(&self) -> bool {
        self.info.has(agora_model::Capability::PartitionAware)
    }
    /// The state a task of this framework takes when it is lost: Mesos tells
    /// partition-aware frameworks the precise state, others TASK_LOST.
    pub(crate) fn lost_state(&self, precise: TaskState) -> TaskState {
        if self.partition_aware() {
            precise
        } else {
            TaskState::Lost
        }
    }
}

/// A refusal: don't offer (a subset of) `resources` on this agent to this
/// framework's role until `expires`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) resources: Resources,
    pub(crate) expires: MonoTime,
}

/// What the framework wants of a task, kept apart from what was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskGoal {
    Run,
    /// Killed by the framework or because its framework went; `sent` says
    /// whether the kill reached the agent's current stream.
    Kill {
        grace: Option<Duration>,
        sent: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct TaskEntry {
    pub(crate) spec: TaskSpec,
    pub(crate) framework: FrameworkId,
    pub(crate) role: Role,
    /// Observed: the latest state reported.
    pub(crate) state: TaskState,
    pub(crate) last_status: Option<TaskStatus>,
    pub(crate) healthy: Option<bool>,
    pub(crate) goal: TaskGoal,
}

pub(crate) struct OfferEntry {
    pub(crate) offer: Offer,
    pub(crate) created: MonoTime,
}

/// What to do once a proposed registry entry is durable.
#[derive(Debug)]
pub(crate) enum AfterCommit {
    /// Nothing beyond applying it.
    Nothing,
    /// Answer a caller whose change this was.
    Reply(ReplyToken),
    /// Finish an agent's (re-)registration.
    Register(Box<crate::agents::PendingRegistration>),
    /// Finish a subscription.
    Subscribe(Box<crate::frameworks::PendingSubscription>),
    /// Tell frameworks about the agent's tasks (the mark is durable first,
    /// as in Mesos, so a failover cannot forget what they were told).
    Unreachable(AgentId),
    /// The operator drained or undrained the agent: act, tell, answer.
    Maintenance { agent: AgentId, reply: ReplyToken },
}

/// Proposals in flight, oldest first, with an index by what they touch so
/// that a registration storm does not make each proposal scan the others.
#[derive(Default)]
pub(crate) struct Proposals {
    pub(crate) next_seq: u64,
    pub(crate) pending: BTreeMap<u64, (LogEntry, AfterCommit)>,
    /// How many proposals in flight touch each registry record.
    pub(crate) touching: HashMap<crate::registry::RecordKey, usize>,
    /// Frameworks whose removal is in flight.
    pub(crate) removing: BTreeSet<FrameworkId>,
}

/// All mutable master state.
pub(crate) struct Master {
    pub(crate) cfg: MasterConfig,
    pub(crate) master_id: String,
    pub(crate) leader: String,
    pub(crate) start_unix: f64,
    /// Wall clock of the command being handled (for timestamps shown to
    /// people and the registry's ages); set by `handle`, never read from a clock here.
    pub(crate) now_unix: f64,
    pub(crate) agents: BTreeMap<AgentId, AgentEntry>,
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkEntry>,
    pub(crate) tasks: BTreeMap<TaskKey, TaskEntry>,
    pub(crate) offers: HashMap<OfferId, OfferEntry>,
    /// Live tasks per state, kept as states change (for /metrics).
    pub(crate) task_counts: BTreeMap<TaskState, usize>,
    pub(crate) registry: Registry,
    pub(crate) proposals: Proposals,
    pub(crate) metrics: Metrics,
    pub(crate) out: Outbox,
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

    pub(crate) fn unix_ms(&self) -> u64 {
        (self.now_unix * 1000.0).max(0.0) as u64
    }
}

/// Adds `r` to what `key` holds in a tally.
fn hold<K: Ord>(tally: &mut BTreeMap<K, Resources>, key: K, r: &Resources) {
    tally.entry(key).or_default().add(r);
}

/// Takes `r` from what `key` holds, forgetting the key once it holds
/// nothing (so tallies stay as small as what is in use).
fn release<K: Ord>(tally: &mut BTreeMap<K, Resources>, key: &K, r: &Resources) {
    if let Some(held) = tally.get_mut(key) {
        held.subtract(r);
        if held.is_empty() {
            tally.remove(key);
        }
    }
}

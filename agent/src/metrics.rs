//! The agent's Prometheus metrics, in a private registry (several agents
//! may share a process in tests). Metrics are atomics: the event loop sets
//! them, `/metrics` only reads them.
use agora_model::Resources;
use prometheus::{Encoder, Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// Bytes in the resources' megabyte (Mesos `mem` and `disk` are MiB).
const MB: f64 = 1024.0 * 1024.0;

/// All metrics of one agent.
pub(crate) struct Metrics {
    registry: Registry,
    cpus_total: Gauge,
    cpus_allocated: Gauge,
    mem_total: Gauge,
    mem_allocated: Gauge,
    disk_total: Gauge,
    disk_allocated: Gauge,
    /// Tasks held, by state.
    pub(crate) tasks: IntGaugeVec,
    /// Launches that failed before the task ran.
    pub(crate) container_launch_errors_total: IntCounter,
    /// Failed health probes.
    pub(crate) health_check_failures_total: IntCounter,
    /// Status updates sent again for lack of an acknowledgement.
    pub(crate) status_update_retries_total: IntCounter,
    /// 1 while registered with a master.
    pub(crate) registered: IntGauge,
    /// LAUNCH received → TASK_RUNNING, by runtime.
    pub(crate) task_launch_seconds: prometheus::HistogramVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub(crate) fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> Result<Gauge, prometheus::Error> {
            let g = Gauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        // Names follow Prometheus conventions (`promtool check metrics`):
        // the one `agora_` prefix, base units (bytes), `_total` only on
        // counters; "allocated" (to tasks), never "used", which would read
        // as measured usage.
        let cpus_total = gauge("agora_agent_cpus_capacity", "CPUs this agent offers")?;
        let cpus_allocated = gauge("agora_agent_cpus_allocated", "CPUs allocated to live tasks")?;
        let mem_total = gauge(
            "agora_agent_memory_capacity_bytes",
            "Memory this agent offers, bytes",
        )?;
        let mem_allocated = gauge(
            "agora_agent_memory_allocated_bytes",
            "Memory allocated to live tasks, bytes",
        )?;
        let disk_total = gauge(
            "agora_agent_disk_capacity_bytes",
            "Disk this agent offers, bytes",
        )?;
        let disk_allocated = gauge(
            "agora_agent_disk_allocated_bytes",
            "Disk allocated to live tasks, bytes",
        )?;
        let tasks = IntGaugeVec::new(
            Opts::new("agora_agent_tasks", "Tasks held by this agent, by state"),
            &["state"],
        )?;
        registry.register(Box::new(tasks.clone()))?;
        // Every state is listed from the start; the loop then moves tasks
        // between states as they change (tallies, never a recount).
        for state in agora_model::TaskState::ALL {
            tasks.with_label_values(&[state.as_str()]).set(0);
        }
        let registered =
            IntGauge::new("agora_agent_registered", "1 while registered with a master")?;
        registry.register(Box::new(registered.clone()))?;
        // Buckets span a process spawn (~10 ms) to a slow image start (~10 s).
        let task_launch_seconds = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "agora_agent_task_launch_seconds",
                "Time from receiving LAUNCH to reporting TASK_RUNNING, by runtime",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["runtime"],
        )?;
        registry.register(Box::new(task_launch_seconds.clone()))?;
        Ok(Metrics {
            cpus_total,
            cpus_allocated,
            mem_total,
            mem_allocated,
            disk_total,
            disk_allocated,
            tasks,
            container_launch_errors_total: counter(
                "agora_agent_container_launch_errors_total",
                "Task launches that failed before the task ran",
            )?,
            health_check_failures_total: counter(
                "agora_agent_health_check_failures_total",
                "Failed health probes",
            )?,
            status_update_retries_total: counter(
                "agora_agent_status_update_retries_total",
                "Status updates resent because no acknowledgement arrived",
            )?,
            registered,
            task_launch_seconds,
            registry,
        })
    }

    /// Sets the resource gauges.
    pub(crate) fn set_resources(&self, total: &Resources, used: &Resources) {
        self.cpus_total.set(total.cpus().as_f64());
        self.cpus_allocated.set(used.cpus().as_f64());
        self.mem_total.set(total.mem().as_f64() * MB);
        self.mem_allocated.set(used.mem().as_f64() * MB);
        self.disk_total.set(total.disk().as_f64() * MB);
        self.disk_allocated.set(used.disk().as_f64() * MB);
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

//! Task launch latency, for the agent issue's target: Agora's Docker path
//! within 1.15x of plain `docker run -d` of the same image, measured in the
//! same run. One round launches, one after another (concurrency 1
//! everywhere), `sleep 600` in each way below; rounds are interleaved and
//! the order inside a round rotates, so load from elsewhere on the machine
//! and the growing number of live containers fall on every way alike.
//!
//! - `docker run -d IMAGE sleep 600`, the docker CLI as a user types it
//!   (default bridge network, no limits);
//! - the same with the container Agora creates: host network and the
//!   task's cpu/memory limits (`--network host --cpu-shares ...`);
//! - Agora Docker task: real master and agent in this process, real
//!   daemon. Clock from the ACCEPT being sent (an upper bound of the agent
//!   receiving LAUNCH) to TASK_RUNNING reaching the framework; the offer is
//!   already in hand, so no offer-cycle wait is counted. TASK_STARTING has
//!   to be acknowledged before the agent sends TASK_RUNNING, so that round
//!   trip is inside, as it is for any framework. The agent's update
//!   timestamps split it into master hop in / agent / hop out;
//! - Agora process task (`sleep 600` under the process runtime, cgroups);
//! - for profiling: `DockerRuntime::launch` and `ProcessRuntime::launch`
//!   called directly (what the agent awaits), and `inspect_image` alone
//!   (the one Engine API call the runtime makes that `docker run` doesn't).
//!
//! Everything launched is removed at the end: Agora tasks are killed through
//! the framework, then their containers and cgroups are removed with the
//! runtimes' `cleanup`; the CLI containers by id.
//!
//! Run: `cargo bench -p agora-benches --bench launch`
//! (env: `LAUNCH_N`, default 100; `LAUNCH_WARMUP` rounds not counted,
//! default 2; `LAUNCH_MASTER_NODELAY=1` sets TCP_NODELAY on the master's
//! listener, see BENCHMARKS.md). Needs a Docker daemon, cgroups and root.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agora_agent::{AgentConfig, DockerMode, GcConfig};
use agora_model::{AgentId, CommandSpec, DockerSpec, FrameworkId, Resources, Scalar, TaskId};
use agora_proto::v1;
use agora_runtime::testing::{TEST_IMAGE, ensure_test_image};
use agora_runtime::{
    ContainerHandle, DockerConfig, DockerRuntime, LaunchSpec, Limits, ProcessConfig,
    ProcessRuntime, Runtime,
};
use anyhow::Context;

// The bench's crate root is this file, so its modules live beside it by path.
#[path = "launch/cleanup.rs"]
mod cleanup;
#[path = "launch/framework.rs"]
mod framework;
#[path = "launch/report.rs"]
mod report;

use framework::Framework;
use report::{Samples, Way};

/// Every task's resources. The matched `docker run` and the direct runtime
/// launches get the same limits (cpu-shares 102, quota 10 ms per 100 ms,
/// 32 MiB without swap), as Agora's `docker_create` derives them.
const TASK_RESOURCES: &str = "cpus:0.1;mem:32";
const MATCHED_RUN_ARGS: &str = "--network host --cpu-shares 102 --cpu-period 100000 \
    --cpu-quota 10000 --memory 32m --memory-swap 32m";
/// The agent offers far more than its tasks use, so no launch waits for
/// resources (the agent checks its configured total, not the host).
const AGENT_RESOURCES: &str = "cpus:64;mem:65536;disk:100000";

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v}")),
        Err(_) => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let n = env_usize("LAUNCH_N", 100)?;
    let warmup = env_usize("LAUNCH_WARMUP", 2)?;
    let nodelay = std::env::var("LAUNCH_MASTER_NODELAY").is_ok_and(|v| v == "1");
    tokio::runtime::Runtime::new()?.block_on(run(n, warmup, nodelay))
}

/// What the run launched, for the cleanup.
struct Cluster {
    master: Option<agora_master::MasterHandle>,
    agent: Option<agora_agent::AgentHandle>,
    agent_id: String,
    framework: Framework,
    /// The agent's process runtime's cgroup parent (unique to this run).
    cgroup_parent: String,
    docker: DockerRuntime,
    /// The process runtime called directly (own cgroup parent).
    process: ProcessRuntime,
    direct_parent: String,
    direct_agent: AgentId,
    work: PathBuf,
    agora_tasks: Vec<String>,
    direct: Vec<ContainerHandle>,
    cli_ids: Vec<String>,
}

async fn run(n: usize, warmup: usize, master_nodelay: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let docker = DockerRuntime::connect(DockerConfig::default()).await?;
    ensure_test_image(docker.client()).await?;
    let tmp = tempfile::tempdir()?;
    let pid = std::process::id();
    let cgroup_parent = format!("agora-bench-{pid}");
    let direct_parent = format!("agora-bench-direct-{pid}");
    // Offers every 50 ms (the wait for one is not timed anyway); pings
    // every second with 10 misses allowed, because 0.5 s in all (the
    // integration tests' setting) declares the agent unreachable during the
    // burst of kills at the end.
    let master_config = agora_master::MasterConfig {
        allocation_interval: Duration::from_millis(50),
        agent_ping_interval: Duration::from_secs(1),
        max_agent_ping_misses: 10,
        ..agora_master::MasterConfig::default()
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux), so
    // this shows what the master gains from setting it on its connections.
    socket.set_nodelay(master_nodelay)?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(1024)?;
    let master_addr = listener.local_addr()?;
    let master = agora_master::start(master_config, listener).await?;
    let config = AgentConfig {
        masters: vec![master_addr.to_string()],
        work_dir: tmp.path().join("agent"),
        resources: Some(Resources::parse(AGENT_RESOURCES)?),
        docker: DockerMode::Required,
        cgroup_parent: cgroup_parent.clone(),
        default_kill_grace: Duration::ZERO,
        gc: GcConfig {
            interval: Duration::from_secs(3600),
            ..GcConfig::default()
        },
        ..AgentConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agent = agora_agent::start(config, listener).await?;
    let agent_id = agent
        .wait_registered(Duration::from_secs(30))
        .await
        .context("the agent did not register")?
        .to_string();
    let framework = Framework::subscribe(format!("http://{master_addr}")).await?;
    let process = ProcessRuntime::new(ProcessConfig {
        cgroup_parent: direct_parent.clone(),
        cgroups: true,
    })?;
    let mut cluster = Cluster {
        master: Some(master),
        agent: Some(agent),
        agent_id,
        framework,
        cgroup_parent,
        docker,
        process,
        direct_parent,
        direct_agent: AgentId::new_unchecked(format!("bench-direct-{pid}")),
        work: tmp.path().to_path_buf(),
        agora_tasks: Vec::new(),
        direct: Vec::new(),
        cli_ids: Vec::new(),
    };
    let mut samples = Samples::default();
    let measured = measure(&mut cluster, &mut samples, n, warmup).await;
    let measured_in = started.elapsed();
    let cleaned = cleanup::cleanup(&mut cluster).await;
    measured?;
    samples.print(n, warmup);
    println!("\nmaster listener TCP_NODELAY: {master_nodelay}");
    println!(
        "\nmeasuring took {:.0} s, cleanup {:.0} s",
        measured_in.as_secs_f64(),
        (started.elapsed() - measured_in).as_secs_f64()
    );
    cleaned
}

async fn measure(
    c: &mut Cluster,
    samples: &mut Samples,
    n: usize,
    warmup: usize,
) -> anyhow::Result<()> {
    for round in 0..warmup + n {
        let mut ways = Way::ALL.to_vec();
        ways.rotate_left(round % Way::ALL.len());
        for way in ways {
            let id = format!("{}-{round}", way.slug());
            let timing = launch(c, way, &id).await.with_context(|| id.clone())?;
            if round >= warmup {
                samples.push(way, timing);
            }
        }
        if (round + 1) % 10 == 0 {
            eprintln!("round {}/{}", round + 1, warmup + n);
        }
    }
    Ok(())
}

/// One launch the given way; returns its timing.
async fn launch(c: &mut Cluster, way: Way, id: &str) -> anyhow::Result<report::Timing> {
    match way {
        Way::RunPlain | Way::RunMatched => {
            let extra = match way {
                Way::RunMatched => MATCHED_RUN_ARGS.split_whitespace().collect(),
                _ => Vec::new(),
            };
            let start = Instant::now();
            let out = tokio::process::Command::new("docker")
                .args(["run", "-d"])
                .args(extra)
                .args([TEST_IMAGE, "sleep", "600"])
                .output()
                .await?;
            let took = start.elapsed();
            anyhow::ensure!(
                out.status.success(),
                "docker run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            c.cli_ids
                .push(String::from_utf8_lossy(&out.stdout).trim().to_string());
            Ok(report::Timing::plain(took))
        }
        Way::Inspect => {
            let start = Instant::now();
            c.docker.client().inspect_image(TEST_IMAGE).await?;
            Ok(report::Timing::plain(start.elapsed()))
        }
        Way::RuntimeDocker | Way::RuntimeProcess => {
            let spec = direct_spec(c, id, way == Way::RuntimeDocker)?;
            let start = Instant::now();
            let handle = if way == Way::RuntimeDocker {
                c.docker.launch(&spec).await?
            } else {
                c.process.launch(&spec).await?
            };
            let took = start.elapsed();
            c.direct.push(handle);
            Ok(report::Timing::plain(took))
        }
        Way::AgoraDocker | Way::AgoraProcess => {
            let offer = c.framework.offer().await?;
            let task = task_info(id, way == Way::AgoraDocker);
            c.agora_tasks.push(id.to_string());
            let l = c.framework.launch(offer, task).await?;
            Ok(report::Timing::agora(&l))
        }
    }
}

/// `sleep 600` as an argv (no shell), like `docker run IMAGE sleep 600`.
fn sleep_command() -> CommandSpec {
    CommandSpec {
        value: "sleep".into(),
        arguments: vec!["600".into()],
        ..CommandSpec::default()
    }
}

fn task_info(id: &str, docker: bool) -> v1::TaskInfo {
    let resources = Resources::parse(TASK_RESOURCES).unwrap_or_default();
    let cmd = sleep_command();
    v1::TaskInfo {
        task_id: id.into(),
        name: id.into(),
        resources: agora_proto::convert::resources_to_wire(&resources),
        command: Some(v1::CommandInfo {
            shell: false,
            value: cmd.value,
            arguments: cmd.arguments,
            ..Default::default()
        }),
        container: docker.then(|| v1::ContainerInfo {
            docker: Some(v1::DockerInfo {
                image: TEST_IMAGE.into(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// The LaunchSpec the agent would build for the same task.
fn direct_spec(c: &Cluster, id: &str, docker: bool) -> anyhow::Result<LaunchSpec> {
    let container_id = uuid::Uuid::new_v4().simple().to_string();
    let sandbox = c.work.join("direct").join(&container_id);
    std::fs::create_dir_all(&sandbox)?;
    let mut env = std::collections::BTreeMap::new();
    if !docker {
        env.insert("PATH".into(), agora_agent::env::DEFAULT_PATH.into());
    }
    env.insert("AGORA_TASK_ID".into(), id.into());
    Ok(LaunchSpec {
        container_id,
        task_id: TaskId::new_unchecked(id),
        agent_id: c.direct_agent.clone(),
        framework_id: FrameworkId::new_unchecked("launch-bench"),
        sandbox,
        command: Some(sleep_command()),
        docker: docker.then(|| DockerSpec {
            image: TEST_IMAGE.into(),
            ..DockerSpec::default()
        }),
        env,
        limits: Limits {
            cpus: Scalar::from_milli(100),
            mem_mb: Scalar::from_units(32),
            pids: None,
        },
    })
}

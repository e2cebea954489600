//! The `agora` binary: `agora dev` (a one-machine cluster), `agora master`,
//! `agora agent`, and client commands that read a master's /state.
use anyhow::Context;
use clap::{Parser, Subcommand};

mod app;
mod capacity;
mod client;
mod deployment;
mod describe;
mod dev;
mod follow;
mod get;
mod globals;
mod history;
mod maintenance;
mod marathon;
mod marathon_api;
mod members;
mod plan;
mod run;
mod snapshot;
mod why;

/// mimalloc rather than glibc's malloc: allocation was the largest single
/// cost on a loaded master's threads after the kernel (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Agora: a two-level cluster scheduler in the Mesos tradition.
#[derive(Parser)]
#[command(name = "agora", version, about)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `agora_master=debug`.
    #[arg(long, global = true, env = "AGORA_LOG", default_value = "info")]
    log: String,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(flatten)]
    globals: globals::Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a master, an agent and Marathon together, data under one directory.
    Dev(dev::DevArgs),
    /// Run a Marathon process (the v2 REST API for long-running apps).
    Marathon(marathon::MarathonArgs),
    /// Run a master.
    Master(run::MasterArgs),
    /// Run an agent, or drain/undrain one (`agora agent drain ID`).
    Agent(run::AgentCommand),
    /// Print a master's /state as JSON.
    State(client::ClientArgs),
    /// List a master's agents.
    Agents(client::ClientArgs),
    /// List a master's frameworks.
    Frameworks(client::ClientArgs),
    /// List a master's live tasks.
    Tasks(client::ClientArgs),
    /// List, add or remove the masters of a group.
    Members(members::MembersArgs),
    /// What is free, allocated, offered and reserved, per agent or attribute (cluster first).
    Capacity(capacity::CapacityArgs),
    /// How utilisation moved: the masters' replicated history (1h, 24h or 30d).
    History(history::HistoryArgs),
    /// How many more instances of a shape fit, where, and why not (exit 2 if not all).
    Fit(capacity::FitArgs),
    /// Marathon apps: deploy|scale|restart|rollback (following the deployment) and plan.
    App(app::AppArgs),
    /// One agent or app in detail.
    Describe(describe::DescribeArgs),
    /// Marathon deployments: list, watch, stop, rollback (followed like `app deploy`).
    Deployment(deployment::DeploymentArgs),
    /// List agents, frameworks, tasks, offers, roles, apps or deployments (-o table|wide|json, --watch).
    Get(get::GetArgs),
    /// Save the masters' state to a backup file, or found a new group from one.
    Snapshot(snapshot::SnapshotArgs),
    /// Why an app's instances wait: Marathon's queue reasons and where its shape fits now (exit 2 if some wait).
    Why(why::WhyArgs),
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let g = cli.globals;
    let code = rt.block_on(async move { dispatch(cli.command, &g).await })?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Runs a blocking client command off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Runs one command; returns its exit code.
async fn dispatch(command: Command, g: &globals::Globals) -> anyhow::Result<i32> {
    let g2 = g.clone();
    match command {
        Command::Dev(a) => dev::run(a).await.map(|()| 0),
        Command::Marathon(a) => marathon::run(a).await.map(|()| 0),
        Command::Master(a) => run::master(a).await.map(|()| 0),
        Command::Snapshot(a) => snapshot::run(a).await.map(|()| 0),
        Command::Agent(a) => match a.op {
            Some(mut op) => {
                op.resolve(g);
                blocking(move || maintenance::run(&op)).await.map(|()| 0)
            }
            None => run::agent(a.run).await.map(|()| 0),
        },
        Command::State(mut a) => {
            a.ep.resolve(g);
            client::state(a).await.map(|()| 0)
        }
        Command::Agents(mut a) => {
            a.ep.resolve(g);
            client::agents(a).await.map(|()| 0)
        }
        Command::Frameworks(mut a) => {
            a.ep.resolve(g);
            client::frameworks(a).await.map(|()| 0)
        }
        Command::Tasks(mut a) => {
            a.ep.resolve(g);
            client::tasks(a).await.map(|()| 0)
        }
        Command::Members(mut a) => {
            a.ep.resolve(g);
            members::run(a).await.map(|()| 0)
        }
        Command::History(mut a) => {
            a.ep.resolve(g);
            blocking(move || history::history(&a)).await.map(|()| 0)
        }
        Command::Capacity(mut a) => {
            a.ep.resolve(g);
            capacity::capacity(a).await.map(|()| 0)
        }
        Command::Fit(mut a) => {
            a.ep.resolve(g);
            capacity::fit(a).await
        }
        Command::Get(mut a) => {
            a.ep.resolve(g);
            blocking(move || get::get(&a)).await.map(|()| 0)
        }
        Command::Why(mut a) => {
            a.ep.resolve(g);
            blocking(move || why::why(&a)).await
        }
        Command::Describe(mut a) => {
            a.ep.resolve(g);
            blocking(move || describe::describe(&a)).await.map(|()| 0)
        }
        Command::App(mut a) => {
            a.ep.resolve(g);
            blocking(move || app::run(&a, &g2)).await
        }
        Command::Deployment(mut a) => {
            a.ep.resolve(g);
            blocking(move || deployment::run(&a, &g2)).await
        }
    }
}

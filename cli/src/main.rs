//! The `agora` binary: `agora dev` (a one-machine cluster), `agora master`,
//! `agora agent`, and client commands that read a master's /state.
use anyhow::Context;
use clap::{Parser, Subcommand};

mod app;
mod capacity;
mod client;
mod dev;
mod get;
mod maintenance;
mod marathon;
mod members;
mod run;
mod why;

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
    /// How many more instances of a shape fit, where, and why not (exit 2 if not all).
    Fit(capacity::FitArgs),
    /// Marathon apps: deploy a definition and follow the deployment to its end.
    App(app::AppArgs),
    /// List agents, frameworks, tasks, offers, roles, apps or deployments (-o table|wide|json, --watch).
    Get(get::GetArgs),
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
    rt.block_on(async move {
        match cli.command {
            Command::Dev(a) => dev::run(a).await,
            Command::Marathon(a) => marathon::run(a).await,
            Command::Master(a) => run::master(a).await,
            Command::Agent(a) => match a.op {
                Some(op) => tokio::task::spawn_blocking(move || maintenance::run(&op)).await?,
                None => run::agent(a.run).await,
            },
            Command::State(a) => client::state(a).await,
            Command::Agents(a) => client::agents(a).await,
            Command::Frameworks(a) => client::frameworks(a).await,
            Command::Tasks(a) => client::tasks(a).await,
            Command::Members(a) => members::run(a).await,
            Command::Capacity(a) => capacity::capacity(a).await,
            Command::Get(a) => tokio::task::spawn_blocking(move || get::get(&a)).await?,
            Command::Why(a) => {
                let code = tokio::task::spawn_blocking(move || why::why(&a)).await??;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::App(a) => {
                let app::AppCommand::Deploy(d) = a.command;
                let code = tokio::task::spawn_blocking(move || app::deploy(&d)).await??;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
            Command::Fit(a) => {
                let code = capacity::fit(a).await?;
                if code != 0 {
                    std::process::exit(code);
                }
                Ok(())
            }
        }
    })
}

//! Launches N copies of a command on whatever offers arrive and exits 0 once
//! all of them reached TASK_FINISHED (1 if any ended otherwise, 2 on a driver
//! error). Unused offers are declined; offers are suppressed once every task
//! is launched.
//!
//! ```text
//! cargo run -p agora-scheduler-sdk --example launch_n -- \
//!     --master 127.0.0.1:5050 --tasks 3 --cmd "sleep 1" --cpus 0.1 --mem 32
//! ```
use std::process::ExitCode;
use std::time::Duration;

use agora_scheduler_sdk::model::{FrameworkInfo, ResourceRequest, Role};
use agora_scheduler_sdk::{BatchJob, SchedulerDriver, run_batch};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Launch N tasks on an Agora cluster and wait for them to finish")]
struct Args {
    /// Master address(es), host:port or http://host:port; repeat the flag or
    /// give a comma-separated list.
    #[arg(
        long = "master",
        value_delimiter = ',',
        default_value = "127.0.0.1:5050"
    )]
    masters: Vec<String>,
    /// How many tasks.
    #[arg(long, default_value_t = 3)]
    tasks: usize,
    /// Shell command each task runs.
    #[arg(long, default_value = "sleep 1")]
    cmd: String,
    /// CPUs per task.
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory per task, MB.
    #[arg(long, default_value_t = 32.0)]
    mem: f64,
    /// Run each task in a Docker container from this image.
    #[arg(long)]
    docker_image: Option<String>,
    /// Framework name (also the task id prefix).
    #[arg(long, default_value = "launch-n")]
    name: String,
    /// Role to receive offers for.
    #[arg(long, default_value = "*")]
    role: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("launch_n: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut framework = FrameworkInfo::named(&args.name);
    framework.roles = vec![Role::parse(args.role.clone())?];
    let request = ResourceRequest::new(args.cpus, args.mem);
    if request.cpus.is_zero() && request.mem.is_zero() {
        anyhow::bail!("--cpus and --mem must not both be zero (or invalid)");
    }
    let mut job = BatchJob::new(args.tasks, args.cmd, request);
    job.id_prefix = args.name.clone();
    job.docker_image = args.docker_image;
    job.refuse_small_offers = Some(Duration::from_secs(5));
    let builder = SchedulerDriver::builder(args.masters, framework);
    let report = run_batch(builder, job).await?;
    println!("finished: {}", report.finished.len());
    for (id, state, message) in &report.failed {
        println!("failed: {id} {state} {message}");
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

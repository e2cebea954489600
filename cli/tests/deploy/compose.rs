//! The compose cluster of one test run: which compose tool this machine has,
//! `up` with the run's variables, and a guard whose Drop tears everything
//! down (containers, network, volumes, the task containers the agents
//! started and the run's images), on success and on failure alike.
use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::Context;

/// The label on the run's task images; Docker copies an image's labels onto
/// its containers, so the agents' task containers carry it too.
pub(crate) const RUN_LABEL: &str = "agora.deploy-test-run";

/// `docker compose` (v2 plugin) or `docker-compose` (v1, Debian's package).
#[derive(Debug, Clone)]
pub(crate) struct Tool(Vec<&'static str>);

impl Tool {
    /// The first compose tool that answers `version`.
    pub(crate) fn detect() -> Option<Tool> {
        [vec!["docker", "compose"], vec!["docker-compose"]]
            .into_iter()
            .find(|argv| {
                Command::new(argv[0])
                    .args(&argv[1..])
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(Tool)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(self.0[0]);
        c.args(&self.0[1..]);
        c
    }
}

/// Runs `cmd`, failing with its stderr unless it succeeds.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// Runs `docker ARGS...`.
pub(crate) fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = run(Command::new("docker").args(args))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One run's cluster. Everything it creates is named after `project` or
/// labelled with it, so concurrent runs and other tests' containers on the
/// same daemon are never touched.
pub(crate) struct Cluster {
    tool: Tool,
    /// The compose project name, unique per run.
    pub(crate) project: String,
    file: PathBuf,
    env: Vec<(String, String)>,
    /// Images built for this run, removed on drop.
    images: Vec<String>,
}

impl Cluster {
    pub(crate) fn new(tool: Tool, project: String, env: Vec<(String, String)>) -> Cluster {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker-compose.yml");
        Cluster {
            tool,
            project,
            file,
            env,
            images: Vec::new(),
        }
    }

    /// Records an image to remove on drop (call before building it, so a
    /// half-finished build is cleaned up too).
    pub(crate) fn owns_image(&mut self, image: &str) {
        self.images.push(image.to_string());
    }

    fn compose(&self) -> Command {
        let mut c = self.tool.command();
        c.arg("-f")
            .arg(&self.file)
            .args(["-p", &self.project])
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `up -d`: creates the network, the volumes and all eight services.
    pub(crate) fn up(&self) -> anyhow::Result<()> {
        run(self.compose().args(["up", "-d", "--no-build"]))?;
        Ok(())
    }

    /// The container id of a service.
    pub(crate) fn container(&self, service: &str) -> anyhow::Result<String> {
        let out = run(self.compose().args(["ps", "-q", service]))?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        anyhow::ensure!(!id.is_empty(), "no container for {service}");
        Ok(id)
    }

    /// The last lines of every service's log, for a failure's report.
    pub(crate) fn logs(&self) -> String {
        match self
            .compose()
            .args(["logs", "--no-color", "--tail=40"])
            .output()
        {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) => format!("compose logs failed: {e}"),
        }
    }

    /// Containers carrying this run's label (the agents' task containers).
    fn task_containers(&self) -> Vec<String> {
        let filter = format!("label={RUN_LABEL}={}", self.project);
        docker(&["ps", "-aq", "--filter", &filter])
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- compose logs of {} ---\n{}", self.project, self.logs());
        }
        // The agents go first, so none starts a task while we clean up.
        let down = self
            .compose()
            .args(["down", "-v", "--remove-orphans", "--timeout", "5"])
            .output();
        if let Err(e) = down.as_ref().map_err(|e| e.to_string()).and_then(|o| {
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).into_owned())
        }) {
            eprintln!("teardown of {}: compose down failed: {e}", self.project);
        }
        let tasks = self.task_containers();
        if !tasks.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(tasks.iter().map(String::as_str));
            if let Err(e) = docker(&args) {
                eprintln!("teardown of {}: {e}", self.project);
            }
        }
        for image in &self.images {
            // Untags only: an image id another tag shares stays.
            if let Err(e) = docker(&["rmi", image]) {
                eprintln!("teardown of {}: {e}", self.project);
            }
        }
    }
}

//! `agora app plan|deploy|scale|restart|rollback` and `agora describe`
//! against `agora dev` as a process, through the global `AGORA_ADDR` and
//! `AGORA_MARATHON` only; the follower's plain mode (one timestamped line
//! per change) here, its terminal mode under tmux in `terminal.rs`.
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::{AGORA, start_dev};

/// The app every step below changes.
const WEB: &str =
    r#"{"id": "/cli/web", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 2}"#;

/// `agora` with the cluster named only by the global environment variables.
struct Cli {
    master: String,
    marathon: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new(AGORA)
            .args(args)
            .env("AGORA_ADDR", &self.master)
            .env("AGORA_MARATHON", &self.marathon)
            .env_remove("AGORA_MASTER")
            .output()?)
    }

    fn plan(&self, file: &Path, def: &str) -> anyhow::Result<(i32, String)> {
        std::fs::write(file, def)?;
        let out = self.run(&["app", "plan", "-f", &file.display().to_string()])?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code().unwrap_or(-1), text))
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Checks the follower's plain output: every line but the last starts with
/// a UTC timestamp, no state is printed twice in a row, the last line is
/// the ✓/✗ verdict. Returns the progress lines without their timestamps.
fn progress(text: &str) -> Vec<String> {
    assert!(
        !text.contains('\x1b'),
        "no ANSI codes off a terminal: {text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let (verdict, changes) = lines.split_last().unwrap_or((&"", &[]));
    assert!(
        verdict.starts_with('✓') || verdict.starts_with('✗'),
        "{text}"
    );
    let states: Vec<String> = changes
        .iter()
        .map(|l| {
            let (ts, rest) = l.split_once(' ').unwrap_or_default();
            assert!(
                ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                "not timestamped: {l:?} in {text}"
            );
            rest.to_string()
        })
        .collect();
    for pair in states.windows(2) {
        assert_ne!(pair[0], pair[1], "a state printed twice: {text}");
    }
    states
}

#[tokio::test]
async fn app_plan_scale_restart_rollback_and_describe() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_dev, m, marathon) = start_dev(
        dir.path(),
        "cpus:2;mem:1024;disk:1024;ports:[33080-33089]",
        false,
    )
    .await?;
    let cli = Cli {
        master: m.to_string(),
        marathon: marathon.to_string(),
    };
    let file = dir.path().join("app.json");
    let path = file.display().to_string();

    // plan: 255 for what cannot be read or Marathon would refuse.
    assert_eq!(cli.plan(&file, "{not json")?.0, 255);
    let (code, text) = cli.plan(&file, r#"{"id": "/cli/web", "cmd": "x", "cpus": -1}"#)?;
    assert_eq!(code, 255, "{text}");
    assert!(
        text.contains("/cpus"),
        "Marathon's path of the problem: {text}"
    );
    // Nothing listens on port 1: plan says 255, a change says 1.
    let down = |args: &[&str]| {
        Command::new(AGORA)
            .args(args)
            .env("AGORA_MARATHON", "127.0.0.1:1")
            .output()
    };
    std::fs::write(&file, WEB)?;
    assert_eq!(
        down(&["app", "plan", "-f", &path])?.status.code(),
        Some(255)
    );
    assert_eq!(
        down(&["app", "scale", "/cli/web", "1"])?.status.code(),
        Some(1)
    );
    // A new app: its fields as additions, and it fits.
    let (code, text) = cli.plan(&file, WEB)?;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("+ app /cli/web\n") && text.contains("  + instances: 2"),
        "{text}"
    );
    assert!(
        text.contains("All 2 new instance(s) can be placed"),
        "{text}"
    );

    let out = cli.run(&["app", "deploy", "-f", &path, "--timeout", "30"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let states = progress(&stdout(&out));
    assert!(
        states.last().is_some_and(|s| s.contains("2 running")),
        "{states:?}"
    );

    assert_eq!(
        cli.plan(&file, WEB)?,
        (0, "/cli/web: no change\n".to_string())
    );
    let (code, text) = cli.plan(&file, &WEB.replace("\"instances\": 2", "\"instances\": 4"))?;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("  ~ instances: 2 → 4") && text.contains("scale only"),
        "{text}"
    );
    let (code, text) = cli.plan(&file, &WEB.replace("sleep 300", "sleep 301"))?;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("restart: every instance is replaced (same shape)"),
        "{text}"
    );
    // 2 cpus hold 3 more of 0.5 cpus beside the two 0.1s, not 4.
    let wide = WEB
        .replace("\"cpus\": 0.1", "\"cpus\": 0.5")
        .replace("\"instances\": 2", "\"instances\": 4");
    let (code, text) = cli.plan(&file, &wide)?;
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("WARNING: only 3 of 4 new instance(s)"),
        "{text}"
    );
    std::fs::write(&file, WEB)?;

    // scale, restart, rollback: each follows its deployment to a ✓.
    let out = cli.run(&["app", "scale", "/cli/web", "3"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        progress(&stdout(&out))
            .last()
            .is_some_and(|s| s.contains("3 running"))
    );
    let out = cli.run(&["app", "restart", "cli/web"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("RestartApplication"), "{out:?}");
    // No version: the one before the current (the restart kept 3).
    let out = cli.run(&["app", "rollback", "/cli/web"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        progress(&stdout(&out))
            .last()
            .is_some_and(|s| s.contains("3 wanted"))
    );
    let (_, body) = agora_tests::http_get(marathon, "/v2/apps/cli/web/versions").await?;
    let app: serde_json::Value = serde_json::from_str(&body)?;
    let first = app["versions"]
        .as_array()
        .and_then(|v| v.last())
        .and_then(|v| v.as_str());
    let first = first.unwrap_or_default().to_string();
    let out = cli.run(&["app", "rollback", "/cli/web", "--version", &first])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        progress(&stdout(&out))
            .last()
            .is_some_and(|s| s.contains("2 wanted, 0 staged, 2 running")),
        "{out:?}"
    );

    describe(&cli)?;

    // Not placeable by the deadline: exit 2 with the queue's reason.
    let out = cli.run(&["app", "scale", "/cli/web", "40", "--timeout", "3"])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stdout(&out).contains("not placeable within 3 s"), "{out:?}");
    // That deployment still holds the app; --force overrides it.
    let out = cli.run(&["app", "scale", "/cli/web", "2", "--force", "--detach"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("started (version"), "{out:?}");

    overtaken(&cli, marathon, dir.path()).await?;
    deployments(&cli, dir.path())?;
    history(&cli).await?;
    Ok(())
}

/// `agora history`: the replicated samples as rows; the total is the
/// agent's 2 cpus in every row; `-o json` is the API's answer.
async fn history(cli: &Cli) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let text = loop {
        let out = cli.run(&["history", "--range", "1h"])?;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = stdout(&out);
        if text.lines().count() >= 3 {
            break text;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no history row: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert!(text.starts_with("cluster · one point per 10 s"), "{text}");
    for row in text.lines().skip(2) {
        assert_eq!(
            row.split_whitespace().nth(4),
            Some("2"),
            "CPUS TOTAL: {text}"
        );
    }
    let out = cli.run(&["history", "-o", "json", "--scope", "cluster"])?;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(v["scope"], "cluster");
    let out = cli.run(&["history", "--range", "soon"])?;
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown range");
    Ok(())
}

/// Starts a change to /cli/web that waits on a failing health check and
/// returns its deployment id (from `--detach`'s line).
fn sick_web(cli: &Cli, dir: &Path) -> anyhow::Result<String> {
    let file = dir.join("sick-web.json");
    std::fs::write(
        &file,
        WEB.replace(
            "\"instances\": 2",
            r#""instances": 2, "healthChecks": [{"protocol": "COMMAND",
                "command": {"value": "false"}, "gracePeriodSeconds": 300}]"#,
        ),
    )?;
    let path = file.display().to_string();
    let out = cli.run(&["app", "deploy", "-f", &path, "--force", "--detach"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    let id = text
        .split("deployment ")
        .nth(1)
        .and_then(|t| t.split(' ').next());
    Ok(id.unwrap_or_default().to_string())
}

/// `agora deployment watch|rollback|stop|list` on deployments of /cli/web.
fn deployments(cli: &Cli, dir: &Path) -> anyhow::Result<()> {
    let id = sick_web(cli, dir)?;
    let list = stdout(&cli.run(&["deployment", "list"])?);
    assert!(list.contains(&id), "{list}");
    // Placed but never healthy: not a placement problem, so 3, not 2.
    let out = cli.run(&["deployment", "watch", &id, "--timeout", "2"])?;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stdout(&out).contains("nothing waits for resources"),
        "{out:?}"
    );
    // Rolled back: a new deployment to the definition before, followed to ✓.
    let out = cli.run(&["deployment", "rollback", &id])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out)
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("✓ /cli/web deployed")),
        "{out:?}"
    );
    let app = stdout(&cli.run(&["describe", "app", "/cli/web"])?);
    assert!(
        !app.contains("unhealthy"),
        "the health check is gone: {app}"
    );
    let id = sick_web(cli, dir)?;
    let out = cli.run(&["deployment", "stop", &id])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let list = stdout(&cli.run(&["deployment", "list"])?);
    assert_eq!(list.lines().count(), 1, "only the header: {list}");
    Ok(())
}

/// `describe agent` by hostname and `describe app`: every section, with
/// the app's two tasks in both.
fn describe(cli: &Cli) -> anyhow::Result<()> {
    let out = cli.run(&["describe", "agent", "localhost"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    for section in [
        "Attributes\n",
        "Resources\n",
        "Placeable (reference shapes)\n",
        "Largest task: cpus ",
        "Tasks\n",
    ] {
        assert!(text.contains(section), "{section:?} in {text}");
    }
    let cpus = text
        .lines()
        .find(|l| l.trim_start().starts_with("cpus "))
        .unwrap_or_default();
    assert_eq!(
        cpus.split_whitespace().nth(1),
        Some("2"),
        "total cpus: {text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("cli_web.")).count(),
        2,
        "{text}"
    );
    let out = cli.run(&["describe", "app", "/cli/web"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("Instances:    2 wanted, 0 staged, 2 running"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("cli_web.") && l.contains("TASK_RUNNING"))
            .count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("Deployment:   none under way")
            && text.contains("Waiting:      nothing waits"),
        "{text}"
    );
    let missing = cli.run(&["describe", "agent", "no-such-host"])?;
    assert_eq!(missing.status.code(), Some(1));
    Ok(())
}

/// A deployment overtaken by a forced change of the app ends ✗ with exit
/// 3; while it waits on a health check that never passes, nothing is
/// printed.
async fn overtaken(cli: &Cli, marathon: SocketAddr, dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("sick.json");
    std::fs::write(
        &file,
        r#"{"id": "/cli/sick", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 1,
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "false"},
                              "gracePeriodSeconds": 300, "intervalSeconds": 1}]}"#,
    )?;
    let child = Command::new(AGORA)
        .args([
            "app",
            "deploy",
            "-f",
            &file.display().to_string(),
            "--timeout",
            "60",
        ])
        .env("AGORA_MARATHON", &cli.marathon)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let other = WEB.replace("/cli/web", "/cli/sick");
    let path = "/v2/apps/cli/sick?force=true&partialUpdate=false";
    let (status, _, body) = agora_tests::http_request(marathon, "PUT", path, Some(&other)).await?;
    assert_eq!(status, 200, "{body}");
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = stdout(&out);
    let states = progress(&text);
    // Staged, running (then 6 s of polls with nothing new), the end.
    assert!(states.len() <= 4, "a line per change only: {text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("✗ /cli/sick")),
        "{text}"
    );
    Ok(())
}

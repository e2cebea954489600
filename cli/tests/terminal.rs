//! The deployment follower on a real terminal: `agora app deploy` runs in
//! a detached tmux session against `agora dev`, and the pane it leaves
//! shows one table redrawn in place (not a frame per poll) and the ✓ line,
//! in colour unless `NO_COLOR` or `--no-color` says otherwise. tmux is Debian's `tmux` package
//! (scripts/test installs it); without it the test is skipped, except
//! with CI=true, where that is a failure.
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{AGORA, start_dev};

/// A tmux server on its own socket in the test's directory (so nothing
/// is left behind in /tmp/tmux-UID), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> anyhow::Result<Output> {
        let out = Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .output()?;
        anyhow::ensure!(out.status.success(), "tmux {args:?}: {out:?}");
        Ok(out)
    }

    /// Runs `shell` in a new 150×40 session `name`; the pane stays after it
    /// exits (the shell sleeps) so that it can be read.
    fn start(&self, name: &str, shell: &str) -> anyhow::Result<()> {
        let keep = format!("{shell}; echo EXIT=$?; sleep 600");
        self.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "150",
            "-y",
            "40",
            &keep,
        ])?;
        Ok(())
    }

    /// The pane's text; with `escapes`, its colours as SGR sequences too.
    fn capture(&self, name: &str, escapes: bool) -> anyhow::Result<String> {
        let mut args = vec!["capture-pane", "-p", "-t", name];
        if escapes {
            args.push("-e");
        }
        Ok(String::from_utf8_lossy(&self.cmd(&args)?.stdout).into_owned())
    }

    /// The pane once the command has exited.
    fn wait_exit(&self, name: &str, timeout: Duration) -> anyhow::Result<String> {
        let end = Instant::now() + timeout;
        loop {
            let pane = self.capture(name, false)?;
            if pane.contains("EXIT=") {
                return Ok(pane);
            }
            anyhow::ensure!(Instant::now() < end, "no exit within {timeout:?}: {pane}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .output();
    }
}

fn tmux_present() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is missing (apt-get install tmux); CI=true makes that a failure"
        );
        eprintln!("skipped: tmux is not installed");
    }
    found
}

/// An app whose deployment waits on a command health check until the test
/// creates `ready`, so the follower draws several frames.
fn slow_app(dir: &Path) -> anyhow::Result<String> {
    let ready = dir.join("ready");
    let def = serde_json::json!({
        "id": "/tty/slow", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 2,
        "healthChecks": [{"protocol": "COMMAND",
                          "command": {"value": format!("test -f {}", ready.display())},
                          "gracePeriodSeconds": 60, "intervalSeconds": 1}]
    });
    let file = dir.join("slow.json");
    std::fs::write(&file, def.to_string())?;
    Ok(file.display().to_string())
}

#[tokio::test]
async fn app_deploy_on_a_terminal_redraws_one_table_and_ends_with_a_tick() -> anyhow::Result<()> {
    if !tmux_present() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (_dev, m, marathon) = start_dev(
        dir.path(),
        "cpus:2;mem:1024;disk:1024;ports:[33090-33099]",
        false,
    )
    .await?;
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock").display().to_string(),
    };
    let file = slow_app(dir.path())?;
    let raw = dir.path().join("raw.log");
    let env = format!("env -u NO_COLOR AGORA_ADDR={m} AGORA_MARATHON={marathon} AGORA_LOG=warn");
    tmux.start(
        "deploy",
        &format!("{env} {AGORA} app deploy -f {file} --timeout 60"),
    )?;
    // Every byte written to the pane, to count the in-place redraws.
    tmux.cmd(&[
        "pipe-pane",
        "-t",
        "deploy",
        &format!("cat > {}", raw.display()),
    ])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::write(dir.path().join("ready"), "")?;
    let pane = tmux.wait_exit("deploy", Duration::from_secs(60))?;

    let lines: Vec<&str> = pane.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(pane.contains("EXIT=0"), "{pane}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("APP ")).count(),
        1,
        "one table: {pane}"
    );
    let rows: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("/tty/slow "))
        .collect();
    assert_eq!(rows.len(), 1, "one row: {pane}");
    assert_eq!(
        rows[0].split_whitespace().take(5).collect::<Vec<_>>(),
        ["/tty/slow", "2", "0", "2", "2"],
        "the last frame: {pane}"
    );
    assert!(
        lines.iter().any(|l| l.trim() == "deployment finished"),
        "{pane}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("✓ /tty/slow deployed")),
        "{pane}"
    );
    assert!(
        !pane.contains("step "),
        "earlier frames were overwritten: {pane}"
    );
    let bytes = std::fs::read_to_string(&raw).unwrap_or_default();
    assert!(
        bytes.matches("\x1b[3F").count() >= 3,
        "redrawn in place: {bytes:?}"
    );
    let coloured = tmux.capture("deploy", true)?;
    assert!(
        coloured.contains("\x1b[32m✓"),
        "a green tick on a terminal: {coloured:?}"
    );

    // NO_COLOR: the same tick, without colour.
    let plain = format!("env NO_COLOR=1 AGORA_MARATHON={marathon} AGORA_LOG=warn");
    tmux.start("scale", &format!("{plain} {AGORA} app scale /tty/slow 1"))?;
    let pane = tmux.wait_exit("scale", Duration::from_secs(60))?;
    assert!(
        pane.contains("EXIT=0") && pane.contains("✓ /tty/slow deployed"),
        "{pane}"
    );
    let raw_scale = tmux.capture("scale", true)?;
    assert!(
        !raw_scale.contains("\x1b[32m"),
        "no colour with NO_COLOR: {raw_scale:?}"
    );
    // --no-color: the same (an app without health checks, to be quick).
    let plain_app = dir.path().join("plain.json");
    std::fs::write(
        &plain_app,
        r#"{"id": "/tty/plain", "cmd": "sleep 300", "cpus": 0.1, "mem": 16}"#,
    )?;
    let env = format!("env -u NO_COLOR AGORA_MARATHON={marathon} AGORA_LOG=warn");
    let deploy = format!("{AGORA} app deploy -f {} --no-color", plain_app.display());
    tmux.start("flag", &format!("{env} {deploy}"))?;
    let pane = tmux.wait_exit("flag", Duration::from_secs(60))?;
    assert!(
        pane.contains("EXIT=0") && pane.contains("✓ /tty/plain deployed"),
        "{pane}"
    );
    let raw_flag = tmux.capture("flag", true)?;
    assert!(
        !raw_flag.contains("\x1b[32m"),
        "no colour with --no-color: {raw_flag:?}"
    );
    Ok(())
}

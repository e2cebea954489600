//! The three agents share the host's Docker daemon, so each sees the
//! others' task containers. Restarted together, each must recover only its
//! own: an agent that took another's container for an orphan of its own
//! would kill it. The agent logs what its recovery found before acting on
//! it, so the check reads that line rather than racing the kills.
use std::process::Command;
use std::time::Duration;

use agora_tests::eventually;

use super::compose::{Cluster, docker};

/// What one agent's recovery reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    pub(crate) alive: u64,
    pub(crate) orphans: u64,
}

/// Restarts the three agent containers (SIGTERM: the agents stop, their
/// tasks keep running) and returns each one's recovery report.
pub(crate) async fn restart_agents(
    cluster: &Cluster,
    wait: Duration,
) -> anyhow::Result<Vec<Recovery>> {
    let ids = ["agent1", "agent2", "agent3"]
        .iter()
        .map(|a| cluster.container(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut args = vec!["restart", "-t", "5"];
    args.extend(ids.iter().map(String::as_str));
    docker(&args)?;
    let mut reports = Vec::new();
    for id in &ids {
        let report = eventually("an agent's recovery report", wait, || async {
            recovery_in(&logs(id))
        })
        .await?;
        reports.push(report);
    }
    Ok(reports)
}

/// A container's log, both streams (the agent logs to stderr).
fn logs(id: &str) -> String {
    match Command::new("docker").args(["logs", id]).output() {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            text
        }
        Err(_) => String::new(),
    }
}

/// The agent's `recovered containers alive=N exited=N orphans=N` line
/// (logged only when it starts from a checkpoint), colours removed.
fn recovery_in(log: &str) -> Option<Recovery> {
    let line = log
        .lines()
        .map(strip_ansi)
        .find(|l| l.contains("recovered containers"))?;
    let field = |name: &str| -> Option<u64> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some(Recovery {
        alive: field("alive")?,
        orphans: field("orphans")?,
    })
}

/// Removes terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn reads_the_recovery_line() {
    let log = "x\n\u{1b}[32m INFO\u{1b}[0m agora_agent::recovery: recovered containers \
               \u{1b}[3malive\u{1b}[0m\u{1b}[2m=\u{1b}[0m1 \u{1b}[3mexited\u{1b}[0m=0 orphans=0\n";
    assert_eq!(
        recovery_in(log),
        Some(Recovery {
            alive: 1,
            orphans: 0
        })
    );
    assert_eq!(recovery_in("agent starting\n"), None);
}

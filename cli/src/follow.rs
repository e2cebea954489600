//! Following a Marathon deployment to its end, shared by `agora app
//! deploy|scale|restart|rollback`. On a terminal one table is redrawn in
//! place (the cursor moves back up over the last frame) with a spinner;
//! elsewhere one timestamped line is printed per state change and nothing
//! while the state holds, since CI logs fill with identical lines otherwise
//! (nomad#11068, kubectl#979). It ends with a ✓ or ✗ line and an exit
//! code: 0 done, 2 not placeable by the deadline (with the queue's
//! reasons), 3 failed or rolled back (the app is not at the version the
//! change made, or at the deadline nothing waits for resources and the
//! deployment still has not finished), 1 an error.
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::globals::paint;
use crate::marathon_api::{call, waiting_reasons};

/// How often the deployment is looked at.
const POLL: Duration = Duration::from_millis(500);

/// Lines drawn on a terminal are cut to this many columns: a line the
/// terminal wraps takes two rows, and moving up by the number of lines
/// drawn would then leave part of the last frame on screen.
const WIDTH: usize = 79;

/// The spinner's frames, one per poll.
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// What a change started: the app, its deployment and the version it set.
pub(crate) struct Started {
    pub(crate) app: String,
    pub(crate) deployment: Option<String>,
    pub(crate) version: Option<String>,
}

/// How to show it.
pub(crate) struct View {
    pub(crate) tty: bool,
    pub(crate) colour: bool,
    pub(crate) timeout: Duration,
}

impl View {
    /// How to follow on this process's stdout, giving up after `timeout_secs`.
    pub(crate) fn for_stdout(g: &crate::globals::Globals, timeout_secs: u64) -> View {
        use std::io::IsTerminal;
        View {
            tty: std::io::stdout().is_terminal(),
            colour: crate::globals::colour(g),
            timeout: Duration::from_secs(timeout_secs),
        }
    }
}

/// One look at the deployment: its step line and the app's row.
#[derive(PartialEq, Eq)]
struct Frame {
    step: String,
    row: Vec<String>,
}

const HEADER: [&str; 6] = ["APP", "WANTED", "STAGED", "RUNNING", "HEALTHY", "VERSION"];

fn frame(app: &Value, deployment: Option<&Value>) -> Frame {
    let step = deployment.map_or("deployment finished".to_string(), |d| {
        let actions: Vec<&str> = d["currentActions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["action"].as_str())
            .collect();
        format!(
            "step {}/{} {}",
            d["currentStep"],
            d["totalSteps"],
            actions.join(",")
        )
    });
    let n = |k: &str| app[k].as_u64().unwrap_or(0).to_string();
    Frame {
        step,
        row: vec![
            app["id"].as_str().unwrap_or("?").to_string(),
            n("instances"),
            n("tasksStaged"),
            n("tasksRunning"),
            n("tasksHealthy"),
            app["version"].as_str().unwrap_or("-").to_string(),
        ],
    }
}

/// The table's lines: the step, the header and the app's row.
fn table(f: &Frame) -> Vec<String> {
    let fmt = |cells: &[String]| {
        format!(
            "{:<20} {:>6} {:>6} {:>7} {:>7}  {}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        )
    };
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    vec![f.step.clone(), fmt(&header), fmt(&f.row)]
}

/// The one line per change written when not on a terminal.
fn plain(f: &Frame) -> String {
    format!(
        "{} {}: {} wanted, {} staged, {} running, {} healthy",
        f.step, f.row[0], f.row[1], f.row[2], f.row[3], f.row[4]
    )
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn utc(secs: u64) -> String {
    agora_model::utc::format_secs(secs)
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Draws frames: in place on a terminal, a line per change elsewhere.
struct Painter {
    tty: bool,
    drawn: usize,
    polls: usize,
    last: Option<Frame>,
}

impl Painter {
    fn show(&mut self, f: Frame, done: bool) {
        if self.tty {
            self.redraw(&f, done);
        } else if self.last.as_ref() != Some(&f) {
            println!("{} {}", now(), plain(&f));
        }
        let _ = std::io::stdout().flush();
        self.last = Some(f);
        self.polls += 1;
    }

    /// Moves up over the previous frame and overwrites it line by line.
    fn redraw(&mut self, f: &Frame, done: bool) {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}F", self.drawn));
        }
        let lines = table(f);
        for (i, line) in lines.iter().enumerate() {
            let spin = if i == 0 && !done {
                format!("{} ", SPINNER[self.polls % SPINNER.len()])
            } else if i == 0 {
                "  ".to_string()
            } else {
                String::new()
            };
            let line: String = format!("{spin}{line}").chars().take(WIDTH).collect();
            out.push_str(&format!("\x1b[2K{line}\n"));
        }
        print!("{out}");
        self.drawn = lines.len();
    }
}

/// At the deadline: exit 2 when instances still wait for resources (with
/// the queue's reasons), else 3, since everything was placed and the
/// deployment still did not finish (health or readiness checks failing).
fn overdue(marathon: &str, s: &Started, v: &View, bad: &str) -> i32 {
    let secs = v.timeout.as_secs();
    match waiting_reasons(marathon, &s.app) {
        None => {
            println!(
                "{bad} {}: not finished within {secs} s; nothing waits for resources (health or readiness checks?)",
                s.app
            );
            3
        }
        Some(why) => {
            let why = if why.is_empty() {
                why
            } else {
                format!(": {why}")
            };
            println!("{bad} {}: not placeable within {secs} s{why}", s.app);
            2
        }
    }
}

fn find_deployment(list: &Value, id: Option<&str>) -> Option<Value> {
    let id = id?;
    list.as_array()?.iter().find(|d| d["id"] == id).cloned()
}

/// Follows `s` until its deployment is gone or the deadline passes;
/// returns the exit code.
pub(crate) fn follow(marathon: &str, s: &Started, v: &View) -> anyhow::Result<i32> {
    let deadline = Instant::now() + v.timeout;
    let path = format!("/v2/apps{}", s.app);
    let mut p = Painter {
        tty: v.tty,
        drawn: 0,
        polls: 0,
        last: None,
    };
    let (ok, bad) = (paint(v.colour, "32", "✓"), paint(v.colour, "31", "✗"));
    loop {
        let (_, list) = call(marathon, "GET", "/v2/deployments", "")?;
        let running = find_deployment(&list, s.deployment.as_deref());
        let (status, now) = call(marathon, "GET", &path, "")?;
        if status == 404 {
            println!("{bad} {}: the app is gone", s.app);
            return Ok(3);
        }
        anyhow::ensure!(status == 200, "GET {path}: HTTP {status}: {now}");
        let app = &now["app"];
        p.show(frame(app, running.as_ref()), running.is_none());
        if running.is_none() {
            let at = app["version"].as_str().unwrap_or("?");
            return Ok(match s.version.as_deref() {
                Some(want) if want != at => {
                    println!(
                        "{bad} {}: the deployment failed or was rolled back (version {at}, not {want})",
                        s.app
                    );
                    3
                }
                _ => {
                    println!("{ok} {} deployed (version {at})", s.app);
                    0
                }
            });
        }
        if Instant::now() >= deadline {
            return Ok(overdue(marathon, s, v, &bad));
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_matches_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_000_000), "2026-11-30T00:53:20Z");
    }
}

//! Client commands: read a master's /state and print it.
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
}

/// Redirects followed from a standby master to the leader.
const MAX_REDIRECTS: usize = 3;

/// One HTTP response, as much of it as the CLI reads.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: String,
}

/// A blocking HTTP/1.1 request; the CLI needs nothing more.
fn request_once(master: &str, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
    let addr = master
        .to_socket_addrs()
        .with_context(|| format!("resolving {master}"))?
        .next()
        .with_context(|| format!("{master} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {master}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {master}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP status line")?;
    let location = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    });
    Ok(Reply {
        status,
        location,
        body: body.to_string(),
    })
}

/// A request that follows a standby's 307 to the leader.
pub(crate) fn request(master: &str, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
    let mut target = master.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let reply = request_once(&target, method, path, body)?;
        let next = reply
            .location
            .as_deref()
            .and_then(|l| l.strip_prefix("http://"))
            .and_then(|l| l.split('/').next());
        match (reply.status, next) {
            (307 | 308, Some(leader)) => target = leader.to_string(),
            _ => return Ok(reply),
        }
    }
    anyhow::bail!("{path}: too many redirects (last: {target})")
}

fn get(master: &str, path: &str) -> anyhow::Result<String> {
    let reply = request(master, "GET", path, "")?;
    anyhow::ensure!(
        reply.status == 200,
        "{path}: HTTP {}: {}",
        reply.status,
        reply.body.trim()
    );
    Ok(reply.body)
}

/// GET `path` from `addr` (following a standby's redirect) as JSON; any
/// status but 200 is an error carrying the body.
pub(crate) fn get_json(addr: &str, path: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&get(addr, path)?).with_context(|| format!("{path} is not JSON"))
}

async fn fetch_state(master: &str) -> anyhow::Result<Value> {
    let master = master.to_string();
    let body = tokio::task::spawn_blocking(move || get(&master, "/state")).await??;
    serde_json::from_str(&body).context("/state is not JSON")
}

pub(crate) async fn state(a: ClientArgs) -> anyhow::Result<()> {
    let v = fetch_state(&a.ep.master).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The agent's connection status, with `,draining` while the operator
/// drains it.
fn status(agent: &Value) -> String {
    let mut out = s(&agent["status"]);
    if agent["maintenance"].is_object() {
        out.push_str(",draining");
    }
    out
}

pub(crate) async fn agents(a: ClientArgs) -> anyhow::Result<()> {
    let v = fetch_state(&a.ep.master).await?;
    println!(
        "{:<38} {:<20} {:<13} {:>8} {:>10} {:>6}",
        "ID", "HOSTNAME", "STATUS", "CPUS", "MEM", "TASKS"
    );
    for ag in v["agents"].as_array().into_iter().flatten() {
        let used = &ag["used_resources"];
        let total = &ag["resources"];
        println!(
            "{:<38} {:<20} {:<13} {:>8} {:>10} {:>6}",
            s(&ag["id"]),
            s(&ag["hostname"]),
            status(ag),
            format!("{}/{}", s(&used["cpus"]), s(&total["cpus"])),
            format!("{}/{}", s(&used["mem"]), s(&total["mem"])),
            s(&ag["task_count"])
        );
    }
    Ok(())
}

pub(crate) async fn frameworks(a: ClientArgs) -> anyhow::Result<()> {
    let v = fetch_state(&a.ep.master).await?;
    println!(
        "{:<38} {:<20} {:<8} {:>6} {:>6}",
        "ID", "NAME", "ACTIVE", "TASKS", "OFFERS"
    );
    for f in v["frameworks"].as_array().into_iter().flatten() {
        println!(
            "{:<38} {:<20} {:<8} {:>6} {:>6}",
            s(&f["id"]),
            s(&f["name"]),
            s(&f["active"]),
            f["tasks"].as_array().map_or(0, Vec::len),
            f["offers"].as_array().map_or(0, Vec::len)
        );
    }
    Ok(())
}

pub(crate) async fn tasks(a: ClientArgs) -> anyhow::Result<()> {
    let v = fetch_state(&a.ep.master).await?;
    println!(
        "{:<30} {:<20} {:<16} {:<38} {:>6}",
        "TASK", "FRAMEWORK", "STATE", "AGENT", "CPUS"
    );
    for f in v["frameworks"].as_array().into_iter().flatten() {
        for t in f["tasks"].as_array().into_iter().flatten() {
            println!(
                "{:<30} {:<20} {:<16} {:<38} {:>6}",
                s(&t["id"]),
                s(&f["name"]),
                s(&t["state"]),
                s(&t["agent_id"]),
                s(&t["resources"]["cpus"])
            );
        }
    }
    Ok(())
}

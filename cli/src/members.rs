//! `agora members`: list, add and remove the masters of a group (over the
//! masters' `/members` endpoints; a standby redirects to the leader).
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::request;

#[derive(Args, Debug, Clone)]
pub(crate) struct MembersArgs {
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
    /// Print the answer as JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) action: Option<MembersAction>,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum MembersAction {
    /// List the members, the leader, term and log positions (the default).
    List,
    /// Add a master; start it with `--join` (before or after).
    Add {
        /// Its member id (decimal, or `0x` and hex).
        #[arg(value_parser = crate::globals::member_id)]
        id: u64,
        /// Its `host:port` (master API and Raft traffic).
        address: String,
        /// Its etcd API `host:port` (default: same host, port 2379).
        #[arg(long)]
        etcd_address: Option<String>,
    },
    /// Remove a member (not the leader itself).
    Remove {
        /// Its member id (decimal, or `0x` and hex as etcdctl prints it).
        #[arg(value_parser = crate::globals::member_id)]
        id: u64,
    },
}

pub(crate) async fn run(args: MembersArgs) -> anyhow::Result<()> {
    let master = args.ep.master.clone();
    let json = args.json;
    let (method, path, body) = match args.action.unwrap_or(MembersAction::List) {
        MembersAction::List => ("GET", "/members".to_string(), String::new()),
        MembersAction::Add {
            id,
            address,
            etcd_address,
        } => {
            let body =
                serde_json::json!({ "id": id, "address": address, "etcd_address": etcd_address });
            ("POST", "/members".to_string(), body.to_string())
        }
        MembersAction::Remove { id } => ("DELETE", format!("/members/{id}"), String::new()),
    };
    let reply =
        tokio::task::spawn_blocking(move || request(&master, method, &path, &body)).await??;
    let value: Value = serde_json::from_str(&reply.body)
        .with_context(|| format!("HTTP {}: {}", reply.status, reply.body.trim()))?;
    if reply.status != 200 {
        anyhow::bail!(
            "HTTP {}: {}",
            reply.status,
            value["message"].as_str().unwrap_or(reply.body.trim())
        );
    }
    if json {
        println!("{value}");
    } else {
        print_members(&value);
    }
    Ok(())
}

fn print_members(v: &Value) {
    println!(
        "term {}  commit {}  applied {} (as seen by member {})",
        v["term"], v["commit_index"], v["applied_index"], v["member_id"]
    );
    println!("{:<6} {:<28} {:<28} ROLE", "ID", "ADDRESS", "ETCD");
    for m in v["members"].as_array().into_iter().flatten() {
        let role = if m["leader"].as_bool() == Some(true) {
            "leader"
        } else {
            "standby"
        };
        println!(
            "{:<6} {:<28} {:<28} {}",
            // serde_json's Display ignores widths: pad a string instead.
            m["id"].to_string(),
            m["address"].as_str().unwrap_or("-"),
            m["etcd_address"].as_str().unwrap_or("-"),
            role
        );
    }
}

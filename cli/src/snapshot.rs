//! `agora snapshot save|restore`: backups of the masters' replicated state
//! (registry and keyspace). `save` asks one master's etcd API for its
//! state, as `etcdctl snapshot save` does (either tool writes the same
//! file); `restore` turns the file into a member's data dir for a new
//! group, offline, as `etcdctl snapshot restore` does for etcd. Restore
//! every member of the new group from the same file with the same
//! `--peers`, then start them as usual.
use std::io::Write;
use std::path::{Path, PathBuf};

use agora_master::replication::{GroupConfig, restore_data_dir};
use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug, Clone)]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    pub(crate) action: SnapshotAction,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum SnapshotAction {
    /// Save one master's state to FILE (written whole, then renamed).
    Save {
        /// Where to write the backup.
        file: PathBuf,
        /// The master's etcd API, `host:port` or `http://host:port`.
        #[arg(long, default_value = "127.0.0.1:2379", env = "AGORA_ETCD")]
        etcd: String,
    },
    /// Write a new, empty data dir for member --id of a new group from FILE.
    Restore {
        /// The backup to restore.
        file: PathBuf,
        /// This member's id in the new group (decimal, or `0x` and hex).
        #[arg(long = "id", default_value_t = 1, value_parser = crate::globals::member_id)]
        member_id: u64,
        /// The new group's members, as `agora master --peers` takes them
        /// (default: a group of this member alone).
        #[arg(long)]
        peers: Option<String>,
        /// The member's data dir: must not exist or be empty.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

pub(crate) async fn run(args: SnapshotArgs) -> anyhow::Result<()> {
    match args.action {
        SnapshotAction::Save { file, etcd } => save(&file, &etcd).await,
        SnapshotAction::Restore {
            file,
            member_id,
            peers,
            data_dir,
        } => {
            let ids = match peers {
                Some(text) => GroupConfig::parse_peers(&text)?.into_keys().collect(),
                None => vec![member_id],
            };
            let dir = data_dir.clone();
            let r = tokio::task::spawn_blocking(move || {
                restore_data_dir(&file, &data_dir, member_id, &ids)
            })
            .await??;
            println!(
                "restored member {member_id} into {}: revision {}, {} agents, {} frameworks \
                 (the old group's index {}); start it with `agora master --data-dir {0}`",
                dir.display(),
                r.revision,
                r.agents,
                r.frameworks,
                r.applied_index,
            );
            Ok(())
        }
    }
}

async fn save(file: &Path, etcd: &str) -> anyhow::Result<()> {
    // etcd-client dials `host:port` as `http://host:port`.
    let mut client = etcd_client::Client::connect([etcd], None)
        .await
        .with_context(|| format!("connect to {etcd}"))?;
    let mut stream = client
        .snapshot()
        .await
        .with_context(|| format!("snapshot from {etcd}"))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await? {
        bytes.extend_from_slice(chunk.blob());
    }
    // Checked before it is kept: a backup found damaged on the day it is
    // needed is no backup.
    agora_raft::decode_backup(&bytes).context("the master sent a damaged backup")?;
    let (file, size) = (file.to_path_buf(), bytes.len());
    let file =
        tokio::task::spawn_blocking(move || write_whole(&file, &bytes).map(|()| file)).await??;
    println!("saved {size} bytes to {}", file.display());
    Ok(())
}

/// Writes `bytes` to `FILE.part`, syncs it, then renames it to `file`: a
/// crash or a full disk leaves no file that looks like a whole backup.
fn write_whole(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut out =
        std::fs::File::create(&partial).with_context(|| format!("create {}", partial.display()))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("rename to {}", file.display()))
}

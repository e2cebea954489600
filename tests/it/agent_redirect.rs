//! Agents and standby masters over real sockets: a fake standby link
//! listener answers the registration with "not the leading master" and the
//! leader's address, in front of a real master; the agent registers there.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_proto::link::{FrameReader, FrameWriter, not_leader_frame};
use agora_proto::v1;
use agora_proto::v1::link_frame::Frame;
use agora_tests::{TestMaster, eventually};
use tokio::net::TcpListener;

use crate::agent_support::*;

/// A fake standby on the agent link.
struct Standby {
    addr: String,
    /// Registrations it refused.
    refused: Arc<AtomicUsize>,
    /// The leader it names; tests change it as leadership moves.
    leader: Arc<Mutex<Option<String>>>,
}

/// A standby's side of the link: reads the magic and a Register frame,
/// answers `LinkError::not_leader(leader)` and closes.
async fn fake_standby(leader: Option<String>) -> anyhow::Result<Standby> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let refused = Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    let leader = Arc::new(Mutex::new(leader));
    let named = leader.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (rd, wr) = stream.into_split();
            let Ok(mut reader) = FrameReader::after_magic(rd).await else {
                continue;
            };
            if let Ok(Some(v1::LinkFrame {
                frame: Some(Frame::Register(_)),
            })) = reader.next().await
            {
                count.fetch_add(1, Ordering::SeqCst);
                let leader = named.lock().map(|l| l.clone()).unwrap_or_default();
                let mut writer = FrameWriter::new(wr);
                let _ = writer.send_now(&not_leader_frame(leader.as_deref())).await;
            }
        }
    });
    Ok(Standby {
        addr,
        refused,
        leader,
    })
}

#[tokio::test]
async fn agent_registers_at_the_leader_a_standby_names_without_backing_off() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let standby = fake_standby(Some(master.host_port())).await?;
    let dir = tempfile::tempdir()?;
    let mut config = agent_config(&master, dir.path());
    // Only the standby is configured, and a backoff longer than the test
    // waits: the agent must follow the hint, at once.
    config.masters = vec![standby.addr];
    config.register_backoff_min = Duration::from_secs(60);
    config.register_backoff_max = Duration::from_secs(60);
    let t0 = tokio::time::Instant::now();
    let agent = start_agent(config).await?;
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(standby.refused.load(Ordering::SeqCst), 1);
    let id = id_of(&agent)?;
    let state = master.state().await?;
    assert!(
        state.to_string().contains(&id),
        "the leader does not know agent {id}: {state}"
    );
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_walks_past_a_standby_without_a_hint() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let standby = fake_standby(None).await?;
    let dir = tempfile::tempdir()?;
    let mut config = agent_config(&master, dir.path());
    config.masters = vec![standby.addr, master.host_port()];
    let agent = start_agent(config).await?;
    assert!(standby.refused.load(Ordering::SeqCst) >= 1);
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_follows_leadership_to_a_new_leader_after_its_leader_goes_away() -> anyhow::Result<()>
{
    let mut first = TestMaster::start().await;
    let second = TestMaster::start().await;
    let standby = fake_standby(Some(first.host_port())).await?;
    let dir = tempfile::tempdir()?;
    let mut config = agent_config(&first, dir.path());
    config.masters = vec![standby.addr.clone()];
    let agent = start_agent(config).await?;
    assert_eq!(standby.refused.load(Ordering::SeqCst), 1);

    // Leadership moves: the old leader's links close, and the standby now
    // names the new leader, which the agent was never configured with.
    if let Ok(mut l) = standby.leader.lock() {
        *l = Some(second.host_port());
    }
    first.crash();
    eventually("the agent at the new leader", WAIT, || async {
        let st = second.state().await.ok()?;
        (!st["agents"].as_array()?.is_empty()).then_some(())
    })
    .await?;
    assert!(standby.refused.load(Ordering::SeqCst) >= 2);
    agent.shutdown().await;
    Ok(())
}

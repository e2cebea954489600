//! The scheduler SDK and standby masters over real sockets: a fake standby
//! (the SDK's FakeMaster answering every call with `not_leader_status`)
//! in front of a real master; the driver subscribes at the real master,
//! without waiting for its backoff, and its calls go there.
use std::time::Duration;

use agora_proto::not_leader_status;
use agora_scheduler_sdk::SchedulerDriver;
use agora_scheduler_sdk::testing::FakeMaster;
use agora_tests::TestMaster;

use crate::scheduler_support::{Fw, info, state_framework};

#[tokio::test]
async fn a_driver_given_only_a_standby_subscribes_at_the_real_leader() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let (standby, standby_addr) = FakeMaster::start(0.0).await;
    {
        let mut st = standby.lock();
        st.refuse = Some(not_leader_status(Some(&master.host_port())));
        st.refuse_calls = Some(not_leader_status(Some(&master.host_port())));
    }
    // A backoff far longer than the test waits: only the redirect gets it
    // there in time.
    let builder = SchedulerDriver::builder([standby_addr], info("redirected"))
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .call_timeout(Duration::from_secs(5));
    let t0 = tokio::time::Instant::now();
    let fw = Fw::start_with(builder).await;
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(standby.lock().refused, 1);
    let f = state_framework(&master, &fw.id).await;
    assert!(
        f.is_some_and(|f| f["connected"] == true),
        "the leader has no connected framework {}",
        fw.id
    );
    // Calls go to the leader, which accepts them.
    fw.driver.reconcile(vec![]).await?;
    assert!(standby.lock().calls.is_empty());
    fw.stop().await;
    Ok(())
}

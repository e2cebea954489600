//! Alarms: replicated, kept in snapshots, and under NOSPACE refusing the
//! writes that add data while letting an operator free space.

use super::*;
use crate::{AlarmAction, AlarmKind, AlarmMember, CompactRequest, RequestOp};

const NOSPACE_OF_2: AlarmMember = AlarmMember {
    member_id: 2,
    alarm: AlarmKind::NoSpace,
};

fn alarm(kv: &mut KvState, action: AlarmAction, member: AlarmMember) -> Vec<AlarmMember> {
    match kv.apply(&Command::Alarm { action, member }).unwrap() {
        Response::Alarm { changed, .. } => changed,
        other => panic!("alarm answered {other:?}"),
    }
}

fn txn_of(success: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare: vec![],
        success,
        failure: vec![],
    }
}

#[test]
fn raising_and_clearing_answers_what_changed() {
    let mut kv = KvState::new();
    assert_eq!(
        alarm(&mut kv, AlarmAction::Activate, NOSPACE_OF_2),
        [NOSPACE_OF_2]
    );
    assert!(
        alarm(&mut kv, AlarmAction::Activate, NOSPACE_OF_2).is_empty(),
        "already raised"
    );
    let of_3 = AlarmMember {
        member_id: 3,
        ..NOSPACE_OF_2
    };
    alarm(&mut kv, AlarmAction::Activate, of_3);
    assert_eq!(kv.alarms(), [NOSPACE_OF_2, of_3]);
    assert_eq!(
        alarm(&mut kv, AlarmAction::Deactivate, NOSPACE_OF_2),
        [NOSPACE_OF_2]
    );
    assert!(
        alarm(&mut kv, AlarmAction::Deactivate, NOSPACE_OF_2).is_empty(),
        "not raised"
    );
    assert_eq!(kv.alarms(), [of_3]);
    assert_eq!(kv.current_revision(), 1, "alarms take no revision");
}

#[test]
fn nospace_refuses_what_adds_data_and_lets_space_be_freed() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    put(&mut kv, "b", "1");
    let lease = Command::LeaseGrant {
        id: 7,
        ttl_seconds: 60,
        now_ms: 0,
    };
    kv.apply(&lease).unwrap();
    alarm(&mut kv, AlarmAction::Activate, NOSPACE_OF_2);
    let hash = kv.hash();

    let refused = [
        Command::Put(put_request("c", "1")),
        Command::Txn(txn_of(vec![RequestOp::Put(put_request("c", "1"))])),
        // etcd's capped applier refuses every txn that writes, deletes too.
        Command::Txn(txn_of(vec![RequestOp::DeleteRange(delete_request(
            "a", "",
        ))])),
        Command::LeaseGrant {
            id: 8,
            ttl_seconds: 60,
            now_ms: 0,
        },
    ];
    for command in &refused {
        assert_eq!(kv.apply(command), Err(KvError::NoSpace), "{command:?}");
    }
    assert_eq!(kv.hash(), hash, "a refusal changes nothing");

    let read_txn = txn_of(vec![RequestOp::Range(range_request("a", ""))]);
    assert_eq!(try_txn(&mut kv, read_txn).unwrap().responses.len(), 1);
    let deleted = delete(&mut kv, delete_request("a", ""));
    assert_eq!(deleted.deleted, 1);
    kv.apply(&Command::LeaseRevoke { id: 7 }).unwrap();
    let revision = kv.current_revision();
    kv.apply(&Command::Compact(CompactRequest { revision }))
        .unwrap();

    alarm(&mut kv, AlarmAction::Deactivate, NOSPACE_OF_2);
    assert_eq!(put(&mut kv, "c", "1").revision, revision + 1);
}

#[test]
fn alarms_survive_a_snapshot_and_count_in_the_hash() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let without = kv.snapshot();
    assert_eq!(without[0], 1, "no alarm: the previous release's format");
    let quiet_hash = kv.hash();
    alarm(&mut kv, AlarmAction::Activate, NOSPACE_OF_2);
    assert_ne!(kv.hash(), quiet_hash);
    let with = kv.snapshot();
    assert_eq!(with[0], 2);
    let restored = KvState::restore(&with).unwrap();
    assert_eq!(restored.alarms(), [NOSPACE_OF_2]);
    assert_eq!(restored.hash(), kv.hash());
    assert_eq!(restored, kv);
    assert!(KvState::restore(&without).unwrap().alarms().is_empty());

    let mut truncated = with.clone();
    truncated.pop();
    assert!(matches!(
        KvState::restore(&truncated),
        Err(KvError::Corrupt { .. })
    ));
    let mut unknown = with;
    unknown[0] = 9;
    assert!(matches!(
        KvState::restore(&unknown),
        Err(KvError::Corrupt { .. })
    ));
}

//! Leases: grant, attach, keep-alive, expiry as data, revoke.

use super::*;
use crate::{
    EventType, LeaseGrantResponse, LeaseId, MAX_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS, Millis,
};

fn grant(
    kv: &mut KvState,
    id: LeaseId,
    ttl_seconds: i64,
    now_ms: Millis,
) -> Result<LeaseGrantResponse, KvError> {
    match kv.apply(&Command::LeaseGrant {
        id,
        ttl_seconds,
        now_ms,
    })? {
        Response::LeaseGrant(response) => Ok(response),
        other => panic!("grant answered {other:?}"),
    }
}

fn put_with_lease(kv: &mut KvState, key: &str, lease: LeaseId) {
    try_put(
        kv,
        PutRequest {
            lease,
            ..put_request(key, "v")
        },
    )
    .unwrap();
}

#[test]
fn grant_ttl_bounds_and_ids() {
    let mut kv = KvState::new();
    let cases = [
        (5, 30, Ok((5, 30))),
        (6, 1, Ok((6, MIN_LEASE_TTL_SECONDS))),
        (7, -3, Ok((7, MIN_LEASE_TTL_SECONDS))),
        (5, 30, Err(KvError::LeaseExists)),
        (8, MAX_LEASE_TTL_SECONDS + 1, Err(KvError::LeaseTtlTooLarge)),
        (8, MAX_LEASE_TTL_SECONDS, Ok((8, MAX_LEASE_TTL_SECONDS))),
        (0, 10, Ok((9, 10))),
        (0, 10, Ok((10, 10))),
    ];
    for (id, ttl, expected) in cases {
        let got = grant(&mut kv, id, ttl, 0).map(|r| (r.id, r.ttl));
        assert_eq!(got, expected, "grant {id} ttl {ttl}");
    }
    assert_eq!(kv.leases(), [5, 6, 7, 8, 9, 10]);
    assert_eq!(kv.current_revision(), 1, "grants do not touch the keyspace");
}

#[test]
fn assigned_ids_are_not_reused_after_revoke() {
    let mut kv = KvState::new();
    assert_eq!(grant(&mut kv, 0, 10, 0).unwrap().id, 1);
    assert_eq!(grant(&mut kv, 0, 10, 0).unwrap().id, 2);
    kv.apply(&Command::LeaseRevoke { id: 2 }).unwrap();
    let mut restored = KvState::restore(&kv.snapshot()).unwrap();
    assert_eq!(grant(&mut kv, 0, 10, 0).unwrap().id, 3);
    assert_eq!(
        grant(&mut restored, 0, 10, 0).unwrap().id,
        3,
        "the snapshot remembers"
    );
}

#[test]
fn assigned_ids_survive_the_highest_id() {
    let mut kv = KvState::new();
    grant(&mut kv, i64::MAX, 10, 0).unwrap();
    assert_eq!(grant(&mut kv, 0, 10, 0).unwrap().id, 1);
    assert_eq!(grant(&mut kv, 0, 10, 0).unwrap().id, 2);
}

#[test]
fn revoke_deletes_attached_keys_in_one_revision() {
    let mut kv = KvState::new();
    grant(&mut kv, 1, 10, 0).unwrap();
    grant(&mut kv, 2, 10, 0).unwrap();
    put_with_lease(&mut kv, "a", 1); // 2
    put_with_lease(&mut kv, "b", 1); // 3
    put_with_lease(&mut kv, "c", 2); // 4
    put_with_lease(&mut kv, "b", 2); // 5: moves b to lease 2
    let ttl = kv.lease_time_to_live(1, 0, true).unwrap();
    assert_eq!(ttl.keys, [b("a")]);
    let revoked = kv.apply(&Command::LeaseRevoke { id: 2 }).unwrap();
    assert_eq!(
        revoked,
        Response::LeaseRevoke(crate::LeaseRevokeResponse { revision: 6 })
    );
    assert_eq!(keys_of(&kv.range(&range_request("a", "z")).unwrap()), ["a"]);
    let events = kv.events_since(6).unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.kind == EventType::Delete && e.kv.mod_revision == 6)
    );
    assert_eq!(
        kv.apply(&Command::LeaseRevoke { id: 2 }),
        Err(KvError::LeaseNotFound)
    );
}

#[test]
fn deleting_or_unleasing_a_key_detaches_it() {
    let mut kv = KvState::new();
    grant(&mut kv, 1, 10, 0).unwrap();
    put_with_lease(&mut kv, "a", 1);
    put_with_lease(&mut kv, "b", 1);
    put_with_lease(&mut kv, "c", 1);
    delete(&mut kv, delete_request("a", ""));
    put(&mut kv, "b", "no lease");
    try_put(
        &mut kv,
        PutRequest {
            ignore_lease: true,
            ..put_request("c", "kept")
        },
    )
    .unwrap();
    assert_eq!(kv.lease_time_to_live(1, 0, true).unwrap().keys, [b("c")]);
    kv.apply(&Command::LeaseRevoke { id: 1 }).unwrap();
    assert_eq!(keys_of(&kv.range(&range_request("a", "z")).unwrap()), ["b"]);
}

#[test]
fn time_to_live_keep_alive_and_expiry_use_the_given_clock() {
    let mut kv = KvState::new();
    grant(&mut kv, 1, 10, 1_000).unwrap(); // expires at 11_000
    let remaining = |kv: &KvState, now| kv.lease_time_to_live(1, now, false).unwrap().ttl;
    assert_eq!(remaining(&kv, 1_000), 10);
    assert_eq!(remaining(&kv, 5_500), 5);
    assert_eq!(remaining(&kv, 11_000), -1);
    assert_eq!(kv.expired_leases(10_999), Vec::<LeaseId>::new());
    assert_eq!(kv.expired_leases(11_000), [1]);
    let renewed = kv
        .apply(&Command::LeaseKeepAlive {
            id: 1,
            now_ms: 9_000,
        })
        .unwrap();
    assert_eq!(
        renewed,
        Response::LeaseKeepAlive(crate::LeaseKeepAliveResponse {
            revision: 1,
            id: 1,
            ttl: 10
        })
    );
    assert_eq!(kv.expired_leases(11_000), Vec::<LeaseId>::new());
    assert_eq!(
        kv.lease_time_to_live(1, 9_000, false).unwrap().granted_ttl,
        10
    );
    let late = kv.apply(&Command::LeaseKeepAlive {
        id: 1,
        now_ms: 19_000,
    });
    assert_eq!(
        late,
        Err(KvError::LeaseNotFound),
        "an expired lease cannot be renewed"
    );
    assert_eq!(
        kv.apply(&Command::LeaseKeepAlive { id: 9, now_ms: 0 }),
        Err(KvError::LeaseNotFound)
    );
    assert_eq!(
        kv.lease_time_to_live(9, 0, false),
        Err(KvError::LeaseNotFound)
    );
}

#[test]
fn expire_leases_rechecks_expiry_at_apply() {
    let mut kv = KvState::new();
    grant(&mut kv, 1, 10, 0).unwrap();
    grant(&mut kv, 2, 10, 0).unwrap();
    put_with_lease(&mut kv, "a", 1);
    put_with_lease(&mut kv, "b", 2);
    let candidates = kv.expired_leases(10_000);
    assert_eq!(candidates, [1, 2]);
    // A keep-alive for lease 2 is committed before the expiry proposal.
    kv.apply(&Command::LeaseKeepAlive {
        id: 2,
        now_ms: 9_000,
    })
    .unwrap();
    let expired = kv
        .apply(&Command::ExpireLeases {
            ids: vec![2, 1, 1, 77],
            now_ms: 10_000,
        })
        .unwrap();
    let Response::ExpireLeases(expired) = expired else {
        panic!("{expired:?}")
    };
    assert_eq!(expired.revoked, [1]);
    assert_eq!(expired.revision, 4);
    assert_eq!(keys_of(&kv.range(&range_request("a", "z")).unwrap()), ["b"]);
    assert_eq!(kv.leases(), [2]);
}

#[test]
fn promote_gives_every_lease_a_full_ttl() {
    let mut kv = KvState::new();
    grant(&mut kv, 1, 10, 0).unwrap();
    grant(&mut kv, 2, 60, 0).unwrap();
    kv.apply(&Command::LeasePromote { now_ms: 50_000 }).unwrap();
    assert_eq!(kv.lease_time_to_live(1, 50_000, false).unwrap().ttl, 10);
    assert_eq!(kv.lease_time_to_live(2, 50_000, false).unwrap().ttl, 60);
    assert_eq!(kv.expired_leases(59_999), Vec::<LeaseId>::new());
    assert_eq!(kv.expired_leases(60_000), [1]);
}

//! Log entries, errors, request size and snapshots.

use super::*;
use crate::{CompactRequest, ErrorCategory, LogEntry, MAX_REQUEST_BYTES};

#[test]
fn error_messages_are_etcds() {
    use ErrorCategory::*;
    let cases = [
        (
            KvError::EmptyKey,
            "etcdserver: key is not provided",
            InvalidArgument,
        ),
        (
            KvError::KeyNotFound,
            "etcdserver: key not found",
            InvalidArgument,
        ),
        (
            KvError::ValueProvided,
            "etcdserver: value is provided",
            InvalidArgument,
        ),
        (
            KvError::LeaseProvided,
            "etcdserver: lease is provided",
            InvalidArgument,
        ),
        (
            KvError::TooManyOps,
            "etcdserver: too many operations in txn request",
            InvalidArgument,
        ),
        (
            KvError::DuplicateKey,
            "etcdserver: duplicate key given in txn request",
            InvalidArgument,
        ),
        (
            KvError::Compacted {
                compact_revision: 4,
            },
            "etcdserver: mvcc: required revision has been compacted",
            OutOfRange,
        ),
        (
            KvError::FutureRevision,
            "etcdserver: mvcc: required revision is a future revision",
            OutOfRange,
        ),
        (
            KvError::LeaseNotFound,
            "etcdserver: requested lease not found",
            NotFound,
        ),
        (
            KvError::LeaseExists,
            "etcdserver: lease already exists",
            FailedPrecondition,
        ),
        (
            KvError::LeaseTtlTooLarge,
            "etcdserver: too large lease TTL",
            OutOfRange,
        ),
        (
            KvError::RequestTooLarge,
            "etcdserver: request is too large",
            InvalidArgument,
        ),
    ];
    for (error, message, category) in cases {
        assert_eq!(error.to_string(), message);
        assert_eq!(error.category(), category, "{message}");
    }
}

#[test]
fn log_entries_round_trip_and_garbage_is_refused() {
    let commands = [
        Command::Put(put_request("a", "1")),
        Command::Compact(CompactRequest { revision: 3 }),
        Command::LeaseGrant {
            id: 0,
            ttl_seconds: 5,
            now_ms: 17,
        },
        Command::ExpireLeases {
            ids: vec![1, 2],
            now_ms: 9,
        },
    ];
    for command in commands {
        let bytes = LogEntry::V1(command.clone()).encode();
        assert_eq!(LogEntry::decode(&bytes).unwrap().into_command(), command);
    }
    let mut kv = KvState::new();
    let error = kv.apply_entry(b"{not json").unwrap_err();
    assert!(
        matches!(
            error,
            KvError::Corrupt {
                what: "command",
                ..
            }
        ),
        "{error:?}"
    );
    let put_entry = LogEntry::V1(Command::Put(put_request("a", "1"))).encode();
    assert!(matches!(kv.apply_entry(&put_entry), Ok(Response::Put(_))));
}

#[test]
fn request_size_limit() {
    let mut kv = KvState::new();
    let value = "x".repeat(MAX_REQUEST_BYTES);
    assert_eq!(
        try_put(&mut kv, put_request("k", &value)),
        Err(KvError::RequestTooLarge)
    );
    let fits = "x".repeat(MAX_REQUEST_BYTES - 1);
    assert!(try_put(&mut kv, put_request("k", &fits)).is_ok());
}

#[test]
fn snapshot_restore_keeps_state_hash_and_lease_keys() {
    let mut kv = KvState::new();
    kv.apply(&Command::LeaseGrant {
        id: 3,
        ttl_seconds: 10,
        now_ms: 0,
    })
    .unwrap();
    try_put(
        &mut kv,
        PutRequest {
            lease: 3,
            ..put_request("a", "1")
        },
    )
    .unwrap();
    put(&mut kv, "b", "1");
    put(&mut kv, "b", "2");
    kv.apply(&Command::Compact(CompactRequest { revision: 3 }))
        .unwrap();
    let restored = KvState::restore(&kv.snapshot()).unwrap();
    assert_eq!(restored, kv);
    assert_eq!(restored.hash(), kv.hash());
    assert_eq!(
        restored.lease_time_to_live(3, 0, true).unwrap().keys,
        [b("a")]
    );
    assert_ne!(KvState::new().hash(), kv.hash());
}

#[test]
fn corrupt_snapshots_are_refused() {
    // postcard: the format (varint) first, then the current revision
    // (zigzag varint: 1 is 0x02).
    let good = KvState::new().snapshot();
    assert_eq!(&good[..2], &[1, 2], "format 1, current revision 1");
    let with = |at: usize, byte: u8| {
        let mut bytes = good.clone();
        bytes[at] = byte;
        bytes
    };
    let bad = [
        b"[]".to_vec(),
        Vec::new(),
        with(0, 2),
        with(1, 0),
        good[..good.len() - 1].to_vec(),
    ];
    for text in bad {
        let error = KvState::restore(&text).unwrap_err();
        assert!(
            matches!(
                error,
                KvError::Corrupt {
                    what: "snapshot",
                    ..
                }
            ),
            "{text:?}: {error:?}"
        );
    }
}

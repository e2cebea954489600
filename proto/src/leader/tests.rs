use super::*;
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue};

#[test]
fn leader_addresses_are_validated_and_normalized() {
    for (given, want) in [
        ("10.0.0.2:5050", "10.0.0.2:5050"),
        ("m2.example.org:5050", "m2.example.org:5050"),
        (" http://m2:5050/ ", "m2:5050"),
        ("[::1]:5050", "[::1]:5050"),
        ("master_2:1", "master_2:1"),
    ] {
        assert_eq!(leader_address(given).as_deref(), Some(want), "{given:?}");
    }
    let long = format!("{}:5050", "a".repeat(300));
    for bad in [
        "",
        " ",
        "m2",
        "m2:",
        ":5050",
        "m2:0",
        "m2:65536",
        "m2:+50",
        "m2:50x",
        "m 2:5050",
        "m2/x:5050",
        "https://m2:5050",
        "[::1:5050",
        "[nope]:5050",
        "::1:5050",
        "mästare:5050",
        "m2\n:5050",
        long.as_str(),
    ] {
        assert_eq!(leader_address(bad), None, "{bad:?} accepted");
    }
    // Surrounding whitespace is trimmed.
    assert_eq!(leader_address("m2:5050\n").as_deref(), Some("m2:5050"));
}

#[test]
fn not_leader_status_round_trips_its_hint() {
    let s = not_leader_status(Some("10.0.0.2:5050"));
    assert_eq!(s.code(), tonic::Code::Unavailable);
    assert_eq!(
        s.message(),
        "not the leading master; leader is at 10.0.0.2:5050"
    );
    assert_eq!(leader_hint(&s).as_deref(), Some("10.0.0.2:5050"));
    assert!(is_not_leader(&s));

    for unknown in [None, Some(""), Some("garbage"), Some("m\u{e4}:1")] {
        let s = not_leader_status(unknown);
        assert_eq!(s.message(), "not the leading master; no leader is known");
        assert!(s.metadata().get(LEADER_METADATA_KEY).is_none());
        assert_eq!(leader_hint(&s), None);
        assert!(is_not_leader(&s));
    }
    assert!(!is_not_leader(&tonic::Status::unavailable(
        "connection reset"
    )));
}

#[test]
fn garbage_metadata_is_no_hint_and_no_panic() {
    let with = |code: tonic::Code, value: &str| {
        let mut s = tonic::Status::new(code, "x");
        if let Ok(v) = value.parse::<AsciiMetadataValue>() {
            s.metadata_mut().insert(LEADER_METADATA_KEY, v);
        }
        s
    };
    for bad in ["", "nope", "m:0", "m:99999", "a b:1", "http://x:1/y", "\t"] {
        assert_eq!(
            leader_hint(&with(tonic::Code::Unavailable, bad)),
            None,
            "{bad:?}"
        );
    }
    // Only a refusal (UNAVAILABLE) carries a hint.
    assert_eq!(leader_hint(&with(tonic::Code::Internal, "m2:5050")), None);
    assert_eq!(leader_hint(&tonic::Status::unavailable("x")), None);

    // Non-UTF-8 / non-ASCII bytes in the header value.
    let mut s = tonic::Status::unavailable("x");
    if let Ok(v) = AsciiMetadataValue::try_from(&[0x80u8, 0xff, b':', b'1'][..]) {
        s.metadata_mut().insert(LEADER_METADATA_KEY, v);
    }
    assert_eq!(leader_hint(&s), None);
    // A binary key of a similar name is not the hint.
    let mut s = tonic::Status::unavailable("x");
    s.metadata_mut().insert_bin(
        "agora-leader-bin",
        BinaryMetadataValue::from_bytes(b"m2:5050"),
    );
    assert_eq!(leader_hint(&s), None);
}

#[test]
fn link_error_carries_the_hint_into_its_status() {
    let e = crate::v1::LinkError::not_leader(Some("m2:5050"));
    assert_eq!(e.code, tonic::Code::Unavailable as i32);
    assert_eq!(e.leader, "m2:5050");
    assert_eq!(e.leader_hint().as_deref(), Some("m2:5050"));
    let s = crate::link::status_of(&e);
    assert_eq!(leader_hint(&s).as_deref(), Some("m2:5050"));
    assert!(is_not_leader(&s));

    let e = crate::v1::LinkError::not_leader(None);
    assert_eq!(e.leader, "");
    assert_eq!(e.leader_hint(), None);
    assert_eq!(leader_hint(&crate::link::status_of(&e)), None);

    // A hint on another code, or garbage, is ignored.
    let e = crate::v1::LinkError {
        code: tonic::Code::InvalidArgument as i32,
        message: "bad".into(),
        leader: "m2:5050".into(),
    };
    assert_eq!(e.leader_hint(), None);
    let e = crate::v1::LinkError {
        code: tonic::Code::Unavailable as i32,
        message: "x".into(),
        leader: "\u{0}\u{7f}".into(),
    };
    assert_eq!(e.leader_hint(), None);
    assert_eq!(leader_hint(&crate::link::status_of(&e)), None);
}

fn walk(masters: &[&str], each: bool) -> MasterWalk {
    MasterWalk::new(masters.iter().map(|m| m.to_string()).collect(), each)
}

#[test]
fn a_hint_is_followed_at_once_even_outside_the_list() {
    let mut w = walk(&["a:1", "b:1", "c:1"], true);
    assert_eq!(w.current(), "a:1");
    assert_eq!(w.failed(Some("z:9")), Retry::Now);
    assert_eq!(w.current(), "z:9");
    assert!(w.is_redirected());
    w.succeeded();
    // The hinted leader then fails plainly: back to the list, after a.
    assert_eq!(w.failed(None), Retry::AfterBackoff);
    assert_eq!(w.current(), "b:1");
    assert!(!w.is_redirected());
}

#[test]
fn hints_pointing_at_each_other_fall_back_to_backoff() {
    let mut w = walk(&["a:1", "b:1"], false);
    let mut now = 0;
    let mut tries = Vec::new();
    for _ in 0..20 {
        tries.push(w.current().to_string());
        let hint = if w.current() == "a:1" { "b:1" } else { "a:1" };
        match w.failed(Some(hint)) {
            Retry::Now => now += 1,
            Retry::AfterBackoff => break,
        }
    }
    assert_eq!(now, MAX_REDIRECT_HOPS as usize, "{tries:?}");
    // After the backoff the walk goes on from the next configured master.
    assert_eq!(w.current(), "b:1");
    assert!(!w.is_redirected());
}

#[test]
fn self_and_garbage_hints_are_plain_failures() {
    let mut w = walk(&["a:1", "http://b:1"], false);
    assert_eq!(w.failed(Some("http://a:1")), Retry::Now);
    assert_eq!(w.current(), "http://b:1");
    assert!(!w.is_redirected());
    assert_eq!(w.failed(Some("not an address")), Retry::AfterBackoff);
    assert_eq!(w.current(), "a:1");
}

#[test]
fn plain_failures_back_off_per_failure_or_per_round() {
    let mut each = walk(&["a:1", "b:1"], true);
    assert_eq!(each.failed(None), Retry::AfterBackoff);
    let mut round = walk(&["a:1", "b:1"], false);
    assert_eq!(round.failed(None), Retry::Now);
    assert_eq!(round.failed(None), Retry::AfterBackoff);
    assert_eq!(round.current(), "a:1");
    // An empty list never panics.
    let mut empty = walk(&[], false);
    assert_eq!(empty.current(), "");
    assert_eq!(empty.failed(Some("a:1")), Retry::Now);
    assert_eq!(empty.failed(None), Retry::AfterBackoff);
}

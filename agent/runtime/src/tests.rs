//! Unit tests of the crate root (ids, serde of handles).
use super::*;

#[test]
fn container_ids_are_validated_and_sanitised() {
    assert!(validate_container_id("web.1234abcd").is_ok());
    for bad in ["", ".x", "-x", "a/b", "a b", "a:b"] {
        assert!(validate_container_id(bad).is_err(), "{bad:?} accepted");
    }
    let id = container_id_for(&TaskId::new_unchecked(".odd:task id"), "0123abcd");
    assert_eq!(id, "_odd_task_id.0123abcd");
    assert!(validate_container_id(&id).is_ok());
    let long = container_id_for(&TaskId::new_unchecked("x".repeat(300)), "0123abcd");
    assert!(validate_container_id(&long).is_ok());
    assert!(long.ends_with(".0123abcd"));
}

#[test]
fn handle_round_trips_through_json() {
    let h = ContainerHandle {
        kind: RuntimeKind::Process,
        container_id: "t.1".into(),
        docker_id: None,
        pid: Some(42),
        pid_start_time: Some(7),
        cgroup: Some("agora/a/t.1".into()),
        sandbox: "/tmp/s".into(),
    };
    let json = serde_json::to_string(&h).unwrap();
    assert!(json.contains(r#""kind":"process""#), "{json}");
    assert_eq!(serde_json::from_str::<ContainerHandle>(&json).unwrap(), h);
}

//! `MasterMachine` without Raft: the same entries give the same state and
//! hash on every member, a snapshot taken anywhere restores to the same
//! state, and garbage (entries or snapshots) never panics or diverges.
use agora_kv::{Command, PutRequest};
use agora_model::{AgentId, Resources, Role};
use agora_raft::{KvHost, StateMachine};
use proptest::prelude::*;

use super::machine::{MasterEntry, MasterMachine, MemberInfo};
use crate::registry::{AgentRecord, LogEntry, RegistryCommand};

pub(super) fn admit(n: u8) -> LogEntry {
    LogEntry::V1(RegistryCommand::AdmitAgent {
        id: AgentId::new_unchecked(format!("a{n}")),
        record: AgentRecord {
            hostname: format!("h{n}"),
            port: 5051,
            resources: Resources::cpus_mem_disk(1.0, 64.0, 0.0),
            attributes: Default::default(),
        },
    })
}

fn unreachable(n: u8, at: u64) -> LogEntry {
    LogEntry::V1(RegistryCommand::MarkUnreachable {
        id: AgentId::new_unchecked(format!("a{n}")),
        at_unix_ms: at,
    })
}

pub(super) fn put(key: u8, value: u8) -> Vec<u8> {
    let entry = agora_kv::LogEntry::V1(Command::Put(PutRequest {
        key: format!("/k{key}").into_bytes(),
        value: vec![value],
        ..PutRequest::default()
    }));
    MasterMachine::encode_kv_entry(&entry)
}

pub(super) fn member(id: u64) -> Vec<u8> {
    MasterEntry::Member(MemberInfo {
        id,
        name: format!("master-{id}"),
        api_addr: format!("m{id}:5050"),
        etcd_addr: format!("m{id}:2379"),
    })
    .encode()
}

/// One entry of a generated log: registry batches, keyspace writes,
/// member records, and garbage.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..4, 0u64..100).prop_map(|(n, at)| {
            MasterEntry::Registry(vec![admit(n), unreachable(n.wrapping_add(1), at)]).encode()
        }),
        (0u8..6, any::<u8>()).prop_map(|(k, v)| put(k, v)),
        (1u64..6).prop_map(member),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

#[test]
fn entries_of_every_kind_apply_and_survive_a_snapshot() {
    let mut machine = MasterMachine::new();
    machine.apply(1, &MasterEntry::Registry(vec![admit(1)]).encode());
    let answer = machine.apply(2, &put(1, 7));
    assert!(matches!(
        agora_raft::KvMachine::decode_answer(&answer),
        Some(agora_raft::KvAnswer::Done(_))
    ));
    machine.apply(3, &member(2));
    assert_eq!(machine.registry().agents.len(), 1);
    assert_eq!(machine.members()[&2].api_addr, "m2:5050");
    assert_eq!(machine.kv().state().current_revision(), 2);
    let mut copy = MasterMachine::new();
    copy.restore(&machine.snapshot()).unwrap();
    assert_eq!(copy.applied_index(), 3);
    assert_eq!(copy.hash(), machine.hash());
    assert_eq!(copy.registry(), machine.registry());
    assert_eq!(copy.members(), machine.members());
}

#[test]
fn a_refused_registry_entry_changes_nothing_anywhere() {
    let mut machine = MasterMachine::new();
    let before = machine.hash();
    // An agent that was never admitted cannot be marked unreachable.
    machine.apply(1, &MasterEntry::Registry(vec![unreachable(9, 1)]).encode());
    assert_eq!(machine.hash(), before);
    // A weight must be positive: refused the same way.
    let bad_weight = LogEntry::V1(RegistryCommand::SetWeight {
        role: Role::star(),
        weight: -1.0,
    });
    machine.apply(2, &MasterEntry::Registry(vec![bad_weight]).encode());
    assert_eq!(machine.hash(), before);
}

proptest! {
    /// Two members applying the same log agree after every entry, and a
    /// third that restores a snapshot taken midway and applies the rest
    /// ends with the same state.
    #[test]
    fn members_agree_and_snapshots_restore_exactly(
        log in proptest::collection::vec(entry(), 1..60),
        cut in 0usize..60,
    ) {
        let (mut a, mut b) = (MasterMachine::new(), MasterMachine::new());
        let cut = cut.min(log.len());
        let mut late = None;
        for (i, data) in log.iter().enumerate() {
            let index = i as u64 + 1;
            prop_assert_eq!(a.apply(index, data), b.apply(index, data));
            prop_assert_eq!(a.hash(), b.hash());
            if i + 1 == cut {
                let mut c = MasterMachine::new();
                c.restore(&a.snapshot()).unwrap();
                late = Some(c);
            }
        }
        let mut c = late.unwrap_or_default();
        for (i, data) in log.iter().enumerate().skip(cut) {
            c.apply(i as u64 + 1, data);
        }
        prop_assert_eq!(c.hash(), a.hash());
        prop_assert_eq!(c.applied_index(), a.applied_index());
        prop_assert_eq!(c.registry(), a.registry());
    }

    #[test]
    fn garbage_snapshots_are_errors_and_leave_the_state_alone(
        bytes in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut machine = MasterMachine::new();
        machine.apply(1, &put(1, 1));
        let before = machine.hash();
        if machine.restore(&bytes).is_err() {
            prop_assert_eq!(machine.hash(), before);
        }
    }
}

//! [`RocksLogStore`] on real RocksDB in temporary directories: the
//! [`LogStore`] contract, reopening, corrupt values, and a 3-member group
//! whose members are dropped (as by `kill -9`) and reopened from disk.

use std::collections::BTreeMap;
use std::path::Path;

use raft::eraftpb::{ConfState, Entry};
use raft::{GetEntriesContext, Storage};
use tempfile::TempDir;

use super::*;
use crate::storage::contract::{entry, entry_with, hard_state, snapshot};
use crate::{Register, Replica, ReplicaConfig, Token};

fn fresh() -> (RocksLogStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksLogStore::open(dir.path()).unwrap();
    (store, dir)
}

crate::storage::contract::log_store_contract!(fresh());

/// Everything a store shows through the trait, to compare before and after a reopen.
#[derive(Debug, PartialEq)]
struct Observed {
    first: u64,
    last: u64,
    terms: Vec<raft::Result<u64>>,
    entries: Vec<Entry>,
    state: (raft::eraftpb::HardState, ConfState),
    snapshot: raft::eraftpb::Snapshot,
}

fn observe(store: &RocksLogStore) -> Observed {
    let (first, last) = (store.first_index().unwrap(), store.last_index().unwrap());
    let initial = store.initial_state().unwrap();
    assert_eq!(initial.hard_state, store.hard_state());
    assert_eq!(initial.conf_state, store.conf_state());
    Observed {
        first,
        last,
        terms: (0..=last + 1).map(|i| store.term(i)).collect(),
        entries: (store.entries(
            first,
            last + 1,
            None::<u64>,
            GetEntriesContext::empty(false),
        ))
        .unwrap(),
        state: (initial.hard_state, initial.conf_state),
        snapshot: store.stored_snapshot(),
    }
}

fn reopen(store: RocksLogStore, dir: &TempDir) -> RocksLogStore {
    drop(store);
    RocksLogStore::open(dir.path()).unwrap()
}

#[test]
fn a_reopened_store_shows_identical_state() {
    let (mut store, dir) = fresh();
    store
        .apply_snapshot(&snapshot(1, 1, vec![1, 2, 3]))
        .unwrap();
    let entries: Vec<Entry> = (2..=20)
        .map(|i| entry_with(i, 2, format!("e{i}").as_bytes()))
        .collect();
    store
        .persist_ready(&entries, Some(&hard_state(2, 1, 15)))
        .unwrap();
    store.append(&[entry_with(18, 3, b"new")]).unwrap();
    let conf_state = ConfState {
        voters: vec![1, 2, 3, 4],
        ..ConfState::default()
    };
    store.set_conf_state(&conf_state).unwrap();
    store
        .save_snapshot_and_compact(&snapshot(12, 2, vec![1, 2, 3, 4]), 10)
        .unwrap();
    store.set_commit(17).unwrap();
    let before = observe(&store);
    assert_eq!((before.first, before.last), (11, 18));
    assert_eq!(before.terms[18], Ok(3));
    assert_eq!(
        before.terms[19],
        Err(raft::Error::Store(raft::StorageError::Unavailable))
    );
    assert_eq!(before.state.0, hard_state(2, 1, 17));
    let store = reopen(store, &dir);
    assert_eq!(observe(&store), before);
    // And once more after an installed snapshot replaced everything.
    let mut store = store;
    store.apply_snapshot(&snapshot(40, 5, vec![1, 2])).unwrap();
    store
        .persist_ready(&[entry(41, 5)], Some(&hard_state(5, 2, 40)))
        .unwrap();
    let before = observe(&store);
    let store = reopen(store, &dir);
    assert_eq!(observe(&store), before);
    assert_eq!((before.first, before.last), (41, 41));
    assert_eq!(store.conf_state().voters, vec![1, 2]);
}

/// The terms cached as entries are written (`recent_terms.rs`) agree with
/// the ones read back from RocksDB after a reopen, through tails replaced
/// by later terms, compactions and an installed snapshot.
#[test]
fn cached_terms_match_the_stored_log_through_overwrites() {
    let (mut store, dir) = fresh();
    let mut term = 1;
    // (first index, entries) of each append: every other one overwrites
    // part of the tail, as a new leader's entries do.
    for (round, (first, count)) in [(1, 30), (25, 4), (29, 10), (10, 5), (15, 40), (54, 1)]
        .into_iter()
        .enumerate()
    {
        term += 1;
        let entries: Vec<Entry> = (first..first + count).map(|i| entry(i, term)).collect();
        store.append(&entries).unwrap();
        if round == 3 {
            store
                .save_snapshot_and_compact(&snapshot(8, 2, vec![1]), 6)
                .unwrap();
        }
        let before = observe(&store);
        assert_eq!(before.last, first + count - 1);
        store = reopen(store, &dir);
        assert_eq!(observe(&store), before, "after append {round}");
    }
    store.apply_snapshot(&snapshot(60, term, vec![1])).unwrap();
    store.append(&[entry(61, term + 1)]).unwrap();
    let before = observe(&store);
    assert_eq!(before.terms[60], Ok(term));
    assert_eq!(before.terms[61], Ok(term + 1));
    store = reopen(store, &dir);
    assert_eq!(observe(&store), before);
}

#[test]
fn a_second_open_of_the_same_directory_is_an_error() {
    let (_store, dir) = fresh();
    let second = RocksLogStore::open(dir.path());
    assert!(matches!(second, Err(StorageError::Rocks(_))), "{second:?}");
}

/// Writes `value` at `key` of column family `cf` behind the store's back.
fn write_raw(dir: &Path, cf: &str, key: &[u8], value: &[u8]) {
    let mut options = Options::default();
    options.create_if_missing(false);
    let db = DB::open_cf(&options, dir, [CF_LOG, CF_STATE, CF_SNAPSHOT]).unwrap();
    db.put_cf(db.cf_handle(cf).unwrap(), key, value).unwrap();
}

/// A closed store holding entries `1..=last` of term 1, for tests that
/// then change its files behind RocksLogStore's back.
fn closed_with_log(last: u64) -> TempDir {
    let (mut store, dir) = fresh();
    store
        .append(&(1..=last).map(|i| entry(i, 1)).collect::<Vec<_>>())
        .unwrap();
    dir
}

fn message(error: impl std::fmt::Display) -> String {
    error.to_string()
}

#[test]
fn a_corrupt_log_value_is_an_error_naming_its_key() {
    let dir = closed_with_log(5);
    write_raw(dir.path(), CF_LOG, &log_key(3), b"\xff\xff not an entry");
    let store = RocksLogStore::open(dir.path()).unwrap();
    let term = store.term(3).unwrap_err();
    assert!(message(&term).contains("corrupt value in log/3"), "{term}");
    let entries = store
        .entries(1, 6, None::<u64>, GetEntriesContext::empty(false))
        .unwrap_err();
    assert!(message(&entries).contains("log/3"), "{entries}");
    assert_eq!(store.term(2), Ok(1), "the rest is still readable");
    drop(store);
    // An entry stored under the wrong key.
    use protobuf::Message as _;
    write_raw(
        dir.path(),
        CF_LOG,
        &log_key(3),
        &entry(4, 1).write_to_bytes().unwrap(),
    );
    let store = RocksLogStore::open(dir.path()).unwrap();
    let error = store.term(3).unwrap_err();
    assert!(message(&error).contains("holds entry 4"), "{error}");
}

#[test]
fn a_corrupt_state_or_key_fails_the_open() {
    let (mut store, dir) = fresh();
    store
        .persist_ready(&[entry(1, 1)], Some(&hard_state(1, 1, 0)))
        .unwrap();
    drop(store);
    write_raw(dir.path(), CF_STATE, KEY_HARD_STATE, b"\xff\xff\xff");
    let error = RocksLogStore::open(dir.path()).unwrap_err();
    assert!(message(&error).contains("state/hard_state"), "{error}");

    // Decodable but inconsistent: a commit index past the log (raft-rs
    // would panic on it).
    let dir = closed_with_log(2);
    use protobuf::Message as _;
    let hs = hard_state(1, 1, 5).write_to_bytes().unwrap();
    write_raw(dir.path(), CF_STATE, KEY_HARD_STATE, &hs);
    let error = RocksLogStore::open(dir.path()).unwrap_err();
    assert!(
        message(&error).contains("commit index 5 past the last entry 2"),
        "{error}"
    );

    let (store, dir) = fresh();
    drop(store);
    write_raw(dir.path(), CF_LOG, b"short", b"");
    let error = RocksLogStore::open(dir.path()).unwrap_err();
    assert!(message(&error).contains("not 8"), "{error}");

    let (store, dir) = fresh();
    drop(store);
    write_raw(dir.path(), CF_STATE, KEY_COMPACTED, b"123");
    let error = RocksLogStore::open(dir.path()).unwrap_err();
    assert!(message(&error).contains("state/compacted"), "{error}");
}

/// The data keys in the snapshot column family, by index.
fn data_indexes(store: &RocksLogStore) -> Vec<u64> {
    let cf = store.cf(CF_SNAPSHOT).unwrap();
    (store.db.iterator_cf(cf, IteratorMode::Start))
        .map(|item| item.unwrap().0)
        .filter_map(|key| key.strip_prefix(DATA_PREFIX).map(|i| index_of(i).unwrap()))
        .collect()
}

#[test]
fn a_staged_snapshot_is_recorded_by_metadata_and_survives_a_reopen() {
    let (mut store, dir) = fresh();
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    let entries: Vec<Entry> = (2..=30).map(|i| entry(i, 2)).collect();
    store.append(&entries).unwrap();
    // Staged on another thread, as the runner does.
    let mut staged = snapshot(20, 2, vec![1]);
    staged.set_data(vec![7u8; 300_000].into());
    let stage = store.snapshot_stager().unwrap();
    let copy = staged.clone();
    std::thread::spawn(move || stage(&copy))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(
        data_indexes(&store),
        vec![1, 20],
        "staged beside the stored one"
    );
    assert_eq!(
        store.stored_snapshot().get_metadata().index,
        1,
        "not yet adopted"
    );
    store
        .save_staged_snapshot_and_compact(staged.clone(), 15)
        .unwrap();
    assert_eq!(store.stored_snapshot(), staged);
    assert_eq!(data_indexes(&store), vec![20], "older data deleted");
    assert_eq!(store.first_index().unwrap(), 16);
    let before = observe(&store);
    let store = reopen(store, &dir);
    assert_eq!(observe(&store), before);
    assert_eq!(store.stored_snapshot().get_data(), staged.get_data());
    assert!(
        !dir.path().join(STAGING_DIR).exists(),
        "the table was moved into the database, its directory removed"
    );
}

#[test]
fn staged_data_never_adopted_goes_with_the_next_snapshot() {
    let (mut store, dir) = fresh();
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    store
        .append(&(2..=30).map(|i| entry(i, 1)).collect::<Vec<_>>())
        .unwrap();
    // Staged, then overtaken (never adopted); and a table left behind by a crash.
    let stage = store.snapshot_stager().unwrap();
    stage(&snapshot(10, 1, vec![1])).unwrap();
    let staging = dir.path().join(STAGING_DIR);
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("snapshot-12.sst"), b"half written").unwrap();
    let store = reopen(store, &dir);
    assert!(
        !staging.exists(),
        "the staging directory is cleared at open"
    );
    assert_eq!(store.stored_snapshot().get_metadata().index, 1);
    let mut store = store;
    store
        .save_snapshot_and_compact(&snapshot(25, 1, vec![1]), 20)
        .unwrap();
    assert_eq!(data_indexes(&store), vec![25]);
    let store = reopen(store, &dir);
    assert_eq!(store.stored_snapshot(), snapshot(25, 1, vec![1]));
}

#[test]
fn a_store_with_the_older_snapshot_layout_opens_and_moves_on() {
    let dir = closed_with_log(10);
    use protobuf::Message as _;
    let old = snapshot(5, 1, vec![1, 2]);
    write_raw(
        dir.path(),
        CF_SNAPSHOT,
        KEY_OLD_SNAPSHOT,
        &old.write_to_bytes().unwrap(),
    );
    let mut store = RocksLogStore::open(dir.path()).unwrap();
    assert_eq!(store.stored_snapshot(), old);
    store
        .save_snapshot_and_compact(&snapshot(8, 1, vec![1, 2]), 6)
        .unwrap();
    let cf = store.cf(CF_SNAPSHOT).unwrap();
    assert_eq!(store.db.get_cf(cf, KEY_OLD_SNAPSHOT).unwrap(), None);
    let store = reopen(store, &dir);
    assert_eq!(store.stored_snapshot(), snapshot(8, 1, vec![1, 2]));
}

#[test]
fn snapshot_metadata_without_its_data_fails_the_open() {
    let (mut store, dir) = fresh();
    store.apply_snapshot(&snapshot(3, 1, vec![1])).unwrap();
    drop(store);
    use protobuf::Message as _;
    let meta = snapshot(9, 1, vec![1])
        .get_metadata()
        .write_to_bytes()
        .unwrap();
    write_raw(dir.path(), CF_SNAPSHOT, KEY_SNAPSHOT_META, &meta);
    let error = RocksLogStore::open(dir.path()).unwrap_err();
    assert!(
        message(&error).contains("data of snapshot 9, which is missing"),
        "{error}"
    );
}

/// The masters' way: a periodic snapshot leaves as a job, is encoded and
/// staged on another thread, and `finish_snapshot` only records it. The
/// member then restarts from it.
#[test]
fn a_background_snapshot_is_staged_off_the_thread_and_restored_from() {
    let (store, dir) = fresh();
    let config = ReplicaConfig {
        background_snapshots: true,
        snapshot_interval: 8,
        log_tail_kept: 2,
        ..crate::tests::config(5)
    };
    let mut replica = Replica::new(1, &[1], store, Register::new(), config.clone()).unwrap();
    replica.campaign().unwrap();
    replica.drive().unwrap();
    let mut job = None;
    for n in 0..12u32 {
        replica
            .propose(format!("p{n}").into_bytes(), u64::from(n))
            .unwrap();
        let out = replica.drive().unwrap();
        job = job.or(out.snapshot_job);
    }
    let job = job.expect("a snapshot was due");
    let index = job.index();
    let encoded = std::thread::spawn(move || job.run()).join().unwrap();
    assert_eq!(
        data_indexes(replica.store()),
        vec![1, index],
        "staged by the encoding thread"
    );
    replica.finish_snapshot(encoded).unwrap();
    assert_eq!(data_indexes(replica.store()), vec![index]);
    assert_eq!(
        replica.store().stored_snapshot().get_metadata().index,
        index
    );
    let history = replica.state_machine().history().to_vec();
    drop(replica);
    let store = RocksLogStore::open(dir.path()).unwrap();
    assert_eq!(store.stored_snapshot().get_metadata().index, index);
    let mut replica = Replica::new(1, &[], store, Register::new(), config).unwrap();
    let restored = replica.state_machine().history().len();
    assert_eq!(
        crate::StateMachine::applied_index(replica.state_machine()),
        index
    );
    assert_eq!(replica.state_machine().history(), &history[..restored]);
    // The entries after the snapshot come back from the log.
    replica.campaign().unwrap();
    for _ in 0..3 {
        replica.drive().unwrap();
    }
    assert_eq!(replica.state_machine().history(), history.as_slice());
}

/// A group of replicas over RocksDB, messages delivered at once. A member
/// that is down has only its directory.
struct Group {
    dirs: BTreeMap<u64, TempDir>,
    up: BTreeMap<u64, Replica<RocksLogStore, Register>>,
    config: ReplicaConfig,
    next_token: Token,
    done: BTreeMap<Token, u64>,
}

impl Group {
    fn new(n: u64, config: ReplicaConfig) -> Group {
        let ids: Vec<u64> = (1..=n).collect();
        let mut group = Group {
            dirs: BTreeMap::new(),
            up: BTreeMap::new(),
            config,
            next_token: 1,
            done: BTreeMap::new(),
        };
        for id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let store = RocksLogStore::open(dir.path()).unwrap();
            let replica = Replica::new(*id, &ids, store, Register::new(), group.config.clone());
            group.up.insert(*id, replica.unwrap());
            group.dirs.insert(*id, dir);
        }
        group
    }

    /// Drops member `id` as `kill -9` would: no shutdown, no flush beyond
    /// what each write already synced.
    fn kill(&mut self, id: u64) {
        drop(self.up.remove(&id));
    }

    /// Reopens member `id` from its directory with an empty state machine.
    fn restart(&mut self, id: u64) {
        let store = RocksLogStore::open(self.dirs[&id].path()).unwrap();
        let replica = Replica::new(id, &[], store, Register::new(), self.config.clone());
        self.up.insert(id, replica.unwrap());
    }

    fn settle(&mut self) {
        for _ in 0..100 {
            let mut messages = Vec::new();
            for replica in self.up.values_mut() {
                let out = replica.drive().unwrap();
                messages.extend(out.messages);
                for completion in out.completions {
                    let applied = completion.result.unwrap();
                    self.done.insert(completion.token, applied.index);
                }
            }
            if messages.is_empty() {
                return;
            }
            for message in messages {
                if let Some(replica) = self.up.get_mut(&message.to) {
                    replica.step(message).unwrap();
                }
            }
        }
    }

    fn tick(&mut self, n: u64) {
        for _ in 0..n {
            for replica in self.up.values_mut() {
                replica.tick().unwrap();
            }
            self.settle();
        }
    }

    fn leader(&mut self) -> u64 {
        for _ in 0..100 {
            if let Some((id, _)) = self.up.iter().find(|(_, r)| r.is_leader()) {
                return *id;
            }
            self.tick(1);
        }
        panic!("no leader");
    }

    fn commit(&mut self, data: &[u8]) -> u64 {
        let leader = self.leader();
        let token = self.next_token;
        self.next_token += 1;
        self.up
            .get_mut(&leader)
            .unwrap()
            .propose(data.to_vec(), token)
            .unwrap();
        self.settle();
        for _ in 0..20 {
            if let Some(index) = self.done.get(&token) {
                return *index;
            }
            self.tick(1);
        }
        panic!("proposal {token} not committed");
    }

    /// Ticks until every member up applied `index`.
    fn converge(&mut self, index: u64) {
        for _ in 0..100 {
            if self.up.values().all(|r| r.applied_index() >= index) {
                return;
            }
            self.tick(1);
        }
        panic!("members did not reach {index}");
    }

    fn histories(&self) -> BTreeMap<u64, Vec<Vec<u8>>> {
        (self.up.iter())
            .map(|(id, r)| (*id, r.state_machine().history().to_vec()))
            .collect()
    }
}

fn payloads(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("entry-{i}").into_bytes()).collect()
}

#[test]
fn a_killed_member_reopens_from_its_directory_and_catches_up() {
    let mut group = Group::new(3, crate::tests::config(7));
    for payload in payloads(0..10) {
        group.commit(&payload);
    }
    let follower = (1..=3).find(|id| !group.up[id].is_leader()).unwrap();
    group.kill(follower);
    let mut last = 0;
    for payload in payloads(10..20) {
        last = group.commit(&payload);
    }
    group.restart(follower);
    group.converge(last);
    let expected = payloads(0..20);
    for (id, history) in group.histories() {
        assert_eq!(history, expected, "member {id}");
    }
    // Kill the leader too: a new one is elected and nothing is lost.
    let leader = group.leader();
    group.kill(leader);
    let last = group.commit(b"after the leader died");
    group.restart(leader);
    group.converge(last);
    for (id, history) in group.histories() {
        assert_eq!(&history[..20], &expected[..], "member {id}");
        assert_eq!(history.len(), 21, "member {id}");
    }
}

#[test]
fn compacted_logs_and_snapshots_survive_a_restart_of_the_whole_group() {
    let config = ReplicaConfig {
        snapshot_interval: 8,
        log_tail_kept: 2,
        ..crate::tests::config(11)
    };
    let mut group = Group::new(3, config);
    group.commit(b"first");
    let lagging = (1..=3).find(|id| !group.up[id].is_leader()).unwrap();
    group.kill(lagging);
    let mut last = 0;
    for payload in payloads(0..30) {
        last = group.commit(&payload);
    }
    let leader = group.leader();
    let first = group.up[&leader].store().first_index().unwrap();
    assert!(
        first > 10,
        "the leader compacted its log (first index {first})"
    );
    // The lagging member is behind the compaction point: it gets a snapshot.
    group.restart(lagging);
    group.converge(last);
    let store = group.up[&lagging].store();
    assert!(store.stored_snapshot().get_metadata().index > 10);
    // Everyone down at once, then up again from disk only.
    let expected = group.histories();
    for id in 1..=3 {
        group.kill(id);
    }
    for id in 1..=3 {
        group.restart(id);
    }
    group.settle();
    assert_eq!(
        group.histories(),
        expected,
        "state rebuilt from snapshot + log"
    );
    let last = group.commit(b"after the restart");
    group.converge(last);
    for history in group.histories().values() {
        assert_eq!(
            history.last().map(Vec::as_slice),
            Some(&b"after the restart"[..])
        );
    }
}

/// Set for the child process of the `kill -9` test: the directory it writes to.
const KILL_DIR_ENV: &str = "AGORA_RAFT_KILL_TEST_DIR";

/// A snapshot at `index` whose data (about 256 KB, derived from the index)
/// takes a moment to stage, so a kill can land in the middle of it.
fn bulky_snapshot(index: u64, term: u64) -> raft::eraftpb::Snapshot {
    let mut snap = snapshot(index, term, vec![1]);
    let data = format!("state at {index};").repeat(16_000);
    snap.set_data(data.into_bytes().into());
    snap
}

/// A snapshot being staged on another thread while the log goes on.
type Staging = (
    raft::eraftpb::Snapshot,
    u64,
    std::thread::JoinHandle<raft::Result<()>>,
);

/// The child of `acknowledged_writes_survive_sigkill` (ignored; without its
/// environment variable it does nothing): writes Readies and, every 50
/// entries, a snapshot with its compaction, alternately inline and staged
/// on another thread while the appends go on (adopted 50 entries later),
/// and prints each acknowledged index until it is killed.
#[test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill"]
fn sigkill_child_writer() {
    use std::io::Write as _;
    let Some(dir) = std::env::var_os(KILL_DIR_ENV) else {
        return;
    };
    let mut store = RocksLogStore::open(dir).unwrap();
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    let mut stdout = std::io::stdout();
    let mut staging: Option<Staging> = None;
    for index in 2..100_000u64 {
        let term = 1 + index / 100;
        let data = format!("entry {index} term {term}");
        let hs = hard_state(term, 1, index - 1);
        store
            .persist_ready(&[entry_with(index, term, data.as_bytes())], Some(&hs))
            .unwrap();
        if index % 50 == 0 {
            if let Some((snap, compact_to, stage)) = staging.take() {
                stage.join().unwrap().unwrap();
                store
                    .save_staged_snapshot_and_compact(snap, compact_to)
                    .unwrap();
            }
            let snap = bulky_snapshot(index - 10, store.term(index - 10).unwrap());
            if (index / 50) % 2 == 0 {
                store.save_snapshot_and_compact(&snap, index - 20).unwrap();
            } else {
                let stage = store.snapshot_stager().unwrap();
                let copy = snap.clone();
                let handle = std::thread::spawn(move || stage(&copy));
                staging = Some((snap, index - 20, handle));
            }
        }
        writeln!(stdout, "acked {index}").unwrap();
        stdout.flush().unwrap();
    }
}

/// A real `kill -9` mid-write: every write the child saw acknowledged is
/// there after a reopen, and entries, hard state and compaction agree.
#[test]
fn acknowledged_writes_survive_sigkill() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "storage::rocks::tests::sigkill_child_writer"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(KILL_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(index) = line.strip_prefix("acked ") {
            acked = index.parse().unwrap();
            // Past 250, where a staged snapshot started beside the appends.
            if acked >= 260 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no RocksDB close
    child.wait().unwrap();
    assert!(acked >= 260, "the child wrote only up to {acked}");
    let store = RocksLogStore::open(dir.path()).unwrap();
    let (first, last) = (store.first_index().unwrap(), store.last_index().unwrap());
    assert!(last >= acked, "acknowledged {acked}, stored up to {last}");
    let hs = store.hard_state();
    assert_eq!(
        hs.commit,
        last - 1,
        "the hard state came in the entry's batch"
    );
    assert_eq!(hs.term, 1 + last / 100);
    let stored = store.stored_snapshot();
    let snapshot_index = stored.get_metadata().index;
    assert!(
        first >= 200 - 20 && first <= snapshot_index + 1,
        "first {first}, snapshot {snapshot_index}"
    );
    // Whether it was written inline or staged, the snapshot is whole.
    assert_eq!(
        stored,
        bulky_snapshot(snapshot_index, 1 + snapshot_index / 100)
    );
    assert!(data_indexes(&store).contains(&snapshot_index));
    let entries = store
        .entries(
            first,
            last + 1,
            None::<u64>,
            GetEntriesContext::empty(false),
        )
        .unwrap();
    for entry in entries {
        let term = 1 + entry.index / 100;
        assert_eq!(entry.term, term);
        assert_eq!(
            entry.get_data(),
            format!("entry {} term {term}", entry.index).as_bytes()
        );
    }
    assert_eq!(store.term(first - 1).unwrap(), 1 + (first - 1) / 100);
    // Whatever the kill left staged goes with the next snapshot.
    let mut store = store;
    let next = bulky_snapshot(last - 1, 1 + (last - 1) / 100);
    store.save_snapshot_and_compact(&next, last - 5).unwrap();
    assert_eq!(data_indexes(&store), vec![last - 1]);
}

/// The WAL files in `dir`: number → size in bytes.
fn wal_files(dir: &Path) -> BTreeMap<u64, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|file| {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            let number = name.strip_suffix(".log")?.parse().ok()?;
            Some((number, file.metadata().unwrap().len()))
        })
        .collect()
}

/// `wal.rs`: from the first append the WAL is a recycled file (already
/// longer than the data written to it, so appends overwrite), the first
/// switch after open goes to the primed spare, WAL files do not pile up, and
/// a reopen recovers exactly what was written, not the older records left in
/// a recycled file's tail.
#[test]
fn appends_go_to_recycled_wal_files_and_reopen_exactly() {
    let (mut store, dir) = fresh();
    let in_use = |dir: &TempDir| wal_files(dir.path()).pop_last().unwrap();
    let recycled = wal::LOG_MEMTABLE_BYTES as u64 / 2;
    let mut uses = vec![in_use(&dir)];
    // Three memtables of 4 KiB entries: at least two WAL switches.
    let payload = vec![7u8; 4096];
    let last = (3 * wal::LOG_MEMTABLE_BYTES / payload.len()) as u64;
    for first in (1..=last).step_by(64) {
        let batch: Vec<Entry> = (first..=(first + 63).min(last))
            .map(|i| entry_with(i, 1, &payload))
            .collect();
        let end = batch.last().unwrap().index;
        store
            .persist_ready(&batch, Some(&hard_state(1, 1, end)))
            .unwrap();
        let now = in_use(&dir);
        if uses.last().unwrap().0 != now.0 {
            uses.push(now);
        }
        let files = wal_files(dir.path()).len();
        assert!(files <= 2 + wal::RECYCLED_WAL_FILES, "{files} WAL files");
    }
    assert!(uses.len() >= 3, "{uses:?}");
    assert!(uses[0].1 >= recycled && uses[1].1 >= recycled, "{uses:?}");
    let store = reopen(store, &dir);
    assert_eq!((store.first_index(), store.last_index()), (Ok(1), Ok(last)));
    let context = GetEntriesContext::empty(false);
    let entries = store.entries(1, last + 1, None, context).unwrap();
    assert_eq!(entries.len() as u64, last);
    assert!(entries.iter().all(|e| e.data == payload && e.term == 1));
    assert_eq!(store.hard_state(), hard_state(1, 1, last));
}

#[test]
fn defragmenting_reclaims_a_trimmed_log_and_changes_nothing_seen() {
    let (mut store, dir) = fresh();
    // Bytes LZ4 cannot shrink, so the tables hold what the log holds.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed.to_le_bytes()
    };
    for chunk in (1..=2000u64).collect::<Vec<_>>().chunks(100) {
        let entries: Vec<Entry> = (chunk.iter())
            .map(|i| entry_with(*i, 1, &(0..512).flat_map(|_| noise()).collect::<Vec<u8>>()))
            .collect();
        store.append(&entries).unwrap();
    }
    let defragmenter = store.defragmenter();
    // Into table files, as a long-running member's log would be.
    defragmenter.run().unwrap();
    store.save_snapshot(&snapshot(1990, 1, vec![1])).unwrap();
    store.compact(1990).unwrap();
    let seen = observe(&store);
    let done = defragmenter.run().unwrap();
    assert!(
        done.bytes_after * 10 < done.bytes_before,
        "the trimmed entries' bytes are gone: {done:?}"
    );
    assert_eq!(observe(&store), seen);
    let store = reopen(store, &dir);
    assert_eq!(observe(&store), seen);
    drop(store);
    // A handle outliving its store neither keeps it open nor reaches it.
    assert!(defragmenter.run().is_err());
    drop(RocksLogStore::open(dir.path()).unwrap());
}

//! `record`: concurrent closed-loop clients against etcd-v3 endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, Error, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::history::{Call, History, Operation, Outcome, Ret, Value};

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    /// Concurrent clients, each with its own connection.
    pub clients: usize,
    /// Keys `"{key_prefix}{0..keys}"`; few keys make ops conflict.
    pub keys: usize,
    /// Must name keys that do not exist yet (the checker starts every key
    /// absent); the default has a random component per run.
    pub key_prefix: String,
    /// Stop once this many ops are recorded (clients in flight finish
    /// theirs, so a few more may be).
    pub max_ops: usize,
    /// Stop after this long even if `max_ops` is not reached.
    pub max_duration: Duration,
    /// A request not answered in this time is recorded as unknown.
    pub op_timeout: Duration,
    /// Seeds each client's choice of ops.
    pub seed: u64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        let run: u64 = rand::rng().random();
        RecordConfig {
            clients: 8,
            keys: 8,
            key_prefix: format!("/lincheck/{run:016x}/"),
            max_ops: 10_000,
            max_duration: Duration::from_secs(60),
            op_timeout: Duration::from_secs(1),
            seed: run,
        }
    }
}

/// State shared by the clients of one recording.
struct Shared<'a> {
    endpoints: &'a [String],
    config: &'a RecordConfig,
    // The one monotonic clock all timestamps come from.
    start: Instant,
    recorded: AtomicUsize,
}

impl Shared<'_> {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn more(&self) -> bool {
        self.recorded.load(Ordering::Relaxed) < self.config.max_ops
            && self.start.elapsed() < self.config.max_duration
    }
}

/// Records a history: `config.clients` closed-loop clients issue random
/// single-key ops over `config.keys` keys, each through its own
/// connection to one endpoint (round-robin by client; on an error the
/// client reconnects to the next endpoint, after a Status probe). A
/// request that times out or fails in a way that does not rule out its
/// effect is recorded as [`Outcome::Unknown`], except a read, which is
/// left out (it had no effect); one that certainly failed is left out.
/// Never fails: an unreachable cluster gives a short or empty history,
/// which the caller can judge by its length.
pub async fn record(endpoints: &[String], config: RecordConfig) -> History {
    if endpoints.is_empty() || config.keys == 0 {
        return History::default();
    }
    let shared = Shared {
        endpoints,
        config: &config,
        start: Instant::now(),
        recorded: AtomicUsize::new(0),
    };
    // Futures on this task rather than spawned tasks: no 'static bound and
    // no lost ops if one panicked. The gRPC I/O runs in tonic's own tasks.
    let clients = (0..config.clients).map(|id| client_loop(id, &shared));
    let per_client = futures_util::future::join_all(clients).await;
    let mut ops: Vec<Operation> = per_client.into_iter().flatten().collect();
    ops.sort_by_key(|o| o.invoked_ns);
    History { ops }
}

/// How one request ended, before it becomes an [`Outcome`].
enum Answer {
    Ok(Ret),
    /// Maybe applied: recorded as unknown.
    Unknown,
    /// Certainly not applied: left out of the history.
    Failed,
}

async fn client_loop(id: usize, shared: &Shared<'_>) -> Vec<Operation> {
    let config = shared.config;
    let mut rng =
        SmallRng::seed_from_u64(config.seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut endpoint = id % shared.endpoints.len();
    let mut conn: Option<Client> = None;
    // The last value this client saw per key: a CAS expecting it often
    // succeeds, so both CAS branches are exercised.
    let mut seen: Vec<Option<Value>> = vec![None; config.keys];
    let mut ops = Vec::new();
    let mut seq = 0u64;
    while shared.more() {
        let Some(client) = conn.as_mut() else {
            conn = connect(&shared.endpoints[endpoint], config.op_timeout).await;
            if conn.is_none() {
                endpoint = (endpoint + 1) % shared.endpoints.len();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        };
        seq += 1;
        let k = rng.random_range(0..config.keys);
        let call = random_call(
            &mut rng,
            format!("{}{k}", config.key_prefix),
            &seen[k],
            format!("c{id}-{seq}"),
        );
        let invoked_ns = shared.now_ns();
        let answer = match tokio::time::timeout(config.op_timeout, issue(client, &call)).await {
            Ok(answer) => answer,
            Err(_elapsed) => Answer::Unknown,
        };
        let outcome = match answer {
            Answer::Ok(ret) => {
                seen[k] = observed(&call, &ret);
                Outcome::Ok {
                    returned_ns: shared.now_ns(),
                    ret,
                }
            }
            Answer::Unknown => Outcome::Unknown,
            Answer::Failed => {
                (conn, endpoint) = (None, (endpoint + 1) % shared.endpoints.len());
                continue;
            }
        };
        if outcome == Outcome::Unknown {
            // The endpoint may be down or partitioned: try the next one.
            (conn, endpoint) = (None, (endpoint + 1) % shared.endpoints.len());
            if matches!(call, Call::Get { .. }) {
                // A read has no effect, so an unanswered one tells nothing.
                continue;
            }
        }
        ops.push(Operation {
            client: id,
            invoked_ns,
            call,
            outcome,
        });
        shared.recorded.fetch_add(1, Ordering::Relaxed);
    }
    ops
}

/// Connects to one endpoint and checks that it answers, so that a dead
/// member costs a cheap probe rather than a recorded unknown op.
async fn connect(endpoint: &str, timeout: Duration) -> Option<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    let attempt = async {
        let mut client = Client::connect([endpoint], Some(options)).await.ok()?;
        client.status().await.ok()?;
        Some(client)
    };
    tokio::time::timeout(timeout, attempt).await.ok().flatten()
}

fn random_call(rng: &mut SmallRng, key: String, seen: &Option<Value>, fresh: Value) -> Call {
    match rng.random_range(0..100) {
        0..35 => Call::Get { key },
        35..60 => Call::Put { key, value: fresh },
        60..70 => Call::Delete { key },
        70..80 => Call::Cas {
            key,
            expected: None,
            new: fresh,
        },
        _ => Call::Cas {
            key,
            expected: seen.clone(),
            new: fresh,
        },
    }
}

/// The key's value as the client last saw it after `call` returned `ret`.
fn observed(call: &Call, ret: &Ret) -> Option<Value> {
    match (call, ret) {
        (Call::Put { value, .. }, _) => Some(value.clone()),
        (Call::Cas { new, .. }, Ret::CasOk) => Some(new.clone()),
        (_, Ret::Get(v) | Ret::CasFailed(v)) => v.clone(),
        _ => None,
    }
}

fn text(bytes: &[u8]) -> Value {
    // Our values are ASCII; anything else is not ours, and a lossy copy of
    // it still differs from every value we wrote.
    String::from_utf8_lossy(bytes).into_owned()
}

async fn issue(client: &mut Client, call: &Call) -> Answer {
    let result = match call {
        Call::Get { key } => client
            .get(key.as_str(), None)
            .await
            .map(|r| Ret::Get(r.kvs().first().map(|kv| text(kv.value())))),
        Call::Put { key, value } => client
            .put(
                key.as_str(),
                value.as_str(),
                Some(PutOptions::new().with_prev_key()),
            )
            .await
            .map(|r| Ret::PutPrev(r.prev_key().map(|kv| text(kv.value())))),
        // A negative count cannot happen; u64::MAX makes the checker flag it.
        Call::Delete { key } => client
            .delete(key.as_str(), None)
            .await
            .map(|r| Ret::Delete(u64::try_from(r.deleted()).unwrap_or(u64::MAX))),
        Call::Cas { key, expected, new } => {
            let compare = match expected {
                Some(v) => Compare::value(key.as_str(), CompareOp::Equal, v.as_str()),
                None => Compare::version(key.as_str(), CompareOp::Equal, 0),
            };
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(key.as_str(), new.as_str(), None)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            match client.txn(txn).await {
                Ok(r) if r.succeeded() => Ok(Ret::CasOk),
                Ok(r) => match r.op_responses().into_iter().next() {
                    Some(TxnOpResponse::Get(g)) => {
                        Ok(Ret::CasFailed(g.kvs().first().map(|kv| text(kv.value()))))
                    }
                    // Not the answer a failed compare gives: claim nothing.
                    _ => return Answer::Unknown,
                },
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(ret) => Answer::Ok(ret),
        Err(e) if definitely_not_applied(&e) => Answer::Failed,
        Err(_) => Answer::Unknown,
    }
}

/// Errors that etcd returns before a request reaches Raft, so it cannot
/// have been applied. Everything else (Unavailable covers both "no leader"
/// and "request timed out" after proposing) may have been applied.
fn definitely_not_applied(e: &Error) -> bool {
    use tonic::Code;
    match e {
        Error::GRpcStatus(s) => {
            matches!(
                s.code(),
                Code::InvalidArgument
                    | Code::PermissionDenied
                    | Code::Unauthenticated
                    | Code::Unimplemented
            )
        }
        Error::InvalidArgs(_) | Error::InvalidUri(_) | Error::EndpointError(_) => true,
        _ => false,
    }
}

//! The clients of a linearizability run: each one, with its own seeded random generator,
//! runs linearizable and serializable gets, puts, deletes, compare-and-swap txns and
//! two-key txns on a few keys under [`PREFIX`], through one member at a time (another one,
//! chosen at random, after any error), and records every operation with its call and
//! return times.
//!
//! Every written value is unique in the run (`c<client>-<n>`), and every write asks for
//! the version it replaced, as [`crate::kv_model`] relies on. A write that fails or times
//! out is recorded with an unknown outcome: an error does not prove that nothing happened
//! (the request may have been committed before the answer was lost). A failed read is
//! dropped: it changed nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::history::{now, revision, seen, History, Record, SerialRead};
use crate::kv_model::{Cond, Op, Seen};
use crate::wgl::Event;

/// Every key of the run starts with this (watches cover the prefix).
pub const PREFIX: &str = "lin/";

/// What a client needs to know about the run.
#[derive(Clone)]
pub struct Setup {
    pub seed: u64,
    pub endpoints: Vec<String>,
    pub keys: usize,
    /// How long a client waits for an answer before recording the outcome as unknown.
    pub timeout: Duration,
    pub origin: Instant,
    pub stop: Arc<AtomicBool>,
}

/// The key with index `i`.
pub fn key(i: usize) -> String {
    format!("{PREFIX}k{i}")
}

/// One client's loop; its history once `setup.stop` is set.
pub async fn run_client(id: usize, setup: Setup) -> History {
    let mut c = ClientState {
        id,
        rng: StdRng::seed_from_u64(setup.seed.wrapping_mul(1_000_003).wrapping_add(id as u64)),
        setup,
        writes: 0,
        last_seen: HashMap::new(),
        history: History::default(),
    };
    while !c.setup.stop.load(Ordering::Relaxed) {
        let member = c.rng.gen_range(0..c.setup.endpoints.len());
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(c.setup.timeout);
        let connect = Client::connect([c.setup.endpoints[member].as_str()], Some(options));
        let Ok(Ok(mut client)) = tokio::time::timeout(c.setup.timeout, connect).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !c.setup.stop.load(Ordering::Relaxed) {
            if !c.one_op(&mut client, member).await {
                // Another member next time: this one may be dead, paused or cut off.
                tokio::time::sleep(Duration::from_millis(50)).await;
                break;
            }
        }
    }
    c.history
}

struct ClientState {
    id: usize,
    rng: StdRng,
    setup: Setup,
    writes: usize,
    /// The last version of each key this client saw (CAS compares against it).
    last_seen: HashMap<String, Option<Seen>>,
    history: History,
}

/// Why an operation has no answer (any error or the client's timeout).
struct NoAnswer;

impl ClientState {
    fn value(&mut self) -> String {
        self.writes += 1;
        format!("c{}-{}", self.id, self.writes)
    }

    fn record(&mut self, key: &str, op: Op, call: u64, ret: Option<u64>) {
        if let Some(seen) = op_seen(&op) {
            self.last_seen.insert(key.to_string(), seen);
        }
        self.history.ops.push(Record {
            client: self.id,
            key: key.to_string(),
            event: Event { op, call, ret },
        });
    }

    async fn answer<T, E>(
        &self,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, NoAnswer> {
        match tokio::time::timeout(self.setup.timeout, f).await {
            Ok(Ok(t)) => Ok(t),
            _ => Err(NoAnswer),
        }
    }

    /// Runs one random operation; false when it got no answer.
    async fn one_op(&mut self, client: &mut Client, member: usize) -> bool {
        let k = key(self.rng.gen_range(0..self.setup.keys));
        let call = now(self.setup.origin);
        let dice: f64 = self.rng.gen();
        match dice {
            d if d < 0.35 => {
                let Ok(resp) = self.answer(client.get(k.as_str(), None)).await else {
                    return false;
                };
                let op = Op::Get {
                    seen: resp.kvs().first().map(seen),
                    revision: revision(resp.header()),
                };
                self.record(&k, op, call, Some(now(self.setup.origin)));
            }
            d if d < 0.45 => {
                let opts = GetOptions::new().with_serializable();
                let Ok(resp) = self.answer(client.get(k.as_str(), Some(opts))).await else {
                    return false;
                };
                self.history.serial.push(SerialRead {
                    client: self.id,
                    member,
                    key: k,
                    call,
                    ret: now(self.setup.origin),
                    seen: resp.kvs().first().map(seen),
                    revision: revision(resp.header()),
                });
            }
            d if d < 0.65 => {
                let value = self.value();
                let opts = PutOptions::new().with_prev_key();
                let put = self.answer(client.put(k.as_str(), value.as_str(), Some(opts)));
                let (result, ret) = match put.await {
                    Ok(r) => (
                        Some((revision(r.header()), r.prev_key().map(seen))),
                        Some(now(self.setup.origin)),
                    ),
                    Err(NoAnswer) => (None, None),
                };
                let known = result.is_some();
                self.record(&k, Op::Put { value, result }, call, ret);
                return known;
            }
            d if d < 0.70 => {
                let opts = DeleteOptions::new().with_prev_key();
                let (result, ret) = match self.answer(client.delete(k.as_str(), Some(opts))).await {
                    Ok(r) => (
                        Some((revision(r.header()), r.prev_kvs().first().map(seen))),
                        Some(now(self.setup.origin)),
                    ),
                    Err(NoAnswer) => (None, None),
                };
                let known = result.is_some();
                self.record(&k, Op::Delete { result }, call, ret);
                return known;
            }
            d if d < 0.93 => return self.cas(client, k, call).await,
            _ => return self.two_keys(client, k, call).await,
        }
        true
    }

    /// `if <k's last seen value or mod revision> then put else get`.
    async fn cas(&mut self, client: &mut Client, k: String, call: u64) -> bool {
        let last = self.last_seen.get(&k).cloned().flatten();
        let cond = match (&last, self.rng.gen_bool(0.5)) {
            (Some(s), true) => Cond::Value(s.value.clone()),
            (Some(s), false) => Cond::ModRevision(s.mod_revision),
            (None, _) => Cond::ModRevision(0),
        };
        let compare = match &cond {
            Cond::Value(v) => Compare::value(k.as_str(), CompareOp::Equal, v.as_str()),
            Cond::ModRevision(r) => Compare::mod_revision(k.as_str(), CompareOp::Equal, *r),
        };
        let value = self.value();
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::put(
                k.as_str(),
                value.as_str(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k.as_str(), None)]);
        let (result, ret) = match self.answer(client.txn(txn)).await {
            Ok(r) => {
                let seen = r.op_responses().first().and_then(|o| match o {
                    TxnOpResponse::Put(p) => p.prev_key().map(seen),
                    TxnOpResponse::Get(g) => g.kvs().first().map(seen),
                    _ => None,
                });
                (
                    Some((r.succeeded(), revision(r.header()), seen)),
                    Some(now(self.setup.origin)),
                )
            }
            Err(NoAnswer) => (None, None),
        };
        let known = result.is_some();
        self.record(
            &k,
            Op::Cas {
                cond,
                value,
                result,
            },
            call,
            ret,
        );
        known
    }

    /// One txn putting `k` and another key: one revision, two events.
    async fn two_keys(&mut self, client: &mut Client, k: String, call: u64) -> bool {
        let other = key(self.rng.gen_range(0..self.setup.keys));
        if other == k {
            return true;
        }
        let value = self.value();
        let put =
            |key: &str| TxnOp::put(key, value.as_str(), Some(PutOptions::new().with_prev_key()));
        let txn = Txn::new().and_then([put(&k), put(&other)]);
        let answer = self.answer(client.txn(txn)).await;
        let ret = answer.is_ok().then(|| now(self.setup.origin));
        let results: Vec<Option<(i64, Option<Seen>)>> = match &answer {
            Ok(r) => r
                .op_responses()
                .iter()
                .map(|o| match o {
                    TxnOpResponse::Put(p) => Some((revision(r.header()), p.prev_key().map(seen))),
                    // Not a put's answer: revision 0, which no model accepts for a write.
                    _ => Some((0, None)),
                })
                .collect(),
            Err(NoAnswer) => vec![None, None],
        };
        for (key, result) in [k, other].into_iter().zip(results) {
            let op = Op::Put {
                value: value.clone(),
                result,
            };
            self.record(&key, op, call, ret);
        }
        answer.is_ok()
    }
}

/// What an operation's answer showed of the key, for the next CAS (outer None: nothing).
fn op_seen(op: &Op) -> Option<Option<Seen>> {
    match op {
        Op::Get { seen, .. } => Some(seen.clone()),
        Op::Put {
            value,
            result: Some((rev, _)),
        } => Some(Some(Seen {
            value: value.clone(),
            mod_revision: *rev,
        })),
        Op::Delete { result: Some(_) } => Some(None),
        Op::Cas {
            value,
            result: Some((true, rev, _)),
            ..
        } => Some(Some(Seen {
            value: value.clone(),
            mod_revision: *rev,
        })),
        Op::Cas {
            result: Some((false, _, seen)),
            ..
        } => Some(seen.clone()),
        _ => None,
    }
}

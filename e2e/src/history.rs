//! What the clients of a linearizability run recorded: operations per key, serializable
//! reads per member, and the conversions from the etcd-client crate's responses.

use std::collections::BTreeMap;
use std::time::Instant;

use etcd_client::KeyValue;

use crate::kv_model::{Op, Seen};
use crate::wgl::Event;

/// One operation on one key, by one client.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    pub key: String,
    pub event: Event<Op>,
}

/// A serializable get, answered by one member from its local state.
#[derive(Debug, Clone)]
pub struct SerialRead {
    pub client: usize,
    pub member: usize,
    pub key: String,
    pub call: u64,
    pub ret: u64,
    pub seen: Option<Seen>,
    pub revision: i64,
}

/// Everything the clients recorded.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<Record>,
    pub serial: Vec<SerialRead>,
}

impl History {
    pub fn extend(&mut self, other: History) {
        self.ops.extend(other.ops);
        self.serial.extend(other.serial);
    }

    /// The operations of each key, ordered by call time.
    pub fn per_key(&self) -> BTreeMap<&str, Vec<&Record>> {
        let mut keys: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for r in &self.ops {
            keys.entry(r.key.as_str()).or_default().push(r);
        }
        for ops in keys.values_mut() {
            ops.sort_by_key(|r| r.event.call);
        }
        keys
    }

    /// How many operations completed and how many have an unknown outcome.
    pub fn counts(&self) -> (usize, usize) {
        let unknown = self.ops.iter().filter(|r| r.event.ret.is_none()).count();
        (self.ops.len() - unknown, unknown)
    }
}

/// Nanoseconds since `origin`, the run's clock for calls and returns.
pub fn now(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

/// The version a response showed.
pub fn seen(kv: &KeyValue) -> Seen {
    Seen {
        value: String::from_utf8_lossy(kv.value()).into_owned(),
        mod_revision: kv.mod_revision(),
    }
}

/// A response's header revision (0 when the header is missing, which no model accepts
/// for a write).
pub fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

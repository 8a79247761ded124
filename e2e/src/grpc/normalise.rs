//! What may differ between the answers of two members that were given the same requests
//! from the same fresh state, and how it is replaced before the answers are compared.
//!
//! Everything not named here is compared as it came: revisions, versions of keys, values,
//! flags, counts, lease IDs and TTLs the test chose, error codes and texts. Each rule says
//! why the field cannot be equal.

use std::collections::HashMap;

use etcd_proto::v3electionpb::{
    CampaignResponse, LeaderResponse, ProclaimResponse, ResignResponse,
};
use etcd_proto::v3lockpb::{LockResponse, UnlockResponse};

use etcd_proto::etcdserverpb::response_op::Response as Op;
use etcd_proto::etcdserverpb::{
    AlarmResponse, CompactionResponse, DefragmentResponse, DeleteRangeResponse, DowngradeResponse,
    HashKvResponse, HashResponse, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, Member, MemberAddResponse, MemberListResponse,
    MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse, MoveLeaderResponse,
    PutResponse, RangeResponse, ResponseHeader, SnapshotResponse, StatusResponse, TxnResponse,
    WatchResponse,
};

/// Member and cluster IDs are derived from the peer URLs (whose ports differ between the
/// two members) or drawn at random (members added at run time), so each distinct ID one
/// member shows is replaced by its rank of first appearance: 1001, 1002, ... Equal IDs
/// stay equal and different ones different, so an answer naming the wrong member still
/// differs. Zero (no leader, no member) is kept. URLs name each member's own ports and are
/// replaced by the placeholders registered with [`Ids::url`].
#[derive(Debug, Default)]
pub struct Ids {
    ranks: HashMap<u64, u64>,
    terms: HashMap<u64, u64>,
    /// Terms are no longer compared (see [`Ids::forget_terms`]).
    terms_forgotten: bool,
    /// The first raft index a status showed.
    first_index: Option<u64>,
    urls: HashMap<String, String>,
}

impl Ids {
    /// The stand-in for `id`.
    pub fn id(&mut self, id: u64) -> u64 {
        if id == 0 {
            return 0;
        }
        let next = 1001 + self.ranks.len() as u64;
        *self.ranks.entry(id).or_insert(next)
    }

    /// The stand-in for a raft term: its rank among the terms seen, from 1. etcd's raft
    /// writes a new member's bootstrap entries in term 1 and elects it in term 2;
    /// openraft's first election is term 1. Later elections must move both alike.
    pub fn term(&mut self, term: u64) -> u64 {
        if term == 0 || self.terms_forgotten {
            return 0;
        }
        let next = 1 + self.terms.len() as u64;
        *self.terms.entry(term).or_insert(next)
    }

    /// Stops comparing terms: a lone member's restart is an election in etcd (a new term)
    /// but not in ours (openraft leads on in its term), a known difference.
    pub fn forget_terms(&mut self) {
        self.terms_forgotten = true;
    }

    /// A raft index counted from the first one a status showed. etcd's log starts with
    /// entries of its own (each initial member's configuration change, the published
    /// member attributes, the cluster version), so the two logs start at different
    /// indexes; each request must then add the same number of entries.
    pub fn index(&mut self, index: u64) -> u64 {
        index - *self.first_index.get_or_insert(index)
    }

    /// Registers `url` (one of this member's own) to be shown as `placeholder`.
    pub fn url(&mut self, url: &str, placeholder: &str) {
        self.urls.insert(url.to_string(), placeholder.to_string());
    }

    fn urls(&self, urls: &mut [String]) {
        for u in urls {
            if let Some(p) = self.urls.get(u.as_str()) {
                *u = p.clone();
            }
        }
    }
}

/// A response whose member-specific fields can be replaced.
pub trait Normalise {
    fn normalise(&mut self, ids: &mut Ids);
}

impl<T: Normalise> Normalise for Option<T> {
    fn normalise(&mut self, ids: &mut Ids) {
        if let Some(t) = self {
            t.normalise(ids);
        }
    }
}

impl<T: Normalise> Normalise for Vec<T> {
    fn normalise(&mut self, ids: &mut Ids) {
        self.iter_mut().for_each(|t| t.normalise(ids));
    }
}

impl Normalise for ResponseHeader {
    /// The revision is compared; the term by its rank (see [`Ids::term`]).
    fn normalise(&mut self, ids: &mut Ids) {
        self.cluster_id = ids.id(self.cluster_id);
        self.member_id = ids.id(self.member_id);
        self.raft_term = ids.term(self.raft_term);
    }
}

/// Responses whose only member-specific part is their header.
macro_rules! header_only {
    ($($t:ty),*) => {$(
        impl Normalise for $t {
            fn normalise(&mut self, ids: &mut Ids) {
                self.header.normalise(ids);
            }
        }
    )*};
}

pub(crate) use header_only;

header_only!(
    RangeResponse,
    PutResponse,
    DeleteRangeResponse,
    CompactionResponse,
    WatchResponse,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    LeaseKeepAliveResponse,
    LeaseTimeToLiveResponse,
    LeaseLeasesResponse,
    DefragmentResponse,
    DowngradeResponse,
    MoveLeaderResponse,
    LockResponse,
    UnlockResponse,
    CampaignResponse,
    ProclaimResponse,
    ResignResponse,
    LeaderResponse
);

impl Normalise for TxnResponse {
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        for op in &mut self.responses {
            match &mut op.response {
                Some(Op::ResponseRange(r)) => r.normalise(ids),
                Some(Op::ResponsePut(r)) => r.normalise(ids),
                Some(Op::ResponseDeleteRange(r)) => r.normalise(ids),
                Some(Op::ResponseTxn(r)) => r.normalise(ids),
                None => {}
            }
        }
    }
}

impl Normalise for Member {
    fn normalise(&mut self, ids: &mut Ids) {
        self.id = ids.id(self.id);
        ids.urls(&mut self.peer_ur_ls);
        ids.urls(&mut self.client_ur_ls);
    }
}

/// etcd lists members in the order of their IDs, which are not comparable between the two
/// members (see [`Ids`]): lists are put in the order of the stand-ins.
fn members(list: &mut [Member], ids: &mut Ids) {
    for m in list.iter_mut() {
        m.normalise(ids);
    }
    list.sort_by_key(|m| m.id);
}

impl Normalise for MemberAddResponse {
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        self.member.normalise(ids);
        members(&mut self.members, ids);
    }
}

/// Responses made of a header and the member list.
macro_rules! header_and_members {
    ($($t:ty),*) => {$(
        impl Normalise for $t {
            fn normalise(&mut self, ids: &mut Ids) {
                self.header.normalise(ids);
                members(&mut self.members, ids);
            }
        }
    )*};
}

header_and_members!(
    MemberListResponse,
    MemberRemoveResponse,
    MemberUpdateResponse,
    MemberPromoteResponse
);

impl Normalise for AlarmResponse {
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        for a in &mut self.alarms {
            a.member_id = ids.id(a.member_id);
        }
    }
}

impl Normalise for HashResponse {
    /// The hash covers the state database's encoding, which is ours, not bbolt's.
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        self.hash = 0;
    }
}

impl Normalise for HashKvResponse {
    /// The hash covers the key-value encoding, which is ours, not etcd's (the compaction
    /// and hash revisions are compared).
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        self.hash = 0;
    }
}

impl Normalise for StatusResponse {
    /// The database's size depends on the storage engine (bbolt's pages, sled's segments).
    /// Ours reports the server version 3.5.0 so that clients checking for the 3.5 API
    /// accept it (see the README); Debian's etcd is 3.4.23. Raft indexes and terms: see
    /// [`Ids::index`] and [`Ids::term`]. Alarms name the member by its ID.
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        self.leader = ids.id(self.leader);
        self.db_size = 0;
        self.db_size_in_use = 0;
        self.version = String::new();
        self.raft_index = ids.index(self.raft_index);
        self.raft_applied_index = ids.index(self.raft_applied_index);
        self.raft_term = ids.term(self.raft_term);
        for e in &mut self.errors {
            *e = ALARM_MEMBER
                .replace_all(e, |c: &regex::Captures| {
                    format!("memberID:{}", ids.id(c[1].parse().expect("an ID")))
                })
                .into_owned();
        }
    }
}

/// How etcd names a member in an alarm it lists in a status's errors.
static ALARM_MEMBER: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"memberID:(\d+)").expect("valid regex"));

impl Normalise for SnapshotResponse {
    /// A snapshot's bytes are the storage engine's file (bbolt's or ours), so only the
    /// shape of its messages is compared: see `tests/grpc_cluster.rs`.
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
    }
}

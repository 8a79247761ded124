//! Output printers, one per `--write-out` format, with etcdctl's exact formatting.
//!
//! As in etcdctl, every format implements the results it can print and refuses the others
//! with `<format> not supported as output format` (the trait's default methods).

mod fields;
mod gojson;
mod gotext;
mod json;
mod protobuf;
mod simple;
mod table;

use etcd_proto::etcdserverpb::{
    AlarmResponse, AuthRoleGetResponse, AuthRoleListResponse, AuthUserGetResponse,
    AuthUserListResponse, DeleteRangeResponse, HashKvResponse, LeaseGrantResponse,
    LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse,
    MemberAddResponse, MemberListResponse, MemberPromoteResponse, MemberRemoveResponse,
    MemberUpdateResponse, MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader,
    StatusResponse, TxnResponse, WatchResponse,
};

use super::error::CtlError;
pub use etcd_server::snapshot::Status as SnapshotStatus;

pub use gotext::go_quote;
pub use simple::event_type as event_type_name;

/// What a printer produced for the two output streams.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Printed {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Printed {
    /// Text for stdout.
    pub fn out(text: impl Into<Vec<u8>>) -> Printed {
        Printed {
            stdout: text.into(),
            stderr: Vec::new(),
        }
    }

    /// Text for stderr.
    pub fn err(text: impl Into<Vec<u8>>) -> Printed {
        Printed {
            stdout: Vec::new(),
            stderr: text.into(),
        }
    }
}

/// What a printer returns.
pub type Print = Result<Printed, CtlError>;

/// The result of one endpoint's health check.
#[derive(Debug, Clone)]
pub struct EpHealth {
    pub endpoint: String,
    pub health: bool,
    /// How long the check took, as Go prints a duration.
    pub took: String,
    /// Why the check failed; empty when healthy.
    pub error: String,
}

/// One endpoint's status.
#[derive(Debug, Clone)]
pub struct EpStatus {
    pub endpoint: String,
    pub status: StatusResponse,
}

/// One endpoint's KV hash.
#[derive(Debug, Clone)]
pub struct EpHashKv {
    pub endpoint: String,
    pub hash: HashKvResponse,
}

/// Member IDs a membership command acted on, for the simple format.
#[derive(Debug, Clone, Copy)]
pub struct MemberChange {
    pub id: u64,
}

/// What a `user` or `role` command changed, for the simple format's sentence. The other
/// formats print the response, which for these commands is only a header.
#[derive(Debug, Clone, Copy)]
pub enum AuthChange<'a> {
    UserAdded(&'a str),
    UserDeleted(&'a str),
    PasswordChanged,
    RoleGranted {
        user: &'a str,
        role: &'a str,
    },
    RoleRevoked {
        user: &'a str,
        role: &'a str,
    },
    RoleAdded(&'a str),
    RoleDeleted(&'a str),
    PermissionGranted(&'a str),
    PermissionRevoked {
        role: &'a str,
        key: &'a [u8],
        range_end: &'a [u8],
    },
}

/// `--write-out` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Simple,
    Json,
    Table,
    Fields,
    Protobuf,
}

impl Format {
    /// Reads `--write-out`.
    pub fn parse(name: &str) -> Result<Format, CtlError> {
        Ok(match name {
            "simple" => Format::Simple,
            "json" => Format::Json,
            "table" => Format::Table,
            "fields" => Format::Fields,
            "protobuf" => Format::Protobuf,
            _ => return Err(CtlError::UnknownFormat),
        })
    }
}

/// Options that change how key-values are printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct KvStyle {
    /// `--hex`: byte strings as `\x..` escapes (simple format).
    pub hex: bool,
    /// `--print-value-only` (simple format).
    pub value_only: bool,
}

/// The printer for `format`.
pub fn printer(format: Format, style: KvStyle) -> Box<dyn Printer> {
    match format {
        Format::Simple => Box::new(simple::Simple { style }),
        Format::Json => Box::new(json::Json),
        Format::Table => Box::new(table::Table),
        Format::Fields => Box::new(fields::Fields),
        Format::Protobuf => Box::new(protobuf::Protobuf),
    }
}

/// One method per result etcdctl prints; a format that cannot print a result keeps the
/// default, which refuses it as etcdctl does.
pub trait Printer {
    /// The format's `--write-out` name.
    fn name(&self) -> &'static str;

    fn unsupported(&self) -> Print {
        Err(CtlError::UnsupportedFormat(self.name()))
    }
    fn get(&self, _r: &RangeResponse) -> Print {
        self.unsupported()
    }
    fn put(&self, _r: &PutResponse) -> Print {
        self.unsupported()
    }
    fn del(&self, _r: &DeleteRangeResponse) -> Print {
        self.unsupported()
    }
    fn txn(&self, _r: &TxnResponse) -> Print {
        self.unsupported()
    }
    fn watch(&self, _r: &WatchResponse) -> Print {
        self.unsupported()
    }
    fn grant(&self, _r: &LeaseGrantResponse) -> Print {
        self.unsupported()
    }
    fn revoke(&self, _id: i64, _r: &LeaseRevokeResponse) -> Print {
        self.unsupported()
    }
    fn keep_alive(&self, _r: &LeaseKeepAliveResponse) -> Print {
        self.unsupported()
    }
    fn time_to_live(&self, _r: &LeaseTimeToLiveResponse, _keys: bool) -> Print {
        self.unsupported()
    }
    fn leases(&self, _r: &LeaseLeasesResponse) -> Print {
        self.unsupported()
    }
    fn member_add(&self, _r: &MemberAddResponse) -> Print {
        self.unsupported()
    }
    fn member_remove(&self, _c: MemberChange, _r: &MemberRemoveResponse) -> Print {
        self.unsupported()
    }
    fn member_update(&self, _c: MemberChange, _r: &MemberUpdateResponse) -> Print {
        self.unsupported()
    }
    fn member_promote(&self, _c: MemberChange, _r: &MemberPromoteResponse) -> Print {
        self.unsupported()
    }
    fn member_list(&self, _r: &MemberListResponse) -> Print {
        self.unsupported()
    }
    fn endpoint_health(&self, _r: &[EpHealth]) -> Print {
        self.unsupported()
    }
    fn endpoint_status(&self, _r: &[EpStatus]) -> Print {
        self.unsupported()
    }
    fn endpoint_hashkv(&self, _r: &[EpHashKv]) -> Print {
        self.unsupported()
    }
    fn alarm(&self, _r: &AlarmResponse) -> Print {
        self.unsupported()
    }
    fn move_leader(&self, _leader: u64, _target: u64, _r: &MoveLeaderResponse) -> Print {
        self.unsupported()
    }
    fn snapshot_status(&self, _s: &SnapshotStatus) -> Print {
        self.unsupported()
    }
    fn auth_change(&self, _c: AuthChange, _h: Option<&ResponseHeader>) -> Print {
        self.unsupported()
    }
    fn role_get(&self, _name: &str, _r: &AuthRoleGetResponse) -> Print {
        self.unsupported()
    }
    fn role_list(&self, _r: &AuthRoleListResponse) -> Print {
        self.unsupported()
    }
    fn user_get(&self, _name: &str, _r: &AuthUserGetResponse) -> Print {
        self.unsupported()
    }
    fn user_list(&self, _r: &AuthUserListResponse) -> Print {
        self.unsupported()
    }
}

/// The rows of `snapshot status` shared by the simple and table formats.
fn snapshot_rows(s: &SnapshotStatus) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec!["hash", "revision", "total keys", "total size"];
    let row = vec![
        format!("{:x}", s.hash),
        s.revision.to_string(),
        s.total_key.to_string(),
        gotext::humanize_bytes(s.total_size),
    ];
    (header, vec![row])
}

/// The rows of `member list` shared by the simple and table formats.
fn member_rows(r: &MemberListResponse) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "ID",
        "Status",
        "Name",
        "Peer Addrs",
        "Client Addrs",
        "Is Learner",
    ];
    let rows = r
        .members
        .iter()
        .map(|m| {
            let status = if m.name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_string(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect();
    (header, rows)
}

/// The rows of `endpoint status` shared by the simple and table formats.
fn status_rows(statuses: &[EpStatus]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "endpoint",
        "ID",
        "version",
        "db size",
        "is leader",
        "is learner",
        "raft term",
        "raft index",
        "raft applied index",
        "errors",
    ];
    let rows = statuses
        .iter()
        .map(|s| {
            let r = &s.status;
            let member_id = r.header.as_ref().map_or(0, |h| h.member_id);
            vec![
                s.endpoint.clone(),
                format!("{member_id:x}"),
                r.version.clone(),
                gotext::humanize_bytes(r.db_size.max(0) as u64),
                (r.leader == member_id).to_string(),
                r.is_learner.to_string(),
                r.raft_term.to_string(),
                r.raft_index.to_string(),
                r.raft_applied_index.to_string(),
                r.errors.join(", "),
            ]
        })
        .collect();
    (header, rows)
}

/// The rows of `endpoint hashkv` shared by the simple and table formats.
fn hashkv_rows(hashes: &[EpHashKv]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let rows = hashes
        .iter()
        .map(|h| vec![h.endpoint.clone(), h.hash.hash.to_string()])
        .collect();
    (vec!["endpoint", "hash"], rows)
}

/// The rows of `endpoint health` for the table format.
fn health_rows(checks: &[EpHealth]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let rows = checks
        .iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                h.health.to_string(),
                h.took.clone(),
                h.error.clone(),
            ]
        })
        .collect();
    (vec!["endpoint", "health", "took", "error"], rows)
}

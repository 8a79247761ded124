//! The `json` format: what Go's `encoding/json` makes of the response structs etcdctl 3.4
//! prints (gogo-generated etcd types with their JSON tags, or clientv3's wrappers).

use etcd_proto::authpb::Permission;
use etcd_proto::etcdserverpb::response_op::Response;
use etcd_proto::etcdserverpb::{
    AlarmResponse, AuthRoleGetResponse, AuthRoleListResponse, AuthUserGetResponse,
    AuthUserListResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, Member, MemberAddResponse,
    MemberListResponse, MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse,
    MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader, StatusResponse, TxnResponse,
    WatchResponse,
};
use etcd_proto::mvccpb::Event;

use super::gojson::{self, array, header, kv, Obj};
use super::{
    AuthChange, EpHashKv, EpHealth, EpStatus, MemberChange, Print, Printed, Printer, SnapshotStatus,
};

/// Prints the json format.
pub struct Json;

fn line(json: String) -> Print {
    Ok(Printed::out(json + "\n"))
}

fn range(r: &RangeResponse) -> Obj {
    Obj::new()
        .obj("header", header(r.header.as_ref()))
        .list("kvs", r.kvs.iter().map(kv).collect())
        .flag("more", r.more)
        .num("count", r.count)
}

fn put(r: &PutResponse) -> Obj {
    Obj::new()
        .obj("header", header(r.header.as_ref()))
        .obj("prev_kv", r.prev_kv.as_ref().map(kv))
}

fn del(r: &DeleteRangeResponse) -> Obj {
    Obj::new()
        .obj("header", header(r.header.as_ref()))
        .num("deleted", r.deleted)
        .list("prev_kvs", r.prev_kvs.iter().map(kv).collect())
}

fn txn(r: &TxnResponse) -> Obj {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            let (name, body) = match &op.response {
                Some(Response::ResponseRange(r)) => ("ResponseRange", range(r)),
                Some(Response::ResponsePut(r)) => ("ResponsePut", put(r)),
                Some(Response::ResponseDeleteRange(r)) => ("ResponseDeleteRange", del(r)),
                Some(Response::ResponseTxn(r)) => ("ResponseTxn", txn(r)),
                None => return Obj::new().finish(),
            };
            let wrapper = Obj::new().raw(name, body.finish());
            Obj::new().raw("Response", wrapper.finish()).finish()
        })
        .collect();
    Obj::new()
        .obj("header", header(r.header.as_ref()))
        .flag("succeeded", r.succeeded)
        .list("responses", responses)
}

fn event(e: &Event) -> String {
    Obj::new()
        .num("type", e.r#type)
        .obj("kv", e.kv.as_ref().map(kv))
        .obj("prev_kv", e.prev_kv.as_ref().map(kv))
        .finish()
}

fn member(m: &Member) -> String {
    Obj::new()
        .num("ID", m.id)
        .text("name", &m.name)
        .list(
            "peerURLs",
            m.peer_ur_ls.iter().map(|u| gojson::string(u)).collect(),
        )
        .list(
            "clientURLs",
            m.client_ur_ls.iter().map(|u| gojson::string(u)).collect(),
        )
        .flag("isLearner", m.is_learner)
        .finish()
}

fn members(header_: Option<&ResponseHeader>, list: &[Member]) -> Obj {
    Obj::new()
        .obj("header", header(header_))
        .list("members", list.iter().map(member).collect())
}

fn status(s: &StatusResponse) -> String {
    Obj::new()
        .obj("header", header(s.header.as_ref()))
        .text("version", &s.version)
        .num("dbSize", s.db_size)
        .num("leader", s.leader)
        .num("raftIndex", s.raft_index)
        .num("raftTerm", s.raft_term)
        .num("raftAppliedIndex", s.raft_applied_index)
        .list(
            "errors",
            s.errors.iter().map(|e| gojson::string(e)).collect(),
        )
        .num("dbSizeInUse", s.db_size_in_use)
        .flag("isLearner", s.is_learner)
        .finish()
}

fn permission(p: &Permission) -> String {
    Obj::new()
        .num("permType", p.perm_type)
        .bytes("key", &p.key)
        .bytes("range_end", &p.range_end)
        .finish()
}

/// An auth response: its header and a list of names.
fn names(h: Option<&ResponseHeader>, key: &'static str, names: &[String]) -> Print {
    let names = names.iter().map(|n| gojson::string(n)).collect();
    line(
        Obj::new()
            .obj("header", header(h))
            .list(key, names)
            .finish(),
    )
}

impl Printer for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn get(&self, r: &RangeResponse) -> Print {
        line(range(r).finish())
    }

    fn put(&self, r: &PutResponse) -> Print {
        line(put(r).finish())
    }

    fn del(&self, r: &DeleteRangeResponse) -> Print {
        line(del(r).finish())
    }

    fn txn(&self, r: &TxnResponse) -> Print {
        line(txn(r).finish())
    }

    fn watch(&self, r: &WatchResponse) -> Print {
        let events = array(r.events.iter().map(event).collect());
        let hdr = Obj::new().header_fields(r.header.as_ref()).finish();
        line(
            Obj::new()
                .raw("Header", hdr)
                .raw("Events", events)
                .num_always("CompactRevision", r.compact_revision)
                .flag_always("Canceled", r.canceled)
                .flag_always("Created", r.created)
                .finish(),
        )
    }

    fn grant(&self, r: &LeaseGrantResponse) -> Print {
        line(
            Obj::new()
                .header_fields(r.header.as_ref())
                .num_always("ID", r.id)
                .num_always("TTL", r.ttl)
                .text_always("Error", &r.error)
                .finish(),
        )
    }

    fn revoke(&self, _id: i64, r: &LeaseRevokeResponse) -> Print {
        line(Obj::new().obj("header", header(r.header.as_ref())).finish())
    }

    fn keep_alive(&self, r: &LeaseKeepAliveResponse) -> Print {
        line(
            Obj::new()
                .header_fields(r.header.as_ref())
                .num_always("ID", r.id)
                .num_always("TTL", r.ttl)
                .finish(),
        )
    }

    fn time_to_live(&self, r: &LeaseTimeToLiveResponse, _keys: bool) -> Print {
        let keys = if r.keys.is_empty() {
            "null".to_string()
        } else {
            array(r.keys.iter().map(|k| gojson::bytes(k)).collect())
        };
        line(
            Obj::new()
                .header_fields(r.header.as_ref())
                .num_always("id", r.id)
                .num_always("ttl", r.ttl)
                .num_always("granted-ttl", r.granted_ttl)
                .raw("keys", keys)
                .finish(),
        )
    }

    fn leases(&self, r: &LeaseLeasesResponse) -> Print {
        let leases = r
            .leases
            .iter()
            .map(|l| Obj::new().num_always("id", l.id).finish())
            .collect();
        line(
            Obj::new()
                .header_fields(r.header.as_ref())
                .raw("leases", array(leases))
                .finish(),
        )
    }

    fn member_add(&self, r: &MemberAddResponse) -> Print {
        line(
            Obj::new()
                .obj("header", header(r.header.as_ref()))
                .obj("member", r.member.as_ref().map(member))
                .list("members", r.members.iter().map(member).collect())
                .finish(),
        )
    }

    fn member_remove(&self, _c: MemberChange, r: &MemberRemoveResponse) -> Print {
        line(members(r.header.as_ref(), &r.members).finish())
    }

    fn member_update(&self, _c: MemberChange, r: &MemberUpdateResponse) -> Print {
        line(members(r.header.as_ref(), &r.members).finish())
    }

    fn member_promote(&self, _c: MemberChange, r: &MemberPromoteResponse) -> Print {
        line(members(r.header.as_ref(), &r.members).finish())
    }

    fn member_list(&self, r: &MemberListResponse) -> Print {
        line(members(r.header.as_ref(), &r.members).finish())
    }

    fn endpoint_health(&self, checks: &[EpHealth]) -> Print {
        let items = checks
            .iter()
            .map(|h| {
                Obj::new()
                    .text_always("endpoint", &h.endpoint)
                    .flag_always("health", h.health)
                    .text_always("took", &h.took)
                    .text("error", &h.error)
                    .finish()
            })
            .collect();
        line(array(items))
    }

    fn endpoint_status(&self, statuses: &[EpStatus]) -> Print {
        let items = statuses
            .iter()
            .map(|s| {
                Obj::new()
                    .text_always("Endpoint", &s.endpoint)
                    .raw("Status", status(&s.status))
                    .finish()
            })
            .collect();
        line(array(items))
    }

    fn endpoint_hashkv(&self, hashes: &[EpHashKv]) -> Print {
        let items = hashes
            .iter()
            .map(|h| {
                let body = Obj::new()
                    .obj("header", header(h.hash.header.as_ref()))
                    .num("hash", h.hash.hash)
                    .num("compact_revision", h.hash.compact_revision)
                    .finish();
                Obj::new()
                    .text_always("Endpoint", &h.endpoint)
                    .raw("HashKV", body)
                    .finish()
            })
            .collect();
        line(array(items))
    }

    fn alarm(&self, r: &AlarmResponse) -> Print {
        let alarms = r
            .alarms
            .iter()
            .map(|a| {
                Obj::new()
                    .num("memberID", a.member_id)
                    .num("alarm", a.alarm)
                    .finish()
            })
            .collect();
        line(
            Obj::new()
                .obj("header", header(r.header.as_ref()))
                .list("alarms", alarms)
                .finish(),
        )
    }

    fn move_leader(&self, _leader: u64, _target: u64, r: &MoveLeaderResponse) -> Print {
        line(Obj::new().obj("header", header(r.header.as_ref())).finish())
    }

    fn snapshot_status(&self, s: &SnapshotStatus) -> Print {
        line(
            Obj::new()
                .num_always("hash", s.hash)
                .num_always("revision", s.revision)
                .num_always("totalKey", s.total_key)
                .num_always("totalSize", s.total_size)
                .finish(),
        )
    }

    fn auth_change(&self, _c: AuthChange, h: Option<&ResponseHeader>) -> Print {
        line(Obj::new().obj("header", header(h)).finish())
    }

    fn role_get(&self, _name: &str, r: &AuthRoleGetResponse) -> Print {
        line(
            Obj::new()
                .obj("header", header(r.header.as_ref()))
                .list("perm", r.perm.iter().map(permission).collect())
                .finish(),
        )
    }

    fn role_list(&self, r: &AuthRoleListResponse) -> Print {
        names(r.header.as_ref(), "roles", &r.roles)
    }

    fn user_get(&self, _name: &str, r: &AuthUserGetResponse) -> Print {
        names(r.header.as_ref(), "roles", &r.roles)
    }

    fn user_list(&self, r: &AuthUserListResponse) -> Print {
        names(r.header.as_ref(), "users", &r.users)
    }
}

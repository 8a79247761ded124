//! The `fields` format: one `"Name" : value` line per field, as etcdctl's fields printer
//! writes them with Go's `fmt`.

use std::fmt::Write;

use etcd_proto::authpb::permission::Type;
use etcd_proto::etcdserverpb::response_op::Response;
use etcd_proto::etcdserverpb::{
    AlarmResponse, AuthRoleGetResponse, AuthRoleListResponse, DeleteRangeResponse,
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, MemberListResponse, PutResponse, RangeResponse, ResponseHeader,
    TxnResponse, WatchResponse,
};
use etcd_proto::mvccpb::KeyValue;

use super::gotext::{go_list, go_quote};
use super::simple::{alarm_type, event_type};
use super::{AuthChange, EpHashKv, EpHealth, EpStatus, Print, Printed, Printer, SnapshotStatus};

/// Prints the fields format.
pub struct Fields;

/// Appends one formatted line.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

fn hdr(out: &mut String, h: Option<&ResponseHeader>) {
    let h = h.cloned().unwrap_or_default();
    line!(out, "\"ClusterID\" : {}", h.cluster_id);
    line!(out, "\"MemberID\" : {}", h.member_id);
    line!(out, "\"Revision\" : {}", h.revision);
    line!(out, "\"RaftTerm\" : {}", h.raft_term);
}

fn kv(out: &mut String, prefix: &str, kv: &KeyValue) {
    line!(out, "\"{prefix}Key\" : {}", go_quote(&kv.key));
    line!(out, "\"{prefix}CreateRevision\" : {}", kv.create_revision);
    line!(out, "\"{prefix}ModRevision\" : {}", kv.mod_revision);
    line!(out, "\"{prefix}Version\" : {}", kv.version);
    line!(out, "\"{prefix}Value\" : {}", go_quote(&kv.value));
    line!(out, "\"{prefix}Lease\" : {}", kv.lease);
}

fn get(out: &mut String, r: &RangeResponse) {
    hdr(out, r.header.as_ref());
    for k in &r.kvs {
        kv(out, "", k);
    }
    line!(out, "\"More\" : {}", r.more);
    line!(out, "\"Count\" : {}", r.count);
}

fn put(out: &mut String, r: &PutResponse) {
    hdr(out, r.header.as_ref());
    if let Some(prev) = &r.prev_kv {
        kv(out, "Prev", prev);
    }
}

fn del(out: &mut String, r: &DeleteRangeResponse) {
    hdr(out, r.header.as_ref());
    line!(out, "\"Deleted\" : {}", r.deleted);
    for k in &r.prev_kvs {
        kv(out, "Prev", k);
    }
}

/// A lease response: header, then ID and TTL.
fn lease(out: &mut String, h: Option<&ResponseHeader>, id: i64, ttl: i64) {
    hdr(out, h);
    line!(out, "\"ID\" : {id}");
    line!(out, "\"TTL\" : {ttl}");
}

/// The name etcd's Go enum gives a permission type (its number if it has none).
fn permission_type(t: i32) -> String {
    Type::try_from(t).map_or_else(|_| t.to_string(), |t| t.as_str_name().to_string())
}

fn done(out: String) -> Print {
    Ok(Printed::out(out))
}

impl Printer for Fields {
    fn name(&self) -> &'static str {
        "fields"
    }

    fn get(&self, r: &RangeResponse) -> Print {
        let mut out = String::new();
        get(&mut out, r);
        done(out)
    }

    fn put(&self, r: &PutResponse) -> Print {
        let mut out = String::new();
        put(&mut out, r);
        done(out)
    }

    fn del(&self, r: &DeleteRangeResponse) -> Print {
        let mut out = String::new();
        del(&mut out, r);
        done(out)
    }

    fn txn(&self, r: &TxnResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        line!(out, "\"Succeeded\" : {}", r.succeeded);
        for op in &r.responses {
            match &op.response {
                Some(Response::ResponseRange(r)) => get(&mut out, r),
                Some(Response::ResponsePut(r)) => put(&mut out, r),
                Some(Response::ResponseDeleteRange(r)) => del(&mut out, r),
                other => line!(
                    out,
                    "\"Unknown\" : {}",
                    go_quote(format!("{other:?}").as_bytes())
                ),
            }
        }
        done(out)
    }

    fn watch(&self, r: &WatchResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        for e in &r.events {
            line!(out, "\"Type\" : {}", event_type(e.r#type));
            if let Some(prev) = &e.prev_kv {
                kv(&mut out, "Prev", prev);
            }
            kv(&mut out, "", e.kv.as_ref().unwrap_or(&KeyValue::default()));
        }
        done(out)
    }

    fn grant(&self, r: &LeaseGrantResponse) -> Print {
        let mut out = String::new();
        lease(&mut out, r.header.as_ref(), r.id, r.ttl);
        done(out)
    }

    fn revoke(&self, _id: i64, r: &LeaseRevokeResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        done(out)
    }

    fn keep_alive(&self, r: &LeaseKeepAliveResponse) -> Print {
        let mut out = String::new();
        lease(&mut out, r.header.as_ref(), r.id, r.ttl);
        done(out)
    }

    fn time_to_live(&self, r: &LeaseTimeToLiveResponse, _keys: bool) -> Print {
        let mut out = String::new();
        lease(&mut out, r.header.as_ref(), r.id, r.ttl);
        line!(out, "\"GrantedTTL\" : {}", r.granted_ttl);
        for k in &r.keys {
            line!(out, "\"Key\" : {}", go_quote(k));
        }
        done(out)
    }

    fn leases(&self, r: &LeaseLeasesResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        for l in &r.leases {
            line!(out, "\"ID\" : {}", l.id);
        }
        done(out)
    }

    fn member_list(&self, r: &MemberListResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        for m in &r.members {
            line!(out, "\"ID\" : {}", m.id);
            line!(out, "\"Name\" : {}", go_quote(m.name.as_bytes()));
            for u in &m.peer_ur_ls {
                line!(out, "\"PeerURL\" : {}", go_quote(u.as_bytes()));
            }
            for u in &m.client_ur_ls {
                line!(out, "\"ClientURL\" : {}", go_quote(u.as_bytes()));
            }
            line!(out, "\"IsLearner\" : {}", m.is_learner);
            out.push('\n');
        }
        done(out)
    }

    fn endpoint_health(&self, checks: &[EpHealth]) -> Print {
        let mut out = String::new();
        for h in checks {
            line!(out, "\"Endpoint\" : {}", go_quote(h.endpoint.as_bytes()));
            line!(out, "\"Health\" : {}", h.health);
            line!(out, "\"Took\" : {}", h.took);
            line!(out, "\"Error\" : {}", h.error);
            out.push('\n');
        }
        done(out)
    }

    fn endpoint_status(&self, statuses: &[EpStatus]) -> Print {
        let mut out = String::new();
        for s in statuses {
            let r = &s.status;
            hdr(&mut out, r.header.as_ref());
            line!(out, "\"Version\" : {}", go_quote(r.version.as_bytes()));
            line!(out, "\"DBSize\" : {}", r.db_size);
            line!(out, "\"Leader\" : {}", r.leader);
            line!(out, "\"IsLearner\" : {}", r.is_learner);
            line!(out, "\"RaftIndex\" : {}", r.raft_index);
            line!(out, "\"RaftTerm\" : {}", r.raft_term);
            line!(out, "\"RaftAppliedIndex\" : {}", r.raft_applied_index);
            line!(out, "\"Errors\" : {}", go_list(&r.errors));
            line!(out, "\"Endpoint\" : {}", go_quote(s.endpoint.as_bytes()));
            out.push('\n');
        }
        done(out)
    }

    fn endpoint_hashkv(&self, hashes: &[EpHashKv]) -> Print {
        let mut out = String::new();
        for h in hashes {
            hdr(&mut out, h.hash.header.as_ref());
            line!(out, "\"Endpoint\" : {}", go_quote(h.endpoint.as_bytes()));
            line!(out, "\"Hash\" : {}", h.hash.hash);
            out.push('\n');
        }
        done(out)
    }

    fn snapshot_status(&self, s: &SnapshotStatus) -> Print {
        let mut out = String::new();
        line!(out, "\"Hash\" : {}", s.hash);
        line!(out, "\"Revision\" : {}", s.revision);
        line!(out, "\"Keys\" : {}", s.total_key);
        line!(out, "\"Size\" : {}", s.total_size);
        Ok(Printed::out(out))
    }

    fn alarm(&self, r: &AlarmResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        for a in &r.alarms {
            line!(out, "\"MemberID\" : {}", a.member_id);
            line!(out, "\"AlarmType\" : {}", alarm_type(a.alarm));
            out.push('\n');
        }
        done(out)
    }

    fn auth_change(&self, _c: AuthChange, h: Option<&ResponseHeader>) -> Print {
        let mut out = String::new();
        hdr(&mut out, h);
        done(out)
    }

    fn role_get(&self, _name: &str, r: &AuthRoleGetResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        for p in &r.perm {
            // Go's Println puts a space between `"PermType" : ` and the name.
            line!(out, "\"PermType\" :  {}", permission_type(p.perm_type));
            line!(out, "\"Key\" : {}", go_quote(&p.key));
            line!(out, "\"RangeEnd\" : {}", go_quote(&p.range_end));
        }
        done(out)
    }

    fn role_list(&self, r: &AuthRoleListResponse) -> Print {
        let mut out = String::new();
        hdr(&mut out, r.header.as_ref());
        out.push_str("\"Roles\" :");
        for role in &r.roles {
            out.push(' ');
            out.push_str(&go_quote(role.as_bytes()));
        }
        out.push('\n');
        done(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_fields() {
        let r = RangeResponse {
            header: Some(ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 3,
                raft_term: 4,
            }),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                value: b"bar".to_vec(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            }],
            count: 1,
            more: false,
        };
        let text = String::from_utf8(Fields.get(&r).unwrap().stdout).unwrap();
        assert_eq!(
            text,
            "\"ClusterID\" : 1\n\"MemberID\" : 2\n\"Revision\" : 3\n\"RaftTerm\" : 4\n\
             \"Key\" : \"foo\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 2\n\"Version\" : 1\n\
             \"Value\" : \"bar\"\n\"Lease\" : 0\n\"More\" : false\n\"Count\" : 1\n"
        );
    }
}

//! The `simple` format: etcdctl's default, human-oriented lines.

use std::fmt::Write;

use etcd_proto::authpb::permission::Type;
use etcd_proto::authpb::Permission;
use etcd_proto::etcdserverpb::response_op::Response;
use etcd_proto::etcdserverpb::{
    AlarmResponse, AuthRoleGetResponse, AuthRoleListResponse, AuthUserGetResponse,
    AuthUserListResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, MemberAddResponse,
    MemberListResponse, MemberPromoteResponse, MemberRemoveResponse, MemberUpdateResponse,
    MoveLeaderResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse, WatchResponse,
};
use etcd_proto::mvccpb::KeyValue;

use super::gotext::{go_list, hex_escaped};
use super::{
    hashkv_rows, member_rows, snapshot_rows, status_rows, AuthChange, EpHashKv, EpHealth, EpStatus,
    KvStyle, MemberChange, Print, Printed, Printer, SnapshotStatus,
};
use crate::etcdctl::command::kv::prefix_end;

/// Prints the simple format.
pub struct Simple {
    pub style: KvStyle,
}

/// The name etcd's Go enum gives an event type.
pub fn event_type(t: i32) -> &'static str {
    match t {
        0 => "PUT",
        1 => "DELETE",
        _ => "UNKNOWN",
    }
}

/// The name etcd's Go enum gives an alarm type.
pub fn alarm_type(t: i32) -> &'static str {
    match t {
        1 => "NOSPACE",
        2 => "CORRUPT",
        _ => "NONE",
    }
}

fn cluster_id(h: Option<&etcd_proto::etcdserverpb::ResponseHeader>) -> u64 {
    h.map_or(0, |h| h.cluster_id)
}

impl Simple {
    /// A key and its value on their own lines (only the value with `--print-value-only`).
    fn kv(&self, out: &mut Vec<u8>, kv: &KeyValue) {
        let text = |b: &[u8]| {
            if self.style.hex {
                hex_escaped(b).into_bytes()
            } else {
                b.to_vec()
            }
        };
        if !self.style.value_only {
            out.extend(text(&kv.key));
            out.push(b'\n');
        }
        out.extend(text(&kv.value));
        out.push(b'\n');
    }

    fn get_into(&self, out: &mut Vec<u8>, r: &RangeResponse) {
        for kv in &r.kvs {
            self.kv(out, kv);
        }
    }

    fn put_into(&self, out: &mut Vec<u8>, r: &PutResponse) {
        out.extend(b"OK\n");
        if let Some(prev) = &r.prev_kv {
            self.kv(out, prev);
        }
    }

    fn del_into(&self, out: &mut Vec<u8>, r: &DeleteRangeResponse) {
        out.extend(format!("{}\n", r.deleted).into_bytes());
        for kv in &r.prev_kvs {
            self.kv(out, kv);
        }
    }
}

/// The sentence a `user` or `role` command prints (keys as the raw bytes they are).
fn change_text(c: AuthChange) -> Vec<u8> {
    let text = match c {
        AuthChange::UserAdded(user) => format!("User {user} created"),
        AuthChange::UserDeleted(user) => format!("User {user} deleted"),
        AuthChange::PasswordChanged => "Password updated".to_string(),
        AuthChange::RoleGranted { user, role } => format!("Role {role} is granted to user {user}"),
        AuthChange::RoleRevoked { user, role } => {
            format!("Role {role} is revoked from user {user}")
        }
        AuthChange::RoleAdded(role) => format!("Role {role} created"),
        AuthChange::RoleDeleted(role) => format!("Role {role} deleted"),
        AuthChange::PermissionGranted(role) => format!("Role {role} updated"),
        AuthChange::PermissionRevoked {
            role,
            key,
            range_end,
        } => {
            let mut out = match range_end {
                [] => [b"Permission of key ", key].concat(),
                [0] => [b"Permission of range [", key, b", <open ended>"].concat(),
                end => [b"Permission of range [", key, b", ", end, b")"].concat(),
            };
            out.extend(format!(" is revoked from role {role}\n").into_bytes());
            return out;
        }
    };
    format!("{text}\n").into_bytes()
}

/// One line of `role get`: a key, or a range with what it means when open or a prefix.
fn permission_line(out: &mut Vec<u8>, p: &Permission) {
    out.push(b'\t');
    match &p.range_end[..] {
        [] => out.extend(&p.key),
        [0] => out.extend([b"[", &p.key[..], b", <open ended>"].concat()),
        end => out.extend([b"[", &p.key[..], b", ", end, b")"].concat()),
    }
    if !p.range_end.is_empty() && prefix_end(&p.key) == p.range_end {
        out.extend([b" (prefix ", &p.key[..], b")"].concat());
    }
    out.push(b'\n');
}

/// Names, one per line.
fn names_text(names: &[String]) -> String {
    names.iter().fold(String::new(), |mut acc, n| {
        let _ = writeln!(acc, "{n}");
        acc
    })
}

/// Rows joined by `, `, one per line.
fn rows_text(rows: Vec<Vec<String>>) -> String {
    rows.into_iter().fold(String::new(), |mut acc, row| {
        let _ = writeln!(acc, "{}", row.join(", "));
        acc
    })
}

impl Printer for Simple {
    fn name(&self) -> &'static str {
        "simple"
    }

    fn get(&self, r: &RangeResponse) -> Print {
        let mut out = Vec::new();
        self.get_into(&mut out, r);
        Ok(Printed::out(out))
    }

    fn put(&self, r: &PutResponse) -> Print {
        let mut out = Vec::new();
        self.put_into(&mut out, r);
        Ok(Printed::out(out))
    }

    fn del(&self, r: &DeleteRangeResponse) -> Print {
        let mut out = Vec::new();
        self.del_into(&mut out, r);
        Ok(Printed::out(out))
    }

    fn txn(&self, r: &TxnResponse) -> Print {
        let mut out = Vec::new();
        out.extend(if r.succeeded {
            &b"SUCCESS\n"[..]
        } else {
            &b"FAILURE\n"[..]
        });
        for op in &r.responses {
            out.push(b'\n');
            match &op.response {
                Some(Response::ResponseRange(r)) => self.get_into(&mut out, r),
                Some(Response::ResponsePut(r)) => self.put_into(&mut out, r),
                Some(Response::ResponseDeleteRange(r)) => self.del_into(&mut out, r),
                other => out.extend(format!("unexpected response {other:?}\n").into_bytes()),
            }
        }
        Ok(Printed::out(out))
    }

    fn watch(&self, r: &WatchResponse) -> Print {
        let mut out = Vec::new();
        for ev in &r.events {
            out.extend(format!("{}\n", event_type(ev.r#type)).into_bytes());
            if let Some(prev) = &ev.prev_kv {
                self.kv(&mut out, prev);
            }
            self.kv(&mut out, ev.kv.as_ref().unwrap_or(&KeyValue::default()));
        }
        Ok(Printed::out(out))
    }

    fn grant(&self, r: &LeaseGrantResponse) -> Print {
        Ok(Printed::out(format!(
            "lease {:016x} granted with TTL({}s)\n",
            r.id, r.ttl
        )))
    }

    fn revoke(&self, id: i64, _r: &LeaseRevokeResponse) -> Print {
        Ok(Printed::out(format!("lease {id:016x} revoked\n")))
    }

    fn keep_alive(&self, r: &LeaseKeepAliveResponse) -> Print {
        Ok(Printed::out(format!(
            "lease {:016x} keepalived with TTL({})\n",
            r.id, r.ttl
        )))
    }

    fn time_to_live(&self, r: &LeaseTimeToLiveResponse, keys: bool) -> Print {
        if r.granted_ttl == 0 && r.ttl == -1 {
            return Ok(Printed::out(format!(
                "lease {:016x} already expired\n",
                r.id
            )));
        }
        let mut text = format!(
            "lease {:016x} granted with TTL({}s), remaining({}s)",
            r.id, r.granted_ttl, r.ttl
        );
        if keys {
            let names: Vec<String> = r
                .keys
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            let _ = write!(text, ", attached keys({})", go_list(&names));
        }
        text.push('\n');
        Ok(Printed::out(text))
    }

    fn leases(&self, r: &LeaseLeasesResponse) -> Print {
        let mut text = format!("found {} leases\n", r.leases.len());
        for l in &r.leases {
            let _ = writeln!(text, "{:016x}", l.id);
        }
        Ok(Printed::out(text))
    }

    fn member_add(&self, r: &MemberAddResponse) -> Print {
        let id = r.member.as_ref().map_or(0, |m| m.id);
        Ok(Printed::out(format!(
            "Member {id:16x} added to cluster {:16x}\n",
            cluster_id(r.header.as_ref())
        )))
    }

    fn member_remove(&self, c: MemberChange, r: &MemberRemoveResponse) -> Print {
        Ok(Printed::out(format!(
            "Member {:16x} removed from cluster {:16x}\n",
            c.id,
            cluster_id(r.header.as_ref())
        )))
    }

    fn member_update(&self, c: MemberChange, r: &MemberUpdateResponse) -> Print {
        Ok(Printed::out(format!(
            "Member {:16x} updated in cluster {:16x}\n",
            c.id,
            cluster_id(r.header.as_ref())
        )))
    }

    fn member_promote(&self, c: MemberChange, r: &MemberPromoteResponse) -> Print {
        Ok(Printed::out(format!(
            "Member {:16x} promoted in cluster {:16x}\n",
            c.id,
            cluster_id(r.header.as_ref())
        )))
    }

    fn member_list(&self, r: &MemberListResponse) -> Print {
        Ok(Printed::out(rows_text(member_rows(r).1)))
    }

    fn endpoint_health(&self, checks: &[EpHealth]) -> Print {
        let text = checks.iter().fold(String::new(), |mut acc, h| {
            let _ = if h.error.is_empty() {
                writeln!(
                    acc,
                    "{} is healthy: successfully committed proposal: took = {}",
                    h.endpoint, h.took
                )
            } else {
                writeln!(
                    acc,
                    "{} is unhealthy: failed to commit proposal: {}",
                    h.endpoint, h.error
                )
            };
            acc
        });
        Ok(Printed::err(text))
    }

    fn endpoint_status(&self, statuses: &[EpStatus]) -> Print {
        Ok(Printed::out(rows_text(status_rows(statuses).1)))
    }

    fn endpoint_hashkv(&self, hashes: &[EpHashKv]) -> Print {
        Ok(Printed::out(rows_text(hashkv_rows(hashes).1)))
    }

    fn snapshot_status(&self, s: &SnapshotStatus) -> Print {
        Ok(Printed::out(rows_text(snapshot_rows(s).1)))
    }

    fn alarm(&self, r: &AlarmResponse) -> Print {
        let text = r.alarms.iter().fold(String::new(), |mut acc, a| {
            let _ = writeln!(
                acc,
                "memberID:{} alarm:{} ",
                a.member_id,
                alarm_type(a.alarm)
            );
            acc
        });
        Ok(Printed::out(text))
    }

    fn move_leader(&self, leader: u64, target: u64, _r: &MoveLeaderResponse) -> Print {
        Ok(Printed::out(format!(
            "Leadership transferred from {leader:x} to {target:x}\n"
        )))
    }

    fn auth_change(&self, c: AuthChange, _h: Option<&ResponseHeader>) -> Print {
        Ok(Printed::out(change_text(c)))
    }

    fn role_get(&self, name: &str, r: &AuthRoleGetResponse) -> Print {
        // A READWRITE permission is listed under both headings.
        let lines = |out: &mut Vec<u8>, kind: Type| {
            let listed = [kind as i32, Type::Readwrite as i32];
            for p in r.perm.iter().filter(|p| listed.contains(&p.perm_type)) {
                permission_line(out, p);
            }
        };
        let mut out = format!("Role {name}\nKV Read:\n").into_bytes();
        lines(&mut out, Type::Read);
        out.extend(b"KV Write:\n");
        lines(&mut out, Type::Write);
        Ok(Printed::out(out))
    }

    fn role_list(&self, r: &AuthRoleListResponse) -> Print {
        Ok(Printed::out(names_text(&r.roles)))
    }

    fn user_get(&self, name: &str, r: &AuthUserGetResponse) -> Print {
        let roles: String = r.roles.iter().map(|role| format!(" {role}")).collect();
        Ok(Printed::out(format!("User: {name}\nRoles:{roles}\n")))
    }

    fn user_list(&self, r: &AuthUserListResponse) -> Print {
        Ok(Printed::out(names_text(&r.users)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    #[test]
    fn key_values_and_styles() {
        let r = RangeResponse {
            kvs: vec![kv("foo", "bar")],
            ..Default::default()
        };
        let plain = Simple {
            style: KvStyle::default(),
        };
        assert_eq!(plain.get(&r).unwrap().stdout, b"foo\nbar\n");
        let hex = Simple {
            style: KvStyle {
                hex: true,
                value_only: true,
            },
        };
        assert_eq!(hex.get(&r).unwrap().stdout, b"\\x62\\x61\\x72\n");
        let ttl = LeaseTimeToLiveResponse {
            id: 0x20,
            ttl: 9,
            granted_ttl: 10,
            keys: vec![b"a".to_vec(), b"b".to_vec()],
            ..Default::default()
        };
        assert_eq!(
            plain.time_to_live(&ttl, true).unwrap().stdout,
            b"lease 0000000000000020 granted with TTL(10s), remaining(9s), attached keys([a b])\n"
        );
        let gone = MemberRemoveResponse {
            header: Some(etcd_proto::etcdserverpb::ResponseHeader {
                cluster_id: 0x48276a8f75b6a87,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            plain
                .member_remove(MemberChange { id: 0x2a }, &gone)
                .unwrap()
                .stdout,
            b"Member               2a removed from cluster  48276a8f75b6a87\n"
        );
    }
}

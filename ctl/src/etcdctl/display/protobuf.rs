//! The `protobuf` format: the response's protobuf encoding, written raw. For the lease
//! results etcdctl 3.4 encodes only the embedded response header, so this does too.

use etcd_proto::etcdserverpb::{
    AlarmResponse, AuthRoleAddResponse, AuthRoleGetResponse, AuthRoleListResponse,
    AuthUserGetResponse, AuthUserListResponse, DeleteRangeResponse, LeaseGrantResponse,
    LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse,
    MemberAddResponse, MemberListResponse, MemberPromoteResponse, MemberRemoveResponse,
    MemberUpdateResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse, WatchResponse,
};
use prost::Message;

use super::{AuthChange, MemberChange, Print, Printed, Printer};

/// Prints the protobuf format.
pub struct Protobuf;

fn encoded(m: &impl Message) -> Print {
    Ok(Printed::out(m.encode_to_vec()))
}

fn header(h: Option<&ResponseHeader>) -> Print {
    Ok(Printed::out(
        h.map(Message::encode_to_vec).unwrap_or_default(),
    ))
}

impl Printer for Protobuf {
    fn name(&self) -> &'static str {
        "protobuf"
    }

    fn get(&self, r: &RangeResponse) -> Print {
        encoded(r)
    }

    fn put(&self, r: &PutResponse) -> Print {
        encoded(r)
    }

    fn del(&self, r: &DeleteRangeResponse) -> Print {
        encoded(r)
    }

    fn txn(&self, r: &TxnResponse) -> Print {
        encoded(r)
    }

    fn watch(&self, r: &WatchResponse) -> Print {
        Ok(Printed::out(
            r.events
                .iter()
                .flat_map(Message::encode_to_vec)
                .collect::<Vec<u8>>(),
        ))
    }

    fn grant(&self, r: &LeaseGrantResponse) -> Print {
        header(r.header.as_ref())
    }

    fn revoke(&self, _id: i64, r: &LeaseRevokeResponse) -> Print {
        encoded(r)
    }

    fn keep_alive(&self, r: &LeaseKeepAliveResponse) -> Print {
        header(r.header.as_ref())
    }

    fn time_to_live(&self, r: &LeaseTimeToLiveResponse, _keys: bool) -> Print {
        header(r.header.as_ref())
    }

    fn leases(&self, r: &LeaseLeasesResponse) -> Print {
        header(r.header.as_ref())
    }

    fn member_add(&self, r: &MemberAddResponse) -> Print {
        encoded(r)
    }

    fn member_remove(&self, _c: MemberChange, r: &MemberRemoveResponse) -> Print {
        encoded(r)
    }

    fn member_update(&self, _c: MemberChange, r: &MemberUpdateResponse) -> Print {
        encoded(r)
    }

    fn member_promote(&self, _c: MemberChange, r: &MemberPromoteResponse) -> Print {
        encoded(r)
    }

    fn member_list(&self, r: &MemberListResponse) -> Print {
        encoded(r)
    }

    fn alarm(&self, r: &AlarmResponse) -> Print {
        encoded(r)
    }

    /// The responses of these commands all hold only their header, so they encode alike.
    fn auth_change(&self, _c: AuthChange, h: Option<&ResponseHeader>) -> Print {
        encoded(&AuthRoleAddResponse { header: h.cloned() })
    }

    fn role_get(&self, _name: &str, r: &AuthRoleGetResponse) -> Print {
        encoded(r)
    }

    fn role_list(&self, r: &AuthRoleListResponse) -> Print {
        encoded(r)
    }

    fn user_get(&self, _name: &str, r: &AuthUserGetResponse) -> Print {
        encoded(r)
    }

    fn user_list(&self, r: &AuthUserListResponse) -> Print {
        encoded(r)
    }
}

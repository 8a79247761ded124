//! etcd's v3 gRPC API as Rust types, gRPC clients and gRPC servers.
//!
//! The `.proto` files under `proto/` restate etcd's own definitions so that unmodified
//! etcd clients (Go `etcdctl`, the Rust `etcd-client` crate, Kubernetes) talk to our
//! server, and our tools talk to a real etcd. gRPC identifies calls by
//! `/<package>.<Service>/<Method>` and protobuf identifies fields by number, so package,
//! service, rpc and message names, field numbers and enum values must stay exactly as
//! etcd has them and must never change. Only etcd's gogoproto and HTTP-gateway
//! annotations are left out; they do not affect the wire format.
//!
//! Code is generated at build time by `protox` and `tonic-prost-build` (no `protoc`
//! needed). Every package is a module at the crate root because generated code refers
//! to other packages as siblings (for example `super::mvccpb::KeyValue`).

/// Key-value records and watch events (etcd's `mvccpb` package).
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// Users, roles and permissions (etcd's `authpb` package).
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// The client API (etcd's `etcdserverpb` package): the `KV`, `Watch`, `Lease`,
/// `Cluster`, `Maintenance` and `Auth` services and their messages.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// The `Lock` service (etcd's `v3lockpb` package).
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

/// The `Election` service (etcd's `v3electionpb` package).
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

/// Our own replicated-log payload (not part of etcd's API): what members propose
/// through raft and what the state machine answers.
pub mod raftrequestpb {
    tonic::include_proto!("raftrequestpb");
}

/// Member-to-member traffic on the peer URL (ours, not etcd's): raft messages and the
/// requests followers hand to the leader.
pub mod raftpeerpb {
    tonic::include_proto!("raftpeerpb");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every package above, including
/// source comments, for gRPC reflection and JSON transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/etcd_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::etcdserverpb::{
        compare, Compare, LeaseGrantRequest, PutRequest, RangeRequest, StatusResponse,
        WatchResponse,
    };
    use super::mvccpb::Event;

    #[test]
    fn put_request_uses_etcd_field_numbers() {
        let req = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            lease: 5,
            prev_kv: true,
            ..Default::default()
        };
        // key = 1 (bytes), value = 2 (bytes), lease = 3 (varint), prev_kv = 4 (varint).
        assert_eq!(
            req.encode_to_vec(),
            [0x0a, 1, b'k', 0x12, 1, b'v', 0x18, 5, 0x20, 1]
        );
    }

    #[test]
    fn other_field_numbers_match_etcd() {
        // RangeRequest.count_only = 9.
        let range = RangeRequest {
            count_only: true,
            ..Default::default()
        };
        assert_eq!(range.encode_to_vec(), [9 << 3, 1]);

        // LeaseGrantRequest: TTL = 1, ID = 2.
        let grant = LeaseGrantRequest { ttl: 7, id: 8 };
        assert_eq!(grant.encode_to_vec(), [1 << 3, 7, 2 << 3, 8]);

        // Compare.range_end = 64 (two-byte tag), Compare.lease = 8 inside the oneof.
        let cmp = Compare {
            range_end: b"z".to_vec(),
            target_union: Some(compare::TargetUnion::Lease(3)),
            ..Default::default()
        };
        assert_eq!(cmp.encode_to_vec(), [8 << 3, 3, 0x82, 0x04, 1, b'z']);

        // WatchResponse.events = 11.
        let watch = WatchResponse {
            events: vec![Event::default()],
            ..Default::default()
        };
        assert_eq!(watch.encode_to_vec(), [(11 << 3) | 2, 0]);

        // StatusResponse.dbSizeInUse = 9, isLearner = 10.
        let status = StatusResponse {
            db_size_in_use: 1,
            is_learner: true,
            ..Default::default()
        };
        assert_eq!(status.encode_to_vec(), [9 << 3, 1, 10 << 3, 1]);
    }

    #[test]
    fn descriptor_set_holds_every_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let services: Vec<String> = fds
            .file
            .iter()
            .flat_map(|file| {
                file.service
                    .iter()
                    .map(move |svc| format!("{}.{}", file.package(), svc.name()))
            })
            .collect();
        for expected in [
            "etcdserverpb.KV",
            "etcdserverpb.Watch",
            "etcdserverpb.Lease",
            "etcdserverpb.Cluster",
            "etcdserverpb.Maintenance",
            "etcdserverpb.Auth",
            "v3lockpb.Lock",
            "v3electionpb.Election",
        ] {
            assert!(services.iter().any(|s| s == expected), "missing {expected}");
        }

        // Field names keep etcd's spelling, which JSON clients see.
        let status = fds
            .file
            .iter()
            .flat_map(|file| file.message_type.iter())
            .find(|msg| msg.name() == "StatusResponse")
            .expect("StatusResponse is described");
        assert!(status.field.iter().any(|f| f.name() == "dbSizeInUse"));
    }
}

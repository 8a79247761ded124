//! The seed corpus: small, valid inputs of each target made with the project's own
//! encoders, so the fuzzer starts past the formats' framing. `examples/write_seeds.rs`
//! writes them under `corpus/<target>/`.

use etcd_proto::etcdserverpb::alarm_request::AlarmAction;
use etcd_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use etcd_proto::etcdserverpb::request_op::Request as Op;
use etcd_proto::etcdserverpb::{
    AlarmRequest, AlarmType, CompactionRequest, Compare, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use etcd_proto::raftrequestpb::raft_request::Request;
use etcd_proto::raftrequestpb::{
    LeaseCheckpoint, LeaseCheckpoints, MemberAttributes, RaftRequest, RequestBatch,
};
use etcd_server::wal::record::{self, Kind};
use etcd_server::wal::{Wal, WalOptions};
use prost::Message;

/// One seed: the target it is for, a file name, the bytes.
pub struct Seed {
    pub target: &'static str,
    pub name: &'static str,
    pub bytes: Vec<u8>,
}

pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(wal_record());
    out.extend(wal_segment());
    out.extend(raft_apply());
    out.extend(snapshot_file());
    out.extend(config_file());
    out.extend(tls_pem());
    out.extend(jwt_verify());
    out.extend(token_flag());
    out
}

fn seed(target: &'static str, name: &'static str, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name,
        bytes,
    }
}

fn wal_record() -> Vec<Seed> {
    let mut records = Vec::new();
    record::encode(&mut records, Kind::Vote, b"vote");
    record::encode(
        &mut records,
        Kind::Entry,
        &[7u64.to_le_bytes(), *b"an entry"].concat(),
    );
    record::encode(&mut records, Kind::Committed, b"committed");
    record::encode(&mut records, Kind::Truncate, &3u64.to_le_bytes());
    records.resize(records.len() + 16, 0);
    vec![
        seed("wal_record", "records", records),
        seed("wal_record", "payload", b"\x01an entry payload".to_vec()),
    ]
}

/// A segment the log itself wrote, its preallocated zeros cut off.
fn written_segment(torn: bool) -> Vec<u8> {
    let dir = crate::scratch::dir();
    let opts = WalOptions {
        segment_bytes: 1 << 20,
    };
    let wal = Wal::open(dir.path(), opts).expect("log opens");
    wal.save_vote(b"{\"term\":2}").expect("vote");
    let entries: Vec<(u64, Vec<u8>)> = (1..6).map(|i| (i, format!("entry {i}").into())).collect();
    wal.append(&entries).expect("append");
    wal.truncate(4).expect("truncate");
    wal.save_committed(b"{\"index\":3}");
    wal.append(&[(4, b"entry 4 again".to_vec())])
        .expect("append");
    wal.purge(1, b"{\"index\":1}").expect("purge");
    drop(wal);
    let (_, path) = etcd_server::wal::segment::list(dir.path())
        .expect("segments")
        .pop()
        .expect("one segment");
    let mut bytes = std::fs::read(path).expect("segment read");
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end.next_multiple_of(8));
    if torn {
        bytes.truncate(bytes.len() - 5);
    }
    bytes
}

fn wal_segment() -> Vec<Seed> {
    let raw = |torn| [&[0u8][..], &written_segment(torn)].concat();
    // Entries 0..3, a vote, committed, truncate at 2, entry 2, a purge at 0, then a second
    // segment with the next entry (see `wal_segment::Program`).
    let program = [
        3, 0, 1, b'a', 0, 1, b'b', 0, 1, b'c', 3, 2, b'v', b'1', 4, 2, b'c', b'1', 5, 2, 0, 2,
        b'b', b'2', 6, 0, 2, b'p', b'0', 7, 0, 0, 1, b'd',
    ];
    vec![
        seed("wal_segment", "written", raw(false)),
        seed("wal_segment", "torn", raw(true)),
        seed("wal_segment", "program", program.to_vec()),
    ]
}

fn put(key: &str, value: &str, lease: i64) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        prev_kv: true,
        ..Default::default()
    }
}

fn raft(request: Request) -> RaftRequest {
    RaftRequest {
        request: Some(request),
        header: None,
    }
}

fn txn() -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Version as i32,
            key: b"a".to_vec(),
            range_end: Vec::new(),
            target_union: Some(TargetUnion::Version(2)),
        }],
        success: vec![
            RequestOp {
                request: Some(Op::RequestPut(put("b", "from txn", 0))),
            },
            RequestOp {
                request: Some(Op::RequestRange(RangeRequest {
                    key: b"a".to_vec(),
                    range_end: vec![0],
                    ..Default::default()
                })),
            },
        ],
        failure: vec![RequestOp {
            request: Some(Op::RequestDeleteRange(DeleteRangeRequest {
                key: b"a".to_vec(),
                ..Default::default()
            })),
        }],
    }
}

/// Requests as the state machine sees them: a flags byte, then the protobuf.
fn raft_apply() -> Vec<Seed> {
    let requests = vec![
        raft(Request::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 })),
        raft(Request::Put(put("a", "1", 0))),
        raft(Request::Put(put("a", "2", 7))),
        raft(Request::Put(put("c", "3", 7))),
        raft(Request::Txn(txn())),
        raft(Request::Compaction(CompactionRequest {
            revision: 3,
            physical: false,
        })),
        raft(Request::LeaseCheckpoints(LeaseCheckpoints {
            checkpoints: vec![LeaseCheckpoint {
                id: 7,
                remaining_ttl: 30,
            }],
        })),
        raft(Request::DeleteRange(DeleteRangeRequest {
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
            prev_kv: true,
        })),
        raft(Request::LeaseRevoke(LeaseRevokeRequest { id: 7 })),
        raft(Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: 1,
            alarm: AlarmType::Nospace as i32,
        })),
        raft(Request::Put(put("refused", "by the alarm", 0))),
        raft(Request::MemberAttributes(MemberAttributes {
            id: 1,
            name: "m1".into(),
            client_urls: vec!["http://127.0.0.1:2379".into()],
        })),
    ];
    let encoded = |flags: u8, req: RaftRequest| [vec![flags], req.encode_to_vec()].concat();
    let batch = raft(Request::Batch(RequestBatch { requests }));
    vec![
        seed("raft_apply", "batch", encoded(0, batch.clone())),
        seed("raft_apply", "batch-leader-each", encoded(3, batch)),
        seed("raft_apply", "txn", encoded(0, raft(Request::Txn(txn())))),
    ]
}

fn snapshot_file() -> Vec<Seed> {
    use etcd_server::storage::keys;
    let history = |main: i64, key: &str| {
        let k = etcd_server::mvcc::revision::Revision::new(main, 0).to_key();
        let rec = etcd_proto::raftrequestpb::KvRecord {
            kv: Some(etcd_proto::mvccpb::KeyValue {
                key: key.into(),
                create_revision: main,
                mod_revision: main,
                version: 1,
                value: b"v".to_vec(),
                lease: 0,
            }),
            tombstone: false,
        };
        (k.to_vec(), rec.encode_to_vec())
    };
    let entries = [
        history(2, "a"),
        history(3, "b"),
        (keys::REVISION.to_vec(), 3i64.to_be_bytes().to_vec()),
        (keys::COMPACTED.to_vec(), 2i64.to_be_bytes().to_vec()),
        (keys::APPLIED.to_vec(), b"raft position".to_vec()),
    ];
    let hashed = etcd_server::snapshot::encode(entries.iter().map(|(k, v)| (k, v)));
    let unhashed = hashed[..hashed.len() - 32].to_vec();
    vec![
        seed("snapshot_file", "hashed", hashed),
        seed("snapshot_file", "unhashed", unhashed),
    ]
}

fn config_file() -> Vec<Seed> {
    let sample = "\
name: 'm1'
data-dir: /var/lib/etcd/m1
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://localhost:2380
listen-client-urls: http://localhost:2379
max-snapshots: 5
max-wals: 5
initial-advertise-peer-urls: http://localhost:2380
advertise-client-urls: http://localhost:2379
initial-cluster: m1=http://localhost:2380,m2=http://127.0.0.2:2380
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
auto-compaction-mode: periodic
auto-compaction-retention: \"1h30m\"
client-transport-security:
  cert-file:
  client-cert-auth: false
  auto-tls: false
peer-transport-security:
  trusted-ca-file:
  auto-tls: false
debug: false
log-level: info
logger: zap
";
    let revisions = "\
auto-compaction-mode: revision
auto-compaction-retention: 1000
listen-client-urls: [http://127.0.0.1:2379, 'http://[::1]:2379']
advertise-client-urls: http://127.0.0.1:2379
max-request-bytes: 1572864
experimental-watch-progress-notify-interval: 10m0s
";
    vec![
        seed("config_file", "sample", sample.into()),
        seed("config_file", "revisions", revisions.into()),
    ]
}

/// A CA, a certificate it signed with its key, and its CRL revoking another serial: as one
/// PEM file (every loader finds its sections in it) and as DER framed for the target.
fn tls_pem() -> Vec<Seed> {
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa,
        Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2024, 1, 1),
        next_update: date_time_ymd(2099, 1, 1),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(&[7]),
            revocation_time: date_time_ymd(2024, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .expect("CRL");
    // Label indexes into `tls_pem::LABELS`: CERTIFICATE, PRIVATE KEY, X509 CRL.
    let blobs = vec![
        (0, leaf.der().to_vec()),
        (1, leaf_key.serialize_der()),
        (0, ca.der().to_vec()),
        (4, crl.der().to_vec()),
    ];
    let text = crate::tls_pem::pem(&blobs);
    vec![
        seed("tls_pem", "bundle", [b"\0".as_slice(), &text].concat()),
        seed("tls_pem", "bundle-der", crate::tls_pem::framed(&blobs)),
    ]
}

/// An HS256 token of the target's member, and a header and claims for it to sign.
fn jwt_verify() -> Vec<Seed> {
    let header = br#"{"alg":"HS256","typ":"JWT"}"#.as_slice();
    let claims = br#"{"exp":4102444800,"revision":3,"username":"root"}"#.as_slice();
    let token = crate::jwt_verify::sign(header, claims);
    vec![
        seed("jwt_verify", "token", [b"\0", token.as_bytes()].concat()),
        seed(
            "jwt_verify",
            "claims",
            [b"\x01", header, b"\0", claims].concat(),
        ),
    ]
}

fn token_flag() -> Vec<Seed> {
    let jwt = "jwt,pub-key=/etc/etcd/jwt.pub,priv-key=/etc/etcd/jwt.key,sign-method=RS256,ttl=10m";
    vec![
        seed("token_flag", "jwt", jwt.as_bytes().to_vec()),
        seed("token_flag", "simple", b"simple".to_vec()),
    ]
}

//! gRPC-level differential testing: the same requests sent with etcd's generated tonic
//! clients (the `etcd-proto` crate) to one member of ours and one of Debian's etcd 3.4,
//! and the decoded responses compared field by field — headers, absent messages and
//! default values included — after [`normalise`] has replaced what must differ.
//!
//! etcdctl prints only some fields of a response; these tests see all of them.

pub mod normalise;
pub mod pair;
pub mod requests;
pub mod show;
pub mod watch;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::lease_client::LeaseClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::watch_client::WatchClient;
use etcd_proto::v3electionpb::election_client::ElectionClient;
use etcd_proto::v3lockpb::lock_client::LockClient;
use tonic::transport::{Channel, Endpoint};

use crate::Member;

pub use pair::{Answer, GrpcPair, Known};

/// How long one call may take before the test fails instead of hanging.
pub const CALL_LIMIT: Duration = Duration::from_secs(15);

/// etcd's services on one member, over one HTTP/2 connection.
#[derive(Clone)]
pub struct Clients {
    pub kv: KvClient<Channel>,
    pub watch: WatchClient<Channel>,
    pub lease: LeaseClient<Channel>,
    pub cluster: ClusterClient<Channel>,
    pub maintenance: MaintenanceClient<Channel>,
    pub lock: LockClient<Channel>,
    pub election: ElectionClient<Channel>,
}

impl Clients {
    /// Connects to `member`'s client URL.
    pub async fn connect(member: &Member) -> Clients {
        Clients::connect_with(member, |e| e).await
    }

    /// Connects to `member`'s client URL with the channel settings `tune` makes.
    ///
    /// A test that stops reading its watch streams needs a small HTTP/2 stream window: h2
    /// refuses to buffer more than half its connection window of small DATA frames the
    /// application has not taken ("too_many_data_frames"), and tonic's default stream
    /// window holds far more watch responses than that.
    pub async fn connect_with(member: &Member, tune: impl FnOnce(Endpoint) -> Endpoint) -> Clients {
        let endpoint = Channel::from_shared(member.endpoint()).expect("client URL");
        let channel = within("connect", tune(endpoint).connect())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", member.endpoint()));
        // Snapshots and large ranges exceed tonic's 4 MiB default; etcd's clients take any.
        let kv = KvClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
        Clients {
            kv,
            watch: WatchClient::new(channel.clone()).max_decoding_message_size(usize::MAX),
            lease: LeaseClient::new(channel.clone()),
            cluster: ClusterClient::new(channel.clone()),
            lock: LockClient::new(channel.clone()),
            election: ElectionClient::new(channel.clone()),
            maintenance: MaintenanceClient::new(channel).max_decoding_message_size(usize::MAX),
        }
    }
}

/// Awaits `f`, failing the test with `what` when it takes longer than [`CALL_LIMIT`].
pub async fn within<T>(what: &(impl Debug + ?Sized), f: impl Future<Output = T>) -> T {
    tokio::time::timeout(CALL_LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{}: no answer within {CALL_LIMIT:?}", show::show(what)))
}

//! Client-facing APIs: the v3 gRPC services and plain HTTP, served together on every
//! client URL (gRPC is HTTP/2 with `content-type: application/grpc`; everything else is
//! routed to the HTTP handlers, among them the v3 JSON gateway), as etcd does.

pub mod caller;
pub mod gateway;
pub mod grpc_limits;
pub mod http;
pub mod require_leader;
pub mod v3;

use std::sync::Arc;
use std::time::Duration;

use etcd_proto::etcdserverpb::auth_server::AuthServer;
use etcd_proto::etcdserverpb::cluster_server::ClusterServer;
use etcd_proto::etcdserverpb::kv_server::KvServer;
use etcd_proto::etcdserverpb::lease_server::LeaseServer;
use etcd_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use etcd_proto::etcdserverpb::watch_server::WatchServer;
use etcd_proto::v3electionpb::election_server::ElectionServer;
use etcd_proto::v3lockpb::lock_server::LockServer;

use self::require_leader::LeaderLoss;
use crate::server::EtcdServer;

/// gRPC adds this much framing on top of etcd's request limit, as etcd allows. etcd also
/// fragments watch responses only past the request limit plus this.
pub(crate) const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Builds the router for a client listener. `leader_loss` ends the streams that require a
/// leader (see [`require_leader`]).
pub fn client_router(
    server: Arc<EtcdServer>,
    progress_interval: Duration,
    leader_loss: LeaderLoss,
) -> axum::Router {
    let max_recv = server.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    macro_rules! svc {
        ($ty:ident, $val:expr) => {
            $ty::new($val)
                .max_decoding_message_size(max_recv)
                .max_encoding_message_size(usize::MAX)
        };
    }
    let grpc = tonic::service::Routes::new(svc!(
        KvServer,
        v3::kv::KvService {
            server: server.clone()
        }
    ))
    .add_service(svc!(
        WatchServer,
        v3::watch::WatchService {
            server: server.clone(),
            progress_interval,
            leader_loss: leader_loss.clone(),
        }
    ))
    .add_service(svc!(
        LeaseServer,
        v3::lease::LeaseService {
            server: server.clone(),
            leader_loss: leader_loss.clone(),
        }
    ))
    .add_service(svc!(
        LockServer,
        v3::lock::LockService {
            server: server.clone(),
            leader_loss: leader_loss.clone(),
        }
    ))
    .add_service(svc!(
        ElectionServer,
        v3::election::ElectionService {
            server: server.clone(),
            leader_loss: leader_loss.clone(),
        }
    ))
    .add_service(svc!(
        ClusterServer,
        v3::cluster::ClusterService {
            server: server.clone(),
            on_peer_url: false,
        }
    ))
    .add_service(svc!(
        MaintenanceServer,
        v3::maintenance::MaintenanceService {
            server: server.clone()
        }
    ))
    .add_service(svc!(
        AuthServer,
        v3::auth::AuthService {
            server: server.clone()
        }
    ));
    let gateway = gateway::router(server.clone(), progress_interval, leader_loss.clone());
    grpc.into_axum_router()
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            require_leader::refuse_without_leader,
        ))
        .layer(axum::middleware::map_response(
            grpc_limits::rewrite_size_errors,
        ))
        .merge(gateway)
        .merge(http::router(server))
}

//! Peer errors over real sockets: what a serving member answers is what the calling member
//! reads back, and a transport failure is told apart by whether the call left at all.

use std::sync::Arc;

use etcd_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use etcd_proto::raftpeerpb::raft_peer_client::RaftPeerClient;
use etcd_proto::raftpeerpb::raft_peer_server::{RaftPeer, RaftPeerServer};
use etcd_proto::raftpeerpb::{
    CampaignRequest, CampaignResponse, RaftMessage, ReadIndexRequest, ReadIndexResponse,
};
use etcd_proto::raftrequestpb::{RaftRequest, RaftResponse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use super::*;

/// A peer whose `propose` answers with `answer`; nothing else is called.
struct Answering {
    answer: Arc<dyn Fn() -> Status + Send + Sync>,
}

type Res<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl RaftPeer for Answering {
    async fn propose(&self, _: Request<RaftRequest>) -> Res<RaftResponse> {
        Err((self.answer)())
    }
    async fn append_entries(&self, _: Request<RaftMessage>) -> Res<RaftMessage> {
        unreachable!()
    }
    async fn vote(&self, _: Request<RaftMessage>) -> Res<RaftMessage> {
        unreachable!()
    }
    async fn install_snapshot(&self, _: Request<RaftMessage>) -> Res<RaftMessage> {
        unreachable!()
    }
    async fn read_index(&self, _: Request<ReadIndexRequest>) -> Res<ReadIndexResponse> {
        unreachable!()
    }
    async fn lease_keep_alive(
        &self,
        _: Request<LeaseKeepAliveRequest>,
    ) -> Res<LeaseKeepAliveResponse> {
        unreachable!()
    }
    async fn lease_time_to_live(
        &self,
        _: Request<LeaseTimeToLiveRequest>,
    ) -> Res<LeaseTimeToLiveResponse> {
        unreachable!()
    }
    async fn campaign(&self, _: Request<CampaignRequest>) -> Res<CampaignResponse> {
        unreachable!()
    }
}

async fn channel_to(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// Serves a peer answering `answer` and returns what a client reads back from `propose`.
async fn over_the_wire(answer: impl Fn() -> Status + Send + Sync + 'static) -> PeerError {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::service::Routes::new(RaftPeerServer::new(Answering {
        answer: Arc::new(answer),
    }))
    .into_axum_router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let status = RaftPeerClient::new(channel_to(addr).await)
        .propose(RaftRequest::default())
        .await
        .expect_err("the peer answers with an error");
    server.abort();
    PeerError::from_status(&status)
}

#[tokio::test]
async fn etcd_errors_travel_as_their_code() {
    for e in [
        EtcdError::KeyNotFound,
        EtcdError::TooManyRequests,
        EtcdError::NotLeader,
        EtcdError::Internal("disk on fire".into()),
    ] {
        let sent = e.clone();
        assert_eq!(
            over_the_wire(move || status(sent.clone())).await,
            PeerError::Etcd(e)
        );
    }
}

#[tokio::test]
async fn refusals_travel_as_their_kind() {
    for r in [
        Refusal::Removed,
        Refusal::NotMember,
        Refusal::ClusterMismatch { theirs: 0xabc },
    ] {
        assert_eq!(
            over_the_wire(move || PeerError::Refused(r).into_status()).await,
            PeerError::Refused(r)
        );
    }
}

#[tokio::test]
async fn a_status_without_a_code_is_not_read_from_its_text() {
    // The text of an etcd error alone does not make it one.
    let got = over_the_wire(|| Status::invalid_argument("etcdserver: key not found")).await;
    assert_eq!(
        got,
        PeerError::Etcd(EtcdError::Internal("etcdserver: key not found".into()))
    );
}

#[tokio::test]
async fn a_refused_connection_never_sent_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let status = RaftPeerClient::new(channel_to(addr).await)
        .propose(RaftRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(
        PeerError::from_status(&status),
        PeerError::NotSent(_)
    ));
    assert_eq!(
        PeerError::from_status(&status).into_etcd(),
        EtcdError::NoLeader
    );
}

#[tokio::test]
async fn a_connection_reset_after_sending_may_have_applied() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Takes the connection, reads until the request's body has arrived, then resets it
    // without an answer: the peer may well have acted on it.
    let marker = b"applies-once".to_vec();
    let peer = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(marker.len()).any(|w| w == marker) {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending");
            seen.extend_from_slice(&buf[..n]);
        }
        tcp.set_zero_linger().unwrap();
        drop(tcp);
    });
    let put = etcd_proto::etcdserverpb::PutRequest {
        key: b"applies-once".to_vec(),
        ..Default::default()
    };
    let req = RaftRequest {
        request: Some(etcd_proto::raftrequestpb::raft_request::Request::Put(put)),
        header: None,
    };
    let status = RaftPeerClient::new(channel_to(addr).await)
        .propose(req)
        .await
        .unwrap_err();
    peer.await.unwrap();
    let got = PeerError::from_status(&status);
    assert!(matches!(got, PeerError::Lost(_)), "{got:?} from {status:?}");
    assert_eq!(got.into_etcd(), EtcdError::TimeoutDueToConnectionLost);
}

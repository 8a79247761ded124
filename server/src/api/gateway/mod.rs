//! etcd's v3 JSON gateway (grpc-gateway v1): `POST /v3/kv/range` and the other paths of
//! etcd 3.4's `google.api.http` annotations, under `/v3/` and `/v3beta/` (etcd 3.4.23 no
//! longer serves `/v3alpha/` and answers Go's plain 404 there, as here), so the curl examples of etcd's documentation work verbatim.
//!
//! Each request is decoded from JSON against the method's descriptor and handed to the same
//! service implementation the gRPC router serves, with the `Authorization` header as the
//! `authorization` metadata the services read the token from. Streaming calls (watch, lease
//! keep-alive) read a stream of JSON objects from the request body and answer one
//! `{"result": ...}` line per response; the request stream stays open once the body ends, as
//! grpc-gateway only half-closes it, so a watch keeps delivering events.

mod json;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use etcd_proto::etcdserverpb::auth_server::Auth;
use etcd_proto::etcdserverpb::cluster_server::Cluster;
use etcd_proto::etcdserverpb::kv_server::Kv;
use etcd_proto::etcdserverpb::lease_server::Lease;
use etcd_proto::etcdserverpb::maintenance_server::Maintenance;
use etcd_proto::etcdserverpb::watch_server::Watch;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Codec;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status, Streaming};

use super::require_leader::LeaderLoss;
use super::v3;
use crate::server::EtcdServer;

/// The path prefixes etcd 3.4 serves the gateway under.
const PREFIXES: [&str; 2] = ["/v3/", "/v3beta/"];

/// etcd's messages, read once from the descriptor set etcd-proto compiles.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(etcd_proto::FILE_DESCRIPTOR_SET).expect("etcd-proto's descriptor set")
});

/// What a handler gets of an HTTP request.
struct Call {
    metadata: MetadataMap,
    body: Body,
    max_body: usize,
}

type Handler = Arc<dyn Fn(Call) -> BoxFuture<'static, Response> + Send + Sync>;

/// The gateway's routes: a path below the prefix to its handler.
struct Gateway {
    routes: HashMap<&'static str, Handler>,
    max_body: usize,
}

/// The request and response types of `service`'s `rpc`, from the descriptor set.
fn io(service: &str, rpc: &str) -> (MessageDescriptor, MessageDescriptor) {
    let service = POOL
        .get_service_by_name(&format!("etcdserverpb.{service}"))
        .expect("an etcdserverpb service");
    let method = service
        .methods()
        .find(|m| m.name() == rpc)
        .expect("a method of the service");
    (method.input(), method.output())
}

/// Builds the gateway's router for a client listener, next to the gRPC services it calls.
pub fn router(
    server: Arc<EtcdServer>,
    progress_interval: Duration,
    leader_loss: LeaderLoss,
) -> Router {
    let kv = Arc::new(v3::kv::KvService {
        server: server.clone(),
    });
    let watch = Arc::new(v3::watch::WatchService {
        server: server.clone(),
        progress_interval,
        leader_loss: leader_loss.clone(),
    });
    let lease = Arc::new(v3::lease::LeaseService {
        server: server.clone(),
        leader_loss,
    });
    let cluster = Arc::new(v3::cluster::ClusterService {
        server: server.clone(),
        on_peer_url: false,
    });
    let maintenance = Arc::new(v3::maintenance::MaintenanceService {
        server: server.clone(),
    });
    let auth = Arc::new(v3::auth::AuthService {
        server: server.clone(),
    });

    let mut routes: HashMap<&'static str, Handler> = HashMap::new();
    // route!(kind, [paths], service value, Trait::method, "Service", "Rpc")
    macro_rules! route {
        ($kind:ident, [$($path:literal),+], $svc:expr, $trait:ident :: $m:ident, $service:literal, $rpc:literal) => {{
            let svc = $svc.clone();
            let handler = $kind(io($service, $rpc), move |req| {
                let svc = svc.clone();
                async move { $trait::$m(&*svc, req).await }
            });
            $(routes.insert($path, handler.clone());)+
        }};
    }
    route!(unary, ["kv/range"], kv, Kv::range, "KV", "Range");
    route!(unary, ["kv/put"], kv, Kv::put, "KV", "Put");
    route!(
        unary,
        ["kv/deleterange"],
        kv,
        Kv::delete_range,
        "KV",
        "DeleteRange"
    );
    route!(unary, ["kv/txn"], kv, Kv::txn, "KV", "Txn");
    route!(unary, ["kv/compaction"], kv, Kv::compact, "KV", "Compact");
    route!(bidi, ["watch"], watch, Watch::watch, "Watch", "Watch");
    route!(
        unary,
        ["lease/grant"],
        lease,
        Lease::lease_grant,
        "Lease",
        "LeaseGrant"
    );
    route!(
        unary,
        ["lease/revoke", "kv/lease/revoke"],
        lease,
        Lease::lease_revoke,
        "Lease",
        "LeaseRevoke"
    );
    route!(
        bidi,
        ["lease/keepalive"],
        lease,
        Lease::lease_keep_alive,
        "Lease",
        "LeaseKeepAlive"
    );
    route!(
        unary,
        ["lease/timetolive", "kv/lease/timetolive"],
        lease,
        Lease::lease_time_to_live,
        "Lease",
        "LeaseTimeToLive"
    );
    route!(
        unary,
        ["lease/leases", "kv/lease/leases"],
        lease,
        Lease::lease_leases,
        "Lease",
        "LeaseLeases"
    );
    route!(
        unary,
        ["cluster/member/add"],
        cluster,
        Cluster::member_add,
        "Cluster",
        "MemberAdd"
    );
    route!(
        unary,
        ["cluster/member/remove"],
        cluster,
        Cluster::member_remove,
        "Cluster",
        "MemberRemove"
    );
    route!(
        unary,
        ["cluster/member/update"],
        cluster,
        Cluster::member_update,
        "Cluster",
        "MemberUpdate"
    );
    route!(
        unary,
        ["cluster/member/list"],
        cluster,
        Cluster::member_list,
        "Cluster",
        "MemberList"
    );
    route!(
        unary,
        ["cluster/member/promote"],
        cluster,
        Cluster::member_promote,
        "Cluster",
        "MemberPromote"
    );
    route!(
        unary,
        ["maintenance/alarm"],
        maintenance,
        Maintenance::alarm,
        "Maintenance",
        "Alarm"
    );
    route!(
        unary,
        ["maintenance/status"],
        maintenance,
        Maintenance::status,
        "Maintenance",
        "Status"
    );
    route!(
        unary,
        ["maintenance/defragment"],
        maintenance,
        Maintenance::defragment,
        "Maintenance",
        "Defragment"
    );
    // etcd binds Hash and HashKV to the same path; its gateway serves Hash there.
    route!(
        unary,
        ["maintenance/hash"],
        maintenance,
        Maintenance::hash,
        "Maintenance",
        "Hash"
    );
    route!(
        server_stream,
        ["maintenance/snapshot"],
        maintenance,
        Maintenance::snapshot,
        "Maintenance",
        "Snapshot"
    );
    route!(
        unary,
        ["maintenance/transfer-leadership"],
        maintenance,
        Maintenance::move_leader,
        "Maintenance",
        "MoveLeader"
    );
    route!(
        unary,
        ["auth/enable"],
        auth,
        Auth::auth_enable,
        "Auth",
        "AuthEnable"
    );
    route!(
        unary,
        ["auth/disable"],
        auth,
        Auth::auth_disable,
        "Auth",
        "AuthDisable"
    );
    route!(
        unary,
        ["auth/authenticate"],
        auth,
        Auth::authenticate,
        "Auth",
        "Authenticate"
    );
    route!(
        unary,
        ["auth/user/add"],
        auth,
        Auth::user_add,
        "Auth",
        "UserAdd"
    );
    route!(
        unary,
        ["auth/user/get"],
        auth,
        Auth::user_get,
        "Auth",
        "UserGet"
    );
    route!(
        unary,
        ["auth/user/list"],
        auth,
        Auth::user_list,
        "Auth",
        "UserList"
    );
    route!(
        unary,
        ["auth/user/delete"],
        auth,
        Auth::user_delete,
        "Auth",
        "UserDelete"
    );
    route!(
        unary,
        ["auth/user/changepw"],
        auth,
        Auth::user_change_password,
        "Auth",
        "UserChangePassword"
    );
    route!(
        unary,
        ["auth/user/grant"],
        auth,
        Auth::user_grant_role,
        "Auth",
        "UserGrantRole"
    );
    route!(
        unary,
        ["auth/user/revoke"],
        auth,
        Auth::user_revoke_role,
        "Auth",
        "UserRevokeRole"
    );
    route!(
        unary,
        ["auth/role/add"],
        auth,
        Auth::role_add,
        "Auth",
        "RoleAdd"
    );
    route!(
        unary,
        ["auth/role/get"],
        auth,
        Auth::role_get,
        "Auth",
        "RoleGet"
    );
    route!(
        unary,
        ["auth/role/list"],
        auth,
        Auth::role_list,
        "Auth",
        "RoleList"
    );
    route!(
        unary,
        ["auth/role/delete"],
        auth,
        Auth::role_delete,
        "Auth",
        "RoleDelete"
    );
    route!(
        unary,
        ["auth/role/grant"],
        auth,
        Auth::role_grant_permission,
        "Auth",
        "RoleGrantPermission"
    );
    route!(
        unary,
        ["auth/role/revoke"],
        auth,
        Auth::role_revoke_permission,
        "Auth",
        "RoleRevokePermission"
    );

    let gateway = Arc::new(Gateway {
        routes,
        max_body: server.limits.max_request_bytes + super::GRPC_OVERHEAD_BYTES,
    });
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = router.route(&format!("{prefix}{{*rest}}"), any(dispatch));
    }
    router
        .route("/v3alpha/{*rest}", any(retired))
        .with_state(gateway)
}

/// Go's `http.NotFound`, what etcd 3.4 answers under the retired `/v3alpha/` prefix (rather
/// than the gRPC router's answer to an unknown path).
async fn retired() -> Response {
    with_cors(
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
            .into_response(),
    )
}

/// Finds the handler of a request's path; grpc-gateway's own answers otherwise.
async fn dispatch(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let path = req.uri().path();
    let rest = PREFIXES
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or_default();
    let Some(handler) = gateway.routes.get(rest) else {
        return plain(StatusCode::NOT_FOUND);
    };
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut metadata = MetadataMap::new();
    if let Some(token) = req.headers().get(header::AUTHORIZATION) {
        if let Ok(v) = MetadataValue::try_from(token.as_bytes()) {
            metadata.insert("authorization", v);
        }
    }
    handler(Call {
        metadata,
        body: req.into_body(),
        max_body: gateway.max_body,
    })
    .await
}

/// Go's `http.Error` with the status text, as grpc-gateway's mux answers an unknown path or
/// method.
fn plain(status: StatusCode) -> Response {
    let text = format!("{}\n", status.canonical_reason().unwrap_or_default());
    with_cors(
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
    )
}

/// grpc-gateway v1's `HTTPStatusFromCode`.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// grpc-gateway v1's error body, `{"error": ..., "message": ..., "code": ...}`, in its order.
fn error(code: Code, message: &str) -> Response {
    let m = Json::from(message);
    let body = format!(r#"{{"error":{m},"message":{m},"code":{}}}"#, code as i32);
    json_response(http_status(code), body)
}

/// A JSON answer, with the CORS headers etcd's client handler adds to every answer.
fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    with_cors(
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.into(),
        )
            .into_response(),
    )
}

/// etcd's default `--cors '*'` headers.
fn with_cors(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    for (name, value) in [
        (
            "access-control-allow-headers",
            "accept, content-type, authorization",
        ),
        (
            "access-control-allow-methods",
            "POST, GET, OPTIONS, PUT, DELETE",
        ),
        ("access-control-allow-origin", "*"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// A message as its JSON text.
fn to_json<M: Message>(desc: &MessageDescriptor, msg: &M) -> String {
    match DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice()) {
        Ok(dynamic) => json::encode(&dynamic),
        Err(_) => "null".into(),
    }
}

/// A request from its JSON; `null` stands for the empty request, as in jsonpb.
fn from_json<M: Message + Default>(desc: &MessageDescriptor, value: &Json) -> Result<M, String> {
    if value.is_null() {
        return Ok(M::default());
    }
    let dynamic = json::decode(desc, value)?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| e.to_string())
}

/// The whole body of a unary request, decoded; an empty body is the empty request.
async fn read_request<M: Message + Default>(
    desc: &MessageDescriptor,
    call: Call,
) -> Result<tonic::Request<M>, Response> {
    let body = axum::body::to_bytes(call.body, call.max_body)
        .await
        .map_err(|e| error(Code::InvalidArgument, &e.to_string()))?;
    let value = json::first_value(&body).map_err(|e| error(Code::InvalidArgument, &e))?;
    let msg = match value {
        Some(v) => from_json(desc, &v).map_err(|e| error(Code::InvalidArgument, &e))?,
        None => M::default(),
    };
    let mut req = tonic::Request::new(msg);
    *req.metadata_mut() = call.metadata;
    Ok(req)
}

/// A unary call: one JSON request in, one JSON response out.
fn unary<Req, Resp, F, Fut>(io: (MessageDescriptor, MessageDescriptor), f: F) -> Handler
where
    Req: Message + Default + 'static,
    Resp: Message + 'static,
    F: Fn(tonic::Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>> + Send + 'static,
{
    let (input, output) = io;
    let f = Arc::new(f);
    Arc::new(move |call| {
        let (f, input, output) = (f.clone(), input.clone(), output.clone());
        Box::pin(async move {
            let req = match read_request::<Req>(&input, call).await {
                Ok(req) => req,
                Err(resp) => return resp,
            };
            match f(req).await {
                Ok(resp) => json_response(StatusCode::OK, to_json(&output, resp.get_ref())),
                Err(status) => error(status.code(), status.message()),
            }
        })
    })
}

/// A call answering a stream: one JSON request in, JSON lines out (Snapshot).
fn server_stream<Req, Resp, S, F, Fut>(io: (MessageDescriptor, MessageDescriptor), f: F) -> Handler
where
    Req: Message + Default + 'static,
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: Fn(tonic::Request<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<tonic::Response<S>, Status>> + Send + 'static,
{
    let (input, output) = io;
    let f = Arc::new(f);
    Arc::new(move |call| {
        let (f, input, output) = (f.clone(), input.clone(), output.clone());
        Box::pin(async move {
            let req = match read_request::<Req>(&input, call).await {
                Ok(req) => req,
                Err(resp) => return resp,
            };
            match f(req).await {
                Ok(resp) => stream_response(output, resp.into_inner()),
                Err(status) => error(status.code(), status.message()),
            }
        })
    })
}

/// A bidirectional call: JSON objects read from the body one after another as they arrive,
/// JSON lines out (Watch, LeaseKeepAlive).
fn bidi<Req, Resp, S, F, Fut>(io: (MessageDescriptor, MessageDescriptor), f: F) -> Handler
where
    Req: Message + Default + 'static,
    Resp: Message + Default + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: Fn(tonic::Request<Streaming<Req>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<tonic::Response<S>, Status>> + Send + 'static,
{
    let (input, output) = io;
    let f = Arc::new(f);
    Arc::new(move |call| {
        let (f, input, output) = (f.clone(), input.clone(), output.clone());
        Box::pin(async move {
            let mut reader = JsonStream {
                body: call.body.into_data_stream(),
                buf: Vec::new(),
                done: false,
            };
            // grpc-gateway decodes the first request before answering, so a bad one fails
            // the call as a whole (with code Unknown, as etcd answers).
            let first = match reader.next().await {
                Some(Ok(v)) => from_json::<Req>(&input, &v),
                Some(Err(e)) => Err(e),
                None => Ok(Req::default()),
            };
            let first = match first {
                Ok(m) => m,
                Err(e) => return error(Code::Unknown, &e),
            };
            let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
            tokio::spawn(async move {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    if tx.send(Ok(grpc_frame(&msg))).await.is_err() {
                        return;
                    }
                    next = match reader.next().await {
                        Some(Ok(v)) => from_json::<Req>(&input, &v).ok(),
                        _ => None,
                    };
                }
                // The body ended or went bad: stop reading, but hold the request stream open
                // until the call ends, as grpc-gateway only half-closes it.
                tx.closed().await;
            });
            let mut codec = tonic_prost::ProstCodec::<Resp, Req>::default();
            let inbound = Streaming::new_request(
                codec.decoder(),
                Body::from_stream(ReceiverStream::new(rx)),
                None,
                Some(call.max_body),
            );
            let mut req = tonic::Request::new(inbound);
            *req.metadata_mut() = call.metadata;
            match f(req).await {
                Ok(resp) => stream_response(output, resp.into_inner()),
                Err(status) => error(status.code(), status.message()),
            }
        })
    })
}

/// `msg` as one gRPC message frame (uncompressed flag, length, bytes), for the decoder of
/// the `Streaming` a service reads.
fn grpc_frame<M: Message>(msg: &M) -> Bytes {
    let body = msg.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame.into()
}

/// Answers each message of `stream` as a `{"result": ...}` line and a failure as
/// grpc-gateway v1's stream error line.
fn stream_response<Resp, S>(output: MessageDescriptor, stream: S) -> Response
where
    Resp: Message + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    let lines = stream.map(move |item| {
        let line = match item {
            Ok(msg) => format!(r#"{{"result":{}}}"#, to_json(&output, &msg)),
            Err(status) => {
                let http = http_status(status.code());
                format!(
                    r#"{{"error":{{"grpc_code":{},"http_code":{},"message":{},"http_status":{}}}}}"#,
                    status.code() as i32,
                    http.as_u16(),
                    Json::from(status.message()),
                    Json::from(http.canonical_reason().unwrap_or_default()),
                )
            }
        };
        Ok::<_, Infallible>(Bytes::from(line + "\n"))
    });
    json_response(StatusCode::OK, Body::from_stream(lines))
}

/// Successive JSON values of a request body, read as its chunks arrive.
struct JsonStream {
    body: axum::body::BodyDataStream,
    buf: Vec<u8>,
    done: bool,
}

impl JsonStream {
    /// The next value; `None` once the body ends between values.
    async fn next(&mut self) -> Option<Result<Json, String>> {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Json>();
            match values.next() {
                Some(Ok(v)) => {
                    let used = values.byte_offset();
                    self.buf.drain(..used);
                    return Some(Ok(v));
                }
                Some(Err(e)) if !e.is_eof() => return Some(Err(json::syntax_error(&self.buf, &e))),
                Some(Err(e)) if self.done => return Some(Err(json::syntax_error(&self.buf, &e))),
                None if self.done => return None,
                _ => {}
            }
            match self.body.next().await {
                Some(Ok(data)) => self.buf.extend_from_slice(&data),
                Some(Err(e)) => return Some(Err(e.to_string())),
                None => self.done = true,
            }
        }
    }
}

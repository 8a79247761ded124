//! Limits on what one client may cost, against Debian's etcd with the same flags:
//! `--max-concurrent-streams`, the keepalive flags (the server's pings and its policy for
//! clients' pings), `--max-request-bytes` and `--max-txn-ops` at their edges, and the memory
//! that idle, never-speaking connections take.

use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_e2e::grpc::requests::{op, put, range, txn};
use etcd_e2e::grpc::{within, Answer, Clients, GrpcPair};
use etcd_e2e::pki::Pki;
use etcd_e2e::{wait, Flavor, Member};
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{
    PutRequest, TxnRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

const FLAVORS: [Flavor; 2] = [Flavor::Reference, Flavor::Ours];

/// The client URL's `host:port`.
fn address(member: &Member) -> String {
    let url = member.endpoint();
    url.trim_start_matches("http://").to_string()
}

/// A raw HTTP/2 connection to the client URL; the caller drives the connection.
async fn h2_connect(
    member: &Member,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<TcpStream, Bytes>,
) {
    let tcp = within("connect", TcpStream::connect(address(member)))
        .await
        .expect("connect");
    h2_handshake(tcp).await
}

async fn h2_handshake<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<T, Bytes>,
) {
    within("HTTP/2 handshake", h2::client::handshake(io))
        .await
        .expect("HTTP/2 handshake")
}

/// A raw HTTP/2 connection over TLS (ALPN h2) to an `https://` client URL whose
/// certificate `pki`'s CA signed.
async fn h2_connect_tls(
    member: &Member,
    pki: &Pki,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<tokio_rustls::client::TlsStream<TcpStream>, Bytes>,
) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::CertificateDer::from_pem_file(pki.path("ca.crt")).expect("CA");
    roots.add(ca).expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let host = member.endpoint().trim_start_matches("https://").to_string();
    let tcp = within("connect", TcpStream::connect(&host))
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tls = within("TLS handshake", connector.connect(name, tcp))
        .await
        .expect("TLS handshake");
    h2_handshake(tls).await
}

/// Pings every 100 ms until the server ends the connection; returns how it ended.
async fn ping_every_100ms<T>(mut conn: h2::client::Connection<T, Bytes>) -> h2::Error
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut pings = conn.ping_pong().expect("ping handle");
    let driver = tokio::spawn(conn);
    let pinging = async {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            interval.tick().await;
            if pings.ping(h2::Ping::opaque()).await.is_err() {
                return;
            }
        }
    };
    within("the server ending the connection", pinging).await;
    let ended = within("the connection's end", driver).await.expect("task");
    ended.expect_err("the connection ended with an error")
}

fn is_calm_down(err: &h2::Error) -> bool {
    err.is_go_away() && err.is_remote() && err.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
}

/// One gRPC call of `Maintenance/Status` over a raw HTTP/2 connection, read to its end.
async fn status_call(send: &mut h2::client::SendRequest<Bytes>) {
    let request = http::Request::post("/etcdserverpb.Maintenance/Status")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let mut ready = within("stream slot", send.clone().ready())
        .await
        .expect("ready");
    let (response, mut body) = ready.send_request(request, false).expect("send");
    // An empty message: no compression flag, length 0.
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("send body");
    let mut response = within("Status", response)
        .await
        .expect("response")
        .into_body();
    while let Some(chunk) = within("Status body", response.data()).await {
        chunk.expect("body");
    }
}

/// Opens a watch on `key` and waits for its `created` message: the stream is then open on
/// the server.
async fn open_watch(
    clients: &Clients,
    key: &str,
) -> (mpsc::Sender<WatchRequest>, Streaming<WatchResponse>) {
    let (tx, rx) = mpsc::channel(1);
    let create = WatchCreateRequest {
        key: key.as_bytes().to_vec(),
        ..WatchCreateRequest::default()
    };
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(create)),
    })
    .await
    .expect("queue create");
    let mut watch = clients.watch.clone();
    let mut stream = within("watch", watch.watch(ReceiverStream::new(rx)))
        .await
        .expect("watch")
        .into_inner();
    let created = within("created", stream.message()).await.expect("created");
    assert!(created.expect("a message").created);
    (tx, stream)
}

#[tokio::test]
async fn a_third_concurrent_stream_waits_for_one_of_two() {
    for flavor in FLAVORS {
        let member = Member::start(flavor, &["--max-concurrent-streams=2"]);
        // The limit is announced in the server's SETTINGS.
        let (mut send, conn) = h2_connect(&member).await;
        let driver = tokio::spawn(conn);
        status_call(&mut send).await;
        assert_eq!(send.current_max_send_streams(), 2, "{flavor:?}: advertised");
        driver.abort();

        // And it holds: on one connection, two open watches leave no room for a range
        // until one of them ends.
        let clients = Clients::connect(&member).await;
        let first = open_watch(&clients, "a").await;
        let _second = open_watch(&clients, "b").await;
        let mut kv = clients.kv.clone();
        let mut third = tokio::spawn(async move { kv.range(range("a", "")).await });
        let early = tokio::time::timeout(Duration::from_secs(1), &mut third).await;
        assert!(
            early.is_err(),
            "{flavor:?}: a third stream was served: {early:?}"
        );
        drop(first);
        let answered = within("the range once a watch ended", third).await;
        answered.expect("task").expect("range");
    }
}

/// HTTP/2's connection preface and an empty SETTINGS frame: enough for the server to
/// consider the connection open.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// HTTP/2 frame types this test looks for.
const PING: u8 = 6;

#[tokio::test]
async fn a_client_that_never_answers_pings_is_disconnected() {
    let flags = [
        "--grpc-keepalive-interval=1s",
        "--grpc-keepalive-timeout=1s",
    ];
    for flavor in FLAVORS {
        let member = Member::start(flavor, &flags);
        let mut tcp = TcpStream::connect(address(&member)).await.expect("connect");
        tcp.write_all(PREFACE).await.expect("preface");
        let opened = Instant::now();
        // Read everything the server sends, answering nothing, until it hangs up.
        let mut received = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(15), async {
            let mut buf = [0u8; 4096];
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        let after = opened.elapsed();
        assert!(closed.is_ok(), "{flavor:?}: still connected after 15 s");
        let types = frame_types(&received);
        assert!(
            types.contains(&PING),
            "{flavor:?}: closed without a ping: {types:?}"
        );
        assert!(
            after >= Duration::from_secs(1),
            "{flavor:?}: closed after {after:?}"
        );
        println!("{flavor:?}: a silent client was disconnected after {after:?} (frames {types:?})");
    }
}

/// The types of the complete frames in what a server sent.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

#[tokio::test]
async fn a_client_pinging_every_100ms_is_sent_away() {
    for flavor in FLAVORS {
        // The default --grpc-keepalive-min-time, 5 s.
        let member = Member::start(flavor, &[]);
        let (_send, conn) = h2_connect(&member).await;
        let err = ping_every_100ms(conn).await;
        assert!(is_calm_down(&err), "{flavor:?}: {err:?}");
    }
}

#[tokio::test]
async fn pings_no_sooner_than_the_min_time_are_answered_while_a_stream_is_open() {
    for flavor in FLAVORS {
        let member = Member::start(flavor, &["--grpc-keepalive-min-time=50ms"]);
        let (send, mut conn) = h2_connect(&member).await;
        let mut pings = conn.ping_pong().expect("ping handle");
        let driver = tokio::spawn(conn);
        // A watch stream, opened and left without messages.
        let request = http::Request::post("/etcdserverpb.Watch/Watch")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let mut ready = within("stream slot", send.ready()).await.expect("ready");
        let (_response, _body) = ready.send_request(request, false).expect("send");
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        for i in 0..20 {
            interval.tick().await;
            let pong = within("pong", pings.ping(h2::Ping::opaque())).await;
            assert!(pong.is_ok(), "{flavor:?}: ping {i}: {pong:?}");
        }
        assert!(!driver.is_finished(), "{flavor:?}: the connection ended");
    }
}

/// Ours applies the same limits on an `https://` client URL. Debian's etcd serves gRPC
/// there through Go's net/http server instead of grpc-go's own: it announces the stream
/// limit but polices no pings (a known, deliberate difference: ours does, as on `http://`).
#[tokio::test]
async fn tls_client_urls_have_the_same_limits() {
    let pki = Pki::new();
    let mut flags = vec![
        format!("--cert-file={}", pki.path("server.crt")),
        format!("--key-file={}", pki.path("server.key")),
    ];
    flags.push("--max-concurrent-streams=2".into());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let ctl = [format!("--cacert={}", pki.path("ca.crt"))];
    let ctl: Vec<&str> = ctl.iter().map(String::as_str).collect();
    for flavor in FLAVORS {
        let member = Member::start_https(flavor, &flags, &ctl);
        let (mut send, conn) = h2_connect_tls(&member, &pki).await;
        let driver = tokio::spawn(conn);
        status_call(&mut send).await;
        let advertised = send.current_max_send_streams();
        driver.abort();
        let (_send, conn) = h2_connect_tls(&member, &pki).await;
        let pinged = tokio::time::timeout(Duration::from_secs(5), ping_every_100ms(conn)).await;
        println!("{flavor:?} over TLS: max streams {advertised}, pinging every 100 ms: {pinged:?}");
        assert_eq!(advertised, 2, "{flavor:?}");
        match flavor {
            Flavor::Ours => assert!(pinged.as_ref().is_ok_and(is_calm_down), "{pinged:?}"),
            Flavor::Reference => assert!(pinged.is_err(), "etcd polices pings over TLS now"),
        }
    }
}

async fn set(pair: &mut GrpcPair, r: PutRequest) -> Answer<etcd_proto::etcdserverpb::PutResponse> {
    pair.same(r, |mut c, r| async move { c.kv.put(r).await })
        .await
}

async fn transact(
    pair: &mut GrpcPair,
    r: TxnRequest,
) -> Answer<etcd_proto::etcdserverpb::TxnResponse> {
    pair.same(r, |mut c, r| async move { c.kv.txn(r).await })
        .await
}

/// The longest value of key `k` a member accepts in a put, found by bisection.
async fn longest_value(clients: &Clients, limit: usize) -> usize {
    let (mut fits, mut too_long) = (0, limit + 1);
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        let mut kv = clients.kv.clone();
        match within("put", kv.put(put("k", &"v".repeat(mid)))).await {
            Ok(_) => fits = mid,
            Err(s) if s.message() == "etcdserver: request is too large" => too_long = mid,
            Err(s) => panic!("put of {mid} bytes: {s:?}"),
        }
    }
    fits
}

#[tokio::test]
async fn request_size_and_txn_ops_at_their_edges() {
    const MAX: usize = 10_000;
    // etcd counts its request ID, whose varint length follows the member ID, in the size:
    // both members get the same ID from the same advertised peer URL (nobody dials it).
    let mut pair = GrpcPair::start(&[
        "--max-request-bytes=10000",
        "--max-txn-ops=4",
        "--initial-advertise-peer-urls=http://127.0.0.1:9",
        "--initial-cluster=m0=http://127.0.0.1:9",
    ])
    .await;
    assert_eq!(pair.ours.member_id, pair.reference.member_id);
    let edge = longest_value(&pair.reference.clients, MAX).await;
    let ours = longest_value(&pair.ours.clients, MAX).await;
    assert_eq!(
        ours, edge,
        "the longest value accepted under --max-request-bytes=10000"
    );
    println!("longest value accepted: {edge} bytes");
    set(&mut pair, put("k", &"v".repeat(edge))).await.ok();
    let over = set(&mut pair, put("k", &"v".repeat(edge + 1))).await;
    assert_eq!(
        over,
        Answer::error(Code::InvalidArgument, "etcdserver: request is too large")
    );
    set(&mut pair, put("k", "small")).await.ok();

    let ops = |n: usize| {
        (0..n)
            .map(|i| op(range(&format!("k{i}"), "")))
            .collect::<Vec<_>>()
    };
    transact(&mut pair, txn(vec![], ops(4), vec![])).await.ok();
    let over = transact(&mut pair, txn(vec![], ops(5), vec![])).await;
    assert_eq!(
        over,
        Answer::error(
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request"
        )
    );
    set(&mut pair, put("k", "after")).await.ok();
}

/// Resident memory of a process, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn idle_connections_that_never_speak_cost_little() {
    const CONNS: usize = 200;
    for flavor in FLAVORS {
        let member = Member::start(flavor, &[]);
        let pid = member.pid().expect("running");
        let clients = Clients::connect(&member).await;
        clients
            .kv
            .clone()
            .range(range("a", ""))
            .await
            .expect("range");
        let (fds, rss) = (open_fds(pid), rss_kib(pid));
        let mut idle = Vec::new();
        for _ in 0..CONNS {
            idle.push(TcpStream::connect(address(&member)).await.expect("connect"));
        }
        // Accepted once the member holds a descriptor for each.
        wait::until_async(Duration::from_secs(10), "every connection accepted", || {
            open_fds(pid) >= fds + CONNS
        })
        .await;
        // Serving goes on beside them.
        within("range", clients.kv.clone().range(range("a", "")))
            .await
            .expect("range beside idle connections");
        let grown = rss_kib(pid).saturating_sub(rss);
        println!("{flavor:?}: {CONNS} silent connections: RSS {rss} KiB -> +{grown} KiB");
        assert!(
            grown < 16 * 1024,
            "{flavor:?}: {CONNS} idle connections took {grown} KiB"
        );
        drop(idle);
    }
}

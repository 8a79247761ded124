//! etcd's v3 JSON gateway driven with curl, as etcd's documentation does, against ours and
//! Debian's etcd 3.4 from the same fresh state: every answer's status and JSON body must be
//! equal field by field once member and cluster IDs, lease IDs the server chose, raft terms
//! and URLs are replaced by stand-ins (see [`normalise`]). Revisions are compared as they
//! came. Streams (watch, lease keep-alive) are read line by line with curl's own deadline.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use etcd_e2e::grpc::normalise::Ids;
use etcd_e2e::{Flavor, Member};
use serde_json::{json, Value as Json};

/// curl's deadline for one call: generous, but a hung stream still ends the test.
const CURL_SECONDS: &str = "10";

/// One member and what its answers' IDs stand for.
struct Side {
    member: Member,
    ids: Ids,
}

/// The two members and the token each one issued (tokens differ by nature).
struct Gateway {
    sides: [Side; 2],
    tokens: [Option<String>; 2],
}

/// An answer: HTTP status and body (JSON when it parses, else the text).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Json,
}

fn curl_args(url: &str, body: &str, token: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "-sS",
        "-m",
        CURL_SECONDS,
        "-X",
        "POST",
        url,
        "--data-binary",
        body,
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if let Some(t) = token {
        args.push("-H".into());
        args.push(format!("Authorization: {t}"));
    }
    args
}

fn parse(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_string()))
}

/// Replaces, in place, what legitimately differs between the two members: member, cluster
/// and server-made lease IDs (by rank of first appearance, so equal stays equal), raft
/// terms (by rank), and the members' own URLs.
fn normalise(ids: &mut Ids, v: &mut Json) {
    match v {
        Json::Object(map) => {
            for (k, x) in map.iter_mut() {
                let number = x.as_str().and_then(|s| s.parse::<u64>().ok());
                match (k.as_str(), number) {
                    ("cluster_id" | "member_id" | "ID" | "leader" | "lease", Some(n)) => {
                        *x = json!(ids.id(n).to_string())
                    }
                    ("raft_term" | "raftTerm", Some(n)) => *x = json!(ids.term(n).to_string()),
                    _ => normalise(ids, x),
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|i| normalise(ids, i)),
        Json::String(s) if s.starts_with("http://127.0.0.1:") => *s = "<url>".into(),
        _ => {}
    }
}

impl Gateway {
    fn start() -> Gateway {
        let side = |flavor| Side {
            member: Member::start(flavor, &[]),
            ids: Ids::default(),
        };
        Gateway {
            sides: [side(Flavor::Ours), side(Flavor::Reference)],
            tokens: [None, None],
        }
    }

    /// Posts `body` to `path` on both members, each with its own token; raw answers.
    fn both(&self, path: &str, body: &str) -> [Answer; 2] {
        self.both_with(path, [body.to_string(), body.to_string()])
    }

    /// Posts a body of its own to each member (ours first); raw answers.
    fn both_with(&self, path: &str, bodies: [String; 2]) -> [Answer; 2] {
        [0, 1].map(|i| {
            let url = format!("{}{path}", self.sides[i].member.endpoint());
            let mut args = curl_args(&url, &bodies[i], self.tokens[i].as_deref());
            args.extend(["-w".into(), "\n%{http_code}".into()]);
            let out = Command::new("curl")
                .args(&args)
                .output()
                .expect("curl runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (body, status) = text.rsplit_once('\n').expect("curl wrote the status");
            Answer {
                status: status.parse().expect("an HTTP status"),
                body: parse(body),
            }
        })
    }

    /// Normalises each side's answer with its own stand-ins.
    fn normalised(&mut self, mut answers: [Answer; 2]) -> [Answer; 2] {
        for (side, a) in self.sides.iter_mut().zip(answers.iter_mut()) {
            normalise(&mut side.ids, &mut a.body);
        }
        answers
    }

    /// Posts to both and asserts the normalised answers are equal; returns ours.
    fn same(&mut self, path: &str, body: &str) -> Answer {
        let raw = self.both(path, body);
        self.assert_same(path, body, raw)
    }

    fn assert_same(&mut self, path: &str, body: &str, raw: [Answer; 2]) -> Answer {
        let [ours, reference] = self.normalised(raw);
        assert_eq!(
            ours, reference,
            "POST {path} {body} differs (left: ours, right: Debian etcd)"
        );
        ours
    }

    /// Opens a streaming call on both members; the body is sent whole, the call stays open.
    fn open_stream(&self, path: &str, body: &str) -> [Stream; 2] {
        self.open_stream_with(path, [body.to_string(), body.to_string()])
    }

    /// Like [`Gateway::open_stream`] with a body of its own for each member.
    fn open_stream_with(&self, path: &str, bodies: [String; 2]) -> [Stream; 2] {
        [0, 1].map(|i| {
            let url = format!("{}{path}", self.sides[i].member.endpoint());
            let mut args = curl_args(&url, &bodies[i], self.tokens[i].as_deref());
            args.push("-N".into());
            let mut child = Command::new("curl")
                .args(&args)
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl runs");
            let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
            Stream { child, lines }
        })
    }

    /// Reads the next line of each stream and asserts they are equal once normalised.
    fn same_line(&mut self, streams: &mut [Stream; 2], what: &str) -> Json {
        let raw = [0, 1].map(|i| {
            let mut line = String::new();
            streams[i]
                .lines
                .read_line(&mut line)
                .expect("reading the stream");
            assert!(!line.is_empty(), "{what}: stream {i} ended early");
            Answer {
                status: 200,
                body: parse(line.trim_end()),
            }
        });
        self.assert_same(what, "(stream)", raw).body
    }
}

/// A curl reading a streaming answer; killed when dropped.
struct Stream {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn kv_put_range_delete_txn_compaction() {
    let mut gw = Gateway::start();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("b", "22")] {
        gw.same(
            "/v3/kv/put",
            &json!({"key": b64(k), "value": b64(v), "prev_kv": true}).to_string(),
        );
    }
    let (a, z) = (b64("a"), b64("z"));
    for body in [
        json!({"key": a}),
        json!({"key": a, "range_end": z}),
        json!({"key": a, "range_end": z, "keys_only": true}),
        json!({"key": a, "range_end": z, "count_only": true}),
        json!({"key": a, "range_end": z, "limit": 2, "sort_order": "DESCEND", "sort_target": "MOD"}),
        json!({"key": a, "range_end": z, "sort_order": 1, "sort_target": "VALUE"}),
        json!({"key": a, "range_end": z, "revision": "3", "serializable": true}),
        json!({"key": b64("nothing")}),
    ] {
        let answer = gw.same("/v3/kv/range", &body.to_string());
        assert_eq!(answer.status, 200, "{body}");
    }
    // Served under /v3beta/ too.
    gw.same("/v3beta/kv/range", &json!({"key": a}).to_string());

    let txn = |value: &str| {
        json!({
            "compare": [{"key": b64("b"), "result": "EQUAL", "target": "VALUE", "value": b64(value)}],
            "success": [{"request_range": {"key": b64("b")}}, {"request_put": {"key": b64("t"), "value": b64("yes")}}],
            "failure": [{"request_delete_range": {"key": b64("c"), "prev_kv": true}}],
        })
        .to_string()
    };
    let won = gw.same("/v3/kv/txn", &txn("22"));
    assert_eq!(won.body["succeeded"], json!(true));
    let lost = gw.same("/v3/kv/txn", &txn("nope"));
    assert_eq!(
        lost.body.get("succeeded"),
        None,
        "false is a default, left out"
    );

    let deleted = gw.same(
        "/v3/kv/deleterange",
        &json!({"key": a, "range_end": z, "prev_kv": true}).to_string(),
    );
    assert_eq!(deleted.body["deleted"], json!("3"));

    gw.same("/v3/kv/compaction", &json!({"revision": "4"}).to_string());
    let compacted = gw.same(
        "/v3/kv/range",
        &json!({"key": a, "revision": 3}).to_string(),
    );
    assert_eq!(compacted.status, 400);
    let future = gw.same("/v3/kv/compaction", &json!({"revision": "100"}).to_string());
    assert_eq!(future.status, 400);
}

#[test]
fn watch_stream_delivers_events_as_lines() {
    let mut gw = Gateway::start();
    let (k, end) = (b64("w/"), b64("w0"));
    let create = json!({"create_request": {"key": k, "range_end": end, "prev_kv": true}});
    let mut streams = gw.open_stream("/v3/watch", &create.to_string());
    let created = gw.same_line(&mut streams, "watch created");
    assert_eq!(created["result"]["created"], json!(true));
    gw.same(
        "/v3/kv/put",
        &json!({"key": b64("w/1"), "value": b64("x")}).to_string(),
    );
    gw.same(
        "/v3/kv/put",
        &json!({"key": b64("w/1"), "value": b64("y")}).to_string(),
    );
    gw.same(
        "/v3/kv/deleterange",
        &json!({"key": b64("w/1")}).to_string(),
    );
    let mut events = 0;
    while events < 3 {
        let line = gw.same_line(&mut streams, "watch event");
        events += line["result"]["events"].as_array().map_or(0, Vec::len);
    }
    // A watch from an old revision replays history; a bad first request fails the call.
    let replay = json!({"create_request": {"key": k, "range_end": end, "start_revision": 2}});
    let mut streams = gw.open_stream("/v3/watch", &replay.to_string());
    gw.same_line(&mut streams, "replay created");
    gw.same_line(&mut streams, "replayed events");
    let bad = gw.same("/v3/watch", r#"{"create_request":{"key":"!"}}"#);
    assert_eq!(bad.status, 500);
}

#[test]
fn lease_grant_keepalive_timetolive_revoke() {
    let mut gw = Gateway::start();
    let granted = gw.both("/v3/lease/grant", r#"{"TTL":60}"#);
    let ids = granted
        .clone()
        .map(|a| a.body["ID"].as_str().expect("a lease ID").to_string());
    gw.assert_same("/v3/lease/grant", "TTL 60", granted);
    gw.same("/v3/lease/grant", r#"{"TTL":30,"ID":"4242"}"#);

    // Each member is asked about its own lease.
    let each = |gw: &Gateway, path: &str, body: &dyn Fn(&str) -> String| {
        gw.both_with(path, [body(&ids[0]), body(&ids[1])])
    };
    let put = |id: &str| json!({"key": b64("leased"), "value": b64("v"), "lease": id}).to_string();
    let answers = each(&gw, "/v3/kv/put", &put);
    gw.assert_same("/v3/kv/put", "with lease", answers);

    let bodies = [0, 1].map(|i| json!({"ID": ids[i]}).to_string());
    let mut streams = gw.open_stream_with("/v3/lease/keepalive", bodies);
    let renewed = gw.same_line(&mut streams, "keepalive");
    assert_eq!(renewed["result"]["TTL"], json!("60"));
    drop(streams);

    let ttl = |id: &str| json!({"ID": id, "keys": true}).to_string();
    let mut answers = each(&gw, "/v3/lease/timetolive", &ttl);
    for a in &mut answers {
        // The remaining TTL counts down from 60 while the test runs.
        let left: i64 = a.body["TTL"]
            .as_str()
            .expect("TTL")
            .parse()
            .expect("a number");
        assert!((50..=60).contains(&left), "{a:?}");
        a.body["TTL"] = json!("<ttl>");
    }
    let live = gw.assert_same("/v3/lease/timetolive", "keys", answers);
    assert_eq!(live.body["keys"], json!([b64("leased")]));
    gw.same("/v3/kv/lease/timetolive", r#"{"ID":"999"}"#);

    let leases = gw.same("/v3/lease/leases", "{}");
    assert_eq!(leases.body["leases"].as_array().map(Vec::len), Some(2));

    let revoke = |id: &str| json!({"ID": id}).to_string();
    let answers = each(&gw, "/v3/lease/revoke", &revoke);
    gw.assert_same("/v3/lease/revoke", "granted lease", answers);
    let gone = gw.same("/v3/kv/range", &json!({"key": b64("leased")}).to_string());
    assert_eq!(
        gone.body.get("kvs"),
        None,
        "the leased key went with its lease"
    );
    let missing = gw.same("/v3/kv/lease/revoke", r#"{"ID":"4243"}"#);
    assert_eq!(missing.status, 404);
}

#[test]
fn cluster_and_maintenance() {
    let mut gw = Gateway::start();
    let members = gw.same("/v3/cluster/member/list", "{}");
    assert_eq!(members.body["members"][0]["name"], json!("m0"));
    let alarms = gw.same("/v3/maintenance/alarm", r#"{"action":"GET"}"#);
    assert_eq!(alarms.status, 200);
    let mut status = gw.both("/v3/maintenance/status", "{}");
    for a in &mut status {
        // The version is each server's own; sizes and raft indexes are each store's and
        // each log's own (etcd's log starts with entries of its own).
        let body = a.body.as_object_mut().expect("a status object");
        for field in [
            "version",
            "dbSize",
            "dbSizeInUse",
            "raftIndex",
            "raftAppliedIndex",
        ] {
            assert!(body.remove(field).is_some(), "{field} in {body:?}");
        }
    }
    let status = gw.assert_same("/v3/maintenance/status", "{}", status);
    assert_eq!(status.body["leader"], status.body["header"]["member_id"]);
    let moved = gw.same("/v3/maintenance/transfer-leadership", r#"{"targetID":"1"}"#);
    assert_eq!(moved.status, 412);
}

#[test]
fn auth_token_from_the_authorization_header() {
    let mut gw = Gateway::start();
    gw.same("/v3/auth/user/add", r#"{"name":"root","password":"pw"}"#);
    gw.same("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#);
    gw.same("/v3/auth/role/add", r#"{"name":"reader"}"#);
    gw.same("/v3/auth/user/list", "{}");
    gw.same("/v3/auth/enable", "{}");
    let denied = gw.same(
        "/v3/kv/put",
        &json!({"key": b64("k"), "value": b64("v")}).to_string(),
    );
    assert_ne!(denied.status, 200);
    let mut answers = gw.both(
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"pw"}"#,
    );
    for (i, a) in answers.iter_mut().enumerate() {
        let token = a.body["token"].as_str().expect("a token").to_string();
        gw.tokens[i] = Some(token);
        a.body["token"] = json!("<token>");
    }
    gw.assert_same("/v3/auth/authenticate", "root", answers);
    let put = gw.same(
        "/v3/kv/put",
        &json!({"key": b64("k"), "value": b64("v")}).to_string(),
    );
    assert_eq!(put.status, 200);
    gw.same("/v3/auth/role/get", r#"{"role":"reader"}"#);
    gw.tokens = [Some("bogus.1".into()), Some("bogus.1".into())];
    let bogus = gw.same("/v3/kv/range", &json!({"key": b64("k")}).to_string());
    assert_eq!(bogus.status, 401);
    let wrong = gw.same(
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"no"}"#,
    );
    assert_eq!(wrong.status, 400);
}

#[test]
fn bad_input_gets_etcds_status_and_body() {
    let mut gw = Gateway::start();
    let cases = [
        ("/v3/kv/range", r#"{"key":"Zm9v""#, 400),
        ("/v3/kv/range", r#"{"key":"Zm9v"} trailing"#, 200),
        ("/v3/kv/range", "not json", 400),
        ("/v3/kv/range", r#"{"key" 1}"#, 400),
        ("/v3/kv/range", r#"{"key":"!!!"}"#, 400),
        ("/v3/kv/range", r#"{"key":"Zm9-"}"#, 400),
        ("/v3/kv/range", r#"{"key":"Zm9"}"#, 400),
        ("/v3/kv/range", r#"{"key":5}"#, 400),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","serializable":"yes"}"#,
            400,
        ),
        ("/v3/kv/range", r#"{"key":"Zm9v","sort_order":"BAD"}"#, 400),
        ("/v3/kv/range", r#"{"key":"Zm9v","limit":"x"}"#, 400),
        ("/v3/kv/range", r#"{"key":"Zm9v","unknown_field":1}"#, 200),
        ("/v3/kv/range", "[1]", 400),
        ("/v3/kv/range", "", 400),
        ("/v3/kv/nothing", "{}", 404),
        ("/v3beta/kv/nothing", "{}", 404),
        ("/v3alpha/kv/range", r#"{"key":"Zm9v"}"#, 404),
        ("/v3/watch", r#"{"create_request":{"key":5}}"#, 500),
        ("/v3/lease/keepalive", "{", 500),
    ];
    for (path, body, status) in cases {
        let answer = gw.same(path, body);
        assert_eq!(answer.status, status, "POST {path} {body}: {answer:?}");
    }
    // The wrong method on a known path.
    let [ours, reference] = [0, 1].map(|i| {
        let url = format!("{}/v3/kv/range", gw.sides[i].member.endpoint());
        let out = Command::new("curl")
            .args(["-sS", "-m", CURL_SECONDS, "-w", "\n%{http_code}", &url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert_eq!(
        ours, reference,
        "GET /v3/kv/range (left: ours, right: Debian etcd)"
    );
    assert!(ours.ends_with("405"), "{ours}");
}

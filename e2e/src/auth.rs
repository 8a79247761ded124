//! The harness of the differential authentication tests (`tests/auth.rs`).
//!
//! A scenario is a table of [`Step`]s: who calls (a token an earlier step saved, no token,
//! or a garbage one), which RPC, and the outcome etcd 3.4 gives (success, or its gRPC code
//! and text). One runner, [`Session::run`], plays the table against a fresh member of a
//! flavour and records every answer, normalised, in a [`Transcript`]. [`differential`]
//! plays a scenario on each chosen flavour (Debian's etcd first), compares the
//! transcripts step by step — whole response messages, error codes and texts — and checks
//! every step's expected outcome, so the table both states etcd's rules and holds ours to
//! them.
//!
//! Tokens travel as gRPC metadata `token`, as Go's clientv3 sends them.
//!
//! Which flavours run: `ETCD_E2E_AUTH_FLAVOURS` = `both` (the default), `reference` or
//! `ours`. With one flavour only the expected outcomes are checked, and the transcript is
//! printed (`--nocapture` shows it). A step that should use a token an Authenticate step
//! failed to get is recorded as not sent.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;

use etcd_proto::authpb::permission::Type;
use etcd_proto::authpb::Permission;
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::lease_client::LeaseClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use etcd_proto::etcdserverpb::watch_client::WatchClient;
use etcd_proto::etcdserverpb::watch_request::RequestUnion;
use etcd_proto::etcdserverpb::{
    alarm_request, response_op, AlarmRequest, AuthDisableRequest, AuthDisableResponse,
    AuthEnableRequest, AuthEnableResponse, AuthRoleAddRequest, AuthRoleAddResponse,
    AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, AuthRoleListRequest,
    AuthRoleListResponse, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse,
    AuthUserAddRequest, AuthUserAddResponse, AuthUserChangePasswordRequest,
    AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
    AuthUserListRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthUserRevokeRoleResponse, AuthenticateRequest, AuthenticateResponse, CompactionRequest,
    DefragmentRequest, DeleteRangeRequest, HashKvRequest, HashRequest, LeaseGrantRequest,
    LeaseLeasesRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, MemberAddRequest,
    MemberListRequest, PutRequest, RangeRequest, SnapshotRequest, StatusRequest, TxnRequest,
    TxnResponse, WatchCreateRequest, WatchRequest,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::cluster::Cluster;
use crate::grpc::normalise::{header_only, Ids, Normalise};
use crate::grpc::show::show;
use crate::grpc::within;
use crate::{Flavor, Member};

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No token (on a TLS connection with a client certificate: the certificate's CN).
    Anonymous,
    /// A token no server ever handed out.
    Garbage,
    /// The token an earlier [`Call::Authenticate`] saved under this label.
    Token(&'static str),
}

/// Root, signed in by [`small_setup`] (or a scenario's own set-up).
pub const ROOT: Who = Who::Token("root");
/// Alice, signed in likewise.
pub const ALICE: Who = Who::Token("alice");
pub const ANON: Who = Who::Anonymous;
pub const GARBAGE: Who = Who::Garbage;

pub const ROOT_PW: &str = "rootpw";
pub const ALICE_PW: &str = "alicepw";

// etcd 3.4's errors (its `rpctypes`), code and text as a client receives them.
pub const OK: Expect = Expect::Ok;
pub const DENIED: Expect = Expect::Err(Code::PermissionDenied, "etcdserver: permission denied");
pub const USER_EMPTY: Expect = Expect::Err(Code::InvalidArgument, "etcdserver: user name is empty");
pub const BAD_TOKEN: Expect = Expect::Err(Code::Unauthenticated, "etcdserver: invalid auth token");
pub const AUTH_FAILED: Expect = Expect::Err(
    Code::InvalidArgument,
    "etcdserver: authentication failed, invalid user ID or password",
);
pub const NOT_ENABLED: Expect = Expect::Err(
    Code::FailedPrecondition,
    "etcdserver: authentication is not enabled",
);
/// A JWT issued before the last change of users, roles or permissions.
pub const OLD_REVISION: Expect = Expect::Err(
    Code::InvalidArgument,
    "etcdserver: revision of auth store is old",
);

/// Authenticate, saving the token as `save`.
pub fn authenticate(name: &'static str, password: &'static str, save: &'static str) -> Call {
    Call::Authenticate {
        name,
        password,
        save,
    }
}

/// A Range of one key.
pub fn get(key: &str) -> Call {
    Call::Range(crate::grpc::requests::range(key, ""))
}

/// A Put of one key.
pub fn set(key: &str, value: &str) -> Call {
    Call::Put(crate::grpc::requests::put(key, value))
}

/// A short set-up for scenarios about where and when tokens hold rather than about each
/// rule: keys `foo/a`, `ro` and `bar`; root with the root role; role `app` that may read
/// and write the prefix `foo/` and read `ro`; alice with that role; auth enabled and both
/// signed in.
pub fn small_setup() -> Vec<Step> {
    use Call::*;
    vec![
        ok(ANON, set("foo/a", "1")),
        ok(ANON, set("ro", "r")),
        ok(ANON, set("bar", "b")),
        ok(ANON, UserAdd("root", ROOT_PW)),
        ok(ANON, UserGrantRole("root", "root")),
        ok(ANON, RoleAdd("app")),
        ok(
            ANON,
            RoleGrantPermission("app", "foo/", "foo0", Type::Readwrite),
        ),
        ok(ANON, RoleGrantPermission("app", "ro", "", Type::Read)),
        ok(ANON, UserAdd("alice", ALICE_PW)),
        ok(ANON, UserGrantRole("alice", "app")),
        ok(ANON, AuthEnable),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
        ok(ANON, authenticate("alice", ALICE_PW, "alice")),
    ]
}

/// What alice may and may not do after [`small_setup`], as `who` (alice's token, or one
/// standing for it), each call answered as `allowed` or `denied` says.
pub fn alice_calls(who: Who, allowed: Expect, denied: Expect) -> Vec<Step> {
    vec![
        step(who, get("foo/a"), allowed),
        step(who, set("foo/b", "2"), allowed),
        step(who, get("ro"), allowed),
        step(who, get("bar"), denied),
        step(who, set("ro", "x"), denied),
        step(who, set("bar", "x"), denied),
    ]
}

/// JWT key files made at test time with openssl.
pub mod jwt_keys {
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// Writes a key pair for `method` under `dir` as `NAME` and `NAME.pub` (HS*: a secret).
    pub fn make(dir: &Path, name: &str, method: &str) {
        let generate: &[&str] = match &method[..2] {
            "RS" | "PS" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "ES" if method == "ES384" => {
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
            }
            "ES" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => {
                std::fs::write(dir.join(name), format!("secret of {name}\n")).expect("secret");
                return;
            }
        };
        openssl(dir, &[&["genpkey"], generate, &["-out", name]].concat());
        let public = format!("{name}.pub");
        openssl(dir, &["pkey", "-in", name, "-pubout", "-out", &public]);
    }

    /// The `--auth-token` value for `method` with the keys named `name` in `dir`.
    pub fn flag(dir: &Path, name: &str, method: &str) -> String {
        let key = dir.join(name);
        let mut flag = format!("jwt,sign-method={method},priv-key={}", key.display());
        if !method.starts_with("HS") {
            flag += &format!(",pub-key={}.pub", key.display());
        }
        flag
    }
}

/// The token [`Who::Garbage`] sends.
pub const GARBAGE_TOKEN: &str = "NotAToken.NotAnIndex";

/// An RPC of etcd's v3 API with its request.
#[derive(Debug, Clone)]
pub enum Call {
    AuthEnable,
    AuthDisable,
    /// Authenticate, saving the token under `save` for [`Who::Token`].
    Authenticate {
        name: &'static str,
        password: &'static str,
        save: &'static str,
    },
    UserAdd(&'static str, &'static str),
    UserGet(&'static str),
    UserList,
    UserDelete(&'static str),
    UserChangePassword(&'static str, &'static str),
    /// (user, role)
    UserGrantRole(&'static str, &'static str),
    /// (user, role)
    UserRevokeRole(&'static str, &'static str),
    RoleAdd(&'static str),
    RoleGet(&'static str),
    RoleList,
    RoleDelete(&'static str),
    /// (role, key, range end, type)
    RoleGrantPermission(&'static str, &'static str, &'static str, Type),
    /// (role, key, range end)
    RoleRevokePermission(&'static str, &'static str, &'static str),
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(i64),
    /// Opens a watch stream, creates this watcher, and records the first message.
    Watch(WatchCreateRequest),
    /// (ID, TTL)
    LeaseGrant(i64, i64),
    LeaseRevoke(i64),
    /// (ID, with its keys)
    LeaseTimeToLive(i64, bool),
    LeaseLeases,
    Status,
    AlarmList,
    Hash,
    HashKv,
    Defragment,
    /// Streams a snapshot; records the first message's header and whether the stream
    /// ended with etcd's 32-byte SHA-256 trailer.
    Snapshot,
    MemberList,
    /// (peer URLs, as a learner)
    MemberAdd(Vec<&'static str>, bool),
}

/// What etcd 3.4 answers a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Err(Code, &'static str),
    /// A watch created and canceled at once with this `cancel_reason` (etcd's answer to
    /// a watch the caller may not make: a message, watch ID -1, not an error status).
    Canceled(&'static str),
}

/// One row of a scenario's table.
#[derive(Debug, Clone)]
pub struct Step {
    pub who: Who,
    pub call: Call,
    /// What etcd 3.4 answers.
    pub expect: Expect,
    /// What ours answers instead, where it closes a hole later etcd releases closed
    /// (the step is then left out of the side-by-side comparison).
    pub ours: Option<Expect>,
}

impl Step {
    /// This step, answered by ours as `ours` says (see [`Step::ours`]).
    pub fn ours(self, ours: Expect) -> Step {
        Step {
            ours: Some(ours),
            ..self
        }
    }
}

/// A step expected to succeed.
pub fn ok(who: Who, call: Call) -> Step {
    step(who, call, Expect::Ok)
}

/// A step answered as `expect` says.
pub fn step(who: Who, call: Call, expect: Expect) -> Step {
    Step {
        who,
        call,
        expect,
        ours: None,
    }
}

/// The same call made by each of `by` (caller and expected outcome), in that order.
pub fn each(call: Call, by: &[(Who, Expect)]) -> Vec<Step> {
    by.iter()
        .map(|&(who, expect)| Step {
            ours: None,
            who,
            call: call.clone(),
            expect,
        })
        .collect()
}

/// A permission of `key` to `end`.
pub fn perm(key: &str, end: &str, perm_type: Type) -> Permission {
    Permission {
        perm_type: perm_type as i32,
        key: key.into(),
        range_end: end.into(),
    }
}

/// What a call gave: the response message, normalised and pretty-printed, or the
/// status's code and text.
pub type Outcome = Result<String, (Code, String)>;

/// One recorded answer: the step, as made, and what came back, normalised (a response
/// message pretty-printed, or `Err(code, "message")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub step: String,
    pub answer: String,
    /// Ours answers this step differently on purpose (see [`Step::ours`]).
    pub deliberate: bool,
}

/// The answers of one flavour to a scenario, in order.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    pub entries: Vec<Entry>,
    /// Steps whose answer was not the one the table expects.
    pub misses: Vec<String>,
}

impl Transcript {
    /// Records a free-form entry (an event of the scenario, or a result found otherwise).
    pub fn note(&mut self, step: impl Into<String>, answer: impl Into<String>) {
        self.entries.push(Entry {
            step: step.into(),
            answer: answer.into(),
            deliberate: false,
        });
    }

    /// Checks `answer` for `step` against `expect`, noting a miss.
    fn check(&mut self, step: &str, answer: &Outcome, expect: Expect) {
        // A watch answer is the pretty-printed first message; whether it was canceled, and
        // why, is read from its fields.
        let canceled = |text: &str, reason: &str| {
            text.contains("    canceled: true,")
                && text.contains(&format!("    cancel_reason: {reason:?},"))
        };
        let met = match (answer, expect) {
            (Ok(text), Expect::Ok) => !text.contains("    canceled: true,"),
            (Ok(text), Expect::Canceled(reason)) => canceled(text, reason),
            (Err((code, msg)), Expect::Err(want_code, want_msg)) => {
                *code == want_code && msg == want_msg
            }
            _ => false,
        };
        if !met {
            self.misses.push(format!(
                "{step}\n    expected {expect:?}\n    got {}",
                shown(answer)
            ));
        }
    }

    /// Appends the entries and misses of `other` (a session on another member), each
    /// step prefixed with `on`.
    pub fn append(&mut self, on: &str, other: Transcript) {
        for mut e in other.entries {
            e.step = format!("{on}: {}", e.step);
            self.entries.push(e);
        }
        let misses = other.misses.into_iter().map(|m| format!("{on}: {m}"));
        self.misses.extend(misses);
    }

    /// Records whether `what` holds, a miss when it does not.
    pub fn holds(&mut self, what: &str, holds: bool) {
        if !holds {
            self.misses.push(format!("{what}: it does not"));
        }
        self.note(what, holds.to_string());
    }

    /// Records a free-form entry expected to be `expect`.
    pub fn expect(&mut self, step: &str, answer: Outcome, expect: Expect) {
        self.check(step, &answer, expect);
        self.note(step, shown(&answer));
    }

    fn print(&self, flavor: Flavor) -> String {
        let mut text = format!("--- transcript of {flavor:?}\n");
        for (i, e) in self.entries.iter().enumerate() {
            text.push_str(&format!("[{i}] {}\n    => {}\n", e.step, e.answer));
        }
        text
    }
}

/// Pretty-printed text on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shown(answer: &Outcome) -> String {
    match answer {
        Ok(text) => text.clone(),
        Err((code, message)) => format!("Err({code:?}, {message:?})"),
    }
}

/// One member and a connection to it, with the tokens steps saved.
pub struct Session {
    pub flavor: Flavor,
    pub member: Member,
    /// The other members of `member`'s cluster (none for a lone member): see
    /// [`Session::cluster`] and [`Session::at`].
    pub peers: Vec<Member>,
    /// A connection to each member, `member`'s first, then the peers'.
    channels: Vec<Channel>,
    channel: Channel,
    tokens: HashMap<&'static str, String>,
    ids: Ids,
    pub transcript: Transcript,
}

impl Session {
    /// A fresh single member of `flavor` started with `flags`, over plain HTTP/2.
    pub async fn start(flavor: Flavor, flags: &[&str]) -> Session {
        let member = Member::start(flavor, flags);
        let channel = connect(&member).await;
        Session::over(member, channel)
    }

    /// A session on `member` over `channel` (a TLS connection the caller made).
    pub fn over(member: Member, channel: Channel) -> Session {
        let mut ids = Ids::default();
        ids.url(&member.endpoint(), "<client-url>");
        ids.url(&member.ports.peer_url(), "<peer-url>");
        Session {
            flavor: member.flavor,
            member,
            peers: Vec::new(),
            channels: vec![channel.clone()],
            channel,
            tokens: HashMap::new(),
            ids,
            transcript: Transcript::default(),
        }
    }

    /// A cluster of `n` fresh members of `flavor` started with `flags`; calls go to the
    /// first until [`Session::at`] says otherwise. Terms are not compared: how many
    /// elections a new cluster needs is up to chance.
    pub async fn cluster(flavor: Flavor, n: usize, flags: &[&str]) -> Session {
        let mut members = Cluster::start(flavor, n, flags).members.into_iter();
        let first = members.next().expect("a member");
        let channel = connect(&first).await;
        let mut session = Session::over(first, channel);
        session.ids.forget_terms();
        for peer in members {
            session.join(peer).await;
        }
        session
    }

    /// Adds `member` (one that joined the cluster) as the session's member number
    /// `1 + peers.len()`, connected.
    pub async fn join(&mut self, member: Member) {
        let i = self.channels.len();
        self.ids
            .url(&member.endpoint(), &format!("<client-url-{i}>"));
        self.ids
            .url(&member.ports.peer_url(), &format!("<peer-url-{i}>"));
        self.channels.push(connect(&member).await);
        self.peers.push(member);
    }

    /// Member `i` of the cluster: 0 is `member`, then the peers.
    pub fn nth(&self, i: usize) -> &Member {
        match i {
            0 => &self.member,
            i => &self.peers[i - 1],
        }
    }

    /// Makes later calls to member `i` (see [`Session::nth`]), noting it in the transcript
    /// as `name`.
    pub fn at(&mut self, i: usize, name: &str) {
        self.channel = self.channels[i].clone();
        self.transcript.note(format!("calls go to {name}"), "");
    }

    /// The index of the member the cluster's members agree leads it, waiting up to 10 s.
    pub async fn leader(&self) -> usize {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut ids = Vec::new();
            for ch in &self.channels {
                let mut client = MaintenanceClient::new(ch.clone());
                match within("status", client.status(StatusRequest {})).await {
                    Ok(s) => {
                        let s = s.into_inner();
                        ids.push((s.header.unwrap_or_default().member_id, s.leader));
                    }
                    Err(_) => ids.push((0, 0)),
                }
            }
            let leader = ids[0].1;
            if leader != 0 && ids.iter().all(|&(_, l)| l == leader) {
                if let Some(i) = ids.iter().position(|&(id, _)| id == leader) {
                    return i;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}: no leader all agree on: {ids:?}",
                self.flavor
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The connection calls go to now (for calls the steps cannot make).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The token saved as `label`, if any.
    pub fn token(&self, label: &str) -> Option<String> {
        self.tokens.get(label).cloned()
    }

    /// Saves `token` (one another session's member handed out) as `label`.
    pub fn give_token(&mut self, label: &'static str, token: String) {
        self.tokens.insert(label, token);
    }

    /// Connects again after a restart of the member; terms are compared no more (see
    /// [`Ids::forget_terms`]).
    pub async fn reconnect(&mut self) {
        self.channel = connect(&self.member).await;
        self.channels[0] = self.channel.clone();
        self.ids.forget_terms();
    }

    /// Makes later calls over `channel` (another TLS client certificate, for instance);
    /// returns the channel used so far.
    pub fn use_channel(&mut self, channel: Channel) -> Channel {
        std::mem::replace(&mut self.channel, channel)
    }

    /// Goes on with the member `member` (one restored from a snapshot) over `channel`,
    /// keeping the transcript and the tokens; the member IDs and URLs it shows are its
    /// own.
    pub fn move_to(&mut self, member: Member, channel: Channel) {
        let transcript = std::mem::take(&mut self.transcript);
        let tokens = std::mem::take(&mut self.tokens);
        *self = Session::over(member, channel);
        self.transcript = transcript;
        self.tokens = tokens;
    }

    /// Runs every step in order, recording each answer and checking it.
    pub async fn run(&mut self, steps: &[Step]) {
        for step in steps {
            self.step(step).await;
        }
    }

    /// Runs one step, recording and checking its answer.
    pub async fn step(&mut self, step: &Step) {
        let label = format!("{:?} {}", step.who, one_line(&show(&step.call)));
        let answer = within(&label, self.answer(step.who, &step.call)).await;
        match (self.flavor, step.ours) {
            (Flavor::Ours, Some(ours)) => self.transcript.expect(&label, answer, ours),
            _ => self.transcript.expect(&label, answer, step.expect),
        }
        if let (Some(_), Some(last)) = (step.ours, self.transcript.entries.last_mut()) {
            last.deliberate = true;
        }
    }

    /// Whether `who` has a token to send, if it needs one: when the Authenticate that
    /// should have saved it failed (and was recorded), the call is not made.
    fn has_token(&self, who: Who) -> Result<(), (Code, String)> {
        match who {
            Who::Token(label) if !self.tokens.contains_key(label) => Err((
                Code::Cancelled,
                format!("not sent: no token was saved as {label:?}"),
            )),
            _ => Ok(()),
        }
    }

    /// `message` with `who`'s token in its metadata.
    pub fn request<T>(&self, who: Who, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let token = match who {
            Who::Anonymous => return request,
            Who::Garbage => GARBAGE_TOKEN,
            Who::Token(label) => self
                .tokens
                .get(label)
                .unwrap_or_else(|| panic!("no token saved as {label:?} yet")),
        };
        request
            .metadata_mut()
            .insert("token", token.parse().expect("a token is ASCII"));
        request
    }

    fn normal<T: Normalise + Debug>(
        &mut self,
        reply: Result<tonic::Response<T>, Status>,
    ) -> Outcome {
        match reply {
            Ok(response) => {
                let mut message = response.into_inner();
                message.normalise(&mut self.ids);
                Ok(show(&message))
            }
            Err(status) => Err((status.code(), status.message().to_string())),
        }
    }

    /// Makes `call` as `who`; the normalised response or the status.
    pub async fn answer(&mut self, who: Who, call: &Call) -> Outcome {
        self.has_token(who)?;
        let ch = self.channel.clone();
        let (mut auth, mut kv) = (AuthClient::new(ch.clone()), KvClient::new(ch.clone()));
        let (mut lease, mut cluster) =
            (LeaseClient::new(ch.clone()), ClusterClient::new(ch.clone()));
        let mut maintenance = MaintenanceClient::new(ch).max_decoding_message_size(usize::MAX);
        macro_rules! call {
            ($client:ident . $method:ident ($message:expr)) => {{
                let request = self.request(who, $message);
                let reply = $client.$method(request).await;
                self.normal(reply)
            }};
        }
        match call.clone() {
            Call::AuthEnable => call!(auth.auth_enable(AuthEnableRequest {})),
            Call::AuthDisable => call!(auth.auth_disable(AuthDisableRequest {})),
            Call::Authenticate {
                name,
                password,
                save,
            } => {
                let request = self.request(
                    who,
                    AuthenticateRequest {
                        name: name.into(),
                        password: password.into(),
                    },
                );
                let reply = auth.authenticate(request).await;
                if let Ok(r) = &reply {
                    self.tokens.insert(save, r.get_ref().token.clone());
                }
                self.normal(reply)
            }
            Call::UserAdd(name, password) => call!(auth.user_add(AuthUserAddRequest {
                name: name.into(),
                password: password.into(),
                ..Default::default()
            })),
            Call::UserGet(name) => call!(auth.user_get(AuthUserGetRequest { name: name.into() })),
            Call::UserList => call!(auth.user_list(AuthUserListRequest {})),
            Call::UserDelete(name) => {
                call!(auth.user_delete(AuthUserDeleteRequest { name: name.into() }))
            }
            Call::UserChangePassword(name, password) => {
                call!(auth.user_change_password(AuthUserChangePasswordRequest {
                    name: name.into(),
                    password: password.into(),
                    ..Default::default()
                }))
            }
            Call::UserGrantRole(user, role) => {
                call!(auth.user_grant_role(AuthUserGrantRoleRequest {
                    user: user.into(),
                    role: role.into(),
                }))
            }
            Call::UserRevokeRole(name, role) => {
                call!(auth.user_revoke_role(AuthUserRevokeRoleRequest {
                    name: name.into(),
                    role: role.into(),
                }))
            }
            Call::RoleAdd(name) => call!(auth.role_add(AuthRoleAddRequest { name: name.into() })),
            Call::RoleGet(role) => call!(auth.role_get(AuthRoleGetRequest { role: role.into() })),
            Call::RoleList => call!(auth.role_list(AuthRoleListRequest {})),
            Call::RoleDelete(role) => {
                call!(auth.role_delete(AuthRoleDeleteRequest { role: role.into() }))
            }
            Call::RoleGrantPermission(name, key, end, perm_type) => {
                call!(auth.role_grant_permission(AuthRoleGrantPermissionRequest {
                    name: name.into(),
                    perm: Some(perm(key, end, perm_type)),
                }))
            }
            Call::RoleRevokePermission(role, key, end) => {
                call!(
                    auth.role_revoke_permission(AuthRoleRevokePermissionRequest {
                        role: role.into(),
                        key: key.into(),
                        range_end: end.into(),
                    })
                )
            }
            Call::Range(r) => call!(kv.range(r)),
            Call::Put(r) => call!(kv.put(r)),
            Call::DeleteRange(r) => call!(kv.delete_range(r)),
            Call::Txn(r) => {
                let request = self.request(who, r);
                let mut reply = kv.txn(request).await;
                if let Ok(r) = &mut reply {
                    clear_nested_revisions(r.get_mut());
                }
                self.normal(reply)
            }
            Call::Compact(revision) => call!(kv.compact(CompactionRequest {
                revision,
                physical: false
            })),
            Call::Watch(create) => self.watch(who, create).await,
            Call::LeaseGrant(id, ttl) => call!(lease.lease_grant(LeaseGrantRequest { ttl, id })),
            Call::LeaseRevoke(id) => call!(lease.lease_revoke(LeaseRevokeRequest { id })),
            Call::LeaseTimeToLive(id, keys) => {
                let request = self.request(who, LeaseTimeToLiveRequest { id, keys });
                let mut reply = lease.lease_time_to_live(request).await;
                if let Ok(r) = &mut reply {
                    let r = r.get_mut();
                    // What is left of the TTL depends on when the call comes: it is checked
                    // to be at most the granted TTL and less by no more than the time a
                    // scenario takes, and shown as the granted TTL.
                    if r.ttl > 0 {
                        assert!(
                            r.ttl <= r.granted_ttl && r.ttl > r.granted_ttl - 120,
                            "{:?}: TTL {} left of {}",
                            self.flavor,
                            r.ttl,
                            r.granted_ttl
                        );
                        r.ttl = r.granted_ttl;
                    }
                }
                self.normal(reply)
            }
            Call::LeaseLeases => {
                let request = self.request(who, LeaseLeasesRequest {});
                let mut reply = lease.lease_leases(request).await;
                // etcd lists leases in Go map order.
                if let Ok(r) = &mut reply {
                    r.get_mut().leases.sort_by_key(|l| l.id);
                }
                self.normal(reply)
            }
            Call::Status => call!(maintenance.status(StatusRequest {})),
            Call::AlarmList => call!(maintenance.alarm(AlarmRequest {
                action: alarm_request::AlarmAction::Get as i32,
                ..Default::default()
            })),
            Call::Hash => call!(maintenance.hash(HashRequest {})),
            Call::HashKv => call!(maintenance.hash_kv(HashKvRequest { revision: 0 })),
            Call::Defragment => call!(maintenance.defragment(DefragmentRequest {})),
            Call::Snapshot => match self.snapshot(who).await {
                Ok(mut messages) => {
                    let trailer = messages.pop().map(|m| m.blob.len());
                    let mut first = messages.into_iter().next().unwrap_or_default();
                    first.header.normalise(&mut self.ids);
                    Ok(format!(
                        "first header {}; trailer of {trailer:?} bytes",
                        show(&first.header)
                    ))
                }
                Err(e) => Err(e),
            },
            Call::MemberList => call!(cluster.member_list(MemberListRequest {
                linearizable: false
            })),
            Call::MemberAdd(urls, is_learner) => call!(cluster.member_add(MemberAddRequest {
                peer_ur_ls: urls.iter().map(|u| u.to_string()).collect(),
                is_learner,
            })),
        }
    }

    /// Opens a watch stream as `who`, sends `create`, and returns the first message (or
    /// the status the stream ended with).
    async fn watch(&mut self, who: Who, create: WatchCreateRequest) -> Outcome {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        tx.send(create).await.expect("a fresh channel");
        let mut client = WatchClient::new(self.channel.clone());
        let request = self.request(who, ReceiverStream::new(rx));
        let first = match client.watch(request).await {
            Ok(stream) => stream.into_inner().message().await,
            Err(status) => Err(status),
        };
        drop(tx);
        match first {
            Ok(Some(mut message)) => {
                message.normalise(&mut self.ids);
                Ok(show(&message))
            }
            Ok(None) => Ok("the stream ended without a message".into()),
            Err(status) => Err((status.code(), status.message().to_string())),
        }
    }

    /// Every message of a snapshot stream as `who`.
    pub async fn snapshot(
        &self,
        who: Who,
    ) -> Result<Vec<etcd_proto::etcdserverpb::SnapshotResponse>, (Code, String)> {
        let mut maintenance =
            MaintenanceClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX);
        self.has_token(who)?;
        let status = |s: Status| (s.code(), s.message().to_string());
        let mut stream = maintenance
            .snapshot(self.request(who, SnapshotRequest {}))
            .await
            .map_err(status)?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(m) = stream.message().await.map_err(status)? {
            messages.push(m);
        }
        Ok(messages)
    }

    /// Saves a snapshot taken as `who` to `path`, as `etcdctl snapshot save` writes it
    /// (every message's bytes, the SHA-256 trailer last), and records whether it could.
    pub async fn save_snapshot(&mut self, who: Who, path: &Path) -> bool {
        let answer = within("snapshot", self.snapshot(who))
            .await
            .map(|messages| {
                let bytes: Vec<u8> = messages.into_iter().flat_map(|m| m.blob).collect();
                std::fs::write(path, bytes).expect("write the snapshot");
                "saved".to_string()
            });
        let saved = answer.is_ok();
        let what = format!("{who:?} saves a snapshot");
        self.transcript.expect(&what, answer, Expect::Ok);
        saved
    }
}

/// Blanks the revision in the headers of txns nested in `t`: etcd 3.4 leaves them empty
/// and ours does not, a known difference that `tests/grpc_kv.rs` holds, not one of auth.
fn clear_nested_revisions(t: &mut TxnResponse) {
    for op in &mut t.responses {
        if let Some(response_op::Response::ResponseTxn(nested)) = &mut op.response {
            if let Some(header) = &mut nested.header {
                header.revision = 0;
            }
            clear_nested_revisions(nested);
        }
    }
}

/// A plain HTTP/2 connection to `member`'s client URL.
pub async fn connect(member: &Member) -> Channel {
    let endpoint = Channel::from_shared(member.endpoint()).expect("client URL");
    within("connect", endpoint.connect())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", member.endpoint()))
}

header_only!(
    AuthEnableResponse,
    AuthDisableResponse,
    AuthUserAddResponse,
    AuthUserGetResponse,
    AuthUserListResponse,
    AuthUserDeleteResponse,
    AuthUserChangePasswordResponse,
    AuthUserGrantRoleResponse,
    AuthUserRevokeRoleResponse,
    AuthRoleAddResponse,
    AuthRoleGetResponse,
    AuthRoleListResponse,
    AuthRoleDeleteResponse,
    AuthRoleGrantPermissionResponse,
    AuthRoleRevokePermissionResponse
);

impl Normalise for AuthenticateResponse {
    /// A simple token is random (and etcd's carries the raft index it was made at): only
    /// whether there is one is compared.
    fn normalise(&mut self, ids: &mut Ids) {
        self.header.normalise(ids);
        if !self.token.is_empty() {
            self.token = "<token>".into();
        }
    }
}

/// The flavours `ETCD_E2E_AUTH_FLAVOURS` chooses (`both`, `reference` or `ours`),
/// Debian's etcd first.
pub fn flavours() -> Vec<Flavor> {
    let chosen = std::env::var("ETCD_E2E_AUTH_FLAVOURS").unwrap_or_else(|_| "both".into());
    match chosen.as_str() {
        "both" => vec![Flavor::Reference, Flavor::Ours],
        "reference" => vec![Flavor::Reference],
        "ours" => vec![Flavor::Ours],
        other => panic!("ETCD_E2E_AUTH_FLAVOURS={other:?}: both, reference or ours"),
    }
}

/// Plays `scenario` on each chosen flavour (see [`flavours`]), then asserts that the
/// transcripts are the same and that every step met its expected outcome.
pub async fn differential<F, Fut>(scenario: F)
where
    F: Fn(Flavor) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let mut played = Vec::new();
    let chosen = flavours();
    for &flavor in &chosen {
        let transcript = scenario(flavor).await;
        if chosen.len() == 1 {
            println!("{}", transcript.print(flavor));
        }
        played.push((flavor, transcript));
    }
    if let [(_, reference), (_, ours)] = &played[..] {
        compare(ours, reference);
    }
    for (flavor, transcript) in &played {
        assert!(
            transcript.misses.is_empty(),
            "{flavor:?} did not answer as etcd 3.4 does:\n{}",
            transcript.misses.join("\n")
        );
    }
}

/// Fails at the first entry where the transcripts differ, showing both. Steps where ours
/// differs on purpose are compared by their step only.
fn compare(ours: &Transcript, reference: &Transcript) {
    let steps = ours.entries.len().max(reference.entries.len());
    for i in 0..steps {
        let (o, r) = (ours.entries.get(i), reference.entries.get(i));
        let same = match (o, r) {
            (Some(o), Some(r)) if o.deliberate || r.deliberate => o.step == r.step,
            _ => o == r,
        };
        assert!(
            same,
            "transcripts differ at step {i}\n--- ours:\n{}\n--- Debian's etcd 3.4:\n{}\n\
             (steps before it agree; ours missed: {:?})",
            o.map_or("(none)".into(), |e| format!(
                "{}\n    => {}",
                e.step, e.answer
            )),
            r.map_or("(none)".into(), |e| format!(
                "{}\n    => {}",
                e.step, e.answer
            )),
            ours.misses
        );
    }
}

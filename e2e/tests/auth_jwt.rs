//! `--auth-token jwt,...`, differentially: each flavour is started on the same key pair made
//! at test time, and the documented flow is played with raw gRPC calls, as in `tests/auth.rs`
//! (see `etcd_e2e::auth`). A JWT carries the auth revision it was issued at, so any change of
//! users, roles or permissions makes every older token stale: etcd refuses it with "revision
//! of auth store is old" where a simple token would have gone on. A token is a signature
//! over its claims, so a member of the other flavour on the same keys takes it too. Also
//! `ttl=2s` expiry, `--auth-token ''` (nobody signs in) and start-up with a bad value.

use std::time::{Duration, Instant};

use etcd_e2e::auth::{
    alice_calls, authenticate, differential, get, jwt_keys, ok, set, small_setup, step, Call,
    Expect, Session, Transcript, Who, ALICE, ALICE_PW, ANON, AUTH_FAILED, BAD_TOKEN, DENIED,
    GARBAGE, OK, OLD_REVISION, ROOT, ROOT_PW, USER_EMPTY,
};
use etcd_e2e::{failing_start, Flavor, Ports};

/// Alice's token from the member of the other flavour.
const ALICE_THERE: Who = Who::Token("alice, signed in on the other member");
const ROOT_THERE: Who = Who::Token("root, signed in on the other member");

fn other(flavor: Flavor) -> Flavor {
    match flavor {
        Flavor::Ours => Flavor::Reference,
        Flavor::Reference => Flavor::Ours,
    }
}

/// A member of `flavor` with `--auth-token=flag`, set up with [`small_setup`].
async fn set_up(flavor: Flavor, flag: &str) -> Session {
    let mut session = Session::start(flavor, &[&format!("--auth-token={flag}")]).await;
    session.run(&small_setup()).await;
    session
}

/// Gives `to` the tokens `from` saved for alice and root, as [`ALICE_THERE`] and
/// [`ROOT_THERE`].
fn hand_over(from: &Session, to: &mut Session) {
    for (label, there) in [("alice", ALICE_THERE), ("root", ROOT_THERE)] {
        if let (Some(token), Who::Token(there)) = (from.token(label), there) {
            to.give_token(there, token);
        }
    }
}

/// The documented flow on a member of `flavor` with JWT tokens (`flag`), beside a member of
/// the other flavour on the same keys and set up alike (same auth revision).
async fn jwt_flow(flavor: Flavor, flag: String) -> Transcript {
    use Call::*;
    let mut here = set_up(flavor, &flag).await;
    let mut there = set_up(other(flavor), &flag).await;
    here.run(&alice_calls(ALICE, OK, DENIED)).await;
    here.run(&[
        step(ANON, get("foo/a"), USER_EMPTY),
        step(GARBAGE, get("foo/a"), BAD_TOKEN),
        ok(ALICE, UserGet("alice")),
        step(ALICE, UserList, DENIED),
        ok(ROOT, UserList),
    ])
    .await;

    // Each member takes the other's tokens, as the users they were issued to.
    hand_over(&there, &mut here);
    hand_over(&here, &mut there);
    for session in [&mut here, &mut there] {
        session.run(&alice_calls(ALICE_THERE, OK, DENIED)).await;
        session
            .run(&[
                ok(ROOT_THERE, UserList),
                step(ALICE_THERE, UserList, DENIED),
            ])
            .await;
    }

    // A new password: every token issued before is stale (root's too) for key-value
    // calls; the old password is refused. Surprising: the auth calls look at no revision,
    // so a stale token still gets alice herself and lets root manage users.
    here.run(&[
        ok(ROOT, UserChangePassword("alice", "alicepw2")),
        step(ALICE, get("foo/a"), OLD_REVISION),
        step(ALICE, set("foo/a", "x"), OLD_REVISION),
        ok(ALICE, UserGet("alice")),
        step(ALICE, UserList, DENIED),
        step(ROOT, get("bar"), OLD_REVISION),
        ok(ROOT, UserList),
        step(ALICE_THERE, get("foo/a"), OLD_REVISION),
        step(ANON, authenticate("alice", ALICE_PW, "alice"), AUTH_FAILED),
        ok(ANON, authenticate("alice", "alicepw2", "alice")),
        ok(ANON, authenticate("root", ROOT_PW, "root")),
    ])
    .await;
    here.run(&alice_calls(ALICE, OK, DENIED)).await;
    // Alice loses her role: her token is stale; a new one is refused what the role gave.
    here.run(&[
        ok(ROOT, UserRevokeRole("alice", "app")),
        step(ALICE, get("foo/a"), OLD_REVISION),
        ok(ANON, authenticate("alice", "alicepw2", "alice")),
        step(ALICE, get("foo/a"), DENIED),
        ok(ALICE, UserGet("alice")),
    ])
    .await;
    let mut transcript = here.transcript;
    transcript.append("on the member of the other flavour", there.transcript);
    transcript
}

/// Both flavours on one key pair for `method` made now.
async fn documented_flow(method: &str) {
    let dir = tempfile::tempdir().expect("key dir");
    jwt_keys::make(dir.path(), "key", method);
    let flag = jwt_keys::flag(dir.path(), "key", method);
    differential(|flavor| jwt_flow(flavor, flag.clone())).await;
}

#[tokio::test]
async fn jwt_rs256_tokens_act_and_go_stale_as_in_etcd() {
    documented_flow("RS256").await;
}

#[tokio::test]
async fn jwt_es256_tokens_act_and_go_stale_as_in_etcd() {
    documented_flow("ES256").await;
}

/// `ttl=2s`: a token is refused once its `exp` (whole seconds) has passed, however often
/// it is used; polled every 100 ms for at most 10 s.
async fn expiry(flavor: Flavor, flag: String) -> Transcript {
    let mut session = set_up(flavor, &format!("{flag},ttl=2s")).await;
    let signed_in = Instant::now();
    let use_it = ok(ALICE, get("foo/a"));
    session.step(&use_it).await;
    let refused = loop {
        let answer = session.answer(ALICE, &use_it.call).await;
        if answer.is_err() || signed_in.elapsed() > Duration::from_secs(10) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lasted = signed_in.elapsed();
    let t = &mut session.transcript;
    // `exp` is the sign-in time plus the TTL, truncated to a second.
    t.holds(
        "alice's token lasted at least 1 s",
        lasted >= Duration::from_secs(1),
    );
    t.expect("alice's token once expired", refused, BAD_TOKEN);
    session
        .run(&[
            ok(ANON, authenticate("alice", ALICE_PW, "alice")),
            ok(ALICE, get("foo/a")),
        ])
        .await;
    session.transcript
}

#[tokio::test]
async fn a_jwt_expires_after_its_ttl() {
    let dir = tempfile::tempdir().expect("key dir");
    jwt_keys::make(dir.path(), "key", "ES256");
    let flag = jwt_keys::flag(dir.path(), "key", "ES256");
    differential(|flavor| expiry(flavor, flag.clone())).await;
}

/// `--auth-token ''`: etcd's no-op provider; auth can be enabled, but nobody can sign in.
async fn no_tokens(flavor: Flavor) -> Transcript {
    use Call::*;
    let mut session = Session::start(flavor, &["--auth-token="]).await;
    session
        .run(&[
            ok(ANON, UserAdd("root", ROOT_PW)),
            ok(ANON, UserGrantRole("root", "root")),
            ok(ANON, AuthEnable),
            step(ANON, authenticate("root", ROOT_PW, "root"), NO_LOGIN),
            step(ANON, authenticate("root", "wrong", "root"), AUTH_FAILED),
            step(ANON, get("foo"), USER_EMPTY),
            step(GARBAGE, get("foo"), BAD_TOKEN),
        ])
        .await;
    session.transcript
}

/// What Authenticate answers a right password when no token can be made.
const NO_LOGIN: Expect = AUTH_FAILED;

#[tokio::test]
async fn with_an_empty_auth_token_nobody_signs_in() {
    differential(no_tokens).await;
}

/// A bad `--auth-token` stops either binary at start-up with status 1, its reason logged
/// and etcd's fatal line; both log the same error lines.
#[test]
fn a_bad_auth_token_stops_the_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    jwt_keys::make(dir.path(), "key", "RS256");
    let key = dir.path().join("key").display().to_string();
    let invalid = "C | etcdmain: auth: invalid auth options";
    let cases = [
        ("bogus".to_string(), invalid),
        ("simple,ttl".into(), invalid),
        ("jwt,sign-method=RS256,sign-method=RS256".into(), invalid),
        (format!("jwt,sign-method=XX256,priv-key={key}"), invalid),
        (
            format!("jwt,sign-method=RS256,priv-key={key},ttl=2"),
            invalid,
        ),
        (
            "jwt,sign-method=RS256,priv-key=/nonexistent".into(),
            invalid,
        ),
        (
            "jwt,sign-method=RS256".into(),
            "C | etcdmain: auth: missing key data",
        ),
    ];
    let ports = Ports::free();
    for (i, (value, fatal)) in cases.iter().enumerate() {
        let args = |flavor: Flavor| {
            let data = dir.path().join(format!("{flavor:?}-{i}"));
            [
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls={}", ports.client_url()),
                format!("--advertise-client-urls={}", ports.client_url()),
                format!("--listen-peer-urls={}", ports.peer_url()),
                format!("--initial-advertise-peer-urls={}", ports.peer_url()),
                format!("--initial-cluster=default={}", ports.peer_url()),
                format!("--auth-token={value}"),
            ]
        };
        let run = |flavor: Flavor| {
            let args = args(flavor);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            failing_start(flavor, &args, &[], dir.path())
        };
        let (etcd, ours) = (run(Flavor::Reference), run(Flavor::Ours));
        assert_eq!(etcd.0, 1, "etcd with {value}: {etcd:?}");
        assert_eq!(etcd.1.last().map(String::as_str), Some(*fatal), "{value}");
        assert_eq!(ours, etcd, "--auth-token={value} (left: ours)");
    }
}

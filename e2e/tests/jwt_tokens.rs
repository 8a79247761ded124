//! JWT auth tokens against Debian's etcd 3.4 on the same keys: a token it hands out decodes
//! with our `JwtTokens` to the right user and auth revision, and a token `JwtTokens` makes is
//! taken by it as that user (and refused when stale or signed with another key), for each
//! sign-method both serve (RSA PKCS#1 v1.5, RSA-PSS, ECDSA, HMAC).

use std::time::Duration;

use etcd_e2e::auth::jwt_keys;
use etcd_e2e::grpc::within;
use etcd_e2e::{Flavor, Member};
use etcd_proto::etcdserverpb::auth_client::AuthClient;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::{AuthenticateRequest, RangeRequest};
use etcd_server::auth::jwt::JwtTokens;
use etcd_server::auth::token_flag::{JwtOptions, TokenFlag};
use tonic::transport::Channel;
use tonic::Code;

fn tokens(flag: &str) -> JwtTokens {
    let opts: JwtOptions = match TokenFlag::parse(flag) {
        Ok(TokenFlag::Jwt(opts)) => opts,
        other => panic!("{flag}: {other:?}"),
    };
    JwtTokens::new(&opts).unwrap_or_else(|e| panic!("{flag}: {e}"))
}

async fn authenticate(channel: &Channel, name: &str, password: &str) -> String {
    let request = AuthenticateRequest {
        name: name.into(),
        password: password.into(),
    };
    within(
        &request,
        AuthClient::new(channel.clone()).authenticate(request.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("authenticate {name}: {e}"))
    .into_inner()
    .token
}

/// A Range of one key as the holder of `token`.
async fn range_with(channel: &Channel, token: &str) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(RangeRequest {
        key: b"k".to_vec(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("token", token.parse().expect("token is ASCII"));
    within("range", KvClient::new(channel.clone()).range(request))
        .await
        .map(drop)
}

async fn interoperate(method: &str) {
    let dir = tempfile::tempdir().expect("key dir");
    jwt_keys::make(dir.path(), "key", method);
    jwt_keys::make(dir.path(), "other", method);
    let ours = tokens(&jwt_keys::flag(dir.path(), "key", method));
    let stranger = tokens(&jwt_keys::flag(dir.path(), "other", method));

    let mut etcd = Member::start(
        Flavor::Reference,
        &["--auth-token", &jwt_keys::flag(dir.path(), "key", method)],
    );
    etcd.wait_healthy(Duration::from_secs(20));
    etcd.ctl_ok(&["user", "add", "root:pw"]);
    etcd.ctl_ok(&["auth", "enable"]);
    let channel = within(
        "connect",
        Channel::from_shared(etcd.endpoint()).unwrap().connect(),
    )
    .await
    .expect("connect");

    // etcd's token decodes to its user and auth revision; one more auth change later, to
    // the next revision.
    let token = authenticate(&channel, "root", "pw").await;
    let (user, revision) = ours
        .info(&token)
        .unwrap_or_else(|| panic!("{method}: etcd's token {token} refused"));
    assert_eq!(user, "root", "{method}");
    assert_eq!(stranger.info(&token), None, "{method}: another key accepts");
    etcd.ctl_ok(&["--user=root:pw", "user", "add", "alice:pw"]);
    let token = authenticate(&channel, "alice", "pw").await;
    assert_eq!(
        ours.info(&token),
        Some(("alice".into(), revision + 1)),
        "{method}"
    );

    // Our token is etcd's root at the current revision; a stale revision or another key is
    // refused with etcd's errors.
    range_with(&channel, &ours.assign("root", revision + 1).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method}: etcd refused our token: {e}"));
    let stale = range_with(&channel, &ours.assign("root", revision).unwrap()).await;
    let stale = stale.expect_err("a token from before the last auth change");
    assert_eq!(stale.message(), "etcdserver: revision of auth store is old");
    let forged = range_with(&channel, &stranger.assign("root", revision + 1).unwrap()).await;
    let forged = forged.expect_err("a token signed with another key");
    assert_eq!(
        (forged.code(), forged.message()),
        (Code::Unauthenticated, "etcdserver: invalid auth token"),
        "{method}"
    );
}

/// One test per sign-method etcd 3.4 and we both serve.
macro_rules! with_debian_etcd {
    ($($test:ident: $method:literal,)*) => {$(
        #[tokio::test]
        async fn $test() {
            interoperate($method).await;
        }
    )*};
}

with_debian_etcd! {
    rs256: "RS256",
    rs384: "RS384",
    rs512: "RS512",
    ps256: "PS256",
    ps384: "PS384",
    ps512: "PS512",
    es256: "ES256",
    es384: "ES384",
    hs256: "HS256",
    hs384: "HS384",
    hs512: "HS512",
}

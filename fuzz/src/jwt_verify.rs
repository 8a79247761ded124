//! Checking `--auth-token jwt` tokens: `auth::jwt::JwtTokens::info`, which reads whatever a
//! client puts in its `token` metadata.
//!
//! The input is either a token as text (first byte even), checked by an HS256 and an ES256
//! member, or (first byte odd) a header and claims, split at the first NUL, that are signed
//! here with the HS256 member's secret: a correctly signed token with fuzzed JSON, which
//! reaches the claims checks.
//!
//! Invariants:
//! - `info` answers, never panics;
//! - a correctly signed token is accepted only if its header names HS256 and its claims are
//!   an object whose `username` and `revision` are what `info` answered, and whose `exp`,
//!   when present, has not passed.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use etcd_server::auth::jwt::JwtTokens;
use etcd_server::auth::token_flag::{JwtOptions, SignMethod};
use serde_json::Value;

/// The HS256 member's secret (fixed, so the committed seeds stay correctly signed).
pub const SECRET: &[u8] = b"etcd fuzz secret\n";

pub struct Members {
    pub hs256: JwtTokens,
    pub es256: JwtTokens,
    _keys: tempfile::TempDir,
}

/// The two members, made once per process: their keys are files, as etcd reads them.
pub fn members() -> &'static Members {
    static MEMBERS: OnceLock<Members> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let keys = crate::scratch::dir();
        let secret = keys.path().join("secret");
        std::fs::write(&secret, SECRET).expect("secret written");
        let ec = keys.path().join("p256");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
        std::fs::write(&ec, pair.serialize_pem()).expect("EC key written");
        let tokens = |sign_method, private_key| {
            JwtTokens::new(&JwtOptions {
                sign_method,
                public_key: None,
                private_key: Some(private_key),
                ttl: Duration::from_secs(300),
                unknown_options: vec![],
            })
            .expect("token provider")
        };
        Members {
            hs256: tokens(SignMethod::Hs256, secret),
            es256: tokens(SignMethod::Es256, ec),
            _keys: keys,
        }
    })
}

/// `header.claims.signature` with an HS256 signature made with [`SECRET`].
pub fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

pub fn check(data: &[u8]) {
    let m = members();
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => {
            let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
            if let Some((user, revision)) = m.hs256.info(&sign(header, claims)) {
                accepted(header, claims, &user, revision);
            }
        }
        Some((_, rest)) => {
            let token = String::from_utf8_lossy(rest);
            let _ = m.hs256.info(&token);
            let _ = m.es256.info(&token);
        }
        None => {}
    }
}

fn accepted(header: &[u8], claims: &[u8], user: &str, revision: u64) {
    // Fields the header parser skips may hold invalid UTF-8, which Go's JSON reader takes
    // too (as U+FFFD).
    let header: Value =
        serde_json::from_str(&String::from_utf8_lossy(header)).expect("an accepted header is JSON");
    assert_eq!(header["alg"], "HS256", "{header}");
    let claims: Value = serde_json::from_slice(claims).expect("accepted claims are JSON");
    assert_eq!(claims["username"].as_str(), Some(user), "{claims}");
    let r = &claims["revision"];
    let as_float = r.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64);
    assert_eq!(r.as_u64().or(as_float), Some(revision), "{claims}");
    if let Some(exp) = claims.get("exp") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let exp = exp.as_f64().expect("an accepted exp is a number");
        // The check ran a moment ago, on whole seconds.
        assert!(exp.trunc() >= now.trunc() - 1.0, "expired {claims}");
    }
}

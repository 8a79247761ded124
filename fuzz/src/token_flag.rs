//! `--auth-token`'s value: `auth::token_flag::TokenFlag::parse`.
//!
//! Invariants:
//! - parsing answers a flag or an error, never a panic; every error shows etcd's exit text;
//! - the type is the text before the first `,`;
//! - a `jwt` flag written back out from what was parsed parses to the same options.

use etcd_server::auth::token_flag::{JwtOptions, TokenFlag, TokenFlagError};

/// `opts` as an `--auth-token` value (the ttl in nanoseconds, which parses exactly).
pub fn render(opts: &JwtOptions) -> String {
    let mut out = format!("jwt,sign-method={}", opts.sign_method.name());
    let paths = [
        ("pub-key", &opts.public_key),
        ("priv-key", &opts.private_key),
    ];
    for (key, path) in paths {
        if let Some(path) = path {
            out += &format!(",{key}={}", path.to_str().expect("parsed from text"));
        }
    }
    out += &format!(",ttl={}ns", opts.ttl.as_nanos());
    for key in &opts.unknown_options {
        out += &format!(",{key}=");
    }
    out
}

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let token_type = text.split(',').next().unwrap_or_default();
    match TokenFlag::parse(text) {
        Err(e) => {
            assert_eq!(e.to_string(), "auth: invalid auth options", "{e:?}");
            let _ = e.reason();
            if let TokenFlagError::UnknownType { token_type: t } = &e {
                assert_eq!(t, token_type);
            }
        }
        Ok(TokenFlag::None) => assert_eq!(token_type, ""),
        Ok(TokenFlag::Simple) => assert_eq!(token_type, "simple"),
        Ok(TokenFlag::Jwt(opts)) => {
            assert_eq!(token_type, "jwt");
            // Durations past 2^53 ns are parsed through a float and are not exact.
            if opts.ttl.as_nanos() < 1 << 53 {
                let again = render(&opts);
                assert_eq!(
                    TokenFlag::parse(&again),
                    Ok(TokenFlag::Jwt(opts)),
                    "{again}"
                );
            }
        }
    }
}

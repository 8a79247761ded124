//! etcd 3.4's `--auth-token` value: `simple`, or
//! `jwt,sign-method=METHOD,pub-key=PATH,priv-key=PATH,ttl=DURATION`.
//!
//! etcd splits the value on `,` (the first field is the token type) and each option on `=`;
//! an option that is not exactly `key=value`, or a key given twice, refuses the value whatever
//! the type. Options of `simple` are otherwise ignored. For `jwt`, `sign-method` is required
//! and must be a name Go's JWT library knows (case-sensitive), `ttl` is a Go duration
//! (default 5m), an empty value counts as absent, and unknown keys are only warned about.
//!
//! Parsing here is pure: the key files are read by [`super::jwt::JwtTokens::new`], so a
//! typo in the flag is reported without touching the disk. etcd reads the files while parsing;
//! the only visible difference is which of two errors is named when a value has both.

use std::path::PathBuf;
use std::time::Duration;

/// The token provider `--auth-token` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFlag {
    /// An empty type (`--auth-token ''`): etcd's no-op provider, with which no user can
    /// authenticate once auth is enabled.
    None,
    /// `simple`: random tokens held in the member's memory (etcd's default).
    Simple,
    /// `jwt,...`: signed tokens any member holding the key can check.
    Jwt(JwtOptions),
}

/// The options of `--auth-token jwt,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    pub sign_method: SignMethod,
    /// `pub-key`: verifies tokens; alone, the member can check tokens but not issue them.
    pub public_key: Option<PathBuf>,
    /// `priv-key`: signs tokens (for HS* the file's bytes are the shared secret).
    pub private_key: Option<PathBuf>,
    /// `ttl`: how long an issued token is valid.
    pub ttl: Duration,
    /// Option keys etcd does not know: it starts anyway and warns "unknown JWT options".
    pub unknown_options: Vec<String>,
}

/// etcd's `ttl` when the option is absent or empty.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// A `sign-method` name that Go's JWT library (golang-jwt v3, as in etcd 3.4) resolves.
/// etcd 3.4 refuses `EdDSA` and `none` only after resolving them, so they are parsed too and
/// refused by the token provider with etcd's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignMethod {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    Hs256,
    Hs384,
    Hs512,
    EdDsa,
    None,
}

impl SignMethod {
    pub const ALL: [SignMethod; 14] = [
        SignMethod::Rs256,
        SignMethod::Rs384,
        SignMethod::Rs512,
        SignMethod::Ps256,
        SignMethod::Ps384,
        SignMethod::Ps512,
        SignMethod::Es256,
        SignMethod::Es384,
        SignMethod::Es512,
        SignMethod::Hs256,
        SignMethod::Hs384,
        SignMethod::Hs512,
        SignMethod::EdDsa,
        SignMethod::None,
    ];

    /// The name in the flag and in a token's `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            SignMethod::Rs256 => "RS256",
            SignMethod::Rs384 => "RS384",
            SignMethod::Rs512 => "RS512",
            SignMethod::Ps256 => "PS256",
            SignMethod::Ps384 => "PS384",
            SignMethod::Ps512 => "PS512",
            SignMethod::Es256 => "ES256",
            SignMethod::Es384 => "ES384",
            SignMethod::Es512 => "ES512",
            SignMethod::Hs256 => "HS256",
            SignMethod::Hs384 => "HS384",
            SignMethod::Hs512 => "HS512",
            SignMethod::EdDsa => "EdDSA",
            SignMethod::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<SignMethod> {
        SignMethod::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Why a `--auth-token` value is refused. `Display` is the error etcd 3.4 exits with
/// ("failed to create token provider"); [`TokenFlagError::reason`] is the line etcd logs
/// just before it, which names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFlagError {
    /// An option that is not exactly one `key=value` (etcd: "invalid token specific option").
    #[error("auth: invalid auth options")]
    MalformedOption { flag: String },
    /// A key given twice (etcd: "invalid token specific option, duplicated
    /// parameters").
    #[error("auth: invalid auth options")]
    DuplicateOption { flag: String, key: String },
    /// A type other than `simple`, `jwt` or empty (etcd: "unknown token type").
    #[error("auth: invalid auth options")]
    UnknownType { token_type: String },
    /// `ttl` is not a Go duration (etcd: "problem loading JWT options").
    #[error("auth: invalid auth options")]
    Ttl { reason: String },
    /// `sign-method` is missing or unknown (etcd: "problem loading JWT options").
    #[error("auth: invalid auth options")]
    SignMethod { method: String },
}

impl TokenFlagError {
    /// The error line etcd 3.4 logs before failing (with its default logger, capnslog):
    /// its message and the offending part.
    pub fn reason(&self) -> String {
        match self {
            TokenFlagError::MalformedOption { flag } => {
                format!("invalid token specific option: {flag}")
            }
            TokenFlagError::DuplicateOption { flag, key } => {
                format!("invalid token specific option, duplicated parameters ({key}): {flag}")
            }
            TokenFlagError::UnknownType { token_type } => {
                format!("unknown token type: {token_type}")
            }
            TokenFlagError::Ttl { reason } => format!("problem loading JWT options: {reason}"),
            TokenFlagError::SignMethod { .. } => {
                "problem loading JWT options: auth: invalid auth signature method".to_string()
            }
        }
    }
}

impl TokenFlag {
    pub fn parse(s: &str) -> Result<TokenFlag, TokenFlagError> {
        let mut fields = s.split(',');
        let token_type = fields.next().unwrap_or_default();
        let mut options: Vec<(&str, &str)> = Vec::new();
        for field in fields {
            let mut pair = field.split('=');
            let (Some(key), Some(value), None) = (pair.next(), pair.next(), pair.next()) else {
                return Err(TokenFlagError::MalformedOption { flag: s.into() });
            };
            if options.iter().any(|(k, _)| *k == key) {
                return Err(TokenFlagError::DuplicateOption {
                    flag: s.into(),
                    key: key.into(),
                });
            }
            options.push((key, value));
        }
        match token_type {
            "" => Ok(TokenFlag::None),
            "simple" => Ok(TokenFlag::Simple),
            "jwt" => JwtOptions::from_options(&options).map(TokenFlag::Jwt),
            other => Err(TokenFlagError::UnknownType {
                token_type: other.into(),
            }),
        }
    }
}

impl JwtOptions {
    fn from_options(options: &[(&str, &str)]) -> Result<JwtOptions, TokenFlagError> {
        // etcd looks options up in a map, where an absent key reads as "".
        let get = |key: &str| {
            options
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap_or_default()
        };
        let path = |key: &str| Some(get(key)).filter(|v| !v.is_empty()).map(PathBuf::from);
        let ttl = match get("ttl") {
            "" => DEFAULT_TTL,
            text => {
                crate::go_duration::parse(text).map_err(|reason| TokenFlagError::Ttl { reason })?
            }
        };
        let method = get("sign-method");
        let sign_method =
            SignMethod::from_name(method).ok_or_else(|| TokenFlagError::SignMethod {
                method: method.into(),
            })?;
        const KNOWN: [&str; 4] = ["sign-method", "pub-key", "priv-key", "ttl"];
        Ok(JwtOptions {
            sign_method,
            public_key: path("pub-key"),
            private_key: path("priv-key"),
            ttl,
            unknown_options: options
                .iter()
                .map(|(k, _)| k.to_string())
                .filter(|k| !KNOWN.contains(&k.as_str()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(s: &str) -> JwtOptions {
        match TokenFlag::parse(s) {
            Ok(TokenFlag::Jwt(opts)) => opts,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn types() {
        assert_eq!(TokenFlag::parse("simple"), Ok(TokenFlag::Simple));
        // etcd ignores the options of a simple token once they are well formed.
        assert_eq!(TokenFlag::parse("simple,foo=bar"), Ok(TokenFlag::Simple));
        assert_eq!(TokenFlag::parse(""), Ok(TokenFlag::None));
        for bad in [
            "foo",
            "JWT,sign-method=RS256",
            "jwt ,sign-method=RS256",
            "Simple",
        ] {
            let err = TokenFlag::parse(bad).unwrap_err();
            assert!(matches!(err, TokenFlagError::UnknownType { .. }), "{bad}");
            assert_eq!(err.to_string(), "auth: invalid auth options");
        }
    }

    #[test]
    fn jwt_options() {
        let opts = jwt("jwt,pub-key=/k.pub,priv-key=/k,sign-method=PS384,ttl=1m30s");
        assert_eq!(
            opts,
            JwtOptions {
                sign_method: SignMethod::Ps384,
                public_key: Some("/k.pub".into()),
                private_key: Some("/k".into()),
                ttl: Duration::from_secs(90),
                unknown_options: vec![],
            }
        );
        let opts = jwt("jwt,sign-method=HS256,priv-key=k,pub-key=,ttl=,foo=bar,baz=");
        assert_eq!(opts.ttl, DEFAULT_TTL);
        assert_eq!(opts.public_key, None);
        assert_eq!(opts.unknown_options, ["foo", "baz"]);
        for m in SignMethod::ALL {
            assert_eq!(jwt(&format!("jwt,sign-method={}", m.name())).sign_method, m);
        }
    }

    #[test]
    fn malformed_options() {
        for bad in [
            "jwt,foo",
            "jwt,,sign-method=RS256",
            "jwt,priv-key=a=b,sign-method=RS256",
            "simple,foo",
            "jwt,",
        ] {
            let err = TokenFlag::parse(bad).unwrap_err();
            assert_eq!(
                err,
                TokenFlagError::MalformedOption { flag: bad.into() },
                "{bad}"
            );
            assert_eq!(err.to_string(), "auth: invalid auth options");
        }
        let err = TokenFlag::parse("jwt,ttl=1s,sign-method=RS256,ttl=1s").unwrap_err();
        assert_eq!(
            err.reason(),
            "invalid token specific option, duplicated parameters (ttl): \
             jwt,ttl=1s,sign-method=RS256,ttl=1s"
        );
    }

    #[test]
    fn bad_jwt_values() {
        for bad in [
            "jwt",
            "jwt,sign-method=rs256",
            "jwt,sign-method=",
            "jwt,sign-method=XX256",
        ] {
            let err = TokenFlag::parse(bad).unwrap_err();
            assert!(matches!(err, TokenFlagError::SignMethod { .. }), "{bad}");
            assert_eq!(
                err.reason(),
                "problem loading JWT options: auth: invalid auth signature method"
            );
        }
        let err = TokenFlag::parse("jwt,sign-method=RS256,ttl=bad").unwrap_err();
        assert_eq!(
            err.reason(),
            "problem loading JWT options: time: invalid duration \"bad\""
        );
        assert_eq!(err.to_string(), "auth: invalid auth options");
    }
}

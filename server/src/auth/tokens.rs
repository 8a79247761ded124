//! The token provider chosen by `--auth-token`: what a login issues and what a request's
//! token says about its user.

use super::jwt::{JwtError, JwtTokens};
use super::simple_token::SimpleTokens;
use super::token_flag::{TokenFlag, TokenFlagError};
use super::AuthInfo;
use crate::error::{EtcdError, Result};

/// The member's token provider.
pub enum Tokens {
    /// `--auth-token ''`: nobody can log in (etcd's no-op provider).
    None,
    Simple(SimpleTokens),
    Jwt(Box<JwtTokens>),
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokens::None => f.write_str("Tokens::None"),
            Tokens::Simple(s) => s.fmt(f),
            Tokens::Jwt(j) => write!(f, "Tokens::Jwt({})", j.sign_method().name()),
        }
    }
}

/// Why `--auth-token` names no usable provider: [`Display`](std::fmt::Display) is the error
/// etcd stops with, [`ProviderError::reason`] the line it logs first.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Flag(#[from] TokenFlagError),
    #[error("{0}")]
    Jwt(#[from] JwtError),
}

impl ProviderError {
    /// The error line etcd logs before failing, where it logs one.
    pub fn reason(&self) -> Option<String> {
        match self {
            ProviderError::Flag(e) => Some(e.reason()),
            ProviderError::Jwt(e) => e.reason(),
        }
    }
}

/// etcd's default `--auth-token-ttl`.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for Tokens {
    /// Simple tokens living etcd's default TTL.
    fn default() -> Self {
        Tokens::Simple(SimpleTokens::new(DEFAULT_TTL))
    }
}

impl Tokens {
    /// The provider `--auth-token` (`flag`) selects; simple tokens live `ttl` unused.
    pub fn from_flag(flag: &str, ttl: std::time::Duration) -> Result<Tokens, ProviderError> {
        Ok(match TokenFlag::parse(flag)? {
            TokenFlag::None => Tokens::None,
            TokenFlag::Simple => {
                tracing::warn!(target: "auth", "simple token is not cryptographically signed");
                Tokens::Simple(SimpleTokens::new(ttl))
            }
            TokenFlag::Jwt(opts) => {
                if !opts.unknown_options.is_empty() {
                    // Go's `%v` of the keys: `[a b]`.
                    let keys = opts.unknown_options.join(" ");
                    tracing::warn!(target: "auth", "unknown JWT options: [{keys}]");
                }
                Tokens::Jwt(Box::new(JwtTokens::new(&opts)?))
            }
        })
    }

    /// Issues the token of a login of `user` applied at raft index `index`, when the auth
    /// state is at `revision`.
    pub fn assign(&self, prefix: &str, index: u64, user: &str, revision: u64) -> Result<String> {
        match self {
            Tokens::None => Err(EtcdError::AuthFailed),
            Tokens::Simple(s) => Ok(s.assign(prefix, index, user)),
            Tokens::Jwt(j) => j
                .assign(user, revision)
                .map_err(|e| EtcdError::Internal(e.to_string())),
        }
    }

    /// Who `token` speaks for, with the auth revision to check its requests at (for a
    /// simple token, the current one: `current_revision`; a JWT carries the revision it
    /// was issued at); `None` for an invalid token.
    pub fn info(&self, token: &str, current_revision: u64) -> Option<AuthInfo> {
        match self {
            Tokens::None => None,
            Tokens::Simple(s) => s.user(token).map(|username| AuthInfo {
                username,
                revision: current_revision,
            }),
            Tokens::Jwt(j) => j
                .info(token)
                .map(|(username, revision)| AuthInfo { username, revision }),
        }
    }

    /// The raft index a member must have applied before it can judge `token`.
    pub fn issued_at(&self, token: &str) -> Option<u64> {
        match self {
            Tokens::Simple(_) => super::simple_token::index_of(token),
            Tokens::None | Tokens::Jwt(_) => None,
        }
    }

    /// Drops the tokens of `user` (a JWT cannot be taken back: the auth revision it
    /// carries, now old, is what refuses it).
    pub fn invalidate_user(&self, user: &str) {
        if let Tokens::Simple(s) = self {
            s.invalidate_user(user);
        }
    }

    /// Auth was turned off: no simple token stays valid.
    pub fn disable(&self) {
        if let Tokens::Simple(s) = self {
            s.clear();
        }
    }
}

//! The token provider chosen by `--auth-token`: what a login issues and what a request's
//! token says about its user.

use super::simple_token::SimpleTokens;
use super::AuthInfo;
use crate::error::Result;

/// The member's token provider.
#[derive(Debug)]
pub enum Tokens {
    Simple(SimpleTokens),
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
    /// Issues the token of a login of `user` applied at raft index `index`, when the auth
    /// state is at `revision`.
    pub fn assign(&self, prefix: &str, index: u64, user: &str, revision: u64) -> Result<String> {
        let _ = revision;
        match self {
            Tokens::Simple(s) => Ok(s.assign(prefix, index, user)),
        }
    }

    /// Who `token` speaks for, with the auth revision to check its requests at (for a
    /// simple token, the current one: `current_revision`); `None` for an invalid token.
    pub fn info(&self, token: &str, current_revision: u64) -> Option<AuthInfo> {
        match self {
            Tokens::Simple(s) => s.user(token).map(|username| AuthInfo {
                username,
                revision: current_revision,
            }),
        }
    }

    /// The raft index a member must have applied before it can judge `token`.
    pub fn issued_at(&self, token: &str) -> Option<u64> {
        match self {
            Tokens::Simple(_) => super::simple_token::index_of(token),
        }
    }

    pub fn invalidate_user(&self, user: &str) {
        match self {
            Tokens::Simple(s) => s.invalidate_user(user),
        }
    }

    /// Auth was turned off: no token stays valid.
    pub fn disable(&self) {
        match self {
            Tokens::Simple(s) => s.clear(),
        }
    }
}

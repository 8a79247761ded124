//! etcd's "simple" tokens: random strings a member keeps in memory, each naming a user.
//!
//! A token is issued by applying an Authenticate entry, so every member knows it: its text
//! is 16 random letters the proposer chose, a dot, and the entry's raft index (a member
//! that has not applied that index yet waits for it before it judges the token; see
//! [`index_of`]). A token lives `--auth-token-ttl` after its last use, and dies with the
//! member, when its user's password changes or the user is deleted, and when auth is
//! turned off — as in etcd.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

/// How many random letters start a token.
const PREFIX_LEN: usize = 16;

/// The live tokens of one member.
#[derive(Debug)]
pub struct SimpleTokens {
    ttl: Duration,
    live: Mutex<HashMap<String, Live>>,
}

#[derive(Debug)]
struct Live {
    user: String,
    last_used: Instant,
}

impl SimpleTokens {
    pub fn new(ttl: Duration) -> Self {
        SimpleTokens {
            ttl,
            live: Mutex::default(),
        }
    }

    /// The random part of a new token, chosen by the member that proposes the login.
    pub fn new_prefix() -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut rng = rand::thread_rng();
        (0..PREFIX_LEN)
            .map(|_| LETTERS[rng.gen_range(0..LETTERS.len())] as char)
            .collect()
    }

    /// Issues the token of a login applied at raft index `index`.
    pub fn assign(&self, prefix: &str, index: u64, user: &str) -> String {
        let token = format!("{prefix}.{index}");
        let now = Instant::now();
        let mut live = self.live.lock();
        live.retain(|_, t| now.duration_since(t.last_used) < self.ttl);
        live.insert(
            token.clone(),
            Live {
                user: user.to_string(),
                last_used: now,
            },
        );
        token
    }

    /// The user `token` names, renewing its lifetime; `None` for an unknown or expired
    /// token.
    pub fn user(&self, token: &str) -> Option<String> {
        let now = Instant::now();
        let mut live = self.live.lock();
        let t = live.get_mut(token)?;
        if now.duration_since(t.last_used) >= self.ttl {
            live.remove(token);
            return None;
        }
        t.last_used = now;
        Some(t.user.clone())
    }

    /// Drops every token of `user`.
    pub fn invalidate_user(&self, user: &str) {
        self.live.lock().retain(|_, t| t.user != user);
    }

    /// Drops every token.
    pub fn clear(&self) {
        self.live.lock().clear();
    }
}

/// The raft index a simple token was issued at; `None` when `token` is not shaped like one.
pub fn index_of(token: &str) -> Option<u64> {
    let (_, index) = token.rsplit_once('.')?;
    index.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_user_until_invalidated() {
        let tokens = SimpleTokens::new(Duration::from_secs(300));
        let prefix = SimpleTokens::new_prefix();
        assert_eq!(prefix.len(), PREFIX_LEN);
        assert!(prefix.chars().all(|c| c.is_ascii_alphabetic()));
        let t = tokens.assign(&prefix, 42, "alice");
        assert_eq!(t, format!("{prefix}.42"));
        assert_eq!(index_of(&t), Some(42));
        let other = tokens.assign("B", 43, "bob");
        assert_eq!(tokens.user(&t).as_deref(), Some("alice"));
        tokens.invalidate_user("alice");
        assert_eq!(tokens.user(&t), None);
        assert_eq!(tokens.user(&other).as_deref(), Some("bob"));
        tokens.clear();
        assert_eq!(tokens.user(&other), None);
    }

    #[test]
    fn an_unused_token_expires() {
        let tokens = SimpleTokens::new(Duration::ZERO);
        let t = tokens.assign("A", 1, "alice");
        assert_eq!(tokens.user(&t), None);
    }

    #[test]
    fn malformed_tokens_have_no_index() {
        assert_eq!(index_of("abc"), None);
        assert_eq!(index_of("abc.x"), None);
        assert_eq!(index_of("a.b.7"), Some(7));
    }
}

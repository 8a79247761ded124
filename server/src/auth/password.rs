//! Password hashes: bcrypt, in the `$2a$` form Go's bcrypt writes, so a data dir's users
//! mean the same to etcd and to us.

use crate::error::{EtcdError, Result};

/// `--bcrypt-cost` bounds (Go's bcrypt.MinCost and MaxCost).
pub const MIN_COST: u32 = 4;
pub const MAX_COST: u32 = 31;
/// Go's bcrypt.DefaultCost, etcd's default (the bcrypt crate's own default is 12).
pub const DEFAULT_COST: u32 = 10;

/// The bcrypt cost to hash with for `--bcrypt-cost`: etcd warns about a value outside
/// bcrypt's bounds and uses the default.
pub fn cost(flag: u64) -> u32 {
    match u32::try_from(flag) {
        Ok(c) if (MIN_COST..=MAX_COST).contains(&c) => c,
        _ => {
            tracing::warn!(target: "auth", "Use default bcrypt-cost {DEFAULT_COST} instead of the invalid value {flag}");
            DEFAULT_COST
        }
    }
}

/// Hashes `password` at `cost`. Slow on purpose: run it off the async runtime.
pub fn hash(password: &str, cost: u32) -> Result<Vec<u8>> {
    let parts = bcrypt::hash_with_result(password, cost)
        .map_err(|e| EtcdError::Internal(format!("failed to hash password: {e}")))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA).into_bytes())
}

/// Whether `password` matches `hash`. Slow on purpose: run it off the async runtime.
pub fn matches(password: &str, hash: &[u8]) -> bool {
    std::str::from_utf8(hash).is_ok_and(|h| bcrypt::verify(password, h).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_costs_fall_back_to_the_default() {
        assert_eq!(cost(4), 4);
        assert_eq!(cost(31), 31);
        assert_eq!(cost(3), 10);
        assert_eq!(cost(40), 10);
        assert_eq!(cost(u64::MAX), 10);
    }

    #[test]
    fn hashes_verify_and_look_like_gos() {
        let h = hash("secret", MIN_COST).unwrap();
        assert!(h.starts_with(b"$2a$04$"));
        assert!(matches("secret", &h));
        assert!(!matches("Secret", &h));
        assert!(!matches("secret", b"not a hash"));
    }
}

//! Revisions and how history records are keyed in the backend.

use crate::storage::keys;

/// A point in the store's history: `main` is the store revision a request created, `sub`
/// orders the changes one request (a txn) made inside that revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// Backend key of this history record (laid out in [`keys::history`]), so a scan of
    /// the history prefix walks history in revision order.
    pub fn to_key(self) -> [u8; keys::HISTORY_KEY_LEN] {
        keys::history(self.main, self.sub)
    }

    /// Inverse of [`Revision::to_key`]; `None` for a key outside the history prefix.
    pub fn from_key(k: &[u8]) -> Option<Self> {
        keys::parse_history(k).map(|(main, sub)| Revision { main, sub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_revisions() {
        let a = Revision::new(2, 7).to_key();
        let b = Revision::new(3, 0).to_key();
        let c = Revision::new(300, 1).to_key();
        assert!(a < b && b < c);
        assert_eq!(Revision::from_key(&c), Some(Revision::new(300, 1)));
        assert_eq!(Revision::from_key(b"mfoo"), None);
    }
}

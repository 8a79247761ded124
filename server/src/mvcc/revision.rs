//! Revisions and how history records are keyed in the backend.

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

    /// Backend key of this history record: prefix byte, then main and sub big-endian, so a
    /// scan of the prefix walks history in revision order.
    pub fn to_key(self) -> [u8; 17] {
        let mut k = [0u8; 17];
        k[0] = HISTORY_PREFIX;
        k[1..9].copy_from_slice(&(self.main as u64).to_be_bytes());
        k[9..17].copy_from_slice(&(self.sub as u64).to_be_bytes());
        k
    }

    /// Inverse of [`Revision::to_key`]; `None` for a key outside the history prefix.
    pub fn from_key(k: &[u8]) -> Option<Self> {
        if k.len() != 17 || k[0] != HISTORY_PREFIX {
            return None;
        }
        let main = u64::from_be_bytes(k[1..9].try_into().ok()?) as i64;
        let sub = u64::from_be_bytes(k[9..17].try_into().ok()?) as i64;
        Some(Revision { main, sub })
    }
}

/// Backend prefix under which key-value history records live.
pub const HISTORY_PREFIX: u8 = b'k';

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

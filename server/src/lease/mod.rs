//! The lessor: leases, the keys attached to them, and when they expire.
//!
//! Grants, revocations and checkpoints are replicated (they arrive through the raft state
//! machine); keep-alives are not: only the leader tracks expiry, as in etcd. A member that
//! becomes leader (including after a restart) "promotes" its lessor: every lease gets a fresh
//! deadline of its remaining TTL (its last checkpoint, or its full TTL) plus an extension, so
//! no lease expires because leadership moved.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use etcd_proto::raftrequestpb::LeaseRecord;
use prost::Message;

use crate::error::{EtcdError, Result};
use crate::storage::keys;

/// Largest TTL etcd accepts, in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// One lease.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: i64,
    /// TTL in seconds as granted (after raising to the minimum).
    pub ttl: i64,
    /// Remaining TTL recorded by the last checkpoint (0 = none).
    pub remaining_ttl: i64,
    /// Keys attached to this lease.
    pub keys: BTreeSet<Vec<u8>>,
    /// When the lease expires; `None` while this member is not the leader.
    pub deadline: Option<Instant>,
}

impl Lease {
    fn record(&self) -> LeaseRecord {
        LeaseRecord {
            id: self.id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
    }

    /// Whole seconds left before expiry (truncated, as etcd reports it).
    pub fn remaining_secs(&self, now: Instant) -> i64 {
        match self.deadline {
            Some(d) => d.saturating_duration_since(now).as_secs() as i64,
            None => self.ttl,
        }
    }
}

/// All leases of the member.
#[derive(Debug, Default)]
pub struct Lessor {
    leases: HashMap<i64, Lease>,
    min_ttl: i64,
    primary: bool,
}

impl Lessor {
    /// Loads persisted leases. `min_ttl` is etcd's minimum lease TTL (derived from the
    /// election timeout).
    pub fn open(tree: &sled::Tree, min_ttl: i64) -> Result<Self> {
        let mut leases = HashMap::new();
        for item in tree.scan_prefix([keys::LEASE_PREFIX]) {
            let (_, v) = item?;
            let r = LeaseRecord::decode(v.as_ref())
                .map_err(|e| EtcdError::Internal(format!("lease: corrupt record: {e}")))?;
            leases.insert(
                r.id,
                Lease {
                    id: r.id,
                    ttl: r.ttl,
                    remaining_ttl: r.remaining_ttl,
                    keys: BTreeSet::new(),
                    deadline: None,
                },
            );
        }
        Ok(Lessor {
            leases,
            min_ttl,
            primary: false,
        })
    }

    /// The smallest TTL a lease gets.
    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    /// The TTL to propose for a grant asking for `requested` seconds: raised to this
    /// member's minimum. The member that proposes the grant decides, so that the entry
    /// carries the TTL and every member applies the same one, whatever its own election
    /// timeout (and so its minimum).
    pub fn ttl_to_propose(&self, requested: i64) -> i64 {
        requested.max(self.min_ttl)
    }

    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// IDs of all leases, soonest expiry first as etcd lists them (leases without a
    /// deadline, on a member that is not the leader, last; ties by ID).
    pub fn ids(&self) -> Vec<i64> {
        let mut leases: Vec<&Lease> = self.leases.values().collect();
        leases.sort_by_key(|l| (l.deadline.is_none(), l.deadline, l.id));
        leases.into_iter().map(|l| l.id).collect()
    }

    /// Applies a replicated grant of the TTL the proposer chose (see
    /// [`Lessor::ttl_to_propose`]). Returns the TTL granted.
    pub fn grant(&mut self, id: i64, ttl: i64, batch: &mut sled::Batch) -> Result<i64> {
        if self.leases.contains_key(&id) {
            return Err(EtcdError::LeaseExist);
        }
        let deadline = self
            .primary
            .then(|| Instant::now() + Duration::from_secs(ttl as u64));
        let lease = Lease {
            id,
            ttl,
            remaining_ttl: 0,
            keys: BTreeSet::new(),
            deadline,
        };
        batch.insert(&keys::lease(id)[..], lease.record().encode_to_vec());
        self.leases.insert(id, lease);
        Ok(ttl)
    }

    /// Applies a replicated revoke. Returns the attached keys, which the caller deletes in
    /// the same revision.
    pub fn revoke(&mut self, id: i64, batch: &mut sled::Batch) -> Result<Vec<Vec<u8>>> {
        let lease = self.leases.remove(&id).ok_or(EtcdError::LeaseNotFound)?;
        batch.remove(&keys::lease(id)[..]);
        Ok(lease.keys.into_iter().collect())
    }

    /// Applies a replicated checkpoint of a lease's remaining TTL.
    pub fn checkpoint(&mut self, id: i64, remaining: i64, batch: &mut sled::Batch) {
        if let Some(l) = self.leases.get_mut(&id) {
            l.remaining_ttl = remaining;
            batch.insert(&keys::lease(id)[..], l.record().encode_to_vec());
        }
    }

    /// Records that `key` is now attached to `lease` (0 = none) instead of `prev`.
    pub fn reattach(&mut self, key: &[u8], prev: i64, lease: i64) {
        if prev == lease {
            return;
        }
        if let Some(l) = self.leases.get_mut(&prev) {
            l.keys.remove(key);
        }
        if let Some(l) = self.leases.get_mut(&lease) {
            l.keys.insert(key.to_vec());
        }
    }

    /// Renews a lease (leader only). Returns its TTL, and whether a checkpoint of its
    /// remaining TTL is persisted that must now be reset (so a restart does not bring back
    /// the older, shorter remaining TTL).
    pub fn renew(&mut self, id: i64) -> Result<(i64, bool)> {
        let l = self.leases.get_mut(&id).ok_or(EtcdError::LeaseNotFound)?;
        if let Some(d) = l.deadline {
            if d <= Instant::now() {
                // Expired but not revoked yet: etcd refuses to revive it.
                return Err(EtcdError::LeaseNotFound);
            }
        }
        l.deadline = Some(Instant::now() + Duration::from_secs(l.ttl as u64));
        Ok((l.ttl, l.remaining_ttl > 0))
    }

    /// Makes this member the one that expires leases: every lease gets a deadline of its
    /// remaining TTL plus `extend`.
    pub fn promote(&mut self, extend: Duration) {
        self.primary = true;
        let now = Instant::now();
        for l in self.leases.values_mut() {
            let base = if l.remaining_ttl > 0 {
                l.remaining_ttl
            } else {
                l.ttl
            };
            l.deadline = Some(now + extend + Duration::from_secs(base as u64));
        }
    }

    /// Stops tracking expiry (this member lost leadership).
    pub fn demote(&mut self) {
        self.primary = false;
        for l in self.leases.values_mut() {
            l.deadline = None;
        }
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Leases whose deadline has passed.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        self.leases
            .values()
            .filter(|l| l.deadline.is_some_and(|d| d <= now))
            .map(|l| l.id)
            .collect()
    }

    /// Remaining TTLs of long leases worth checkpointing (leader only).
    pub fn checkpoints(&self, now: Instant) -> Vec<(i64, i64)> {
        self.leases
            .values()
            .filter(|l| l.deadline.is_some())
            .map(|l| (l.id, l.remaining_secs(now)))
            .filter(|(_, left)| *left > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, sled::Tree) {
        let d = tempfile::tempdir().unwrap();
        let t = sled::open(d.path()).unwrap().open_tree("state").unwrap();
        (d, t)
    }

    #[test]
    fn the_proposer_raises_to_its_min_ttl_and_every_member_grants_that() {
        let (_d, t) = tree();
        let proposer = Lessor::open(&t, 2).unwrap();
        assert_eq!(proposer.ttl_to_propose(1), 2);
        assert_eq!(proposer.ttl_to_propose(60), 60);
        // A member with a larger minimum applies the proposed TTL as it is.
        let mut l = Lessor::open(&t, 5).unwrap();
        let mut b = sled::Batch::default();
        assert_eq!(l.grant(7, proposer.ttl_to_propose(1), &mut b).unwrap(), 2);
        assert_eq!(l.grant(7, 10, &mut b), Err(EtcdError::LeaseExist));
        t.apply_batch(b).unwrap();
        let reopened = Lessor::open(&t, 5).unwrap();
        assert_eq!(reopened.get(7).unwrap().ttl, 2);
    }

    #[test]
    fn revoke_returns_attached_keys() {
        let (_d, t) = tree();
        let mut l = Lessor::open(&t, 2).unwrap();
        let mut b = sled::Batch::default();
        l.grant(1, 10, &mut b).unwrap();
        l.grant(2, 10, &mut b).unwrap();
        l.reattach(b"a", 0, 1);
        l.reattach(b"b", 0, 1);
        l.reattach(b"b", 1, 2);
        assert_eq!(l.revoke(1, &mut b).unwrap(), vec![b"a".to_vec()]);
        assert_eq!(l.revoke(1, &mut b), Err(EtcdError::LeaseNotFound));
    }

    #[test]
    fn only_the_primary_expires_and_promotion_extends() {
        let (_d, t) = tree();
        let mut l = Lessor::open(&t, 1).unwrap();
        let mut b = sled::Batch::default();
        l.grant(1, 1, &mut b).unwrap();
        let later = Instant::now() + Duration::from_secs(5);
        assert!(l.expired(later).is_empty());
        l.promote(Duration::from_secs(0));
        assert_eq!(l.expired(later), vec![1]);
        l.checkpoint(1, 100, &mut b);
        l.promote(Duration::from_secs(0));
        assert!(l.expired(later).is_empty());
        assert_eq!(l.renew(1).unwrap(), (1, true));
        assert_eq!(l.renew(9), Err(EtcdError::LeaseNotFound));
    }

    #[test]
    fn leases_are_listed_by_expiry() {
        let (_d, t) = tree();
        let mut l = Lessor::open(&t, 1).unwrap();
        let mut b = sled::Batch::default();
        for (id, ttl) in [(1, 60), (2, 100), (3, 30)] {
            l.grant(id, ttl, &mut b).unwrap();
        }
        assert_eq!(l.ids(), vec![1, 2, 3], "no deadlines: by ID");
        l.promote(Duration::from_secs(0));
        assert_eq!(l.ids(), vec![3, 1, 2]);
    }
}

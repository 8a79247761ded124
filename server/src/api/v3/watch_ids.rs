//! Which ID a new watcher of a stream gets, or why it is refused, as etcd's `watchStream`
//! decides: a refused create is answered "created and cancelled" with watch ID -1 and
//! the reason, so clients (etcdctl, clientv3) report it instead of waiting for events.

use etcd_proto::etcdserverpb::WatchCreateRequest;

/// Why a watcher is not created; the texts are etcd's (`mvcc` package), sent to the
/// client as the response's `cancel_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `key` is not before `range_end` (a range end of `"\0"` means "from the key").
    #[error("mvcc: watcher range is empty")]
    EmptyRange,
    /// The client chose an ID a watcher of this stream already has.
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
}

/// The IDs of one stream's watchers.
#[derive(Debug, Default)]
pub struct WatchIds {
    /// The next ID to try for a client that lets the server choose (ID 0); it only ever
    /// moves forward, so a cancelled watcher's ID is not given out again.
    next: i64,
}

impl WatchIds {
    /// The ID for the watcher `c` asks for; `taken` says which IDs are in use.
    pub fn assign(
        &mut self,
        c: &WatchCreateRequest,
        taken: impl Fn(i64) -> bool,
    ) -> Result<i64, Refused> {
        let from_key = c.range_end == [0];
        if !c.range_end.is_empty() && !from_key && c.key >= c.range_end {
            return Err(Refused::EmptyRange);
        }
        if c.watch_id != 0 {
            return if taken(c.watch_id) {
                Err(Refused::DuplicateId)
            } else {
                Ok(c.watch_id)
            };
        }
        while taken(self.next) {
            self.next += 1;
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn create(key: &str, end: &str, watch_id: i64) -> WatchCreateRequest {
        WatchCreateRequest {
            key: key.into(),
            range_end: end.into(),
            watch_id,
            ..Default::default()
        }
    }

    #[test]
    fn ids_move_forward_past_chosen_and_cancelled_ones() {
        let mut ids = WatchIds::default();
        let mut live = BTreeSet::new();
        let add = |ids: &mut WatchIds, live: &mut BTreeSet<i64>, id| {
            let got = ids.assign(&create("k", "", id), |i| live.contains(&i));
            if let Ok(i) = got {
                live.insert(i);
            }
            got
        };
        assert_eq!(add(&mut ids, &mut live, 0), Ok(0));
        assert_eq!(add(&mut ids, &mut live, 2), Ok(2));
        assert_eq!(add(&mut ids, &mut live, 0), Ok(1));
        assert_eq!(add(&mut ids, &mut live, 0), Ok(3));
        live.remove(&3);
        assert_eq!(
            add(&mut ids, &mut live, 0),
            Ok(4),
            "a cancelled ID is not reused"
        );
        assert_eq!(add(&mut ids, &mut live, -5), Ok(-5));
        assert_eq!(add(&mut ids, &mut live, 2), Err(Refused::DuplicateId));
        assert_eq!(add(&mut ids, &mut live, -5), Err(Refused::DuplicateId));
    }

    #[test]
    fn empty_ranges_are_refused_before_ids() {
        let mut ids = WatchIds::default();
        let none = |_| false;
        assert_eq!(
            ids.assign(&create("b", "a", 0), none),
            Err(Refused::EmptyRange)
        );
        assert_eq!(
            ids.assign(&create("a", "a", 0), none),
            Err(Refused::EmptyRange)
        );
        assert_eq!(
            ids.assign(&create("b", "a", 7), |_| true),
            Err(Refused::EmptyRange)
        );
        assert_eq!(ids.assign(&create("b", "\0", 0), none), Ok(0));
        assert_eq!(ids.assign(&create("", "\0", 0), none), Ok(1));
        assert_eq!(ids.assign(&create("a", "b", 0), none), Ok(2));
        assert_eq!(ids.assign(&create("a", "", 0), none), Ok(3));
        assert_eq!(
            Refused::DuplicateId.to_string(),
            "mvcc: duplicate watch ID provided on the WatchStream"
        );
    }
}

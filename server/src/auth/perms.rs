//! Key permissions as etcd 3.4 evaluates them: a user may do what the union of its roles'
//! permissions covers.
//!
//! A permission is a key (`range_end` empty), a range `[key, range_end)`, or everything
//! from `key` on (`range_end` is `"\0"`). A request's key or range is permitted when the
//! permitted intervals of its kind (read or write; `READWRITE` counts for both), merged
//! where they overlap or touch, cover it whole: two permissions `[a, c)` and `[c, e)`
//! together allow a range `[b, d)` neither allows alone, as etcd's interval tree does.

use std::cmp::Ordering;

use etcd_proto::authpb::permission::Type as PermType;
use etcd_proto::authpb::Permission;

/// What a request does with its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// Whether a permission of type `t` grants this access.
    fn granted_by(self, t: i32) -> bool {
        match PermType::try_from(t) {
            Ok(PermType::Readwrite) => true,
            Ok(PermType::Read) => self == Access::Read,
            Ok(PermType::Write) => self == Access::Write,
            Err(_) => false,
        }
    }
}

/// The end of an interval: a key, or past every key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End<'a> {
    Key(std::borrow::Cow<'a, [u8]>),
    Infinite,
}

impl PartialOrd for End<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (End::Infinite, End::Infinite) => Ordering::Equal,
            (End::Infinite, _) => Ordering::Greater,
            (_, End::Infinite) => Ordering::Less,
            (End::Key(a), End::Key(b)) => a.cmp(b),
        }
    }
}

/// The interval `[key, end)` a key and range end stand for, in etcd's conventions.
fn interval<'a>(key: &'a [u8], range_end: &'a [u8]) -> (&'a [u8], End<'a>) {
    let end = match range_end {
        [] => {
            let mut next = key.to_vec();
            next.push(0);
            End::Key(next.into())
        }
        [0] => End::Infinite,
        end => End::Key(end.into()),
    };
    (key, end)
}

/// Whether `perms` (every permission of every role of one user) cover `[key, range_end)`
/// (or the single `key` when `range_end` is empty) for `access`.
pub fn covers<'p>(
    perms: impl IntoIterator<Item = &'p Permission>,
    access: Access,
    key: &[u8],
    range_end: &[u8],
) -> bool {
    let (begin, end) = interval(key, range_end);
    if End::Key(begin.into()) >= end {
        // An empty range overlaps no permission, as in etcd's interval tree.
        return false;
    }
    let mut granted: Vec<(&[u8], End<'_>)> = perms
        .into_iter()
        .filter(|p| access.granted_by(p.perm_type))
        .map(|p| interval(&p.key, &p.range_end))
        .collect();
    granted.sort_by(|a, b| a.0.cmp(b.0));
    // Sweep from the request's start: every permission starting at or before the point
    // reached so far extends it; a gap before the request's end means not covered.
    let mut reached = End::Key(begin.into());
    for (start, stop) in granted {
        if End::Key(start.into()) > reached {
            break;
        }
        if stop > reached {
            reached = stop;
        }
        if reached >= end {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: PermType, key: &str, end: &[u8]) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.into(),
            range_end: end.to_vec(),
        }
    }

    #[test]
    fn single_keys_ranges_and_from_key() {
        let perms = [
            perm(PermType::Read, "a", b""),
            perm(PermType::Readwrite, "foo/", b"foo0"),
            perm(PermType::Write, "z", b"\0"),
        ];
        let can = |a, k: &str, e: &[u8]| covers(&perms, a, k.as_bytes(), e);
        assert!(can(Access::Read, "a", b""));
        assert!(!can(Access::Write, "a", b""));
        assert!(
            !can(Access::Read, "a", b"b"),
            "a range beyond the single key"
        );
        assert!(can(Access::Read, "foo/x", b""));
        assert!(can(Access::Write, "foo/", b"foo0"));
        assert!(can(Access::Read, "foo/a", b"foo/b"));
        assert!(
            !can(Access::Read, "foo/", b"foo1"),
            "crosses the prefix end"
        );
        assert!(!can(Access::Read, "foo", b""));
        assert!(can(Access::Write, "zz", b"\0"));
        assert!(can(Access::Write, "zebra", b""));
        assert!(!can(Access::Read, "zebra", b""));
        assert!(!can(Access::Read, "b", b"a"), "an empty range");
    }

    #[test]
    fn the_union_of_permissions_covers_a_range_none_covers_alone() {
        let perms = [
            perm(PermType::Read, "a", b"c"),
            perm(PermType::Readwrite, "c", b"e"),
        ];
        assert!(covers(&perms, Access::Read, b"b", b"d"));
        assert!(!covers(&perms, Access::Read, b"b", b"f"));
        assert!(!covers(&perms, Access::Write, b"b", b"d"));
        // A gap: [a, c) and [d, e) leave [c, d) uncovered.
        let gap = [
            perm(PermType::Read, "a", b"c"),
            perm(PermType::Read, "d", b"e"),
        ];
        assert!(!covers(&gap, Access::Read, b"b", b"dd"));
        // A single key next to a range closes the gap at exactly that key.
        let touching = [
            perm(PermType::Read, "a", b"c"),
            perm(PermType::Read, "c", b""),
            perm(PermType::Read, "c\0", b"e"),
        ];
        assert!(covers(&touching, Access::Read, b"a", b"e"));
    }

    #[test]
    fn no_permissions_cover_nothing() {
        assert!(!covers(&[], Access::Read, b"a", b""));
        assert!(!covers(&[], Access::Read, b"\0", b"\0"));
    }
}

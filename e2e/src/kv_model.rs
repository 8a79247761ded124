//! The sequential specification of one etcd key, for [`crate::wgl`]: what a linearizable
//! get, a put, a delete and a compare-and-swap txn may answer in each state, revisions
//! included.
//!
//! The workload makes this model strong and cheap to check: every written value is unique
//! in the run, and every operation that completes reports the version it saw (gets return
//! it, puts and deletes ask for `prev_kv`, a CAS txn puts with `prev_kv` or else gets the
//! key). Revisions are global, so besides values the model tracks `floor`, a lower bound of
//! the store's revision at the current point of the linearization: a write must be
//! acknowledged at a revision above it, and a read's header revision may not be below it.

use std::collections::HashSet;

/// A version of the key as a response showed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seen {
    pub value: String,
    pub mod_revision: i64,
}

/// What a compare-and-swap txn compares before its put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `value(key) = v` (false when the key is absent, as in etcd).
    Value(String),
    /// `mod_revision(key) = r` (an absent key has mod revision 0).
    ModRevision(i64),
}

/// One operation on the key, with its recorded outcome (None: unknown, the client gave
/// up on it; only writes are recorded unknown, a failed read has no effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A linearizable get: the version seen (None: absent) and the header revision.
    Get { seen: Option<Seen>, revision: i64 },
    /// A put of `value`; known: its revision and `prev_kv`.
    Put {
        value: String,
        result: Option<(i64, Option<Seen>)>,
    },
    /// A delete of the key; known: the header revision and `prev_kv` (None: nothing was
    /// deleted).
    Delete { result: Option<(i64, Option<Seen>)> },
    /// `if cond then put(value, prev_kv) else get`; known: whether it succeeded, the
    /// header revision and the version the put replaced or the get saw.
    Cas {
        cond: Cond,
        value: String,
        result: Option<(bool, i64, Option<Seen>)>,
    },
}

impl Op {
    /// The value this operation writes, if any.
    pub fn written(&self) -> Option<&str> {
        match self {
            Op::Put { value, .. } | Op::Cas { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value this operation's response showed, if any.
    pub fn observed(&self) -> Option<&str> {
        let seen = match self {
            Op::Get { seen, .. } => seen.as_ref(),
            Op::Put { result, .. } | Op::Delete { result } => {
                result.as_ref().and_then(|(_, s)| s.as_ref())
            }
            Op::Cas { result, .. } => result.as_ref().and_then(|(_, _, s)| s.as_ref()),
        };
        seen.map(|s| s.value.as_str())
    }

    /// Whether its response showed the key absent.
    pub fn observed_absent(&self) -> bool {
        match self {
            Op::Get { seen, .. } => seen.is_none(),
            Op::Put { result, .. } | Op::Delete { result } => {
                matches!(result, Some((_, None)))
            }
            Op::Cas { result, .. } => matches!(result, Some((_, _, None))),
        }
    }

    /// Whether its outcome is unknown.
    pub fn unknown(&self) -> bool {
        match self {
            Op::Get { .. } => false,
            Op::Put { result, .. } | Op::Delete { result } => result.is_none(),
            Op::Cas { result, .. } => result.is_none(),
        }
    }
}

/// The current version: its value and mod revision (None when written by an operation
/// whose outcome is unknown and not seen since).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub value: String,
    pub mod_revision: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    pub current: Option<Version>,
    /// The store's revision is at least this here.
    pub floor: i64,
}

/// The model of one key, absent at revision 1 (etcd's first revision).
pub struct Key;

/// Whether the response's `seen` can be the current version; the version with its mod
/// revision pinned to what was seen, if so.
fn matches(current: &Option<Version>, seen: &Option<Seen>) -> Option<Option<Version>> {
    match (current, seen) {
        (None, None) => Some(None),
        (Some(c), Some(s))
            if c.value == s.value && c.mod_revision.is_none_or(|r| r == s.mod_revision) =>
        {
            Some(Some(Version {
                value: s.value.clone(),
                mod_revision: Some(s.mod_revision),
            }))
        }
        _ => None,
    }
}

/// Whether `cond` holds for `current`. An unseen version (mod revision unknown) never has
/// the mod revision a CAS names: the workload takes that revision from a response that
/// showed another version.
fn holds(cond: &Cond, current: &Option<Version>) -> bool {
    match (cond, current) {
        (Cond::Value(v), Some(c)) => &c.value == v,
        (Cond::Value(_), None) => false,
        (Cond::ModRevision(r), None) => *r == 0,
        (Cond::ModRevision(r), Some(c)) => c.mod_revision == Some(*r),
    }
}

fn written(value: &str, revision: Option<i64>) -> Option<Version> {
    Some(Version {
        value: value.to_string(),
        mod_revision: revision,
    })
}

impl crate::wgl::Model for Key {
    type State = State;
    type Op = Op;

    fn init(&self) -> State {
        State {
            current: None,
            floor: 1,
        }
    }

    fn step(&self, s: &State, op: &Op) -> Option<State> {
        let at = |current, floor| Some(State { current, floor });
        // A read at `rev` sees the current version, no older than it.
        let read = |seen: &Option<Seen>, rev: i64| {
            let pinned = matches(&s.current, seen)?;
            let fits = rev >= s.floor && seen.as_ref().is_none_or(|v| v.mod_revision <= rev);
            fits.then(|| at(pinned, rev)).flatten()
        };
        // A write at `rev` replaces what it saw.
        let write = |seen: &Option<Seen>, rev: i64, new: Option<Version>| {
            matches(&s.current, seen)?;
            let fits = rev > s.floor && seen.as_ref().is_none_or(|v| v.mod_revision < rev);
            fits.then(|| at(new, rev)).flatten()
        };
        match op {
            Op::Get { seen, revision } => read(seen, *revision),
            Op::Put {
                value,
                result: Some((rev, prev)),
            } => write(prev, *rev, written(value, Some(*rev))),
            Op::Put {
                value,
                result: None,
            } => at(written(value, None), s.floor),
            // Deleting nothing changes nothing (etcd does not bump the revision).
            Op::Delete {
                result: Some((rev, None)),
            } => read(&None, *rev),
            Op::Delete {
                result: Some((rev, prev)),
            } => write(prev, *rev, None),
            Op::Delete { result: None } => at(None, s.floor),
            Op::Cas {
                cond,
                value,
                result: Some((succeeded, rev, seen)),
            } => {
                let seen_version = matches(&s.current, seen)?;
                if holds(cond, &seen_version) != *succeeded {
                    return None;
                }
                if *succeeded {
                    write(seen, *rev, written(value, Some(*rev)))
                } else {
                    read(seen, *rev)
                }
            }
            Op::Cas {
                cond,
                value,
                result: None,
            } => {
                if holds(cond, &s.current) {
                    at(written(value, None), s.floor)
                } else {
                    at(s.current.clone(), s.floor)
                }
            }
        }
    }
}

/// Which sub-histories of `history` explain themselves (given the indices kept): every
/// value a response showed was written by a kept operation, and every delete that may
/// explain a response showing the key absent (called before that response) is kept.
/// Keeps [`crate::wgl::minimise`] from blaming a violation on a dropped write.
pub fn self_contained(history: &[crate::wgl::Event<Op>]) -> impl Fn(&[usize]) -> bool + '_ {
    let deletes: Vec<usize> = (0..history.len())
        .filter(|&i| matches!(history[i].op, Op::Delete { .. }))
        .collect();
    move |keep: &[usize]| {
        let written: HashSet<&str> = keep
            .iter()
            .filter_map(|&i| history[i].op.written())
            .collect();
        let kept: HashSet<usize> = keep.iter().copied().collect();
        keep.iter().all(|&i| {
            let e = &history[i];
            match e.op.observed() {
                Some(v) => written.contains(v),
                None if e.op.observed_absent() => deletes
                    .iter()
                    .all(|&d| kept.contains(&d) || e.ret.is_some_and(|ret| history[d].call > ret)),
                None => true,
            }
        })
    }
}

/// Operations of a key's history that can be left out without changing its verdict:
/// writes with an unknown outcome whose value nothing ever showed (they may be taken as
/// never having happened, which is always allowed) — unless a kept unknown CAS compares
/// against that value. Leaving them in is correct but makes the search branch on each.
pub fn droppable(history: &[crate::wgl::Event<Op>]) -> Vec<bool> {
    let observed: HashSet<&str> = history.iter().filter_map(|e| e.op.observed()).collect();
    let mut drop: Vec<bool> = history
        .iter()
        .map(|e| {
            e.op.unknown()
                && !matches!(e.op, Op::Delete { .. })
                && e.op.written().is_some_and(|v| !observed.contains(v))
        })
        .collect();
    // An unknown CAS that is kept may need an unknown write's value to hold.
    loop {
        let compared: HashSet<&str> = history
            .iter()
            .zip(&drop)
            .filter_map(|(e, dropped)| match &e.op {
                Op::Cas {
                    cond: Cond::Value(c),
                    result: None,
                    ..
                } if !dropped => Some(c.as_str()),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for (e, dropped) in history.iter().zip(drop.iter_mut()) {
            if *dropped && e.op.written().is_some_and(|v| compared.contains(v)) {
                *dropped = false;
                changed = true;
            }
        }
        if !changed {
            return drop;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wgl::{is_linearizable, Event};

    fn seen(value: &str, mod_revision: i64) -> Option<Seen> {
        Some(Seen {
            value: value.into(),
            mod_revision,
        })
    }
    fn ev(op: Op, call: u64, ret: u64) -> Event<Op> {
        Event {
            op,
            call,
            ret: Some(ret),
        }
    }
    fn put(v: &str, rev: i64, prev: Option<Seen>) -> Op {
        Op::Put {
            value: v.into(),
            result: Some((rev, prev)),
        }
    }
    fn get(s: Option<Seen>, revision: i64) -> Op {
        Op::Get { seen: s, revision }
    }

    #[test]
    fn accepts_puts_gets_deletes_and_cas_in_order() {
        let h = [
            ev(get(None, 1), 0, 1),
            ev(put("a", 2, None), 2, 3),
            ev(get(seen("a", 2), 4), 4, 5),
            ev(
                Op::Cas {
                    cond: Cond::ModRevision(2),
                    value: "b".into(),
                    result: Some((true, 5, seen("a", 2))),
                },
                6,
                7,
            ),
            ev(
                Op::Cas {
                    cond: Cond::Value("a".into()),
                    value: "c".into(),
                    result: Some((false, 5, seen("b", 5))),
                },
                8,
                9,
            ),
            ev(
                Op::Delete {
                    result: Some((6, seen("b", 5))),
                },
                10,
                11,
            ),
            ev(
                Op::Delete {
                    result: Some((6, None)),
                },
                12,
                13,
            ),
        ];
        assert!(is_linearizable(&Key, &h));
    }

    #[test]
    fn rejects_a_write_acknowledged_at_a_revision_a_read_had_passed() {
        // The read at revision 5 returned before the put was called, so the put's revision
        // must be above 5.
        let h = [ev(get(None, 5), 0, 1), ev(put("a", 4, None), 2, 3)];
        assert!(!is_linearizable(&Key, &h));
    }

    #[test]
    fn rejects_a_lost_update() {
        // Two CAS from the same version both succeed: one of them must have seen the other.
        let cas = |v: &str, rev| Op::Cas {
            cond: Cond::ModRevision(2),
            value: v.into(),
            result: Some((true, rev, seen("a", 2))),
        };
        let h = [
            ev(put("a", 2, None), 0, 1),
            ev(cas("b", 3), 2, 10),
            ev(cas("c", 4), 2, 10),
        ];
        assert!(!is_linearizable(&Key, &h));
    }

    #[test]
    fn rejects_a_stale_read_among_concurrent_writes() {
        // Concurrent puts of a and b, then reads of b and, later, a: a was older.
        let h = [
            ev(put("a", 2, None), 0, 10),
            ev(put("b", 3, seen("a", 2)), 0, 10),
            ev(get(seen("b", 3), 3), 11, 12),
            ev(get(seen("a", 2), 3), 13, 14),
        ];
        assert!(!is_linearizable(&Key, &h));
    }

    #[test]
    fn an_unknown_put_seen_later_takes_the_revision_it_was_seen_with() {
        let unknown = Event {
            op: Op::Put {
                value: "u".into(),
                result: None,
            },
            call: 0,
            ret: None,
        };
        let h = [
            unknown.clone(),
            ev(get(None, 1), 1, 2),
            ev(get(seen("u", 2), 2), 3, 4),
            ev(put("x", 3, seen("u", 2)), 5, 6),
        ];
        assert!(is_linearizable(&Key, &h));
        // Two reads may not disagree about its revision.
        let h = [
            unknown,
            ev(get(seen("u", 2), 2), 3, 4),
            ev(get(seen("u", 3), 3), 5, 6),
        ];
        assert!(!is_linearizable(&Key, &h));
    }

    #[test]
    fn unseen_unknown_writes_are_droppable_unless_a_cas_needs_them() {
        let unknown = |op| Event {
            op,
            call: 0,
            ret: None,
        };
        let h = [
            unknown(Op::Put {
                value: "u".into(),
                result: None,
            }),
            unknown(Op::Put {
                value: "w".into(),
                result: None,
            }),
            unknown(Op::Cas {
                cond: Cond::Value("w".into()),
                value: "z".into(),
                result: None,
            }),
            ev(get(seen("z", 4), 4), 1, 2),
        ];
        assert_eq!(droppable(&h), [true, false, false, false]);
    }

    #[test]
    fn a_sub_history_must_keep_the_writes_and_deletes_behind_what_it_saw() {
        let h = [
            ev(put("a", 2, None), 0, 1),
            ev(
                Op::Delete {
                    result: Some((3, seen("a", 2))),
                },
                2,
                3,
            ),
            ev(get(None, 3), 4, 5),
            ev(get(seen("a", 2), 2), 0, 1),
        ];
        let ok = self_contained(&h);
        assert!(ok(&[0, 1, 2, 3]));
        // The absent key was seen after the delete was called: the delete must stay.
        assert!(!ok(&[0, 2]));
        // The read of a needs the put of a.
        assert!(!ok(&[1, 3]));
        assert!(ok(&[0, 3]));
    }
}

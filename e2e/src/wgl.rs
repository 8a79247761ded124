//! A linearizability checker: the Wing–Gong algorithm with Lowe's memoisation (the one
//! porcupine and Knossos' `wgl` use), for one object's history. Histories of several
//! independent objects (etcd's keys) are checked one object at a time, which is sound and
//! complete because linearizability is compositional (P-compositionality).
//!
//! Written here rather than taken from todc-utils (0.1.1, the crate the idea came from)
//! because that crate cannot say *which* part of a history fails, clones one `Vec<bool>`
//! per step (quadratic in a long history), and has no notion of an operation whose outcome
//! is unknown; all three matter for a harness whose histories come from a cluster under
//! faults.
//!
//! An operation whose client gave up on it (timeout, connection lost) has no return: it may
//! take effect at any point after its call, or never. It is modelled with its return at
//! infinity; since the model accepts such an operation in any state, "never" is the same as
//! "linearized after everything else", so the search ends as soon as every completed
//! operation is linearized.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of one object.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Op: Debug;
    /// The object's state before any operation.
    fn init(&self) -> Self::State;
    /// The state after `op` is applied to `state` as one atomic step, or None when `op`'s
    /// recorded outcome is impossible in `state`. Must return Some for an operation whose
    /// outcome is unknown.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation as a client saw it: called at `call`, returned at `ret` (None: unknown,
/// it may or may not have taken effect). Times are in any one monotonic unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<O> {
    pub op: O,
    pub call: u64,
    pub ret: Option<u64>,
}

/// An entry of the doubly linked list of calls and returns the search walks ("dancing
/// links": lifting an operation unlinks its two entries, unlifting relinks them in place).
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The operation (index into the history).
    op: usize,
    /// For a call, the index of its return entry (None: the return is at infinity).
    ret: Option<usize>,
    is_call: bool,
    prev: usize,
    next: Option<usize>,
}

/// A fixed-size set of operation indices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
}

/// The entries sorted by time, behind a sentinel at index 0. A call and a return at the
/// same instant are taken as overlapping (calls first), which only ever allows more orders.
fn entries<O>(history: &[Event<O>]) -> Vec<Entry> {
    let mut points: Vec<(u64, bool, usize)> = Vec::new();
    for (i, e) in history.iter().enumerate() {
        points.push((e.call, false, i));
        if let Some(ret) = e.ret {
            points.push((ret, true, i));
        }
    }
    points.sort();
    let mut list = vec![Entry {
        op: usize::MAX,
        ret: None,
        is_call: false,
        prev: 0,
        next: None,
    }];
    let mut call_entry = vec![0; history.len()];
    for (_, is_return, op) in points {
        let here = list.len();
        let prev = here - 1;
        list[prev].next = Some(here);
        list.push(Entry {
            op,
            ret: None,
            is_call: !is_return,
            prev,
            next: None,
        });
        if is_return {
            list[call_entry[op]].ret = Some(here);
        } else {
            call_entry[op] = here;
        }
    }
    list
}

fn unlink(list: &mut [Entry], i: usize) {
    let (prev, next) = (list[i].prev, list[i].next);
    list[prev].next = next;
    if let Some(n) = next {
        list[n].prev = prev;
    }
}

fn relink(list: &mut [Entry], i: usize) {
    let (prev, next) = (list[i].prev, list[i].next);
    list[prev].next = Some(i);
    if let Some(n) = next {
        list[n].prev = i;
    }
}

/// Whether `history` is linearizable with respect to `model`.
pub fn is_linearizable<M: Model>(model: &M, history: &[Event<M::Op>]) -> bool {
    let mut list = entries(history);
    let mut pending = history.iter().filter(|e| e.ret.is_some()).count();
    let mut state = model.init();
    let mut linearized = Bits::new(history.len());
    let mut cache: HashSet<(Bits, M::State)> = HashSet::new();
    // Lifted calls, with the state before each, to backtrack to.
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut cursor = list[0].next;
    loop {
        if pending == 0 {
            return true;
        }
        // Every completed operation left is still linked, so the walk meets a return
        // before it could run off the end.
        let Some(i) = cursor else { return false };
        let entry = list[i];
        if entry.is_call {
            if let Some(next) = model.step(&state, &history[entry.op].op) {
                let mut bits = linearized.clone();
                bits.flip(entry.op);
                if cache.insert((bits.clone(), next.clone())) {
                    stack.push((i, std::mem::replace(&mut state, next)));
                    linearized = bits;
                    unlink(&mut list, i);
                    if let Some(r) = entry.ret {
                        unlink(&mut list, r);
                        pending -= 1;
                    }
                    cursor = list[0].next;
                    continue;
                }
            }
            cursor = entry.next;
        } else {
            // A return whose call could not be linearized yet: undo the last choice.
            let Some((call, before)) = stack.pop() else {
                return false;
            };
            state = before;
            let lifted = list[call];
            linearized.flip(lifted.op);
            if let Some(r) = lifted.ret {
                relink(&mut list, r);
                pending += 1;
            }
            relink(&mut list, call);
            cursor = list[call].next;
        }
    }
}

/// A smallest sub-history (a subset of `history`'s operations, in their order) that is
/// still not linearizable: operations are dropped, in halves, quarters, ... and finally
/// one at a time, as long as the rest still fails and `admissible` holds for it (given
/// the indices kept). `admissible` keeps the result meaningful: dropping the write a read
/// saw would make a violation of its own; the whole history must be admissible and not
/// linearizable.
pub fn minimise<M: Model>(
    model: &M,
    history: &[Event<M::Op>],
    admissible: impl Fn(&[usize]) -> bool,
) -> Vec<usize>
where
    M::Op: Clone,
{
    let fails = |keep: &[usize]| {
        if !admissible(keep) {
            return false;
        }
        let sub: Vec<Event<M::Op>> = keep.iter().map(|&i| history[i].clone()).collect();
        !is_linearizable(model, &sub)
    };
    let mut keep: Vec<usize> = (0..history.len()).collect();
    // The shortest failing prefix first: operations called after the violation are noise.
    let mut lo = 1;
    while lo < keep.len() && !fails(&keep[..lo]) {
        lo = (lo * 2).min(keep.len());
    }
    let (mut ok, mut bad) = (lo / 2, lo);
    while bad - ok > 1 {
        let mid = (ok + bad) / 2;
        if fails(&keep[..mid]) {
            bad = mid;
        } else {
            ok = mid;
        }
    }
    if bad < keep.len() && fails(&keep[..bad]) {
        keep.truncate(bad);
    }
    let mut chunk = keep.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < keep.len() {
            let end = (start + chunk).min(keep.len());
            let rest: Vec<usize> = keep[..start].iter().chain(&keep[end..]).copied().collect();
            if !rest.is_empty() && fails(&rest) {
                keep = rest;
            } else {
                start = end;
            }
        }
        if chunk == 1 {
            return keep;
        }
        chunk = chunk.div_ceil(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of small integers, starting at 0.
    struct Register;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum RegOp {
        Read(u32),
        Write(u32),
    }

    impl Model for Register {
        type State = u32;
        type Op = RegOp;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, state: &u32, op: &RegOp) -> Option<u32> {
            match op {
                RegOp::Read(v) => (v == state).then_some(*state),
                RegOp::Write(v) => Some(*v),
            }
        }
    }

    fn ev(op: RegOp, call: u64, ret: u64) -> Event<RegOp> {
        Event {
            op,
            call,
            ret: Some(ret),
        }
    }

    use RegOp::{Read, Write};

    #[test]
    fn accepts_a_sequential_history() {
        let h = [ev(Write(1), 0, 1), ev(Read(1), 2, 3), ev(Write(2), 4, 5)];
        assert!(is_linearizable(&Register, &h));
    }

    #[test]
    fn rejects_a_stale_read_after_the_write_returned() {
        let h = [ev(Write(1), 0, 1), ev(Read(0), 2, 3)];
        assert!(!is_linearizable(&Register, &h));
    }

    #[test]
    fn accepts_concurrent_writes_seen_in_reverse_order_by_backtracking() {
        // Three overlapping writes read back as 3, 2, 1: only the order 3, 2, 1 works, so
        // the search must undo its first choices (write 1 first) several times.
        let h = [
            ev(Write(1), 0, 100),
            ev(Write(2), 1, 100),
            ev(Write(3), 2, 100),
            ev(Read(3), 10, 11),
            ev(Read(2), 20, 21),
            ev(Read(1), 30, 31),
        ];
        assert!(is_linearizable(&Register, &h));
    }

    #[test]
    fn rejects_reads_that_go_back_after_another_read_returned() {
        // Sequentially consistent but not linearizable: once one reader has seen the new
        // value, a later reader must not see the old one.
        let h = [
            ev(Write(1), 0, 100),
            ev(Read(1), 10, 20),
            ev(Read(0), 30, 40),
        ];
        assert!(!is_linearizable(&Register, &h));
    }

    #[test]
    fn rejects_a_history_only_after_exhausting_the_orders() {
        // Writes 1 and 2 overlap; the reads see 1, 2, 1 one after another: no order of
        // the two writes explains that, which the search learns only by trying both.
        let h = [
            ev(Write(1), 0, 100),
            ev(Write(2), 0, 100),
            ev(Read(1), 10, 11),
            ev(Read(2), 20, 21),
            ev(Read(1), 30, 31),
        ];
        assert!(!is_linearizable(&Register, &h));
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        let unknown = Event {
            op: Write(7),
            call: 5,
            ret: None,
        };
        // Seen long after its client gave up on it.
        let late = [unknown.clone(), ev(Read(0), 10, 11), ev(Read(7), 50, 51)];
        assert!(is_linearizable(&Register, &late));
        // Never seen at all.
        let never = [unknown.clone(), ev(Read(0), 10, 11)];
        assert!(is_linearizable(&Register, &never));
        // But not before it was called.
        let early = [ev(Read(7), 0, 1), unknown];
        assert!(!is_linearizable(&Register, &early));
    }

    #[test]
    fn minimise_keeps_only_the_operations_of_the_violation() {
        let mut h: Vec<Event<RegOp>> = (0..40)
            .map(|i| ev(Write(i + 10), 10 * i as u64, 10 * i as u64 + 1))
            .collect();
        h.push(ev(Write(1), 1000, 1001));
        h.push(ev(Read(1), 1002, 1003));
        h.push(ev(Write(2), 1004, 1005));
        h.push(ev(Read(1), 1006, 1007));
        h.extend((0..20).map(|i| ev(Read(2), 2000 + i, 2000 + i)));
        assert!(!is_linearizable(&Register, &h));
        let keep = minimise(&Register, &h, |_| true);
        let ops: Vec<&RegOp> = keep.iter().map(|&i| &h[i].op).collect();
        // Without constraints a read of a value nobody wrote is violation enough.
        assert_eq!(ops, [&Read(1)]);
        // With "every value read was written", the story is the write of 2 between the
        // write of 1 and a read of 1.
        let keep = minimise(&Register, &h, |keep| {
            keep.iter().all(|&i| match h[i].op {
                Read(v) => v == 0 || keep.iter().any(|&w| h[w].op == Write(v)),
                Write(_) => true,
            })
        });
        let ops: Vec<&RegOp> = keep.iter().map(|&i| &h[i].op).collect();
        assert_eq!(ops, [&Write(1), &Write(2), &Read(1)]);
    }
}

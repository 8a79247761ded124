//! The checks of a linearizability run, each returning what it found wrong (empty: fine):
//! per-key linearizability of the clients' history, acknowledged writes against what the
//! watches delivered, and serializable reads against the revisions they claim.

use std::collections::{HashMap, HashSet};

use crate::history::{History, Record, SerialRead};
use crate::kv_model::{droppable, self_contained, Key, Op};
use crate::watch_log::{version_at, Ledger};
use crate::wgl::{is_linearizable, minimise, Event};

/// One line per operation: client, call and return times (ms) and the operation.
fn describe(records: &[&Record]) -> String {
    records
        .iter()
        .map(|r| {
            let ms = |t: u64| format!("{:.3}", t as f64 / 1e6);
            let ret = r.event.ret.map_or("unknown".to_string(), ms);
            format!(
                "  client {:>2} [{} .. {}] {:?}",
                r.client,
                ms(r.event.call),
                ret,
                r.event.op
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks each key's history (P-compositionality); for a key that fails, the smallest
/// sub-history that still fails, one operation a line.
pub fn linearizable(history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, records) in history.per_key() {
        let all: Vec<Event<Op>> = records.iter().map(|r| r.event.clone()).collect();
        let drop = droppable(&all);
        let kept: Vec<&Record> = records
            .iter()
            .zip(&drop)
            .filter(|(_, d)| !**d)
            .map(|(r, _)| *r)
            .collect();
        let events: Vec<Event<Op>> = kept.iter().map(|r| r.event.clone()).collect();
        if is_linearizable(&Key, &events) {
            continue;
        }
        let smallest = minimise(&Key, &events, self_contained(&events));
        let shown: Vec<&Record> = smallest.iter().map(|&i| kept[i]).collect();
        problems.push(format!(
            "{key}: not linearizable ({} operations); smallest non-linearizable \
             sub-history ({} operations):\n{}",
            events.len(),
            shown.len(),
            describe(&shown)
        ));
    }
    problems
}

/// Acknowledged writes against the watches' ledger (complete from revision `from`): each
/// write is in it at its revision, and every value in it was written by some operation.
pub fn writes_in_ledger(history: &History, ledger: &Ledger, from: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let mut written: HashMap<&str, HashSet<&str>> = HashMap::new();
    for r in &history.ops {
        if let Some(v) = r.event.op.written() {
            written.entry(r.key.as_str()).or_default().insert(v);
        }
        let (rev, value) = match &r.event.op {
            Op::Put {
                value,
                result: Some((rev, _)),
            }
            | Op::Cas {
                value,
                result: Some((true, rev, _)),
                ..
            } => (*rev, Some(value.as_str())),
            Op::Delete {
                result: Some((rev, Some(_))),
            } => (*rev, None),
            _ => continue,
        };
        if rev < from {
            continue;
        }
        let found = ledger.get(&rev).is_some_and(|changes| {
            changes
                .iter()
                .any(|c| c.key == r.key && c.value.as_deref() == value)
        });
        if !found {
            problems.push(format!(
                "acknowledged {:?} on {} at revision {rev} is not what the watches saw \
                 there: {:?}",
                r.event.op,
                r.key,
                ledger.get(&rev)
            ));
        }
    }
    for (rev, changes) in ledger {
        for c in changes {
            if let Some(v) = &c.value {
                if !written
                    .get(c.key.as_str())
                    .is_some_and(|w| w.contains(v.as_str()))
                {
                    problems.push(format!(
                        "revision {rev}: {} = {v}, a value no client wrote to it",
                        c.key
                    ));
                }
            }
        }
    }
    problems.truncate(20);
    problems
}

/// Serializable reads, per member: a read that starts after another one on the same
/// member returned is at the same or a later revision, and each read shows the version
/// its key had at its revision (by the ledger, complete from revision 1).
pub fn serializable(history: &History, ledger: &Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    let mut per_member: HashMap<usize, Vec<&SerialRead>> = HashMap::new();
    for r in &history.serial {
        per_member.entry(r.member).or_default().push(r);
        let top = ledger.keys().next_back().copied().unwrap_or(0);
        if r.revision > top {
            problems.push(format!(
                "member {}: serializable read of {} at revision {}, beyond the last revision \
                 the watches saw ({top})",
                r.member, r.key, r.revision
            ));
            continue;
        }
        let expected = version_at(ledger, &r.key, r.revision);
        if r.seen != expected {
            problems.push(format!(
                "member {}: serializable read of {} at revision {} saw {:?}; the version \
                 then was {expected:?}",
                r.member, r.key, r.revision, r.seen
            ));
        }
    }
    for (member, mut reads) in per_member {
        reads.sort_by_key(|r| r.call);
        let mut by_return = reads.clone();
        by_return.sort_by_key(|r| r.ret);
        // The highest revision among reads that returned before the current one started.
        let (mut done, mut floor): (usize, Option<&SerialRead>) = (0, None);
        for r in &reads {
            while done < by_return.len() && by_return[done].ret < r.call {
                let d = by_return[done];
                if floor.is_none_or(|f| d.revision > f.revision) {
                    floor = Some(d);
                }
                done += 1;
            }
            if let Some(f) = floor.filter(|f| r.revision < f.revision) {
                problems.push(format!(
                    "member {member}: serializable read at revision {} (client {}, called at \
                     {} ns) after one at revision {} had returned (client {}, at {} ns)",
                    r.revision, r.client, r.call, f.revision, f.client, f.ret
                ));
            }
        }
    }
    problems.truncate(20);
    problems
}

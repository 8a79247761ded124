//! Differential tests of maintenance commands against Debian's etcd and ours: `compaction`
//! (plain, `--physical`, repeated, of a future revision, on a fresh store) and reads below
//! the compacted revision; `endpoint health` in every output format; `endpoint status`,
//! whose IDs, DB size and raft term/index legitimately differ, so only its shape is
//! compared (same fields and columns, same revision and leadership), with our version
//! reported as 3.5.0. `/metrics` uses etcd's metric names.

use std::collections::BTreeSet;

use etcd_e2e::{normalise, Pair};
use regex::Regex;
use serde_json::Value;

/// The version our server reports.
const OUR_VERSION: &str = "3.5.0";
/// The version Debian's etcd reports.
const REFERENCE_VERSION: &str = "3.4.23";

#[test]
fn compaction_and_reads_below_it() {
    let pair = Pair::start(&[]);
    for i in 1..=5 {
        pair.same(&["put", "k", &format!("v{i}")]);
    }
    let compacted = "etcdserver: mvcc: required revision has been compacted";
    let future = "etcdserver: mvcc: required revision is a future revision";
    for (args, expected) in [
        (&["compaction", "3"][..], "compacted revision 3"),
        (&["get", "k", "--rev", "2"], compacted),
        (&["get", "k", "--rev", "3"], "k\nv2\n"),
        (&["get", "k", "--rev", "6", "-w", "json"], r#""revision":6"#),
        (&["get", "k", "--rev", "100"], future),
        (&["compaction", "3"], compacted),
        (&["compaction", "2"], compacted),
        (&["compaction", "0"], compacted),
        (&["compaction", "100"], future),
        (&["compaction", "5", "--physical"], "compacted revision 5"),
        (&["get", "k", "--rev", "4"], compacted),
        (
            &["get", "k", "--rev", "5", "-w", "json"],
            r#""value":"djQ=""#,
        ),
        (&["compaction", "abc"], "invalid syntax"),
        (&["compaction"], "needs 1 argument"),
        // Compaction keeps the latest value; the server still writes and reads.
        (&["get", "k"], "k\nv5\n"),
        (&["put", "k", "v6"], "OK"),
        (&["get", "k", "-w", "json"], r#""version":6"#),
        (&["compaction", "7"], "compacted revision 7"),
    ] {
        let printed = pair.same(args);
        assert!(printed.contains(expected), "{args:?}: {printed}");
    }
}

#[test]
fn compaction_of_a_fresh_store() {
    let pair = Pair::start(&[]);
    for (args, expected) in [
        (&["compaction", "2"][..], "future revision"),
        (&["compaction", "0"], "compacted revision 0"),
        (&["compaction", "1"], "compacted revision 1"),
        (&["compaction", "1"], "has been compacted"),
        (&["get", "k", "--rev", "1"], "exit=0\n"),
    ] {
        let printed = pair.same(args);
        assert!(printed.contains(expected), "{args:?}: {printed}");
    }
}

/// Collapses table padding, which follows the width of cells that legitimately differ.
fn collapse_table(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut last = ' ';
        for ch in line.chars() {
            if !(ch == last && (ch == ' ' || ch == '-')) {
                out.push(ch);
            }
            last = ch;
        }
        out.push('\n');
    }
    out
}

#[test]
fn endpoint_health_in_every_format() {
    let pair = Pair::start(&[]);
    let simple = pair.same(&["endpoint", "health"]);
    assert_eq!(
        simple,
        "exit=0\nhttp://127.0.0.1:<port> is healthy: successfully committed proposal: took = <took>\n"
    );
    let json = pair.same(&["endpoint", "health", "-w", "json"]);
    assert!(json.contains(r#""health":true,"took":"<took>""#), "{json}");
    let took = Regex::new(r"\| [0-9.]+(ns|µs|ms|s) +\|").expect("valid regex");
    let (ours, reference) = pair.run(&["endpoint", "health", "-w", "table"]);
    let [ours, reference] =
        [ours, reference].map(|t| collapse_table(&took.replace_all(&t, "| <took> |")));
    assert_eq!(ours, reference);
    assert!(ours.contains("| true | <took> | |"), "{ours}");
}

/// One member's `endpoint status -w json`: the status object of its only endpoint.
fn status_json(printed: &str) -> Value {
    let all: Value = serde_json::from_str(printed).expect("endpoint status JSON");
    all[0]["Status"].clone()
}

/// The field names of a JSON object, nested objects as `outer.inner`.
fn field_names(v: &Value, prefix: &str) -> BTreeSet<String> {
    let Some(map) = v.as_object() else {
        return BTreeSet::new();
    };
    map.iter()
        .flat_map(|(k, inner)| {
            let name = format!("{prefix}{k}");
            let mut names = field_names(inner, &format!("{name}."));
            names.insert(name);
            names
        })
        .collect()
}

#[test]
fn endpoint_status_has_the_same_shape() {
    let pair = Pair::start(&[]);
    pair.same(&["put", "k", "v"]);

    let [ours, reference] = [&pair.ours, &pair.reference]
        .map(|m| status_json(&m.ctl_ok(&["endpoint", "status", "-w", "json"])));
    assert_eq!(field_names(&ours, ""), field_names(&reference, ""));
    assert_eq!(ours["version"], OUR_VERSION);
    assert_eq!(reference["version"], REFERENCE_VERSION);
    for s in [&ours, &reference] {
        assert_eq!(s["header"]["revision"], 2, "{s}");
        assert_eq!(
            s["leader"], s["header"]["member_id"],
            "a single member leads: {s}"
        );
        let applied = s["raftAppliedIndex"].as_u64().expect("applied index");
        assert!(applied > 0 && applied <= s["raftIndex"].as_u64().expect("index"));
        assert!(s["dbSize"].as_u64().expect("db size") > 0);
    }

    // Simple: endpoint, ID, version, DB size, leader, learner, term, index, applied, errors.
    let [ours, reference] = [&pair.ours, &pair.reference].map(|m| {
        let line = m.ctl_ok(&["endpoint", "status"]);
        line.trim_end()
            .split(", ")
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    assert_eq!(ours.len(), reference.len(), "{ours:?} / {reference:?}");
    assert_eq!(
        (ours[2].as_str(), reference[2].as_str()),
        (OUR_VERSION, REFERENCE_VERSION)
    );
    for (i, (o, r)) in ours.iter().zip(&reference).enumerate() {
        match i {
            0 | 4 | 5 => assert_eq!(normalise(o), normalise(r), "column {i}"),
            3 => assert!(
                [" B", " kB", " MB"].iter().any(|unit| o.ends_with(unit)),
                "DB size {o}"
            ),
            _ => {}
        }
    }

    // Table: the same header; the row has the same columns, ours at version 3.5.0.
    let [ours, reference] = [&pair.ours, &pair.reference].map(|m| {
        collapse_table(&normalise(
            &m.ctl_ok(&["endpoint", "status", "-w", "table"]),
        ))
    });
    let lines = |t: &str| t.lines().map(str::to_string).collect::<Vec<_>>();
    let (ours, reference) = (lines(&ours), lines(&reference));
    assert_eq!(ours.len(), reference.len());
    assert_eq!(ours[1], reference[1], "column headers");
    let cells = |row: &str| {
        row.split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    let (o, r) = (cells(&ours[3]), cells(&reference[3]));
    assert_eq!(o.len(), r.len());
    assert_eq!(
        (o[3].as_str(), r[3].as_str()),
        (OUR_VERSION, REFERENCE_VERSION)
    );
    assert_eq!((&o[5], &o[6]), (&r[5], &r[6]), "leader and learner columns");

    // Fields: the same field names.
    let [ours, reference] = [&pair.ours, &pair.reference].map(|m| {
        m.ctl_ok(&["endpoint", "status", "-w", "fields"])
            .lines()
            .map(|l| l.split(" : ").next().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(ours, reference);
}

/// Metric names (with labels) and values of a Prometheus text page.
fn metrics(page: &str) -> Vec<(String, f64)> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_carry_etcds_names_and_the_state() {
    let pair = Pair::start(&["--quota-backend-bytes=100000000"]);
    pair.same(&["put", "k", "v"]);
    let [ours, reference] = [&pair.ours, &pair.reference]
        .map(|m| metrics(&m.http_get("/metrics").expect("/metrics answers")));
    let reference_names: BTreeSet<&str> = reference
        .iter()
        .map(|(n, _)| n.split('{').next().unwrap_or(n))
        .collect();
    for (name, _) in &ours {
        let bare = name.split('{').next().unwrap_or(name);
        // `etcd_rs_*` are ours alone (what etcd has no counterpart for), named apart.
        assert!(
            reference_names.contains(bare) || bare.starts_with("etcd_rs_"),
            "etcd has no metric {bare}"
        );
    }
    assert!(ours
        .iter()
        .any(|(n, _)| n == "etcd_rs_backend_cache_capacity_bytes"));
    assert!(ours
        .iter()
        .any(|(n, _)| n == "process_resident_memory_bytes"));
    let value = |name: &str| {
        ours.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(value("etcd_server_has_leader"), 1.0);
    assert_eq!(value("etcd_server_quota_backend_bytes"), 1e8);
    assert_eq!(value("etcd_debugging_mvcc_current_revision"), 2.0);
    assert!(value("etcd_mvcc_db_total_size_in_use_in_bytes") > 0.0);
    // Raft's commit index, not the applied one: never behind it.
    let applied = value("etcd_server_proposals_applied_total");
    assert!(applied > 0.0);
    assert!(value("etcd_server_proposals_committed_total") >= applied);
}

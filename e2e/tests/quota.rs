//! The backend quota and defragmentation, driven by Debian's etcdctl: the operations
//! guide's walkthrough (fill to NOSPACE, compact, defrag, disarm, write again), run against
//! Debian's etcd and ours with the same commands and compared.

use std::process::Output;

use etcd_e2e::{normalise, transcript, Flavor, Member};

const QUOTA: &str = "--quota-backend-bytes=16777216";

/// A value of `n` KiB that does not compress.
fn noise(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(m: &Member) -> serde_json::Value {
    let out = m.ctl_ok(&["endpoint", "status", "-w", "json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("status json")[0]["Status"].clone()
}

/// Runs the walkthrough on one member; returns the transcript of each step.
fn walkthrough(flavor: Flavor) -> Vec<String> {
    let m = Member::start(flavor, &[QUOTA]);
    let value = noise(1024);
    let mut puts = 0;
    let refused = loop {
        let out = m.etcdctl_stdin(&["put", "key"], &value);
        if !out.status.success() {
            break out;
        }
        puts += 1;
        assert!(puts < 200, "{flavor:?}: the quota never filled");
    };
    let member_id = status_json(&m)["header"]["member_id"].as_u64().unwrap();
    let mut steps = vec![transcript(&refused)];

    let alarms = m.ctl_ok(&["alarm", "list"]);
    assert_eq!(alarms, format!("memberID:{member_id} alarm:NOSPACE \n"));
    let status = status_json(&m);
    assert_eq!(
        status["errors"][0].as_str(),
        Some(format!("memberID:{member_id} alarm:NOSPACE ").as_str()),
        "{flavor:?}: {status}"
    );

    // While the alarm is up: reads, deletes and compaction work; puts and grants do not.
    steps.push(transcript(&m.etcdctl_stdin(&["put", "small"], "v")));
    steps.push(transcript(&m.etcdctl(&["lease", "grant", "60"])));
    steps.push(transcript(&m.etcdctl(&["get", "key", "--keys-only"])));
    steps.push(transcript(&m.etcdctl(&["put", "other", "v"])));

    let rev = status_json(&m)["header"]["revision"].as_i64().unwrap();
    // How many puts fit differs between the backends, so the revision does too.
    let compacted = m.ctl_ok(&["compact", &rev.to_string()]);
    assert_eq!(compacted, format!("compacted revision {rev}\n"));
    let before = status_json(&m)["dbSize"].as_i64().unwrap();
    steps.push(normalise(&m.ctl_ok(&["defrag"])));
    let after = status_json(&m)["dbSize"].as_i64().unwrap();
    assert!(
        after < before / 2,
        "{flavor:?}: defrag did not shrink the db: {before} -> {after}"
    );
    // Still refused until the alarm is disarmed.
    steps.push(transcript(&m.etcdctl(&["put", "small", "v"])));
    steps.push(normalise(&m.ctl_ok(&["alarm", "disarm"])));
    steps.push(stdout(&m.etcdctl(&["alarm", "list"])));
    steps.push(transcript(&m.etcdctl(&["put", "small", "v"])));
    assert!(status_json(&m)["errors"]
        .as_array()
        .is_none_or(|e| e.is_empty()));
    // Member IDs derive from the ports.
    let id = member_id.to_string();
    steps
        .into_iter()
        .map(|s| s.replace(&id, "<member>"))
        .collect()
}

#[test]
fn quota_walkthrough_matches_etcd() {
    let ours = walkthrough(Flavor::Ours);
    let reference = walkthrough(Flavor::Reference);
    assert_eq!(ours.len(), reference.len());
    for (i, (o, r)) in ours.iter().zip(&reference).enumerate() {
        assert_eq!(o, r, "step {i} differs (left: ours, right: Debian etcd)");
    }
    assert!(
        ours[0].contains("Error: etcdserver: mvcc: database space exceeded"),
        "{}",
        ours[0]
    );
}

/// Bytes under a directory.
fn du(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => du(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn compact_and_defrag_give_space_back_to_the_filesystem() {
    let m = Member::start(Flavor::Ours, &[]);
    let value = noise(64);
    for round in 0..4 {
        for i in 0..40 {
            let out = m.etcdctl_stdin(&["put", &format!("k{i}")], &value);
            assert!(out.status.success(), "round {round} put {i}: {out:?}");
        }
    }
    let db = m.data_dir.join("member").join("snap").join("db");
    let rev = status_json(&m)["header"]["revision"].as_i64().unwrap();
    m.ctl_ok(&["compact", &rev.to_string()]);
    let in_use = status_json(&m)["dbSizeInUse"].as_i64().unwrap();
    let on_disk_before = du(&db);
    assert_eq!(
        m.ctl_ok(&["defrag"]),
        format!("Finished defragmenting etcd member[{}]\n", m.endpoint())
    );
    let on_disk_after = du(&db);
    assert!(
        on_disk_after < on_disk_before / 2,
        "files did not shrink: {on_disk_before} -> {on_disk_after}"
    );
    let status = status_json(&m);
    assert!(status["dbSize"].as_i64().unwrap() >= in_use);
    // Every key is still there, with its latest value.
    let keys = m.ctl_ok(&["get", "k", "--prefix", "--keys-only"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 40);
    assert_eq!(
        m.ctl_ok(&["get", "k7", "--print-value-only"]).trim_end(),
        value
    );
}

//! Disaster recovery with backup snapshots, as in the operations guide: save a snapshot of
//! a running cluster, lose every data dir, restore three members from the snapshot with
//! our `etcdctl snapshot restore`, and start them with no cluster flags. Plus the ways a
//! restore must refuse: a damaged snapshot, a raw database copy without
//! `--skip-hash-check`, a data dir that exists, a file of another format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use etcd_e2e::cluster::{initial_cluster, Cluster};
use etcd_e2e::{etcdctl, our_binary, Flavor, Member, Ports};

const LIMIT: Duration = Duration::from_secs(30);

/// Runs our etcdctl with `args` (no endpoint needed for snapshot files).
fn our_ctl(args: &[&str]) -> Output {
    Command::new(our_binary("etcdctl"))
        .args(args)
        .output()
        .expect("run our etcdctl")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Restores `snapshot` as member `name` of the cluster on `ports` into `data_dir`.
fn restore(snapshot: &Path, name: &str, ports: &[Ports], me: &Ports, data_dir: &Path) -> Output {
    our_ctl(&[
        "snapshot",
        "restore",
        &snapshot.display().to_string(),
        "--name",
        name,
        "--initial-cluster",
        &initial_cluster(ports),
        "--initial-cluster-token",
        "restored-cluster",
        "--initial-advertise-peer-urls",
        &me.peer_url(),
        "--data-dir",
        &data_dir.display().to_string(),
    ])
}

/// Starts a member on a restored data dir with only its name and URLs (the restored
/// data dir carries the cluster).
fn start_restored(name: &str, ports: Ports, data_dir: &Path) -> Member {
    let initial = format!("{name}={}", ports.peer_url());
    let data = format!("--data-dir={}", data_dir.display());
    Member::spawn_in_cluster(Flavor::Ours, name, ports, &initial, &[&data])
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad json {text:?}: {e}"))
}

#[test]
fn three_members_restored_from_a_snapshot_serve_every_key_in_a_new_cluster() {
    let backups = tempfile::tempdir().unwrap();
    let snap = backups.path().join("snapshot.db");
    let old = Cluster::start(Flavor::Ours, 3, &[]);
    let eps = old.endpoints();
    for i in 0..100 {
        etcdctl(&eps, &["put", &format!("k{i:03}"), &format!("v{i}")], None);
    }
    etcdctl(&eps, &["del", "k050"], None);
    // A value larger than one 32 KiB message, so the snapshot streams in several.
    let big = "x".repeat(100 * 1024);
    etcdctl(&eps, &["put", "k999"], Some(&big));
    let old_status = Cluster::status(&old.members[0]).unwrap();
    let old_cluster = json(&old.members[0].ctl_ok(&["member", "list", "-w", "json"]))["header"]
        ["cluster_id"]
        .as_u64()
        .unwrap();
    let expected = old.members[0].ctl_ok(&["get", "", "--prefix"]);

    // Debian's etcdctl saves our snapshot; ours reads its status.
    let saved = etcdctl(
        &old.members[0].endpoint(),
        &["snapshot", "save", &snap.display().to_string()],
        None,
    );
    assert!(saved.status.success(), "{saved:?}");
    let status = our_ctl(&[
        "snapshot",
        "status",
        &snap.display().to_string(),
        "-w",
        "json",
    ]);
    assert!(status.status.success(), "{status:?}");
    let status = json(&stdout(&status));
    assert_eq!(status["revision"].as_i64(), Some(old_status.revision));
    assert!(status["totalKey"].as_u64().unwrap() > 100);
    let table = stdout(&our_ctl(&[
        "snapshot",
        "status",
        &snap.display().to_string(),
        "-w",
        "table",
    ]));
    // The hash column is as wide as the hash's hex digits.
    let header: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["", "HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", ""],
        "{table}"
    );
    drop(old);

    // Every data dir is gone; three new members come back from the snapshot.
    let ports: Vec<Ports> = (0..3).map(|_| Ports::free()).collect();
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| backups.path().join(format!("m{i}.etcd")))
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let out = restore(&snap, &format!("m{i}"), &ports, p, &dirs[i]);
        assert!(out.status.success(), "restore m{i}: {out:?}");
    }
    let members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| start_restored(&format!("m{i}"), p.clone(), &dirs[i]))
        .collect();
    let new = Cluster::of_spawned(members);
    new.leader(LIMIT);
    for m in &new.members {
        assert_eq!(
            m.ctl_ok(&["get", "", "--prefix", "--consistency=s"]),
            expected
        );
    }
    let list = json(&new.members[1].ctl_ok(&["member", "list", "-w", "json"]));
    assert_eq!(list["members"].as_array().unwrap().len(), 3);
    assert_ne!(list["header"]["cluster_id"].as_u64().unwrap(), old_cluster);
    // The history continues from the snapshot's revision.
    let put = json(&new.members[2].ctl_ok(&["put", "after", "restore", "-w", "json"]));
    assert_eq!(
        put["header"]["revision"].as_i64(),
        Some(old_status.revision + 1)
    );
}

#[test]
fn damaged_foreign_and_unhashed_snapshots_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name);
    let mut m = Member::start(Flavor::Ours, &[]);
    for i in 0..20 {
        m.ctl_ok(&["put", &format!("k{i}"), "v"]);
    }
    let snap = path("s.db");
    let saved = our_ctl(&[
        &format!("--endpoints={}", m.endpoint()),
        "snapshot",
        "save",
        &snap.display().to_string(),
    ]);
    assert!(saved.status.success(), "{saved:?}");
    assert_eq!(
        stdout(&saved),
        format!("Snapshot saved at {}\n", snap.display())
    );
    let ports = [Ports::free()];
    let restore_to = |file: &Path, dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "snapshot".to_string(),
            "restore".into(),
            file.display().to_string(),
            "--name=m0".into(),
            format!("--initial-cluster={}", initial_cluster(&ports)),
            format!("--initial-advertise-peer-urls={}", ports[0].peer_url()),
            format!("--data-dir={}", dir.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        our_ctl(&args)
    };

    // One flipped byte: the hash no longer matches, nothing is written.
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(path("flipped.db"), &bytes).unwrap();
    let out = restore_to(&path("flipped.db"), &path("a.etcd"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Error: expected sha256 ["),
        "{out:?}"
    );
    assert!(!path("a.etcd").exists());

    // etcd's own snapshot format is not ours: refused with a pointer to make-mirror.
    let reference = Member::start(Flavor::Reference, &[]);
    reference.ctl_ok(&["put", "x", "y"]);
    let theirs = path("etcd.db");
    reference.ctl_ok(&["snapshot", "save", &theirs.display().to_string()]);
    let out = restore_to(&theirs, &path("b.etcd"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("make-mirror"), "{out:?}");
    let out = our_ctl(&["snapshot", "status", &path("nope.db").display().to_string()]);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: open {}: no such file or directory\n",
            path("nope.db").display()
        )
    );

    // A copy of a member's database has no hash: only --skip-hash-check restores it.
    // The member is stopped cleanly first: after a SIGKILL the state database may lag
    // the WAL by the entries a restart would replay, as etcd's bbolt file lags by its
    // last batch, and a copy of the database alone would miss them.
    assert!(m.signal(libc::SIGTERM));
    assert_eq!(m.wait_exit(LIMIT), Some(0), "{}", m.log());
    let copy = path("db-copy");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(m.data_dir.join("member").join("snap").join("db"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let out = restore_to(&copy, &path("c.etcd"), &[]);
    assert_eq!(
        stderr(&out),
        "Error: snapshot missing hash but --skip-hash-check=false\n"
    );
    let out = restore_to(&copy, &path("c.etcd"), &["--skip-hash-check"]);
    assert!(out.status.success(), "{out:?}");
    let restored = start_restored("m0", ports[0].clone(), &path("c.etcd"));
    let mut restored = restored;
    restored.wait_healthy(LIMIT);
    assert_eq!(
        restored
            .ctl_ok(&["get", "k", "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        20
    );

    // An existing data dir is left alone.
    std::fs::create_dir_all(path("d.etcd")).unwrap();
    std::fs::write(path("d.etcd").join("keep"), "mine").unwrap();
    let out = restore_to(&snap, &path("d.etcd"), &[]);
    assert_eq!(
        stderr(&out),
        format!(
            "Error: data-dir {:?} exists\n",
            path("d.etcd").display().to_string()
        )
    );
    assert_eq!(
        std::fs::read_to_string(path("d.etcd").join("keep")).unwrap(),
        "mine"
    );
}

//! The supported migration path between etcd and this server: Debian's `etcdctl
//! make-mirror` copies every key from a real etcd 3.4 into ours and keeps following
//! changes, and works the other way round too.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_e2e::{Flavor, Member};

/// Every key and value of a member, as `etcdctl get "" --prefix` prints them.
fn everything(m: &Member) -> String {
    m.ctl_ok(&["get", "", "--prefix"])
}

/// Starts `etcdctl make-mirror` from `src` into `dest` (it runs until killed).
fn mirror(src: &Member, dest: &Member) -> Child {
    Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", src.endpoint()))
        .args(["make-mirror", &dest.endpoint()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etcdctl make-mirror")
}

/// Waits until `dest` holds exactly what `src` holds.
fn wait_same(src: &Member, dest: &Member) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (want, got) = (everything(src), everything(dest));
        if want == got {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mirror incomplete:\nsource:\n{want}\ndestination:\n{got}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn migrate(from: Flavor, to: Flavor) {
    let src = Member::start(from, &[]);
    let dest = Member::start(to, &[]);
    for i in 0..150 {
        src.ctl_ok(&[
            "put",
            &format!("/registry/pods/p{i:03}"),
            &format!("spec-{i}"),
        ]);
    }
    src.ctl_ok(&["put", "binary\u{1}key", "value with spaces\nand a newline"]);
    src.ctl_ok(&["del", "/registry/pods/p007"]);
    let mut child = mirror(&src, &dest);
    wait_same(&src, &dest);
    // Changes made while the mirror runs follow.
    src.ctl_ok(&["put", "/registry/pods/p200", "late"]);
    src.ctl_ok(&["del", "/registry/pods/p008"]);
    wait_same(&src, &dest);
    let _ = child.kill();
    let _ = child.wait();
    let keys = dest.ctl_ok(&["get", "/registry/pods/", "--prefix", "--keys-only"]);
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 149);
}

#[test]
fn make_mirror_moves_every_key_from_etcd_to_ours() {
    migrate(Flavor::Reference, Flavor::Ours);
}

#[test]
fn make_mirror_moves_every_key_from_ours_to_etcd() {
    migrate(Flavor::Ours, Flavor::Reference);
}

//! Nothing acknowledged is lost in a power cut. Members keep their data dirs on lossyfs
//! (see `etcd_e2e::lossyfs`), which holds every written byte in memory until it is fsynced
//! or fdatasynced; clients write sequentially and concurrently, recording every
//! acknowledged put; then the members are SIGKILLed and the lossyfs daemons with them, so
//! whatever was not synced is gone, as after a power cut. Restarted on what reached the
//! backing directories, the members must return every acknowledged put with the revision
//! they acknowledged, and take new writes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use etcd_e2e::cluster::{initial_cluster, Cluster};
use etcd_e2e::lossyfs::mount::Mount;
use etcd_e2e::{Flavor, Member, Ports};

/// Acknowledged puts: key -> (value, revision in the put's response header).
type Acked = Arc<Mutex<BTreeMap<String, (String, i64)>>>;

/// Concurrent writers per round, besides the sequential one.
const WRITERS: usize = 8;
/// How long clients write before the power is cut. This is load, not a wait for an event:
/// the cut must come while writes are in flight, at no particular point.
const WRITE_FOR: Duration = Duration::from_millis(2500);
/// A put that takes longer than this means the member is gone.
const PUT_TIMEOUT: Duration = Duration::from_secs(5);

/// One member's disk: a backing directory that survives the cut, seen through lossyfs.
struct Disk {
    backing: tempfile::TempDir,
    mountpoint: tempfile::TempDir,
    mount: Option<Mount>,
}

impl Disk {
    fn new() -> Disk {
        Disk {
            backing: tempfile::tempdir().expect("backing dir"),
            mountpoint: tempfile::tempdir().expect("mount point"),
            mount: None,
        }
    }

    /// Power on: a fresh lossyfs over what the backing directory holds.
    fn power_on(&mut self) {
        self.mount = Some(Mount::start(self.backing.path(), self.mountpoint.path()));
    }

    fn power_cut(&mut self) {
        if let Some(mut mount) = self.mount.take() {
            mount.power_cut();
        }
    }

    fn data_dir_flag(&self, name: &str) -> String {
        // The harness gives every member a data dir of its own; a later --data-dir wins,
        // as with etcd's flags.
        format!(
            "--data-dir={}/{name}.etcd",
            self.mountpoint.path().display()
        )
    }
}

/// A cluster whose members keep their data on lossyfs. Members are declared first so they
/// are killed before their disks go away.
struct Site {
    cluster: Cluster,
    disks: Vec<Disk>,
}

impl Site {
    fn start(n: usize) -> Site {
        let mut disks: Vec<Disk> = (0..n).map(|_| Disk::new()).collect();
        let ports: Vec<Ports> = (0..n).map(|_| Ports::free()).collect();
        let initial = initial_cluster(&ports);
        let members = ports
            .into_iter()
            .zip(&mut disks)
            .enumerate()
            .map(|(i, (ports, disk))| {
                let name = format!("m{i}");
                disk.power_on();
                let flag = disk.data_dir_flag(&name);
                Member::spawn_in_cluster(Flavor::Ours, &name, ports, &initial, &[&flag])
            })
            .collect();
        Site {
            cluster: Cluster::of_spawned(members),
            disks,
        }
    }

    fn endpoints(&self) -> Vec<String> {
        self.cluster.members.iter().map(Member::endpoint).collect()
    }

    /// Every member and every disk at once: the members first, so none of them writes
    /// after its disk lost its cache.
    fn power_cut(&mut self) {
        for member in &mut self.cluster.members {
            member.kill9();
        }
        for disk in &mut self.disks {
            disk.power_cut();
        }
    }

    /// Power back on: fresh lossyfs mounts, every member started on them.
    fn power_on(&mut self) {
        for disk in &mut self.disks {
            disk.power_on();
        }
        for member in &mut self.cluster.members {
            member.start_again();
        }
        for member in &mut self.cluster.members {
            member.wait_healthy(Duration::from_secs(60));
        }
    }
}

/// Puts `<prefix>/<n>` for n = 0, 1, ... until a put fails, recording each acknowledged
/// one. Its own revisions must rise: each put is acknowledged before the next is sent.
async fn write_until_failure(endpoint: String, prefix: String, acked: Acked) {
    let Ok(Ok(mut client)) =
        tokio::time::timeout(PUT_TIMEOUT, Client::connect([endpoint], None)).await
    else {
        return;
    };
    let mut last = 0;
    for n in 0.. {
        let key = format!("{prefix}/{n:08}");
        let value = format!("{prefix}-value-{n}");
        let put = client.put(key.as_str(), value.as_str(), None);
        let Ok(Ok(resp)) = tokio::time::timeout(PUT_TIMEOUT, put).await else {
            return;
        };
        let revision = resp.header().expect("put header").revision();
        assert!(revision > last, "{key}: revision {revision} after {last}");
        last = revision;
        acked.lock().unwrap().insert(key, (value, revision));
    }
}

/// One round of load: a sequential writer on the first endpoint and [`WRITERS`] concurrent
/// ones spread over all, cut by a power failure of the whole site after [`WRITE_FOR`].
async fn write_then_cut(site: &mut Site, round: usize, acked: &Acked) -> usize {
    let endpoints = site.endpoints();
    let before = acked.lock().unwrap().len();
    let mut tasks = vec![tokio::spawn(write_until_failure(
        endpoints[0].clone(),
        format!("p/{round}/seq"),
        acked.clone(),
    ))];
    for w in 0..WRITERS {
        tasks.push(tokio::spawn(write_until_failure(
            endpoints[w % endpoints.len()].clone(),
            format!("p/{round}/w{w}"),
            acked.clone(),
        )));
    }
    tokio::time::sleep(WRITE_FOR).await;
    site.power_cut();
    for task in tasks {
        task.await.expect("writer task");
    }
    acked.lock().unwrap().len() - before
}

/// Every acknowledged put is there with its value and revision, the store's revision has
/// not gone back, and a new write is taken (above every acknowledged revision).
async fn check_after_power_loss(site: &Site, round: usize, acked: &Acked) {
    let endpoint = site.endpoints()[0].clone();
    let mut client = Client::connect([endpoint], None).await.expect("connect");
    let resp = client
        .get("p/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("get p/");
    let found: BTreeMap<String, (String, i64)> = resp
        .kvs()
        .iter()
        .map(|kv| {
            let key = kv.key_str().expect("utf-8 key").to_string();
            let value = kv.value_str().expect("utf-8 value").to_string();
            (key, (value, kv.mod_revision()))
        })
        .collect();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<String> = acked
        .iter()
        .filter(|(key, put)| found.get(*key) != Some(put))
        .map(|(key, (value, rev))| format!("{key}={value}@{rev}, found {:?}", found.get(key)))
        .collect();
    assert!(
        lost.is_empty(),
        "after power cut {round}: {} of {} acknowledged puts lost or changed, e.g.:\n{}",
        lost.len(),
        acked.len(),
        lost.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    let max_acked = acked.values().map(|(_, rev)| *rev).max().unwrap_or(0);
    let revision = resp.header().expect("get header").revision();
    assert!(
        revision >= max_acked,
        "after power cut {round}: revision went back from {max_acked} to {revision}"
    );
    let put = client
        .put(format!("after/{round}"), "new", None)
        .await
        .expect("a new write after the power cut");
    let new_revision = put.header().expect("put header").revision();
    assert!(
        new_revision > max_acked,
        "after power cut {round}: new write at revision {new_revision}, not above {max_acked}"
    );
}

/// Cuts the power of a site of `n` members `rounds` times under load, checking after each.
async fn power_cuts(n: usize, rounds: usize) {
    let mut site = Site::start(n);
    let acked: Acked = Arc::default();
    for round in 0..rounds {
        let written = write_then_cut(&mut site, round, &acked).await;
        assert!(
            written >= 50,
            "round {round}: only {written} puts acknowledged, too few to mean anything"
        );
        eprintln!("{n} member(s), power cut {round}: {written} puts acknowledged before it");
        site.power_on();
        check_after_power_loss(&site, round, &acked).await;
    }
}

/// lossyfs itself, through the kernel: synced bytes reach the backing file, unsynced ones
/// are seen while mounted and gone after the cut, and a rename is kept either way.
#[test]
fn lossyfs_loses_exactly_the_unsynced_bytes() {
    use std::io::Write;
    let mut disk = Disk::new();
    disk.power_on();
    let mounted = disk.mountpoint.path().to_path_buf();
    std::fs::create_dir(mounted.join("d")).unwrap();
    let mut file = std::fs::File::create(mounted.join("d/tmp")).unwrap();
    file.write_all(b"synced|").unwrap();
    file.sync_data().unwrap();
    file.write_all(b"unsynced").unwrap();
    std::fs::rename(mounted.join("d/tmp"), mounted.join("d/f")).unwrap();
    let mut other = std::fs::File::create(mounted.join("d/never-synced")).unwrap();
    other.write_all(b"gone").unwrap();
    drop((file, other)); // closing is no sync
    assert_eq!(
        std::fs::read(mounted.join("d/f")).unwrap(),
        b"synced|unsynced"
    );
    assert_eq!(std::fs::metadata(mounted.join("d/f")).unwrap().len(), 15);
    let backing = disk.backing.path().to_path_buf();
    assert_eq!(std::fs::read(backing.join("d/f")).unwrap(), b"synced|");

    disk.power_cut();
    assert_eq!(std::fs::read(backing.join("d/f")).unwrap(), b"synced|");
    assert_eq!(std::fs::read(backing.join("d/never-synced")).unwrap(), b"");
    disk.power_on();
    assert_eq!(
        std::fs::read(disk.mountpoint.path().join("d/f")).unwrap(),
        b"synced|"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_member_loses_no_acknowledged_put_in_power_cuts() {
    power_cuts(1, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_lose_no_acknowledged_put_when_all_lose_power() {
    power_cuts(3, 3).await;
}

//! A syscall audit of the write path: strace on a member while one client makes
//! sequential puts. Every write to the write-ahead log is followed by an fdatasync of the
//! same segment before the next write, and between two acknowledgements sent to the client
//! the log was fdatasynced: nothing is acknowledged before it is durable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use etcd_client::Client;
use etcd_e2e::{Flavor, Member};

const PUTS: usize = 200;

/// One traced system call: which, on which file or socket, and the bytes it moved.
#[derive(Debug)]
struct Call {
    name: String,
    target: String,
    bytes: i64,
}

/// Parses `strace -f -yy` lines (`PID NAME(FD<TARGET>, ...) = RET`), joining calls that
/// strace split into "unfinished" and "resumed" halves; a resumed call counts where it
/// completed.
fn parse(trace: &str) -> Vec<Call> {
    let mut pending = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let full = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        } else if let Some(tail) = rest.strip_prefix("<... ") {
            let head = pending.remove(pid).unwrap_or_default();
            let tail = tail.split_once(" resumed>").map_or("", |(_, t)| t);
            format!("{head}{tail}")
        } else {
            rest.to_string()
        };
        let Some((name, args)) = full.split_once('(') else {
            continue;
        };
        // `FD<TARGET>` is the first argument; a socket's target holds "->" itself.
        let target = args
            .split_once('<')
            .and_then(|(_, t)| t.find(">,").or_else(|| t.find(">)")).map(|end| &t[..end]))
            .unwrap_or_default()
            .to_string();
        // The result follows the last `)`, after padding strace adds to resumed calls.
        let bytes = full
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().strip_prefix('='))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(-1);
        calls.push(Call {
            name: name.to_string(),
            target,
            bytes,
        });
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_put_was_fdatasynced_to_the_log_first() {
    let member = Member::start(Flavor::Ours, &[]);
    let pid = member.pid().expect("running");
    let mut client = Client::connect([member.endpoint()], None).await.unwrap();
    client.put("warm-up", "v", None).await.unwrap();

    let out = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args(["-f", "-yy", "-o"])
        .arg(out.path())
        .args([
            "-e",
            "trace=pwrite64,write,writev,sendmsg,sendto,fdatasync,fsync",
        ])
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace is installed by scripts/test.sh");
    // strace says once that it has attached (to every thread of the process) before it
    // traces anything.
    let mut stderr = BufReader::new(strace.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("attached") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "strace ended without attaching"
        );
    }

    let port = member.ports.client;
    for i in 0..PUTS {
        client
            .put(format!("k{i}"), format!("value {i}"), None)
            .await
            .unwrap();
    }
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    strace.wait().unwrap();
    let trace = std::fs::read_to_string(out.path()).unwrap();
    if std::env::var_os("WAL_AUDIT_DUMP").is_some() {
        eprintln!("{trace}");
    }
    let calls = parse(&trace);

    let is_wal = |c: &Call| c.target.ends_with(".wal");
    let to_client =
        |c: &Call| c.target.starts_with("TCP:[") && c.target.contains(&format!(":{port}->"));
    let mut unsynced_write = false;
    let mut synced_since_ack = false;
    let (mut wal_writes, mut wal_syncs, mut acks) = (0, 0, 0);
    for c in &calls {
        if is_wal(c) && c.name == "pwrite64" {
            assert!(
                !unsynced_write,
                "two log writes without an fdatasync between them"
            );
            unsynced_write = true;
            wal_writes += 1;
        } else if is_wal(c) && (c.name == "fdatasync" || c.name == "fsync") && c.bytes == 0 {
            unsynced_write = false;
            synced_since_ack = true;
            wal_syncs += 1;
        } else if to_client(c) && c.bytes >= 40 {
            // A gRPC response (HTTP/2 HEADERS + DATA + trailers); window updates and pings
            // are shorter.
            assert!(
                !unsynced_write,
                "acknowledged with a log write not yet synced"
            );
            assert!(
                synced_since_ack,
                "acknowledgement {acks} sent without an fdatasync of the log since the last"
            );
            synced_since_ack = false;
            acks += 1;
        }
    }
    assert!(acks >= PUTS, "{acks} acknowledgements seen for {PUTS} puts");
    assert!(
        wal_writes >= PUTS,
        "{wal_writes} log writes for {PUTS} puts"
    );
    assert!(wal_syncs >= PUTS, "{wal_syncs} log syncs for {PUTS} puts");
}

//! Members on their own network namespaces, so a test can cut links between them with
//! iptables as a real network partition would, while the test itself (in the root
//! namespace) still reaches every member.
//!
//! Layout for one [`Network`] of `n` hosts on a private `10.a.b.0/24`:
//! - a hub namespace holding a bridge; the hub has no firewall rules of its own, so the
//!   root namespace's firewall (or `br_netfilter` settings) never sees member traffic;
//! - per host, a namespace with `eth0` = `10.a.b.(i+1)`, cabled to the bridge by a veth pair;
//! - one veth from the root namespace to the bridge with `10.a.b.254`, for clients.
//!
//! Names carry the process ID and a per-process counter, so parallel runs and tests do not
//! collide; whatever was created is deleted on drop (deleting a namespace deletes the veth
//! ends in it, and their peers), also when the test panics.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A command the network set-up ran that failed.
#[derive(Debug)]
pub struct NetnsError {
    pub command: String,
    pub output: String,
}

impl std::fmt::Display for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` failed (network namespaces need root, iproute2 and iptables): {}",
            self.command,
            self.output.trim()
        )
    }
}

impl std::error::Error for NetnsError {}

/// Runs `args` (program first), failing with its output.
fn run(args: &[&str]) -> Result<String, NetnsError> {
    let command = args.join(" ");
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| NetnsError {
            command: command.clone(),
            output: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetnsError {
            command,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Networks made by this process so far (part of every name).
static NETWORKS: AtomicUsize = AtomicUsize::new(0);

/// Hosts in separate namespaces on one bridge. Dropping it deletes them.
pub struct Network {
    subnet: [u8; 2],
    hub: String,
    hosts: Vec<String>,
    root_link: String,
}

impl Network {
    /// Creates `n` hosts (at most 253) and the link from the root namespace.
    pub fn new(n: usize) -> Result<Network, NetnsError> {
        assert!(n <= 253, "a /24 holds at most 253 hosts besides the root's");
        let pid = std::process::id();
        let seq = NETWORKS.fetch_add(1, Ordering::Relaxed);
        let name = format!("etcd-e2e-{pid}-{seq}");
        let mut net = Network {
            subnet: free_subnet(pid as usize + seq)?,
            hub: format!("{name}-hub"),
            hosts: Vec::new(),
            // Interface names are limited to 15 bytes and live in the shared root namespace.
            root_link: format!("ee{:x}", (pid as usize) << 8 | (seq & 0xff)),
            // Everything below is created in an order that lets drop undo a partial set-up.
        };
        add_namespace(&net.hub)?;
        let hub = net.hub.clone();
        net.in_ns(&hub, &["ip", "link", "add", "br0", "type", "bridge"])?;
        net.in_ns(&hub, &["ip", "link", "set", "br0", "up"])?;
        for i in 0..n {
            let ns = format!("{name}-h{i}");
            add_namespace(&ns)?;
            net.hosts.push(ns.clone());
            let port = format!("p{i}");
            run(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            net.in_ns(&hub, &["ip", "link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("{}/24", net.host(i));
            net.in_ns(&ns, &["ip", "addr", "add", &addr, "dev", "eth0"])?;
            net.in_ns(&ns, &["ip", "link", "set", "eth0", "up"])?;
        }
        let root = net.root_link.clone();
        run(&[
            "ip", "link", "add", &root, "type", "veth", "peer", "name", "root", "netns", &hub,
        ])?;
        net.in_ns(&hub, &["ip", "link", "set", "root", "master", "br0", "up"])?;
        let [a, b] = net.subnet;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.{a}.{b}.254/24"),
            "dev",
            &root,
        ])?;
        run(&["ip", "link", "set", &root, "up"])?;
        Ok(net)
    }

    /// The address of host `i`.
    pub fn host(&self, i: usize) -> Ipv4Addr {
        let [a, b] = self.subnet;
        Ipv4Addr::new(10, a, b, i as u8 + 1)
    }

    /// The root namespace's address on the network (where the test's own servers, such as
    /// [`crate::dns::Dns`], listen for the hosts).
    pub fn root_addr(&self) -> Ipv4Addr {
        let [a, b] = self.subnet;
        Ipv4Addr::new(10, a, b, 254)
    }

    /// Makes every host resolve names through the DNS server at `server`:
    /// `ip netns exec` mounts `/etc/netns/<host>/resolv.conf` over `/etc/resolv.conf`.
    /// Removed with the network.
    pub fn use_resolver(&self, server: Ipv4Addr) -> std::io::Result<()> {
        for ns in &self.hosts {
            let dir = std::path::Path::new("/etc/netns").join(ns);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("resolv.conf"), format!("nameserver {server}\n"))?;
        }
        Ok(())
    }

    /// The command prefix that runs a program on host `i`.
    pub fn launcher(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.hosts[i]]
            .map(String::from)
            .to_vec()
    }

    /// Drops every packet between host `i` and the hosts `from`, both ways, on host `i`.
    /// The root namespace (the test's clients) still reaches it.
    pub fn isolate(&self, i: usize, from: &[usize]) -> Result<(), NetnsError> {
        for &j in from {
            let peer = self.host(j).to_string();
            let ns = &self.hosts[i];
            self.in_ns(ns, &["iptables", "-A", "INPUT", "-s", &peer, "-j", "DROP"])?;
            self.in_ns(ns, &["iptables", "-A", "OUTPUT", "-d", &peer, "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Removes every rule [`Network::isolate`] added on host `i`.
    pub fn heal(&self, i: usize) -> Result<(), NetnsError> {
        let ns = &self.hosts[i];
        self.in_ns(ns, &["iptables", "-F", "INPUT"])?;
        self.in_ns(ns, &["iptables", "-F", "OUTPUT"])?;
        Ok(())
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Result<String, NetnsError> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Processes still running in a namespace keep it alive after `ip netns del`; the
        // members are expected to be dropped (killed) before their network.
        for ns in self.hosts.iter().chain([&self.hub]) {
            let _ = run(&["ip", "netns", "del", ns]);
            let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(ns));
        }
        // Normally gone with its peer in the hub; a half-made set-up may have left it.
        let _ = run(&["ip", "link", "del", &self.root_link]);
    }
}

/// Creates namespace `ns` with its loopback up; a leftover of an aborted run with the
/// same process ID is replaced.
fn add_namespace(ns: &str) -> Result<(), NetnsError> {
    let _ = run(&["ip", "netns", "del", ns]);
    run(&["ip", "netns", "add", ns])?;
    run(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])?;
    Ok(())
}

/// A `10.a.b.0/24` (a in 100..200) with no route in the root namespace yet, searched from
/// a starting point derived from `seed`.
fn free_subnet(seed: usize) -> Result<[u8; 2], NetnsError> {
    let routes = run(&["ip", "-4", "route", "show"])?;
    (0..100 * 256)
        .map(|k| (seed * 7919 + k) % (100 * 256))
        .map(|x| [100 + (x / 256) as u8, (x % 256) as u8])
        .find(|[a, b]| !routes.contains(&format!("10.{a}.{b}.")))
        .ok_or_else(|| NetnsError {
            command: "ip -4 route show".into(),
            output: "no free 10.x.y.0/24 subnet".into(),
        })
}

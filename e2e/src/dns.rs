//! A real DNS server for discovery tests: Debian's dnsmasq, serving SRV and A records of a
//! test domain on the root namespace's address of a [`Network`], with every host of the
//! network resolving through it.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use crate::netns::Network;

/// An SRV record: `_service._tcp.<domain>` pointing at `target:port`.
#[derive(Debug, Clone)]
pub struct Srv {
    pub service: String,
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

impl Srv {
    pub fn new(service: &str, target: &str, port: u16) -> Srv {
        Srv {
            service: service.to_string(),
            target: target.to_string(),
            port,
            priority: 0,
            weight: 0,
        }
    }
}

/// The records of one domain.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub domain: String,
    pub srv: Vec<Srv>,
    /// `name` resolves to `addr` (an A record).
    pub hosts: Vec<(String, Ipv4Addr)>,
}

/// dnsmasq answering for a [`Zone`]; killed on drop.
pub struct Dns {
    listen: Ipv4Addr,
    child: Child,
}

impl Dns {
    /// Serves `zone` on the network's root address and points every host at it.
    pub fn start(net: &Network, zone: &Zone) -> Dns {
        let listen = net.root_addr();
        net.use_resolver(listen)
            .expect("write the hosts' resolv.conf");
        Dns {
            listen,
            child: spawn(listen, zone),
        }
    }

    /// Replaces the records (dnsmasq reads them at start, so it is restarted).
    pub fn update(&mut self, zone: &Zone) {
        stop(&mut self.child);
        self.child = spawn(self.listen, zone);
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn(listen: Ipv4Addr, zone: &Zone) -> Child {
    let mut args = vec![
        "--keep-in-foreground".to_string(),
        "--conf-file=/dev/null".into(),
        "--pid-file=".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--bind-interfaces".into(),
        format!("--listen-address={listen}"),
        "--port=53".into(),
        "--local-ttl=0".into(),
        // Names of the domain that have no record are answered NXDOMAIN, not refused.
        format!("--local=/{}/", zone.domain),
        "--log-facility=-".into(),
    ];
    for s in &zone.srv {
        args.push(format!(
            "--srv-host={}._tcp.{},{},{},{},{}",
            s.service, zone.domain, s.target, s.port, s.priority, s.weight
        ));
    }
    for (name, addr) in &zone.hosts {
        args.push(format!("--host-record={name},{addr}"));
    }
    let mut child = Command::new("dnsmasq")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dnsmasq (Debian's dnsmasq-base)");
    wait_listening(listen, &mut child);
    child
}

/// Waits until dnsmasq answers on `listen:53` (a query it can answer, over UDP).
fn wait_listening(listen: Ipv4Addr, child: &mut Child) {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .expect("timeout");
    // A query for `.` type NS, id 1, recursion desired: any answer (even REFUSED) will do.
    let query = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    crate::wait::until(
        std::time::Duration::from_secs(10),
        "dnsmasq answers",
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dnsmasq exited with {status}");
            }
            let _ = socket.send_to(&query, (listen, 53));
            let mut buf = [0u8; 512];
            socket.recv_from(&mut buf).is_ok()
        },
    );
}

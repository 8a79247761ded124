//! The faults of a linearizability run, one at a time, chosen by a seeded generator: kill
//! -9 of a random member or of the leader (then a restart on the same data dir), a pause
//! (SIGSTOP, later SIGCONT) and a network partition of one member from all the others
//! (iptables in its namespace, see [`crate::netns`]). After each fault is undone the
//! nemesis waits for every member to serve clients again before the next one; a member
//! that does not within [`RECOVERY`] is a finding, reported with its log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::cluster::Cluster;
use crate::netns::Network;
use crate::Member;

/// How long a member may take to serve clients again once its fault is undone.
pub const RECOVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill,
    Pause,
    Partition,
}

/// What the nemesis did (with times since the run's origin) and what went wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub actions: Vec<String>,
    pub problems: Vec<String>,
}

pub struct Nemesis<'a> {
    pub members: Vec<Member>,
    net: &'a Network,
    rng: StdRng,
    origin: Instant,
    report: Report,
}

impl<'a> Nemesis<'a> {
    pub fn new(members: Vec<Member>, net: &'a Network, seed: u64, origin: Instant) -> Self {
        Nemesis {
            members,
            net,
            rng: StdRng::seed_from_u64(seed ^ 0x4e45_4d45_5349_5300),
            origin,
            report: Report::default(),
        }
    }

    fn note(&mut self, what: String) {
        let at = self.origin.elapsed().as_millis();
        eprintln!("nemesis {at:>7} ms: {what}");
        self.report.actions.push(format!("{at:>7} ms: {what}"));
    }

    /// Sleeps up to `d`, in steps, returning early once `stop` is set.
    fn hold(d: Duration, stop: &AtomicBool) {
        let end = Instant::now() + d;
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The leader's index, if the running members agree on one right now.
    fn leader(&self) -> Option<usize> {
        let statuses: Vec<_> = self.members.iter().map(Cluster::status).collect();
        let leader = statuses.iter().flatten().next()?.leader;
        statuses
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.member_id == leader))
    }

    /// Injects faults until `stop`, then undoes the last one and gives the members back
    /// with what happened.
    pub fn run(mut self, stop: &AtomicBool) -> (Vec<Member>, Report) {
        let mut queue = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let quiet = Duration::from_millis(self.rng.gen_range(300..1500));
            Self::hold(quiet, stop);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            // Every kind in each three faults, in a random order: a short run sees them all.
            if queue.is_empty() {
                queue = vec![Fault::Kill, Fault::Pause, Fault::Partition];
                queue.shuffle(&mut self.rng);
            }
            let fault = queue.pop().expect("refilled");
            let at_leader = self.rng.gen_bool(0.5);
            let random = self.rng.gen_range(0..self.members.len());
            let held = Duration::from_millis(self.rng.gen_range(500..4000));
            let target = if at_leader {
                self.leader().unwrap_or(random)
            } else {
                random
            };
            let who = format!(
                "{}{}",
                self.members[target].name,
                if at_leader { " (leader)" } else { "" }
            );
            self.note(format!("{fault:?} {who} for {held:?}"));
            self.inject(fault, target);
            Self::hold(held, stop);
            self.undo(fault, target);
            self.note(format!("undone {fault:?} {who}"));
            self.wait_all_ready();
        }
        (self.members, self.report)
    }

    fn inject(&mut self, fault: Fault, i: usize) {
        match fault {
            Fault::Kill => self.members[i].kill9(),
            Fault::Pause => self.signal(i, libc::SIGSTOP),
            Fault::Partition => {
                let others: Vec<usize> = (0..self.members.len()).filter(|&j| j != i).collect();
                if let Err(e) = self.net.isolate(i, &others) {
                    self.report.problems.push(format!("cannot partition: {e}"));
                }
            }
        }
    }

    fn undo(&mut self, fault: Fault, i: usize) {
        match fault {
            Fault::Kill => self.members[i].start_again(),
            Fault::Pause => self.signal(i, libc::SIGCONT),
            Fault::Partition => {
                if let Err(e) = self.net.heal(i) {
                    self.report.problems.push(format!("cannot heal: {e}"));
                }
            }
        }
    }

    fn signal(&mut self, i: usize, sig: libc::c_int) {
        if self.members[i].is_running() && !self.members[i].signal(sig) {
            self.report
                .problems
                .push(format!("signal {sig} to {} failed", self.members[i].name));
        }
    }

    /// Waits until every member answers `endpoint health`; one that does not within
    /// [`RECOVERY`] is reported with the end of its log.
    pub fn wait_all_ready(&mut self) {
        let deadline = Instant::now() + RECOVERY;
        for i in 0..self.members.len() {
            loop {
                let m = &self.members[i];
                let out = m.etcdctl(&["endpoint", "health", "--command-timeout=2s"]);
                if out.status.success() {
                    break;
                }
                if Instant::now() > deadline {
                    let log = m.log();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                    let problem = format!(
                        "{} not serving clients {RECOVERY:?} after the last fault was undone; \
                         its log ends with:\n{tail}",
                        m.name
                    );
                    self.note(format!("{} not ready", m.name));
                    self.report.problems.push(problem);
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

//! The members the gateway forwards to, and which one a new connection goes to: etcd's
//! choice (lowest SRV priority among active members; by weight within it, weight-0
//! members round robin), so a gateway behind SRV records spreads connections as etcd's does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::Rng;

/// One member's client address, with its SRV priority and weight (0 for `--endpoints`).
#[derive(Debug)]
pub struct Remote {
    pub addr: String,
    pub priority: u16,
    pub weight: u16,
    inactive: AtomicBool,
}

impl Remote {
    pub fn new(addr: String, priority: u16, weight: u16) -> Remote {
        Remote {
            addr,
            priority,
            weight,
            inactive: AtomicBool::new(false),
        }
    }

    pub fn is_active(&self) -> bool {
        !self.inactive.load(Ordering::Relaxed)
    }

    /// Marks the member as down (`false`) or up (`true`); returns whether it changed.
    pub fn set_active(&self, active: bool) -> bool {
        self.inactive.swap(!active, Ordering::Relaxed) == active
    }
}

/// The current members and the round-robin position.
#[derive(Debug, Default)]
pub struct Remotes {
    pub list: Vec<Arc<Remote>>,
    pick_count: usize,
}

impl Remotes {
    pub fn new(list: Vec<Arc<Remote>>) -> Remotes {
        Remotes {
            list,
            pick_count: 0,
        }
    }

    /// Replaces the members, keeping the state of those that stay (a member marked down
    /// stays down until the monitor sees it up).
    pub fn replace(&mut self, fresh: Vec<Arc<Remote>>) {
        let kept = fresh
            .into_iter()
            .map(|r| {
                self.list
                    .iter()
                    .find(|old| {
                        old.addr == r.addr && old.priority == r.priority && old.weight == r.weight
                    })
                    .cloned()
                    .unwrap_or(r)
            })
            .collect();
        self.list = kept;
    }

    /// The member for a new connection, or None when every member is down.
    pub fn pick(&mut self, rng: &mut impl Rng) -> Option<Arc<Remote>> {
        let best = self
            .list
            .iter()
            .filter(|r| r.is_active())
            .map(|r| r.priority)
            .min()?;
        let class: Vec<&Arc<Remote>> = self
            .list
            .iter()
            .filter(|r| r.is_active() && r.priority == best)
            .collect();
        let weighted: Vec<&Arc<Remote>> = class.iter().copied().filter(|r| r.weight > 0).collect();
        let unweighted: Vec<&Arc<Remote>> =
            class.iter().copied().filter(|r| r.weight == 0).collect();
        if !weighted.is_empty() {
            // Weight-0 records get a small chance when weighted ones exist (RFC 2782).
            if !unweighted.is_empty() && rng.gen_range(0..100) == 1 {
                let r = unweighted[self.pick_count % unweighted.len()];
                self.pick_count += 1;
                return Some(r.clone());
            }
            let total: u32 = weighted.iter().map(|r| u32::from(r.weight)).sum();
            let mut choose = rng.gen_range(0..total);
            for r in &weighted {
                let w = u32::from(r.weight);
                if choose < w {
                    return Some((*r).clone());
                }
                choose -= w;
            }
        }
        let r = unweighted[self.pick_count % unweighted.len()];
        self.pick_count += 1;
        Some(r.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remotes(spec: &[(&str, u16, u16)]) -> Remotes {
        Remotes::new(
            spec.iter()
                .map(|(a, p, w)| Arc::new(Remote::new(a.to_string(), *p, *w)))
                .collect(),
        )
    }

    #[test]
    fn unweighted_members_take_turns_and_down_ones_are_skipped() {
        let mut r = remotes(&[("a:1", 0, 0), ("b:1", 0, 0), ("c:1", 0, 0)]);
        let mut rng = rand::thread_rng();
        let picks: Vec<String> = (0..6)
            .map(|_| r.pick(&mut rng).unwrap().addr.clone())
            .collect();
        assert_eq!(picks, ["a:1", "b:1", "c:1", "a:1", "b:1", "c:1"]);
        r.list[1].set_active(false);
        let picks: Vec<String> = (0..4)
            .map(|_| r.pick(&mut rng).unwrap().addr.clone())
            .collect();
        assert!(picks.iter().all(|a| a != "b:1"), "{picks:?}");
        for x in &r.list {
            x.set_active(false);
        }
        assert!(r.pick(&mut rng).is_none());
    }

    #[test]
    fn the_lowest_priority_class_wins_while_it_is_up() {
        let mut r = remotes(&[("backup:1", 10, 0), ("main:1", 0, 0)]);
        let mut rng = rand::thread_rng();
        assert!((0..10).all(|_| r.pick(&mut rng).unwrap().addr == "main:1"));
        r.list[1].set_active(false);
        assert_eq!(r.pick(&mut rng).unwrap().addr, "backup:1");
    }

    #[test]
    fn weights_share_connections_in_proportion() {
        let mut r = remotes(&[("heavy:1", 0, 90), ("light:1", 0, 10)]);
        let mut rng = rand::thread_rng();
        let heavy = (0..2000)
            .filter(|_| r.pick(&mut rng).unwrap().addr == "heavy:1")
            .count();
        assert!((1600..1990).contains(&heavy), "{heavy}");
    }

    #[test]
    fn replacing_keeps_the_state_of_members_that_stay() {
        let mut r = remotes(&[("a:1", 0, 0), ("b:1", 0, 0)]);
        r.list[0].set_active(false);
        r.replace(vec![
            Arc::new(Remote::new("a:1".into(), 0, 0)),
            Arc::new(Remote::new("c:1".into(), 0, 0)),
        ]);
        let state: Vec<(String, bool)> = r
            .list
            .iter()
            .map(|x| (x.addr.clone(), x.is_active()))
            .collect();
        assert_eq!(state, [("a:1".into(), false), ("c:1".into(), true)]);
    }
}

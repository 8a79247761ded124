//! Request pacing for load generators: Go's `rate.NewLimiter(r, 1)` as etcd's tools use it,
//! a slot every `1/r` seconds, no bursts, handed to whoever asks first.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out one slot every `interval`; a caller that comes late gets its slot at once,
/// but an idle limiter saves up no more than that one slot (Go's burst of 1).
pub struct Limiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Limiter {
    /// A limiter for `per_second` slots a second (at least one).
    pub fn per_second(per_second: u32) -> Limiter {
        Limiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next slot; `false` without waiting when that slot would come after
    /// `deadline` (Go's `Wait` refuses a reservation its context would not live to see).
    pub async fn wait(&self, deadline: Instant) -> bool {
        let slot = {
            let mut next = self.next.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            if slot > deadline {
                return false;
            }
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_paced_and_stop_at_the_deadline() {
        let limiter = Limiter::per_second(10);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        let mut slots = 0;
        while limiter.wait(deadline).await {
            slots += 1;
        }
        // Slots at 0, 0.1, ..., 1.0 s: the first comes at once, none after the deadline.
        assert_eq!(slots, 11);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_saves_up_one_slot_only() {
        let limiter = Limiter::per_second(10);
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(limiter.wait(deadline).await);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = Instant::now();
        assert!(limiter.wait(deadline).await);
        assert_eq!(before.elapsed(), Duration::ZERO);
        assert!(limiter.wait(deadline).await);
        assert_eq!(before.elapsed(), Duration::from_millis(100));
    }
}

//! The summary etcd's benchmark prints: totals, a latency histogram and percentiles.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies (microseconds) and errors of one or more workers. The slowest latency is
/// also kept exactly: the histogram only knows it to 3 significant digits.
pub struct Report {
    hist: Histogram<u64>,
    slowest: Duration,
    errors: BTreeMap<String, u64>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            hist: Histogram::new(3).expect("valid precision"),
            slowest: Duration::ZERO,
            errors: BTreeMap::new(),
        }
    }
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

impl Report {
    /// Records one request.
    pub fn record(&mut self, latency: Duration, error: Option<String>) {
        match error {
            None => {
                let _ = self.hist.record(latency.as_micros().max(1) as u64);
                self.slowest = self.slowest.max(latency);
            }
            Some(e) => *self.errors.entry(e).or_default() += 1,
        }
    }

    /// Adds another worker's results.
    pub fn merge(&mut self, other: Report) {
        let _ = self.hist.add(&other.hist);
        self.slowest = self.slowest.max(other.slowest);
        for (e, n) in other.errors {
            *self.errors.entry(e).or_default() += n;
        }
    }

    /// Number of successful requests.
    pub fn ok(&self) -> u64 {
        self.hist.len()
    }

    /// The slowest successful request (zero when there was none).
    pub fn slowest(&self) -> Duration {
        self.slowest
    }

    /// The standard deviation of the successful requests' latencies, in seconds.
    pub fn stddev_secs(&self) -> f64 {
        self.hist.stdev() / 1e6
    }

    /// Failed requests: how many failed with each error text.
    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    /// Renders the report in etcd benchmark's layout.
    pub fn render(&self, elapsed: Duration) -> String {
        let h = &self.hist;
        let mut out = String::new();
        let _ = writeln!(out, "Summary:");
        let _ = writeln!(out, "  Total:\t{:.4} secs.", elapsed.as_secs_f64());
        if h.is_empty() {
            let _ = writeln!(out, "  No successful requests.");
        } else {
            let _ = writeln!(out, "  Slowest:\t{:.4} secs.", self.slowest.as_secs_f64());
            let _ = writeln!(out, "  Fastest:\t{:.4} secs.", secs(h.min()));
            let _ = writeln!(out, "  Average:\t{:.4} secs.", h.mean() / 1e6);
            let _ = writeln!(out, "  Stddev:\t{:.4} secs.", h.stdev() / 1e6);
            let _ = writeln!(
                out,
                "  Requests/sec:\t{:.4}",
                h.len() as f64 / elapsed.as_secs_f64()
            );
            let _ = writeln!(out, "\nResponse time histogram:");
            let (lo, hi) = (h.min(), h.max());
            let buckets = 10u64;
            let step = ((hi - lo) / buckets).max(1);
            let counts: Vec<(u64, u64)> = (0..=buckets)
                .map(|i| {
                    let upper = if i == buckets { hi } else { lo + step * i };
                    let lower = if i == 0 { 0 } else { lo + step * (i - 1) + 1 };
                    (upper, h.count_between(lower, upper))
                })
                .collect();
            let max = counts.iter().map(|c| c.1).max().unwrap_or(1).max(1);
            for (upper, n) in counts {
                let bar = "∎".repeat((n * 40 / max) as usize);
                let _ = writeln!(out, "  {:.4} [{n}]\t|{bar}", secs(upper));
            }
            let _ = writeln!(out, "\nLatency distribution:");
            for p in [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9] {
                let v = h.value_at_quantile(p / 100.0);
                let _ = writeln!(out, "  {p}% in {:.4} secs.", secs(v));
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nError distribution:");
            for (e, n) in &self.errors {
                let _ = writeln!(out, "  [{n}]\t{e}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_shows_rate_and_percentiles() {
        let mut r = Report::default();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms), None);
        }
        r.record(Duration::from_millis(1), Some("boom".into()));
        let text = r.render(Duration::from_secs(2));
        assert_eq!(r.ok(), 100);
        assert!(text.contains("Requests/sec:\t50.0000"), "{text}");
        assert!(text.contains("50% in 0.050"), "{text}");
        assert!(text.contains("[1]\tboom"), "{text}");
    }
}

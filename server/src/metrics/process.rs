//! The process metrics Go's Prometheus client exports for every etcd (`process_*`), read
//! from `/proc/self`: what a pod's memory limit and an operator's dashboards look at.

use std::fmt::Write;

/// What `/proc/self/stat` and friends say about this process.
#[derive(Debug, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: usize,
    pub max_fds: u64,
}

/// Parses the fields of `/proc/<pid>/stat` this needs: (utime + stime ticks, start time
/// in ticks since boot, virtual size in bytes, resident pages).
fn parse_stat(stat: &str) -> Option<(u64, u64, u64, u64)> {
    // The command name (field 2) may hold spaces; fields after it follow its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some((num(14)? + num(15)?, num(22)?, num(23)?, num(24)?))
}

/// Reads this process's figures; None where `/proc` is not Linux's.
pub fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (ticks, start, vsize, pages) = parse_stat(&stat)?;
    // SAFETY: sysconf has no preconditions.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as u64,
        )
    };
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    Some(Process {
        cpu_seconds: ticks as f64 / hz,
        resident_bytes: pages * page,
        virtual_bytes: vsize,
        start_time_seconds: boot + start as f64 / hz,
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        max_fds: limit.rlim_cur,
    })
}

/// Appends the `process_*` metrics, as Go's process collector names them.
pub fn render(out: &mut String) {
    let Some(p) = read() else { return };
    let rows: [(&str, &str, &str, String); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds.to_string(),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds.to_string(),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds.to_string(),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes.to_string(),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds.to_string(),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes.to_string(),
        ),
    ];
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parens_does_not_shift_fields() {
        let stat = "4242 (etcd (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 \
                    12 0 777 123456789 3000 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((200, 777, 123_456_789, 3000)));
    }

    #[test]
    fn this_process_is_read() {
        let p = read().expect("/proc is there");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds > 0 && p.max_fds > 0);
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("\n# TYPE process_resident_memory_bytes gauge\n"));
    }
}

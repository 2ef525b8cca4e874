//! Process metrics from /proc/self, as Prometheus client libraries name them.

use crate::report::finding::{MetricFamily, MetricKind};
use crate::report::prometheus::Exposition;

static RSS: MetricFamily = MetricFamily {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    kind: MetricKind::Gauge,
};
static CPU: MetricFamily = MetricFamily {
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    kind: MetricKind::Counter,
};
static FDS: MetricFamily = MetricFamily {
    name: "process_open_fds",
    help: "Number of open file descriptors.",
    kind: MetricKind::Gauge,
};
static START: MetricFamily = MetricFamily {
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch in seconds.",
    kind: MetricKind::Gauge,
};

/// Fields of /proc/self/stat after the command name (which may contain spaces and parens).
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// Adds whatever /proc can tell; a missing file leaves its family out rather than inventing 0.
pub fn add(exp: &mut Exposition<'_>) {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    if let Some(f) = stat_fields() {
        // Field numbers from proc(5), minus the 3 before this slice (pid, comm, and state is index 0).
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (num(11), num(12)) {
            exp.push(&CPU, vec![], (u + s) / ticks);
        }
        if let Some(rss) = num(21) {
            exp.push(&RSS, vec![], rss * page);
        }
        if let (Some(start), Some(btime)) = (num(19), boot_time()) {
            exp.push(&START, vec![], btime + start / ticks);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        exp.push(&FDS, vec![], dir.count() as f64);
    }
}

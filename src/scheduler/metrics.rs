//! The scheduler's own metrics: per-job counters and times, the latest health report, process
//! metrics. Rendered for `/metrics` (all of it) and for the textfile, where each series
//! belongs to exactly one file of node_exporter's directory: the `dbtool_job_*` families, and
//! the health series only of health jobs that have no `output` of their own (a job's output
//! file carries its own series). `process_*` families never go to the textfile: node_exporter
//! serves its own under those names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::report::finding::{MetricFamily, MetricKind};
use crate::report::prometheus::{add_report, Exposition};
use crate::report::{Report, TargetReport};

static LAST_SUCCESS: MetricFamily = MetricFamily {
    name: "dbtool_job_last_success_timestamp_seconds",
    help: "When the job last finished successfully (Unix time); absent until it has.",
    kind: MetricKind::Gauge,
};
static LAST_DURATION: MetricFamily = MetricFamily {
    name: "dbtool_job_last_duration_seconds",
    help: "Wall time of the job's last run, whatever its result.",
    kind: MetricKind::Gauge,
};
static RUNS: MetricFamily = MetricFamily {
    name: "dbtool_job_runs_total",
    help: "Runs by result: success, failure, timeout, skipped_overlap, skipped_locked.",
    kind: MetricKind::Counter,
};
static RUNNING: MetricFamily = MetricFamily {
    name: "dbtool_job_running",
    help: "1 while a run of the job is in progress on this replica.",
    kind: MetricKind::Gauge,
};
static POOL_SESSIONS: MetricFamily = MetricFamily {
    name: "dbtool_pool_sessions",
    help: "Warm sessions the scheduler holds open to the target for health jobs, idle or in use.",
    kind: MetricKind::Gauge,
};
static NEXT_RUN: MetricFamily = MetricFamily {
    name: "dbtool_job_next_run_timestamp_seconds",
    help: "The job's next scheduled time (Unix time).",
    kind: MetricKind::Gauge,
};

/// How a scheduled time ended, as the `result` label spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Failure,
    Timeout,
    SkippedOverlap,
    SkippedLocked,
}

impl RunResult {
    pub const ALL: [RunResult; 5] = [
        RunResult::Success,
        RunResult::Failure,
        RunResult::Timeout,
        RunResult::SkippedOverlap,
        RunResult::SkippedLocked,
    ];

    /// The `status` recorded in dbtool.job_runs for a run that was claimed.
    pub fn status(self) -> crate::db::job_runs::RunStatus {
        use crate::db::job_runs::RunStatus;
        match self {
            RunResult::Success => RunStatus::Success,
            RunResult::Timeout => RunStatus::Timeout,
            _ => RunStatus::Failure,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
            RunResult::Timeout => "timeout",
            RunResult::SkippedOverlap => "skipped_overlap",
            RunResult::SkippedLocked => "skipped_locked",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct JobStats {
    runs: [u64; 5],
    last_success: Option<f64>,
    last_duration: Option<f64>,
    running: u32,
    next_run: Option<f64>,
}

/// Shared between job loops, runs and the HTTP server.
#[derive(Default)]
pub struct Metrics {
    jobs: Mutex<BTreeMap<String, JobStats>>,
    /// The latest health result per target, from whichever health job saw it last, and
    /// whether that job leaves its series to the textfile (it has no `output`).
    health: Mutex<BTreeMap<String, (TargetReport, bool)>>,
    /// The current configuration's warm sessions (replaced on reload).
    pools: Mutex<std::sync::Weak<crate::db::pool::Pools>>,
}

/// Where an exposition goes: what may be in it differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// `/metrics`: every family, process metrics included.
    Http,
    /// The `metrics_file` in node_exporter's textfile directory.
    Textfile,
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Metrics {
    fn jobs(&self) -> MutexGuard<'_, BTreeMap<String, JobStats>> {
        // A panic while holding the lock leaves plain counters behind, still fine to read.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the job's series exist (at 0) from the start, so rate() and absent() alerts work.
    pub fn register(&self, job: &str) {
        self.jobs().entry(job.to_string()).or_default();
    }

    /// Keeps only these jobs (after a reload removed some).
    pub fn retain(&self, jobs: &[String]) {
        self.jobs().retain(|name, s| jobs.contains(name) || s.running > 0);
    }

    pub fn count(&self, job: &str, result: RunResult) {
        let mut jobs = self.jobs();
        let s = jobs.entry(job.to_string()).or_default();
        if let Some(i) = RunResult::ALL.iter().position(|r| *r == result) {
            s.runs[i] += 1;
        }
    }

    pub fn started(&self, job: &str) {
        self.jobs().entry(job.to_string()).or_default().running += 1;
    }

    pub fn finished(&self, job: &str, result: RunResult, duration: std::time::Duration) {
        let mut jobs = self.jobs();
        let s = jobs.entry(job.to_string()).or_default();
        s.running = s.running.saturating_sub(1);
        s.last_duration = Some(duration.as_secs_f64());
        if result == RunResult::Success {
            s.last_success = Some(secs(Utc::now()));
        }
        drop(jobs);
        self.count(job, result);
    }

    pub fn next_run(&self, job: &str, at: Option<DateTime<Utc>>) {
        self.jobs().entry(job.to_string()).or_default().next_run = at.map(secs);
    }

    pub fn set_pools(&self, pools: &std::sync::Arc<crate::db::pool::Pools>) {
        *self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::downgrade(pools);
    }

    /// `to_textfile`: the job has no `output` file, so its series go to the metrics_file.
    pub fn set_health(&self, report: Report, to_textfile: bool) {
        let mut health = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in report.targets {
            health.insert(t.name.clone(), (t, to_textfile));
        }
    }

    /// The exposition for `sink`: the jobs, the latest health report (for the textfile only
    /// the targets no job's own output carries), the process (for `/metrics` only).
    pub fn render(&self, sink: Sink) -> Vec<u8> {
        let targets: Vec<TargetReport> = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|(_, to_textfile)| sink == Sink::Http || *to_textfile)
            .map(|(t, _)| t.clone())
            .collect();
        let health = (!targets.is_empty()).then(|| Report {
            generated_at: Utc::now(),
            duration: std::time::Duration::ZERO,
            targets,
        });
        let jobs = self.jobs().clone();
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .upgrade();
        let pool_sizes = pools.map(|p| p.sizes()).unwrap_or_default();
        let mut exp = Exposition::default();
        for (name, s) in &jobs {
            let job = vec![("job", name.as_str())];
            if let Some(t) = s.last_success {
                exp.push(&LAST_SUCCESS, job.clone(), t);
            }
            if let Some(d) = s.last_duration {
                exp.push(&LAST_DURATION, job.clone(), d);
            }
            for (r, n) in RunResult::ALL.iter().zip(s.runs) {
                exp.push(&RUNS, vec![("job", name.as_str()), ("result", r.label())], n as f64);
            }
            exp.push(&RUNNING, job.clone(), f64::from(s.running.min(1)));
            if let Some(t) = s.next_run {
                exp.push(&NEXT_RUN, job, t);
            }
        }
        if let Some(report) = &health {
            add_report(&mut exp, report);
        }
        // The daemon's own state: /metrics only, like the process.
        if sink == Sink::Http {
            for (target, n) in &pool_sizes {
                exp.push(&POOL_SESSIONS, vec![("target", target.as_str())], *n as f64);
            }
            super::procstat::add(&mut exp);
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        // Writing into a Vec cannot fail.
        let _ = exp.write(&mut buf);
        buf
    }

    /// Writes the textfile; a failure is logged, never fatal (the next run tries again).
    pub fn write_file(&self, path: &Path) {
        if let Err(e) = crate::report::atomic::write(path, &self.render(Sink::Textfile)) {
            tracing::warn!(error = %e, "metrics textfile not written");
        }
    }
}

//! How one target's run ended: the outcome read into a result, the health report handed to the
//! metrics (to the textfile only when no other file carries its series), the log line.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::kinds;
use super::metrics::{Metrics, RunResult};
use crate::db::Target;
use crate::settings::schedule::Job;

pub(super) fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How one target's run ended, as history and the logs record it.
pub(super) struct Done {
    pub result: RunResult,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub message: String,
}

/// Reads a run's outcome; a health report goes to the metrics (to the textfile only when the
/// job has no `output` of its own: each series belongs to one file).
pub(super) fn settle(
    job: &Job,
    mut result: RunResult,
    outcome: anyhow::Result<kinds::Outcome>,
    metrics: &Metrics,
) -> Done {
    let (rows, bytes, message) = match &outcome {
        Ok(kinds::Outcome { failure: Some(f), .. }) => {
            result = RunResult::Failure;
            (None, None, f.clone())
        }
        Ok(o) => (o.rows, o.bytes, o.message.clone()),
        Err(e) => (None, None, crate::errors::render(e.as_ref())),
    };
    if let Ok(kinds::Outcome {
        report: Some(report), ..
    }) = outcome
    {
        metrics.set_health(report, !writes_own_series(job));
    }
    Done {
        result,
        rows,
        bytes,
        message,
    }
}

/// Tells `[notify]` how a backup or archive run went (one document per run; health and
/// pool-advise runs, every minute or so, tell nobody). Never changes the run's result.
pub(super) async fn tell(
    job: &Job,
    target: &crate::db::Target,
    started: chrono::DateTime<chrono::Utc>,
    done: &Done,
    notify: &crate::notify::NotifyOptions,
) {
    if notify.is_empty() || !job.kind.claims() {
        return;
    }
    let outcome = match done.result {
        RunResult::Success => Ok(Some(done.message.clone())),
        _ => Err(done.message.clone()),
    };
    let event = crate::notify::Event::new(
        &job.name,
        job.kind.name(),
        &target.name,
        target.params().map_or("", |p| p.dbname()),
        started,
        done.bytes.and_then(|b| u64::try_from(b).ok()),
        done.rows,
        outcome,
    );
    crate::notify::notify(notify, &event).await;
}

/// A health job whose `output` is Prometheus text: its series are in that file, so the
/// metrics_file must not repeat them (node_exporter refuses a series seen twice).
fn writes_own_series(job: &Job) -> bool {
    use crate::settings::jobs::JobOptions;
    job.output.is_some()
        && matches!(&job.options, JobOptions::Health(h) if h.format == crate::report::Format::Prometheus)
}

impl Done {
    pub(super) fn log(&self, job: &Job, target: &Target, scheduled_at: DateTime<Utc>, started: Instant) {
        let (duration_ms, rows, bytes) = (millis(started), self.rows, self.bytes);
        if self.result == RunResult::Success {
            tracing::info!(job = %job.name, target = %target.name, %scheduled_at, duration_ms, result = %self.result.label(),
                rows, bytes, summary = %self.message, "job finished");
        } else {
            tracing::error!(job = %job.name, target = %target.name, %scheduled_at, duration_ms, result = %self.result.label(),
                rows, bytes, error = %self.message, "job finished");
        }
    }
}

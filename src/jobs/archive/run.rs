//! A whole archive run: setup (`setup.rs`), the batch loop (`walk.rs`), the job history row
//! and the metrics file.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::batch;
use super::children::{self, Child};
use super::ident::QualifiedName;
use super::plan::Source;
use super::setup::{self, Setup};
use super::walk::{self, Runner};
use super::{report, ArchiveError, ArchiveJob, ArchiveReport, StopReason};
use crate::db;
use crate::db::Target;
use tokio_postgres::Client;

/// What the caller sees while a run goes on (a progress bar, log lines, nothing).
pub trait Progress: Send {
    /// The run is about to start its first batch; `estimate` is the planner's row count.
    fn started(&mut self, _report: &ArchiveReport, _estimate: Option<i64>) {}
    /// After each batch: rows so far, batches so far, this batch's duration.
    fn batch(&mut self, _rows: i64, _batches: u64, _took: Duration) {}
    /// A line worth telling (pausing for lag, a retried batch).
    fn note(&mut self, _line: &str) {}
}

/// Logs through tracing only; what the scheduler gets from [`run`].
pub struct Quiet;
impl Progress for Quiet {
    fn note(&mut self, line: &str) {
        tracing::info!("{line}");
    }
}

/// Options beyond the job itself.
pub struct RunOptions<'a> {
    pub progress: &'a mut dyn Progress,
    /// Record the run in dbtool.job_runs (the scheduler, which claims its own row, passes false).
    pub record: bool,
}

/// Runs one archive job against `target` until done, cancelled or out of time.
pub async fn run(job: &ArchiveJob, target: &Target, cancel: CancellationToken) -> Result<ArchiveReport, ArchiveError> {
    let mut quiet = Quiet;
    let opts = RunOptions {
        progress: &mut quiet,
        record: true,
    };
    run_with(job, target, cancel, opts).await
}

pub async fn run_with(
    job: &ArchiveJob,
    target: &Target,
    cancel: CancellationToken,
    opts: RunOptions<'_>,
) -> Result<ArchiveReport, ArchiveError> {
    let job = &super::preset::expand(job)?;
    job.validate()?;
    let started = Instant::now();
    let result = run_inner(job, target, cancel, opts, started).await;
    if let Some(path) = &job.metrics {
        let (rep, ok) = match &result {
            Ok(r) => (Some(r), true),
            Err(ArchiveError::Run { report, .. }) => (Some(report.as_ref()), false),
            Err(_) => (None, false),
        };
        if !job.dry_run {
            report::write_metrics(path, &target.name, &source_label(job), rep, ok, started.elapsed())
                .map_err(|e| ArchiveError::Config(e.to_string()))?;
        }
    }
    result
}

fn source_label(job: &ArchiveJob) -> String {
    QualifiedName::parse(&job.table, "public").map_or_else(|_| job.table.clone(), |q| q.to_string())
}

async fn run_inner(
    job: &ArchiveJob,
    target: &Target,
    cancel: CancellationToken,
    opts: RunOptions<'_>,
    started: Instant,
) -> Result<ArchiveReport, ArchiveError> {
    let Setup {
        mut src,
        dst,
        source,
        children,
        dest,
        predicate,
        guard,
        mut report,
    } = setup::setup(job, target).await?;
    let dest_sql = dest.as_ref().map(|d| d.quoted()).unwrap_or_default();
    let built = batch::build(
        &source,
        &children,
        &dest_sql,
        report.mode,
        report.walk,
        &predicate,
        &guard,
        job.batch_size(),
    );
    if job.dry_run {
        let tables = super::dry_run::Tables {
            source: &source,
            children: &children,
            dest: dest.as_ref(),
        };
        return super::dry_run::run(&src, dst.as_ref(), tables, &predicate, built, report).await;
    }
    if let Some(d) = &dest {
        setup::prepare_dest(&src, dst.as_ref(), &source, d, opts.progress).await?;
        for c in &children {
            setup::prepare_dest(&src, dst.as_ref(), &c.source, &c.dest, opts.progress).await?;
        }
    }
    setup::lock(&src, &source).await?;
    let ready = async {
        let run_id = match opts.record {
            true => setup::record_start(&mut src, job, target).await?,
            false => None,
        };
        setup::mark_abandoned(&src, job, run_id, opts.progress).await;
        let estimate = setup::estimate(&src, &source, &predicate).await;
        opts.progress.started(&report, estimate);
        let stmts = setup::prepare(
            &src,
            dst.as_ref(),
            &source,
            &children,
            &dest_sql,
            &report,
            &predicate,
            &guard,
            job,
            built,
        )
        .await?;
        // After the lock: the session of a crashed run is gone, so its last batch is settled.
        let manifest = match &job.files_manifest {
            Some(path) => Some(super::manifest::Manifest::open(path, &src).await?),
            None => None,
        };
        Ok::<_, ArchiveError>((run_id, stmts, manifest))
    }
    .await;
    // Every path from here releases the lock, failures included.
    let (run_id, stmts, manifest) = match ready {
        Ok(ready) => ready,
        Err(e) => {
            setup::unlock(&src, &source).await;
            return Err(e);
        }
    };
    let walk = report.walk;
    let mut runner = Runner::new(job, &source, src, dst, stmts, walk, cancel, opts.progress, started)
        .with_manifest(manifest)
        .with_children(children.len());
    let outcome = runner.run_passes(&predicate).await;
    // A run that reports rows moved must not lose them to a crash a moment later.
    let outcome = match (outcome, runner.flush_commits().await) {
        (Ok(_), Err(message)) => Err(message),
        (outcome, _) => outcome,
    };
    runner.fill(&mut report);
    let src = runner.into_source();
    remaining(job, target, &src, &source, &children, &predicate, &mut report).await;
    let result = match outcome {
        Ok(stop) => {
            report.stop = stop;
            Ok(report)
        }
        Err(message) => {
            report.stop = StopReason::Error(message.clone());
            Err(ArchiveError::Run {
                report: Box::new(report),
                message,
            })
        }
    };
    if let Some(id) = run_id {
        setup::record_finish(&src, id, &result).await;
    }
    setup::unlock(&src, &source).await;
    result
}

/// Counts the rows still older than the cutoff for the summary and the metrics. If the run's
/// session is gone (pg_terminate_backend), a new one counts; if counting fails, the planner's
/// estimate is kept apart as such, and otherwise the figure stays unknown.
async fn remaining(
    job: &ArchiveJob,
    target: &Target,
    src: &Client,
    source: &Source,
    children: &[Child],
    predicate: &str,
    report: &mut ArchiveReport,
) {
    let fresh = match src.is_closed() {
        true => match target.postgres_params() {
            Ok(p) => db::connect(p, &setup::session(job)).await.ok(),
            Err(_) => None,
        },
        false => None,
    };
    let client = fresh.as_ref().unwrap_or(src);
    match walk::count_remaining(client, source, predicate).await {
        Ok(n) => report.remaining = Some(n),
        Err(e) => {
            tracing::warn!(
                "could not count the rows still older than the cutoff: {}",
                crate::jobs::pg_error(&e)
            );
            report.remaining_estimate = setup::estimate(client, source, predicate).await;
        }
    }
    for (i, c) in report.children.iter_mut().enumerate() {
        let sql = children::sql::remaining_sql(source, children, i, predicate);
        match client.query_one(&sql, &[]).await {
            Ok(row) => c.remaining = row.try_get("remaining").ok(),
            Err(e) => tracing::warn!(
                "could not count the rows of {} still to archive: {}",
                c.table,
                crate::jobs::pg_error(&e)
            ),
        }
    }
}

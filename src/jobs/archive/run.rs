//! A whole archive run: plan, cutoff, destination, single-runner lock, the batch loop
//! (`walk.rs`), the job history row and the metrics file.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::batch::{self, Mode, Walk};
use super::cutoff::{self, Cutoff};
use super::ident::{self, QualifiedName};
use super::plan::{self, Source};
use super::walk::{Runner, Stmts};
use super::{cross_db, report, ArchiveError, ArchiveJob, ArchiveReport, StopReason};
use crate::checks::runner::Target;
use crate::db::{self, job_runs, migrate, ConnParams, ProcessEnv, SessionSettings};

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
            report::write_metrics(path, &source_label(job), rep, ok, started.elapsed())
                .map_err(|e| ArchiveError::Config(e.to_string()))?;
        }
    }
    result
}

fn source_label(job: &ArchiveJob) -> String {
    QualifiedName::parse(&job.table, "public").map_or_else(|_| job.table.clone(), |q| q.to_string())
}

pub fn session(job: &ArchiveJob) -> SessionSettings {
    SessionSettings {
        statement_timeout: job.statement_timeout.map_or(Duration::from_secs(5), |d| d.0),
        lock_timeout: job.lock_timeout.map_or(Duration::from_millis(100), |d| d.0),
        read_only: false,
        ..SessionSettings::default()
    }
}

fn dbe(what: &str) -> impl Fn(tokio_postgres::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Db {
        what: what.to_string(),
        source,
    }
}

async fn run_inner(
    job: &ArchiveJob,
    target: &Target,
    cancel: CancellationToken,
    opts: RunOptions<'_>,
    started: Instant,
) -> Result<ArchiveReport, ArchiveError> {
    let settings = session(job);
    let mut src = db::connect(&target.params, &settings).await?;
    let name = QualifiedName::parse(&job.table, "public")?;
    let column = ident::parse_column(&job.column)?;
    let source = plan::load_source(&src, &name, &column).await?;
    let ctype = cutoff::column_type(&src, &source, &column, job.column_type).await?;
    let sql_type = source.column(&column).map(|c| c.sql_type.clone()).unwrap_or_default();
    let cut = cutoff::compute(&src, &job.older_than, ctype, &sql_type).await?;
    let predicate = predicate(&column, &cut, job.filter.as_deref());
    let walk = choose_walk(&src, job.walk).await?;
    let mode = job.mode();
    let dest = match mode {
        Mode::Purge => None,
        _ => Some(dest_name(job, &name)?),
    };
    let dst = match &job.dest_dsn {
        Some(dsn) => {
            let params = ConnParams::resolve(Some(dsn), &ProcessEnv)
                .map_err(|e| ArchiveError::Config(format!("--dest-dsn: {e}")))?;
            Some(db::connect(&params, &settings).await?)
        }
        None => None,
    };
    let mut report = ArchiveReport {
        job: job.job_name(),
        table: name.to_string(),
        dest: dest.as_ref().map(|d| d.to_string()),
        mode,
        walk,
        cutoff: cut.at.clone(),
        rows: 0,
        batches: 0,
        passes: 0,
        duration: Duration::ZERO,
        slowest_batch: Duration::ZERO,
        remaining: None,
        stop: StopReason::Done,
        would_move: None,
        sql: None,
    };
    let dest_sql = dest.as_ref().map(|d| d.quoted()).unwrap_or_default();
    let built = batch::build(&source, &dest_sql, mode, walk, &predicate, job.batch_size());
    if job.dry_run {
        return dry_run(&src, dst.as_ref(), &source, dest.as_ref(), &predicate, built, report).await;
    }
    if let Some(d) = &dest {
        prepare_dest(&src, dst.as_ref(), &source, d, opts.progress).await?;
    }
    lock(&src, &source).await?;
    let run_id = if opts.record {
        record_start(&mut src, job, target).await?
    } else {
        None
    };
    let estimate = estimate(&src, &source, &predicate).await;
    opts.progress.started(&report, estimate);
    let stmts = prepare(
        &src,
        dst.as_ref(),
        &source,
        &dest_sql,
        mode,
        walk,
        &predicate,
        job,
        built,
    )
    .await?;
    let mut runner = Runner::new(job, &source, src, dst, stmts, walk, cancel, opts.progress, started);
    let outcome = runner.run_passes(&predicate).await;
    runner.fill(&mut report);
    report.remaining = runner.remaining(&predicate, estimate).await;
    let src = runner.into_source();
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
        record_finish(&src, id, &result).await;
    }
    result
}

/// `s."createat" < 1700000000000 AND (--where)`.
fn predicate(column: &str, cut: &Cutoff, filter: Option<&str>) -> String {
    let base = format!("s.{} < {}", ident::quote_ident(column), cut.literal);
    match filter {
        Some(w) if !w.trim().is_empty() => format!("{base} AND ({w})"),
        _ => base,
    }
}

async fn choose_walk(client: &Client, wanted: Option<Walk>) -> Result<Walk, ArchiveError> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(dbe("reading server_version_num"))?
        .get(0);
    match wanted {
        // Before 14 a ctid range is a sequential scan of the whole table per batch.
        Some(Walk::Ctid) if version < 140_000 => Err(ArchiveError::Config(
            "--walk ctid needs PostgreSQL 14 or later (TID range scans); use --walk key".into(),
        )),
        Some(w) => Ok(w),
        None if version >= 140_000 => Ok(Walk::Ctid),
        None => Ok(Walk::Key),
    }
}

fn dest_name(job: &ArchiveJob, source: &QualifiedName) -> Result<QualifiedName, ArchiveError> {
    let dest = match &job.dest {
        Some(d) => QualifiedName::parse(d, "archive")?,
        None => QualifiedName {
            schema: "archive".into(),
            name: source.name.clone(),
        },
    };
    if job.dest_dsn.is_none() && &dest == source {
        return Err(ArchiveError::Config(format!(
            "--dest {dest} is the source table itself; pick another table"
        )));
    }
    Ok(dest)
}

async fn prepare_dest(
    src: &Client,
    dst: Option<&Client>,
    source: &Source,
    dest: &QualifiedName,
    progress: &mut dyn Progress,
) -> Result<(), ArchiveError> {
    let (client, sql) = match dst {
        Some(d) => (d, plan::create_remote_sql(source, dest)),
        None => (src, plan::create_like_sql(source, dest)),
    };
    if plan::ensure_dest(client, source, dest, &sql).await? {
        progress.note(&format!("created destination {dest}"));
    }
    Ok(())
}

/// One runner per table: a session advisory lock, released when the session ends (even on kill -9).
async fn lock(src: &Client, source: &Source) -> Result<(), ArchiveError> {
    let got: bool = src
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended('dbtool archive ' || $1::text, 0))",
            &[&source.oid.to_string()],
        )
        .await
        .map_err(dbe("taking the archive lock"))?
        .get(0);
    if got {
        Ok(())
    } else {
        Err(ArchiveError::Busy(source.name.to_string()))
    }
}

async fn record_start(src: &mut Client, job: &ArchiveJob, target: &Target) -> Result<Option<i64>, ArchiveError> {
    migrate::apply(src).await?;
    job_runs::start(src, &job.job_name(), "archive", &target.name, None)
        .await
        .map_err(dbe("recording the run in dbtool.job_runs"))
}

async fn record_finish(src: &Client, id: i64, result: &Result<ArchiveReport, ArchiveError>) {
    let (status, rows, message) = match result {
        Ok(r) => {
            let status = match r.stop {
                StopReason::Signal => job_runs::RunStatus::Cancelled,
                _ => job_runs::RunStatus::Success,
            };
            (status, Some(r.rows), report::reason_line(r))
        }
        Err(ArchiveError::Run { report, message }) => {
            (job_runs::RunStatus::Failure, Some(report.rows), message.clone())
        }
        Err(e) => (job_runs::RunStatus::Failure, None, e.to_string()),
    };
    if let Err(e) = job_runs::finish(src, id, status, rows, None, Some(&message)).await {
        tracing::warn!(
            "could not record the end of the run in dbtool.job_runs: {}",
            crate::jobs::pg_error(&e)
        );
    }
}

/// The planner's estimate of rows older than the cutoff (for the ETA), if it has one.
pub async fn estimate(src: &Client, source: &Source, predicate: &str) -> Option<i64> {
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {} s WHERE {predicate}",
        source.name.quoted()
    );
    let rows = crate::db::row::rows_from_messages(src.simple_query(&sql).await.ok()?);
    let plan: serde_json::Value = serde_json::from_str(rows.first()?.str("QUERY PLAN").ok()?).ok()?;
    let estimate = plan.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64()?;
    // The planner's estimate is a float; rounding it to a row count is the point.
    Some(estimate.round() as i64)
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    src: &Client,
    dst: Option<&Client>,
    source: &Source,
    dest_sql: &str,
    mode: Mode,
    walk: Walk,
    predicate: &str,
    job: &ArchiveJob,
    built: batch::BatchSql,
) -> Result<Stmts, ArchiveError> {
    let p = dbe("preparing the batch statement");
    match dst {
        None => Ok(Stmts::Same {
            first: src.prepare(&built.first).await.map_err(&p)?,
            next: src.prepare(&built.next).await.map_err(&p)?,
        }),
        Some(dst) => {
            let c = cross_db::build(source, dest_sql, walk, predicate, job.batch_size(), mode);
            Ok(Stmts::Cross(cross_db::Prepared {
                select_first: src.prepare(&c.select_first).await.map_err(&p)?,
                select_next: src.prepare(&c.select_next).await.map_err(&p)?,
                insert: dst.prepare(&c.insert).await.map_err(&p)?,
                delete: src.prepare(&c.delete).await.map_err(&p)?,
            }))
        }
    }
}

/// --dry-run: check the destination without creating it, count exactly, show the SQL.
async fn dry_run(
    src: &Client,
    dst: Option<&Client>,
    source: &Source,
    dest: Option<&QualifiedName>,
    predicate: &str,
    built: batch::BatchSql,
    mut report: ArchiveReport,
) -> Result<ArchiveReport, ArchiveError> {
    let mut sql = String::new();
    if let Some(d) = dest {
        let client = dst.unwrap_or(src);
        match plan::find_table(client, d).await? {
            Some(oid) => plan::check_dest(client, source, d, oid).await?,
            None if dst.is_some() => sql.push_str(&format!("{};\n", plan::create_remote_sql(source, d))),
            None => sql.push_str(&format!("{};\n", plan::create_like_sql(source, d))),
        }
    }
    sql.push_str(&built.next);
    let count = format!("SELECT count(*) FROM {} s WHERE {predicate}", source.name.quoted());
    report.would_move = src.query_one(&count, &[]).await.ok().map(|r| r.get(0));
    report.remaining = report.would_move;
    report.sql = Some(sql);
    report.stop = StopReason::DryRun;
    Ok(report)
}

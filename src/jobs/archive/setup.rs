//! Before the first batch: connections, the table, the cutoff, the destination, the lock, the
//! job history row, the prepared statements (`--dry-run` stops before the lock: `dry_run.rs`).

use std::time::Duration;

use tokio_postgres::Client;

use super::batch::{self, Guard, Mode, Walk};
use super::children::{self, Child};
use super::cutoff;
use super::ident::{self, QualifiedName};
use super::plan::{self, Source};
use super::run::Progress;
use super::walk::Stmts;
use super::{cross_db, predicate, report, ArchiveError, ArchiveJob, ArchiveReport, StopReason};
use crate::db::Target;
use crate::db::{self, job_runs, migrate, Columns, ConnParams, ProcessEnv, SessionSettings};

/// Everything a run works with, resolved once.
pub struct Setup {
    pub src: Client,
    pub dst: Option<Client>,
    pub source: Source,
    /// Tables whose rows refer to the source's, moved in the same batches.
    pub children: Vec<Child>,
    pub dest: Option<QualifiedName>,
    pub predicate: String,
    /// The cutoff alone, re-checked by the server on every row a batch touches.
    pub guard: Guard,
    pub report: ArchiveReport,
}

pub async fn setup(job: &ArchiveJob, target: &Target) -> Result<Setup, ArchiveError> {
    let settings = session(job);
    let src = db::connect(target.postgres_params()?, &settings).await?;
    // Saves a WAL flush per batch, and is safe for the rows: a batch's DELETE and INSERT
    // commit together, so a crash that loses a recent commit loses both halves and the rows
    // are still in the source. It is not safe for what the run reports: before it says how
    // many rows moved, `Runner::flush_commits` makes every batch durable.
    src.batch_execute(include_str!("../../../queries/archive_async_commit.sql"))
        .await
        .map_err(dbe("setting synchronous_commit"))?;
    let name = QualifiedName::parse(&job.table, "public")?;
    let column = ident::parse_column(&job.column)?;
    let source = plan::load_source(&src, &name, &column).await?;
    let ctype = cutoff::column_type(&src, &source, &column, job.column_type).await?;
    let sql_type = source.column(&column).map(|c| c.sql_type.clone()).unwrap_or_default();
    let cut = cutoff::compute(&src, &job.older_than, ctype, &sql_type).await?;
    let filter = match &job.filter {
        Some(w) => Some(check_filter(&src, w).await?),
        None => None,
    };
    let guard = Guard {
        column: ident::quote_ident(&column),
        cutoff: cut.literal.clone(),
    };
    let predicate = format!(
        "{}{}",
        guard.condition("s."),
        filter.map_or_else(String::new, |f| format!(" AND {}", f.wrapped()))
    );
    // The lexer proved the text is one balanced condition; parsing it here reports what the
    // server thinks of it (unknown columns, types) before anything runs.
    src.prepare(&format!("SELECT 1 FROM {} s WHERE {predicate}", source.name.quoted()))
        .await
        .map_err(|e| {
            ArchiveError::Config(format!(
                "--where {:?} is not a valid condition on {} (alias s): {}",
                job.filter.as_deref().unwrap_or(""),
                source.name,
                crate::jobs::pg_error(&e)
            ))
        })?;
    let walk = choose_walk(&src, job.walk).await?;
    let mode = job.mode();
    let dest = match mode {
        Mode::Purge => None,
        _ => Some(dest_name(job, &name)?),
    };
    let dest_schema = dest.as_ref().map_or("archive", |d| d.schema.as_str());
    let mut children = children::discover(&src, &source, &job.children, dest_schema, job.allow_seq_scan).await?;
    if let Some(spec) = &job.files_from {
        children::files_from(&mut children, &super::manifest::FilesFrom::parse(spec)?)?;
    }
    let dst = match &job.dest_dsn {
        Some(dsn) => {
            let params = ConnParams::resolve(Some(dsn), &ProcessEnv)
                .map_err(|e| ArchiveError::Config(format!("--dest-dsn: {e}")))?;
            let dst = db::connect(&params, &settings).await?;
            // The destination's insert must be durable before the source deletes those rows:
            // with asynchronous commit there, a crash after the source delete could leave a
            // row in neither place. Only `off` is weaker than a local flush; stronger settings
            // (remote_apply, synchronous standbys) are the server's to keep.
            dst.batch_execute(include_str!("../../../queries/archive_dest_sync_commit.sql"))
                .await
                .map_err(dbe("setting synchronous_commit at the destination"))?;
            Some(dst)
        }
        None => None,
    };
    let report = ArchiveReport {
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
        remaining_estimate: None,
        stop: StopReason::Done,
        would_move: None,
        sql: None,
        children: children::reports(&children, &name, mode),
    };
    Ok(Setup {
        src,
        dst,
        source,
        children,
        dest,
        predicate,
        guard,
        report,
    })
}

pub fn session(job: &ArchiveJob) -> SessionSettings {
    SessionSettings {
        statement_timeout: job.statement_timeout.map_or(Duration::from_secs(5), |d| d.0),
        lock_timeout: job.lock_timeout.map_or(Duration::from_millis(100), |d| d.0),
        // A dry run writes nothing; its session says so to the server as well.
        read_only: job.dry_run,
        ..SessionSettings::default()
    }
}

pub(super) fn dbe(what: &str) -> impl Fn(tokio_postgres::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Db {
        what: what.to_string(),
        source,
    }
}

/// `--where` lexed as this server reads strings: with `standard_conforming_strings = off` a
/// backslash escapes a quote, which moves where a string ends.
async fn check_filter(src: &Client, w: &str) -> Result<predicate::Predicate, ArchiveError> {
    let standard: String = src
        .query_one(include_str!("../../../queries/archive_standard_strings.sql"), &[])
        .await
        .map_err(dbe("reading standard_conforming_strings"))?
        .col("standard")?;
    let strings = match standard.as_str() {
        "off" => predicate::Strings::BackslashEscapes,
        _ => predicate::Strings::Standard,
    };
    predicate::check(w, strings).map_err(|e| ArchiveError::Config(e.to_string()))
}

async fn choose_walk(client: &Client, wanted: Option<Walk>) -> Result<Walk, ArchiveError> {
    let version = db::server_version(client).await?.num;
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

pub(super) async fn prepare_dest(
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

/// The advisory lock key of a table's archive runs: by OID, so a rename keeps it.
fn lock_key(source: &Source) -> i64 {
    db::lock::key(db::lock::Namespace::Archive, &source.oid.to_string())
}

/// One runner per table: a session advisory lock, released by [`unlock`] at the end of the
/// run, or when the session ends (even on kill -9).
pub(super) async fn lock(src: &Client, source: &Source) -> Result<(), ArchiveError> {
    let got = db::lock::try_lock(src, lock_key(source))
        .await
        .map_err(dbe("taking the archive lock"))?;
    if got {
        Ok(())
    } else {
        Err(ArchiveError::Busy(source.name.to_string()))
    }
}

/// Releases the lock explicitly: the server ends a session some moments after its client
/// exits, and a run started right after this one (cron, a script) must not find it held.
pub(super) async fn unlock(src: &Client, source: &Source) {
    if let Err(e) = db::lock::unlock(src, lock_key(source)).await {
        tracing::debug!("releasing the archive lock: {}", crate::jobs::pg_error(&e));
    }
}

pub(super) async fn record_start(
    src: &mut Client,
    job: &ArchiveJob,
    target: &Target,
) -> Result<Option<i64>, ArchiveError> {
    migrate::apply(src).await?;
    Ok(job_runs::start(src, &job.job_name(), "archive", &target.name, None).await?)
}

/// Earlier runs of this job that died without recording their end (kill -9, a terminated
/// session) become `abandoned`. Called with the table's lock held: see `job_runs::abandon_stale`.
pub(super) async fn mark_abandoned(src: &Client, job: &ArchiveJob, current: Option<i64>, progress: &mut dyn Progress) {
    match job_runs::abandon_stale(src, &job.job_name(), "archive", current).await {
        Ok(ids) if ids.is_empty() => {}
        Ok(ids) => progress.note(&format!(
            "earlier run(s) {ids:?} of {} never recorded their end (killed?); marked abandoned in dbtool.job_runs",
            job.job_name()
        )),
        Err(e) => tracing::warn!("could not look for abandoned runs in dbtool.job_runs: {e}"),
    }
}

pub(super) async fn record_finish(src: &Client, id: i64, result: &Result<ArchiveReport, ArchiveError>) {
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
        tracing::warn!("could not record the end of the run in dbtool.job_runs: {e}");
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
pub(super) async fn prepare(
    src: &Client,
    dst: Option<&Client>,
    source: &Source,
    children: &[Child],
    dest_sql: &str,
    report: &ArchiveReport,
    predicate: &str,
    guard: &Guard,
    job: &ArchiveJob,
    built: batch::BatchSql,
) -> Result<Stmts, ArchiveError> {
    let (mode, walk) = (report.mode, report.walk);
    let p = dbe("preparing the batch statement");
    match dst {
        None => Ok(Stmts::Same {
            first: src.prepare(&built.first).await.map_err(&p)?,
            next: src.prepare(&built.next).await.map_err(&p)?,
            careful_first: src.prepare(&built.careful_first).await.map_err(&p)?,
            careful_next: src.prepare(&built.careful_next).await.map_err(&p)?,
        }),
        Some(dst) => {
            let c = cross_db::build(
                source,
                children,
                dest_sql,
                walk,
                predicate,
                guard,
                job.batch_size(),
                mode,
            );
            Ok(Stmts::Cross(cross_db::prepare(src, dst, c).await.map_err(&p)?))
        }
    }
}

//! What each job kind takes (its keys in `[[jobs]]`) and how it runs, in-process.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio_util::sync::CancellationToken;
use toml::Value;

use super::config::Job;
use crate::checks::runner::{run_target_with_timeout, Target};
use crate::cli::health::{Format, HealthArgs};
use crate::config::Loaded;
use crate::jobs::archive::{ArchiveJob, StopReason};
use crate::report::Report;

/// Set to 1 to allow `kind = "sleep"`, a job that runs `sleep SECONDS` as a child process. The
/// scheduler's tests need jobs that are slow or stuck on demand; a real deployment has no use
/// for it, so it is refused unless this variable is set.
pub const TEST_JOBS_ENV: &str = "DBTOOL_TEST_JOBS";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Health,
    PoolAdvise,
    Backup,
    Archive,
    Sleep,
}

/// What a finished run reports: rows/bytes when the kind has them, a one-line summary, and
/// for health the report (served on /metrics).
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub message: String,
    pub report: Option<Report>,
}

impl Kind {
    pub fn names() -> &'static [&'static str] {
        &["health", "pool-advise", "backup", "archive"]
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "health" => Ok(Kind::Health),
            "pool-advise" => Ok(Kind::PoolAdvise),
            "backup" => Ok(Kind::Backup),
            "archive" => Ok(Kind::Archive),
            "sleep" if std::env::var(TEST_JOBS_ENV).is_ok_and(|v| v == "1") => Ok(Kind::Sleep),
            _ => Err(format!("unknown kind '{s}'; one of {}", Kind::names().join(", "))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Health => "health",
            Kind::PoolAdvise => "pool-advise",
            Kind::Backup => "backup",
            Kind::Archive => "archive",
            Kind::Sleep => "sleep",
        }
    }

    /// The kind-specific keys: the same options as the command's flags.
    pub fn option_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Health => &["checks", "skip", "databases", "top", "format", "max_connections"],
            Kind::PoolAdvise => &[
                "pgbouncer",
                "sample",
                "db_cores",
                "ssd",
                "app_instances",
                "app_max_open",
                "app_max_idle",
                "peak_factor",
                "format",
            ],
            Kind::Backup => &[
                "dest",
                "databases",
                "all",
                "format",
                "jobs",
                "compress",
                "globals",
                "files",
                "keep_last",
                "keep_daily",
                "keep_weekly",
                "keep_monthly",
                "metrics",
            ],
            Kind::Archive => &[
                "job",
                "table",
                "column",
                "column_type",
                "older_than",
                "dest",
                "dest_dsn",
                "batch_size",
                "sleep",
                "max_runtime",
                "max_lag",
                "where",
                "no_delete",
                "metrics",
            ],
            Kind::Sleep => &["seconds", "pid_file"],
        }
    }

    /// Type checks for the keys this build knows how to use.
    pub fn check_option(self, key: &str, v: &Value) -> Result<(), String> {
        let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_str));
        match (self, key) {
            (Kind::Health, "checks" | "skip") => {
                let names = v
                    .as_array()
                    .filter(|_| strings(v))
                    .ok_or("expected a list of check names")?;
                for n in names.iter().filter_map(Value::as_str) {
                    if crate::checks::find(n).is_none() {
                        return Err(format!("unknown check '{n}' (see `dbtool checks`)"));
                    }
                }
                Ok(())
            }
            (Kind::Health, "databases") if !strings(v) => Err("expected a list of database names".into()),
            (Kind::Health, "top" | "max_connections") if v.as_integer().is_none_or(|n| n <= 0) => {
                Err("expected a positive integer".into())
            }
            (Kind::Health, "format") if !matches!(v.as_str(), Some("prometheus" | "json" | "table")) => {
                Err("expected \"prometheus\", \"json\" or \"table\"".into())
            }
            (Kind::Sleep, "seconds") if v.as_float().or(v.as_integer().map(|i| i as f64)).is_none() => {
                Err("expected a number".into())
            }
            _ => Ok(()),
        }
    }
}

/// Checks that need the whole job (and the rest of the file): the kind's own options type.
pub fn check_job(job: &Job, loaded: &Loaded) -> Result<(), String> {
    match job.kind {
        Kind::Archive => archive_job(job, loaded).map(|_| ()),
        _ => Ok(()),
    }
}

/// The archive job to run: the `[[archive]]` section named by `job = "..."`, or the job's own
/// keys read as an `[[archive]]` section (named after the scheduler job).
fn archive_job(job: &Job, loaded: &Loaded) -> Result<ArchiveJob, String> {
    let archive = match job.options.get("job").map(|v| v.as_str()) {
        Some(Some(name)) => {
            if job.options.len() > 1 {
                return Err("with job = \"...\" the other archive settings belong in that [[archive]] section".into());
            }
            loaded
                .file
                .archive
                .iter()
                .find(|a| a.job_name() == name)
                .cloned()
                .ok_or_else(|| format!("job = \"{name}\" names no [[archive]] section"))?
        }
        Some(None) => return Err("job: expected the name of an [[archive]] section".into()),
        None => {
            let mut table: toml::Table = job.options.clone().into_iter().collect();
            table.insert("name".into(), Value::String(job.name.clone()));
            Value::Table(table)
                .try_into::<ArchiveJob>()
                .map_err(|e| e.message().to_string())?
        }
    };
    // Its message repeats the job's name, which the caller already prefixes.
    let prefix = format!("archive job '{}': ", archive.job_name());
    archive.validate().map_err(|e| e.to_string().replace(&prefix, ""))?;
    Ok(archive)
}

/// Runs one job against one target until it finishes or `cancel` fires.
pub async fn execute(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    match job.kind {
        Kind::Health => health(job, target, loaded, cancel).await,
        Kind::Sleep => sleep(job, cancel).await,
        Kind::Archive => archive(job, target, loaded, cancel).await,
        Kind::PoolAdvise | Kind::Backup => Err(anyhow!(
            "the {} job is not available in this build of dbtool {}; upgrade dbtool or remove job '{}'",
            job.kind.name(),
            env!("CARGO_PKG_VERSION"),
            job.name
        )),
    }
}

fn strings(job: &Job, key: &str) -> Vec<String> {
    job.options
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn positive(job: &Job, key: &str) -> Option<usize> {
    job.options
        .get(key)
        .and_then(Value::as_integer)
        .and_then(|n| usize::try_from(n).ok())
}

async fn health(job: &Job, target: &Target, loaded: &Loaded, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let format = match job.options.get("format").and_then(Value::as_str) {
        Some("json") => Format::Json,
        Some("table") => Format::Table,
        _ => Format::Prometheus,
    };
    let args = HealthArgs {
        format: Some(format),
        checks: strings(job, "checks"),
        skip: strings(job, "skip"),
        databases: strings(job, "databases"),
        top: positive(job, "top"),
        max_connections: positive(job, "max_connections"),
        timeout: job.timeout,
        ..HealthArgs::default()
    };
    let settings = crate::commands::health::resolve(&args, loaded, &crate::db::ProcessEnv)?;
    // One target per run (each target's run is claimed on its own), so the runner's per-target
    // function is called directly rather than `health::execute`'s multi-target stream.
    let started = std::time::Instant::now();
    let generated_at = chrono::Utc::now();
    let t = tokio::select! {
        r = run_target_with_timeout(target, &settings.plan, settings.timeout) => r,
        () = cancel.cancelled() => bail!("cancelled"),
    };
    let report = Report {
        generated_at,
        duration: started.elapsed(),
        targets: vec![t],
    };
    if let Some(path) = &job.output {
        let mut buf = Vec::with_capacity(64 * 1024);
        crate::report::render(&report, format, &mut buf, false)?;
        crate::report::atomic::write(path, &buf)?;
    }
    let status = report.status();
    if let Some(err) = report.targets.iter().find_map(|t| t.error.as_ref().filter(|_| !t.up)) {
        bail!("target unreachable: {err}");
    }
    Ok(Outcome {
        message: format!("health {status}"),
        report: Some(report),
        ..Outcome::default()
    })
}

async fn archive(job: &Job, target: &Target, loaded: &Loaded, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let archive = archive_job(job, loaded).map_err(|e| anyhow!("job '{}': {e}", job.name))?;
    let target = target.clone();
    // archive's run future holds a `&mut dyn Progress` (not Send), so it cannot be spawned on
    // the worker threads; it runs on a blocking thread that drives it on the same runtime.
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let mut quiet = crate::jobs::archive::run::Quiet;
            // The scheduler has claimed and will finish its own dbtool.job_runs row.
            let opts = crate::jobs::archive::RunOptions {
                progress: &mut quiet,
                record: false,
            };
            crate::jobs::archive::run_with(&archive, &target, cancel, opts).await
        })
    })
    .await
    .context("the archive run panicked")??;
    let message = format!(
        "{} rows from {} in {} batches, stopped: {}",
        report.rows,
        report.table,
        report.batches,
        report.stop.as_str()
    );
    if let StopReason::Error(e) = &report.stop {
        bail!("{message}: {e}");
    }
    if report.stop == StopReason::Signal {
        bail!("{message} (cancelled after the current batch)");
    }
    Ok(Outcome {
        rows: Some(report.rows),
        message,
        ..Outcome::default()
    })
}

/// The test-only job: a child process that sleeps, killed on cancel (as backup's pg_dump is).
async fn sleep(job: &Job, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let seconds = job
        .options
        .get("seconds")
        .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
        .unwrap_or(1.0);
    let mut child = tokio::process::Command::new("sleep")
        .arg(format!("{seconds}"))
        .kill_on_drop(true)
        .spawn()
        .context("spawning sleep")?;
    if let (Some(path), Some(pid)) = (job.options.get("pid_file").and_then(Value::as_str), child.id()) {
        std::fs::write(path, pid.to_string()).with_context(|| format!("writing {path}"))?;
    }
    tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for sleep")?;
            if !status.success() {
                bail!("sleep exited with {status}");
            }
            Ok(Outcome { message: format!("slept {seconds}s"), ..Outcome::default() })
        }
        () = cancel.cancelled() => {
            let _ = child.kill().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            bail!("cancelled; child process killed")
        }
    }
}

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
use crate::jobs::backup::BackupOptions;
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
    /// The run failed but still produced something worth keeping (a health report saying
    /// `dbtool_up 0`); the runner counts it as a failure with this message.
    pub failure: Option<String>,
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
                "verify",
                "lock_wait_timeout",
                "keep_last",
                "keep_daily",
                "keep_weekly",
                "keep_monthly",
                "prune",
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
        Kind::Backup => {
            if job.target == super::config::TargetSel::All && loaded.file.targets.len() > 1 {
                return Err("a backup job backs up one server; set target = \"NAME\" (one job per server, each with its own dest)".into());
            }
            let opts = backup_options(job, loaded)?;
            if opts.dest.is_none() {
                return Err("missing key 'dest' (the backup directory), here or in [backup]".into());
            }
            Ok(())
        }
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

/// The `[backup]` section with the job's own keys laid over it: a key the job sets wins, the
/// rest keep the section's values (the same defaults `dbtool backup` uses).
fn backup_options(job: &Job, loaded: &Loaded) -> Result<BackupOptions, String> {
    let table: toml::Table = job.options.clone().into_iter().collect();
    let own: BackupOptions = Value::Table(table).try_into().map_err(|e| e.message().to_string())?;
    let mut o = loaded.file.backup.clone();
    for key in job.options.keys() {
        match key.as_str() {
            "dest" => o.dest.clone_from(&own.dest),
            "databases" => o.databases.clone_from(&own.databases),
            "all" => o.all = own.all,
            "format" => o.format = own.format,
            "jobs" => o.jobs = own.jobs,
            "compress" => o.compress.clone_from(&own.compress),
            "globals" => o.globals = own.globals,
            "files" => o.files.clone_from(&own.files),
            "verify" => o.verify = own.verify,
            "lock_wait_timeout" => o.lock_wait_timeout = own.lock_wait_timeout,
            "keep_last" => o.keep_last = own.keep_last,
            "keep_daily" => o.keep_daily = own.keep_daily,
            "keep_weekly" => o.keep_weekly = own.keep_weekly,
            "keep_monthly" => o.keep_monthly = own.keep_monthly,
            "prune" => o.prune = own.prune,
            "metrics" => o.metrics.clone_from(&own.metrics),
            other => return Err(format!("unknown key '{other}'")),
        }
    }
    // A scheduled job has no terminal to draw progress on.
    o.progress = false;
    Ok(o)
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
        Kind::Backup => backup(job, target, loaded, cancel).await,
        Kind::PoolAdvise => Err(anyhow!(
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
    let failure = report
        .targets
        .iter()
        .find_map(|t| t.error.as_ref().filter(|_| !t.up))
        .map(|err| format!("target unreachable: {err}"));
    Ok(Outcome {
        failure,
        message: format!("health {status}"),
        report: Some(report),
        ..Outcome::default()
    })
}

async fn backup(job: &Job, target: &Target, loaded: &Loaded, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let opts = backup_options(job, loaded).map_err(|e| anyhow!("job '{}': {e}", job.name))?;
    let session = crate::commands::targets::session(&crate::cli::ConnArgs::default(), loaded, true);
    let report = crate::jobs::backup::run_with_session(&opts, target, &session, cancel).await?;
    let mut bytes: i64 = 0;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for o in &report.outcomes {
        match &o.result {
            Ok(m) => {
                bytes = bytes.saturating_add(i64::try_from(m.bytes).unwrap_or(i64::MAX));
                done.push(format!("{} ({})", o.database, m.id));
            }
            Err(e) => failed.push(format!("backup of database {} failed: {e}", o.database)),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    if done.is_empty() {
        bail!("no database was backed up");
    }
    Ok(Outcome {
        bytes: Some(bytes),
        message: format!(
            "backed up {}; {} old backups pruned",
            done.join(", "),
            report.pruned.len()
        ),
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

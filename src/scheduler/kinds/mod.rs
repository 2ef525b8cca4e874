//! What each job kind takes (its keys in `[[jobs]]`) and how it runs, in-process; one file
//! per kind.

mod archive;
mod backup;
mod health;
mod pool_advise;
mod sleep;

use tokio_util::sync::CancellationToken;
use toml::Value;

use crate::db::Target;
use crate::report::Report;
use crate::settings::schedule::Job;
use crate::settings::Loaded;

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
                "format",
                "db_cores",
                "ssd",
                "app_instances",
                "app_max_open",
                "app_max_idle",
                "peak_factor",
                "headroom",
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
            (Kind::PoolAdvise, "pgbouncer" | "sample" | "format") if !v.is_str() => Err("expected a string".into()),
            (Kind::PoolAdvise, "db_cores" | "app_instances" | "app_max_open" | "app_max_idle")
                if v.as_integer().is_none_or(|n| u32::try_from(n).is_err()) =>
            {
                Err("expected a whole number, 0 or more".into())
            }
            (Kind::PoolAdvise, "ssd") if !v.is_bool() => Err("expected true or false".into()),
            (Kind::PoolAdvise, "peak_factor" | "headroom") if !(v.is_float() || v.is_integer()) => {
                Err("expected a number, e.g. 1.5".into())
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
        Kind::Archive => archive::archive_job(job, loaded).map(|_| ()),
        Kind::PoolAdvise => {
            let args = pool_advise::args_of(job)?;
            crate::commands::pool_advise::assumptions(&args, loaded)
                .map(|_| ())
                .map_err(|e| e.to_string().replace("(or ", "(as a job key, or "))
        }
        Kind::Backup => {
            if job.target == crate::settings::schedule::TargetSel::All && loaded.file.targets.len() > 1 {
                return Err("a backup job backs up one server; set target = \"NAME\" (one job per server, each with its own dest)".into());
            }
            let opts = backup::backup_options(job, loaded)?;
            if opts.dest.is_none() {
                return Err("missing key 'dest' (the backup directory), here or in [backup]".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
/// Runs one job against one target until it finishes or `cancel` fires.
pub async fn execute(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    match job.kind {
        Kind::Health => health::run(job, target, loaded, cancel).await,
        Kind::Sleep => sleep::run(job, cancel).await,
        Kind::Archive => archive::run(job, target, loaded, cancel).await,
        Kind::Backup => backup::run(job, target, loaded, cancel).await,
        Kind::PoolAdvise => pool_advise::run(job, target, loaded, cancel).await,
    }
}

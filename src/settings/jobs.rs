//! What each job kind takes: its keys are the fields of the command's own options type, read
//! from the type (no second list), and a job's table becomes that type, laid over the file's
//! section for the command, once per configuration load.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::{Table, Value};

use super::fields::fields_of;
use super::schedule::TargetSel;
use super::Settings;
use crate::checks::options::HealthOptions;
use crate::checks::plan::Plan;
use crate::checks::refresh::Refresh;
use crate::db::TargetKind;
use crate::duration::HumanDuration;
use crate::jobs::archive::ArchiveJob;
use crate::jobs::backup::BackupOptions;
use crate::pool::options::PoolAdviseOptions;
use crate::pool::render::PoolFormat;
use crate::report::Format;

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

/// A job's own options, already laid over the command's section of the file.
#[derive(Clone, Debug)]
pub enum JobOptions {
    Health(Box<HealthJob>),
    PoolAdvise(PoolAdviseJob),
    Backup(Box<BackupOptions>),
    Archive(Box<ArchiveJob>),
    Sleep(SleepOptions),
}

/// A health job, its plan resolved once per configuration load rather than once per run.
#[derive(Clone)]
pub struct HealthJob {
    pub plan: Plan,
    pub timeout: Duration,
    pub format: Format,
    /// Bound on Nagios output (`format = "nagios"`), in bytes.
    pub max_output: usize,
    /// The checks' refresh intervals and the results kept between runs, for this
    /// configuration load only: a reload starts from nothing.
    pub refresh: std::sync::Arc<Refresh>,
}

impl std::fmt::Debug for HealthJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checks: Vec<&str> = self.plan.checks.iter().map(|(c, _)| c.name()).collect();
        f.debug_struct("HealthJob")
            .field("checks", &checks)
            .field("timeout", &self.timeout)
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct PoolAdviseJob {
    pub options: PoolAdviseOptions,
    pub format: PoolFormat,
}

/// The test-only `sleep` kind's keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepOptions {
    /// How long the child sleeps (default 1).
    pub seconds: Option<f64>,
    /// A file the child's pid is appended to, one line per run.
    pub pid_file: Option<String>,
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

    /// Whether a run changes data and so is claimed exactly once across replicas (an advisory
    /// lock and a `dbtool.job_runs` row on its target). Health and pool-advise only read:
    /// every replica runs them, with no claim and no write, so they need no schema and work as
    /// a `pg_monitor` role. The test-only sleep kind stands in for a backup's child process.
    pub fn claims(self) -> bool {
        matches!(self, Kind::Backup | Kind::Archive | Kind::Sleep)
    }

    /// Whether the job works on a PostgreSQL server itself: a backup or an archive needs one
    /// to dump or move rows, pool-advise samples its pg_stat_database (PgBouncer's console is
    /// its `pgbouncer` key). Only health runs on every kind of target.
    pub fn needs_postgres(self) -> bool {
        matches!(self, Kind::Backup | Kind::Archive | Kind::PoolAdvise)
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

    /// The kind-specific keys: the fields of the command's options type. A health job's
    /// state and concurrency are left out (a job checks one target and keeps no counters), an
    /// archive job's name is the job's own, and `job` names an `[[archive]]` section instead.
    pub fn keys(self) -> Vec<&'static str> {
        let (fields, not): (&[&str], &[&str]) = match self {
            Kind::Health => (fields_of::<HealthOptions>(), &["state", "concurrency"]),
            Kind::PoolAdvise => (fields_of::<PoolAdviseOptions>(), &[]),
            Kind::Backup => (fields_of::<BackupOptions>(), &[]),
            Kind::Archive => (fields_of::<ArchiveJob>(), &["name"]),
            Kind::Sleep => (fields_of::<SleepOptions>(), &[]),
        };
        let job: &[&str] = if self == Kind::Archive { &["job"] } else { &[] };
        job.iter()
            .chain(fields.iter().filter(|f| !not.contains(f)))
            .copied()
            .collect()
    }

    /// Type-checks one key alone, so that its error carries the key's line. An archive
    /// table is only meaningful whole (table, column and older_than are required together).
    pub fn check_key(self, key: &str, value: &Value) -> Result<(), String> {
        let one = Value::Table(Table::from_iter([(key.to_string(), value.clone())]));
        let result = match self {
            Kind::Health => one.try_into::<HealthOptions>().map(drop),
            Kind::PoolAdvise => one.try_into::<PoolAdviseOptions>().map(drop),
            Kind::Backup => one.try_into::<BackupOptions>().map(drop),
            Kind::Sleep => one.try_into::<SleepOptions>().map(drop),
            Kind::Archive => Ok(()),
        };
        result.map_err(|e| super::read::tidy(e.message()))
    }
}

/// The parts of a job its options depend on.
pub struct Head<'a> {
    pub name: &'a str,
    pub target: &'a TargetSel,
    pub timeout: Option<Duration>,
}

fn typed<T: DeserializeOwned>(table: Table) -> Result<T, String> {
    Value::Table(table)
        .try_into()
        .map_err(|e| super::read::tidy(e.message()))
}

/// The job's table (its kind-specific keys) as the command's options over the file's section.
pub fn options(kind: Kind, table: Table, head: &Head, settings: &Settings) -> Result<JobOptions, String> {
    match kind {
        Kind::Health => health(typed(table)?, head, settings).map(|h| JobOptions::Health(Box::new(h))),
        Kind::PoolAdvise => {
            let own: PoolAdviseOptions = typed(table)?;
            let options = own.over(&settings.file.pool_advise);
            options
                .assumptions()
                .map_err(|e| e.to_string().replace("(or ", "(as a job key, or "))?;
            let format = options.format.unwrap_or(PoolFormat::Prometheus);
            Ok(JobOptions::PoolAdvise(PoolAdviseJob { options, format }))
        }
        Kind::Backup => backup(table, head, settings).map(|b| JobOptions::Backup(Box::new(b))),
        Kind::Archive => archive(table, head, settings).map(|a| JobOptions::Archive(Box::new(a))),
        Kind::Sleep => typed(table).map(JobOptions::Sleep),
    }
}

fn health(own: HealthOptions, head: &Head, settings: &Settings) -> Result<HealthJob, String> {
    for (key, v) in [("top", own.top), ("max_connections", own.max_connections)] {
        if v == Some(0) {
            return Err(format!("{key}: expected a positive integer"));
        }
    }
    let own = HealthOptions {
        timeout: head.timeout.map(HumanDuration),
        ..own
    };
    let options = own.over(&settings.file.health);
    let session = super::targets::session(&Default::default(), settings, true);
    let plan = super::health::plan(&options, settings, session).map_err(|e| e.to_string())?;
    let refresh = super::health::refresh(&options, &plan);
    Ok(HealthJob {
        refresh: std::sync::Arc::new(Refresh::new(refresh)),
        plan,
        timeout: options.timeout.map_or(HealthOptions::DEFAULT_TIMEOUT, |d| d.0),
        // A job writes for the textfile collector unless told otherwise; [health] format is
        // the command's.
        format: own.format.unwrap_or(Format::Prometheus),
        max_output: options.max_output.unwrap_or(HealthOptions::DEFAULT_MAX_OUTPUT),
    })
}

/// The `[backup]` section with the job's own keys laid over it: a key the job sets wins, the
/// rest keep the section's values (the same defaults `dbtool backup` uses).
fn backup(own: Table, head: &Head, settings: &Settings) -> Result<BackupOptions, String> {
    if *head.target == TargetSel::All && settings.file.targets.len() > 1 {
        return Err(
            "a backup job backs up one server; set target = \"NAME\" (one job per server, each with its own dest)"
                .into(),
        );
    }
    // The section as written (already validated as a whole by the load).
    let mut table = toml::from_str::<Table>(&settings.text)
        .ok()
        .and_then(|mut doc| doc.remove("backup"))
        .and_then(|v| match v {
            Value::Table(t) => Some(t),
            _ => None,
        })
        .unwrap_or_default();
    table.extend(own);
    let mut o: BackupOptions = typed(table)?;
    if o.dest.is_none() {
        return Err("missing key 'dest' (a backup directory or s3://BUCKET/PREFIX), here or in [backup]".into());
    }
    // A scheduled job has no terminal to draw progress on.
    o.progress = false;
    Ok(o)
}

/// The `[[archive]]` section named by `job = "..."`, or the job's own keys read as an
/// `[[archive]]` section (named after the scheduler job).
fn archive(mut own: Table, head: &Head, settings: &Settings) -> Result<ArchiveJob, String> {
    let archive = match own.get("job").map(|v| v.as_str()) {
        Some(Some(name)) => {
            if own.len() > 1 {
                return Err("with job = \"...\" the other archive settings belong in that [[archive]] section".into());
            }
            settings
                .file
                .archive
                .iter()
                .find(|a| a.job_name() == name)
                .cloned()
                .ok_or_else(|| format!("job = \"{name}\" names no [[archive]] section"))?
        }
        Some(None) => return Err("job: expected the name of an [[archive]] section".into()),
        None => {
            own.insert("name".into(), Value::String(head.name.to_string()));
            typed(own)?
        }
    };
    // Its message repeats the job's name, which the caller already prefixes.
    let archive = crate::jobs::archive::preset::expand(&archive).map_err(|e| e.to_string())?;
    let prefix = format!("archive job '{}': ", archive.job_name());
    archive.validate().map_err(|e| e.to_string().replace(&prefix, ""))?;
    Ok(archive)
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;

/// Why a job of `kind` cannot run on the target it names: a PgBouncer or Redis target for a
/// job that needs PostgreSQL, or `"*"` when no target is PostgreSQL (the scheduler gives such
/// a job only the PostgreSQL targets, so it would never run). The fix is in the message.
pub fn target_kind_error(kind: Kind, target: &TargetSel, settings: &Settings) -> Option<String> {
    if !kind.needs_postgres() {
        return None;
    }
    let targets = &settings.file.targets;
    let fix = match kind {
        Kind::PoolAdvise => "point target at the PostgreSQL server behind PgBouncer and give PgBouncer's admin console as pgbouncer = \"URL\"",
        _ => "point target at a [[targets]] entry with kind = \"postgres\"",
    };
    match target {
        TargetSel::Named(name) => {
            let t = targets.iter().find(|t| &t.name == name)?;
            (t.kind != TargetKind::Postgres).then(|| {
                format!(
                    "target '{name}' is a {} target, and a {} job needs a PostgreSQL server; {fix}",
                    t.kind.as_str(),
                    kind.name()
                )
            })
        }
        TargetSel::All => (!targets.is_empty() && targets.iter().all(|t| t.kind != TargetKind::Postgres)).then(|| {
            format!(
                "target \"*\" has no PostgreSQL server among the [[targets]], and a {} job needs one; {fix}",
                kind.name()
            )
        }),
    }
}

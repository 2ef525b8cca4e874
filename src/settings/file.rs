//! The configuration file as written: every section, `deny_unknown_fields` throughout. The
//! commands' sections are their options types, so a key means the same as the flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::checks::options::HealthOptions;
use crate::duration::HumanDuration;
use crate::pool::options::PoolAdviseOptions;

/// The whole file. Sections of later commands live beside `health`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// statement_timeout of every dbtool session (default "5s").
    pub statement_timeout: Option<HumanDuration>,
    /// lock_timeout of every dbtool session (default "100ms").
    pub lock_timeout: Option<HumanDuration>,
    /// Databases to watch; `--dsn` on the command line replaces them.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// `[health]`: defaults of `dbtool health` and of health jobs.
    #[serde(default)]
    pub health: HealthOptions,
    /// `[backup]`: defaults of `dbtool backup`, `dbtool backups` and `dbtool restore`.
    #[serde(default)]
    pub backup: crate::jobs::backup::BackupOptions,
    /// `[notify]`: who is told how backup and archive runs went, by hand or scheduled.
    #[serde(default)]
    pub notify: crate::notify::NotifyOptions,
    /// `[pool_advise]`: defaults of `dbtool pool-advise` and of pool-advise jobs.
    #[serde(default)]
    pub pool_advise: PoolAdviseOptions,
    /// Per-check settings: `[checks.connections] warning = 80`, `enabled = false`.
    #[serde(default)]
    pub checks: BTreeMap<String, Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    /// Archive jobs, run by name with `dbtool archive --job NAME` or by the scheduler.
    #[serde(default)]
    pub archive: Vec<crate::jobs::archive::ArchiveJob>,
    /// The scheduler's own settings (`dbtool schedule`).
    #[serde(default)]
    pub schedule: ScheduleFileConfig,
    /// `[[custom_checks]]`: checks written in SQL, run by `dbtool health` beside the built-in ones.
    #[serde(default)]
    pub custom_checks: Vec<crate::checks::custom::CustomCheckConfig>,
    /// postgres_exporter's queries.yaml, each query a custom check; relative to this file.
    pub custom_queries_file: Option<PathBuf>,
    /// `[probe]`: what `/probe` may connect to, and its bounds.
    #[serde(default)]
    pub probe: super::probe::ProbeConfig,
    /// `[auth.NAME]`: credentials for `/probe?target=host:port/dbname&auth=NAME`.
    #[serde(default)]
    pub auth: BTreeMap<String, super::probe::AuthConfig>,
    /// `[[jobs]]` for `dbtool schedule`; validated by `settings::schedule` (kind-specific keys).
    #[serde(default)]
    pub jobs: Vec<RawJob>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Label for metrics and reports (`target="main"`).
    pub name: String,
    /// URL or conninfo, as for `--dsn` (for a PgBouncer, its admin console).
    pub dsn: String,
    /// What the server is: "postgres" (default), "pgbouncer" or "redis".
    #[serde(default)]
    pub kind: crate::db::TargetKind,
}

/// One `[[jobs]]` table as written: every key with its position.
pub type RawJob = Spanned<BTreeMap<String, Spanned<Value>>>;

/// `[schedule]`: the daemon's own settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFileConfig {
    /// Timezone the cron expressions are read in (default "UTC").
    pub timezone: Option<Spanned<String>>,
    /// How long running jobs may finish after SIGTERM before they are cancelled (default "60s").
    pub grace_period: Option<HumanDuration>,
    /// The scheduler's own textfile, written atomically after every run.
    pub metrics_file: Option<PathBuf>,
    /// Serve /metrics, /probe and /healthz on this address, e.g. "127.0.0.1:19187".
    pub listen: Option<Spanned<String>>,
    /// Delete dbtool.job_runs rows older than this (default "30d"; "0s" keeps everything).
    pub history_keep: Option<HumanDuration>,
}

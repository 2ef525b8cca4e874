//! `archive`: move rows older than a cutoff into an archive table in small, safe batches.
//!
//! Entry point for the command and the scheduler: [`run`]. The job is described by an
//! [`ArchiveJob`] (a `[[archive]]` section of the config file, or the command's flags); the
//! data itself says where a run continues, so there is no state to lose between runs.

pub mod batch;
pub mod cross_db;
pub mod cutoff;
pub mod dry_run;
pub mod ident;
pub mod plan;
pub mod predicate;
pub mod report;
pub mod run;
pub mod setup;
pub mod walk;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

pub use batch::{Mode, Walk};
pub use cutoff::ColumnType;
pub use run::{run, run_with, Progress, Quiet, RunOptions};

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: i64 = 5000;

/// One archive job: `[[archive]]` in the config file, or `dbtool archive` flags.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveJob {
    /// Name for `--job`, the job history and logs (default: the table).
    pub name: Option<String>,
    /// Source table, `schema.table` (schema defaults to public).
    pub table: String,
    /// The time column that decides a row's age.
    pub column: String,
    /// How the column stores time (default: detected; required for integer columns).
    pub column_type: Option<ColumnType>,
    /// Age beyond which rows move: "2y", "90d", or a PostgreSQL interval ("18 months").
    pub older_than: String,
    /// Destination table (default: schema `archive`, same table name).
    pub dest: Option<String>,
    /// Destination in another database (URL or conninfo); default: the source database.
    pub dest_dsn: Option<String>,
    /// Rows per batch (default 5000).
    pub batch_size: Option<i64>,
    /// Pause between batches (default none).
    pub sleep: Option<HumanDuration>,
    /// Stop starting batches after this long (default: no limit).
    pub max_runtime: Option<HumanDuration>,
    /// Pause while any standby's replay lag exceeds this (default: don't check).
    pub max_lag: Option<HumanDuration>,
    /// Extra SQL predicate on the source rows, e.g. "channelid <> 'keep'".
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// Walk order (default: ctid on PostgreSQL 14+, key order before).
    pub walk: Option<Walk>,
    /// Copy only, never delete from the source.
    #[serde(default)]
    pub no_delete: bool,
    /// Delete only, no archive copy. Needs `confirm_purge`.
    #[serde(default)]
    pub purge: bool,
    /// The explicit yes for `purge`.
    #[serde(default)]
    pub confirm_purge: bool,
    /// Count and show the SQL; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Prometheus textfile to write at the end of each run.
    pub metrics: Option<PathBuf>,
    /// statement_timeout of dbtool's sessions (default: the global setting, 5s).
    pub statement_timeout: Option<HumanDuration>,
    /// lock_timeout of dbtool's sessions (default: the global setting, 100ms).
    pub lock_timeout: Option<HumanDuration>,
}

impl ArchiveJob {
    pub fn job_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.table.clone())
    }

    pub fn batch_size(&self) -> i64 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    pub fn mode(&self) -> Mode {
        if self.purge {
            Mode::Purge
        } else if self.no_delete {
            Mode::Copy
        } else {
            Mode::Move
        }
    }

    /// Checks combinations the types cannot express.
    pub fn validate(&self) -> Result<(), ArchiveError> {
        let name = self.job_name();
        let bad = |why: &str| Err(ArchiveError::Config(format!("archive job '{name}': {why}")));
        if self.table.trim().is_empty() || self.column.trim().is_empty() || self.older_than.trim().is_empty() {
            return bad("table, column and older_than are required");
        }
        if !(1..=1_000_000).contains(&self.batch_size()) {
            return bad("batch size must be between 1 and 1000000");
        }
        if self.purge && self.no_delete {
            return bad("--purge deletes without copying and --no-delete copies without deleting; pick one");
        }
        if self.purge && !self.confirm_purge && !self.dry_run {
            return bad("--purge deletes rows without keeping a copy; add --confirm-purge to really do it");
        }
        if self.purge && (self.dest.is_some() || self.dest_dsn.is_some()) {
            return bad("--purge keeps no copy, so --dest and --dest-dsn make no sense with it");
        }
        // Checked again in setup once the server's standard_conforming_strings is known.
        if let Some(w) = &self.filter {
            predicate::check(w, predicate::Strings::Standard)
                .map_err(|e| ArchiveError::Config(format!("archive job '{name}': {e}")))?;
        }
        Ok(())
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum StopReason {
    /// A pass found nothing left older than the cutoff.
    Done,
    MaxRuntime,
    /// SIGINT/SIGTERM (or the scheduler's cancellation): the current batch was finished.
    Signal,
    /// A standby stayed behind `max_lag` until max-runtime ran out.
    Lag,
    DryRun,
    Error(String),
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::Done => "done",
            StopReason::MaxRuntime => "max-runtime",
            StopReason::Signal => "signal",
            StopReason::Lag => "lag",
            StopReason::DryRun => "dry-run",
            StopReason::Error(_) => "error",
        }
    }
}

/// What a run did; the summary, the metrics and the job history are made from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveReport {
    pub job: String,
    pub table: String,
    pub dest: Option<String>,
    pub mode: Mode,
    pub walk: Walk,
    pub cutoff: String,
    pub rows: i64,
    pub batches: u64,
    pub passes: u32,
    #[serde(with = "secs")]
    pub duration: Duration,
    #[serde(with = "secs")]
    pub slowest_batch: Duration,
    /// Rows still older than the cutoff, counted at the end of the run; None when the count
    /// failed (then `remaining_estimate` may hold the planner's figure). Never a stand-in 0.
    pub remaining: Option<i64>,
    /// The planner's estimate of `remaining`, only when it could not be counted.
    pub remaining_estimate: Option<i64>,
    pub stop: StopReason,
    /// With --dry-run: the exact number of rows that would move (None if counting timed out).
    pub would_move: Option<i64>,
    /// With --dry-run: the SQL a batch would run (and the destination's CREATE, if missing).
    pub sql: Option<String>,
}

impl ArchiveReport {
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.rows as f64 / secs
        } else {
            0.0
        }
    }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Why a run could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Name(#[from] ident::NameError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Connect(#[from] crate::db::ConnectError),
    #[error(transparent)]
    Migrate(#[from] crate::db::migrate::MigrateError),
    #[error(transparent)]
    Version(#[from] crate::db::VersionError),
    #[error("recording the run in dbtool.job_runs: {0}")]
    History(#[from] crate::db::job_runs::JobRunsError),
    #[error("unexpected answer from the server: {0}")]
    Column(#[from] crate::db::ColumnError),
    #[error("{what}: {}", crate::jobs::pg_error(.source))]
    Db {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("another dbtool archive of {0} is running (advisory lock held); this run did nothing")]
    Busy(String),
    /// A batch failed after others succeeded; the failed batch changed nothing.
    #[error("{message} (after moving {} rows; the failed batch changed nothing, a re-run continues)", .report.rows)]
    Run {
        report: Box<ArchiveReport>,
        message: String,
    },
}

impl ArchiveError {
    /// Exit code of `dbtool archive` for this error (see its --help).
    pub fn exit_code(&self) -> u8 {
        match self {
            ArchiveError::Busy(_) => 1,
            ArchiveError::Run { .. } | ArchiveError::Db { .. } | ArchiveError::Connect(_) => 2,
            ArchiveError::Migrate(_) | ArchiveError::Version(_) | ArchiveError::History(_) => 2,
            ArchiveError::Column(_) => 2,
            ArchiveError::Name(_) | ArchiveError::Config(_) | ArchiveError::Refused(_) => 3,
        }
    }
}

//! `archive`: move rows older than a cutoff into an archive table in small, safe batches.
//!
//! Entry point for the command and the scheduler: [`run`]. The job is described by an
//! [`ArchiveJob`] (a `[[archive]]` section of the config file, or the command's flags); the
//! data itself says where a run continues, so there is no state to lose between runs.

pub mod batch;
pub mod children;
pub mod cross_db;
pub mod cutoff;
pub mod dry_run;
pub mod ident;
pub mod manifest;
pub mod options;
pub mod plan;
pub mod predicate;
pub mod preset;
pub mod report;
pub mod run;
pub mod setup;
pub mod walk;

use std::time::Duration;

use serde::Serialize;

pub use batch::{Mode, Walk};
pub use cutoff::ColumnType;
pub use options::{ArchiveJob, DEFAULT_BATCH_SIZE};
pub use run::{run, run_with, Progress, Quiet, RunOptions};

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
    /// The child tables moved with the parent rows, parents before their children.
    pub children: Vec<ChildReport>,
}

/// What a run did to one child table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildReport {
    pub table: String,
    pub dest: Option<String>,
    /// The table its rows refer to, and how: `column` holds `parent_column`'s value.
    pub parent: String,
    pub column: String,
    pub parent_column: String,
    /// The ON DELETE CASCADE foreign key it was found through; None when named with --child.
    pub foreign_key: Option<String>,
    pub rows: i64,
    /// Rows still referring to a row older than the cutoff, counted at the end of the run.
    pub remaining: Option<i64>,
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

//! `dbtool.job_runs`: one row per job run, written by the commands and by the scheduler.
//!
//! `start` claims (job, scheduled_at) with INSERT … ON CONFLICT DO NOTHING: the unique key is
//! what lets two scheduler replicas agree that a scheduled time already ran. Hand-started runs
//! pass `scheduled_at = None` (NULLs never conflict). The schema comes from `db::migrate`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{ColumnError, Columns};

const ABANDON_SQL: &str = include_str!("../../queries/job_runs_abandon.sql");
const START_SQL: &str = include_str!("../../queries/job_runs_start.sql");
const FINISH_SQL: &str = include_str!("../../queries/job_runs_finish.sql");
const RECENT_SQL: &str = include_str!("../../queries/job_runs_recent.sql");
const PRUNE_SQL: &str = include_str!("../../queries/job_runs_prune.sql");
const LAST_SCHEDULED_SQL: &str = include_str!("../../queries/job_runs_last_scheduled.sql");

/// A `dbtool.job_runs` statement failed, or its answer was not what this dbtool reads.
#[derive(Debug, thiserror::Error)]
pub enum JobRunsError {
    #[error("{}", crate::errors::pg(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("reading dbtool.job_runs: {0}")]
    Column(#[from] ColumnError),
}

impl JobRunsError {
    /// The server's SQLSTATE, when the server refused the statement.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            JobRunsError::Query(e) => e.code(),
            JobRunsError::Column(_) => None,
        }
    }
}

/// How a run ended (the `status` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Success,
    Failure,
    Timeout,
    Cancelled,
    /// It never recorded an end: the process was killed or its session terminated. Set by a
    /// later run that found the row `running` while nobody held the run's lock.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failure => "failure",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

/// One row of `dbtool.job_runs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub kind: String,
    pub target: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub runner: String,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub message: Option<String>,
}

/// "host:pid" of this process, for the `runner` column.
pub fn runner() -> String {
    format!("{}:{}", crate::host::name(), std::process::id())
}

/// The advisory lock key the scheduler holds while it runs `job` (see `db::lock`).
pub fn schedule_lock_key(job: &str) -> i64 {
    super::lock::key(super::lock::Namespace::Schedule, job)
}

/// Marks the `running` rows of (job, kind) whose run is gone as `abandoned`, except `current`;
/// returns their ids.
///
/// A run holds an advisory lock for as long as it can still write its row: the scheduler's on
/// the job name (rows with a `scheduled_at`), and for rows started by hand, the lock the CALLER
/// holds now (archive: the table's). So a scheduled row is dead when nobody holds its key, and
/// a hand-started row is dead because the caller holds its lock. The caller's lock also keeps
/// two runs from judging at once. A live row is never touched: `status = 'running'` is
/// re-checked by the UPDATE itself.
pub async fn abandon_stale(
    client: &Client,
    job: &str,
    kind: &str,
    current: Option<i64>,
) -> Result<Vec<i64>, JobRunsError> {
    let rows = client
        .query(ABANDON_SQL, &[&job, &kind, &current, &schedule_lock_key(job)])
        .await?;
    Ok(rows.iter().map(|r| r.col("id")).collect::<Result<_, _>>()?)
}

/// Records the start of a run; `None` when (job, scheduled_at) was already claimed.
pub async fn start(
    client: &Client,
    job: &str,
    kind: &str,
    target: &str,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<Option<i64>, JobRunsError> {
    let row = client
        .query_opt(START_SQL, &[&job, &kind, &target, &scheduled_at, &runner()])
        .await?;
    Ok(row.map(|r| r.col("id")).transpose()?)
}

/// Records how run `id` ended.
pub async fn finish(
    client: &Client,
    id: i64,
    status: RunStatus,
    rows: Option<i64>,
    bytes: Option<i64>,
    message: Option<&str>,
) -> Result<(), JobRunsError> {
    client
        .execute(FINISH_SQL, &[&id, &status.as_str(), &rows, &bytes, &message])
        .await?;
    Ok(())
}

/// The latest runs, newest first, of one job or of all.
pub async fn recent(client: &Client, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>, JobRunsError> {
    let rows = client.query(RECENT_SQL, &[&job, &limit]).await?;
    let run = |r: &tokio_postgres::Row| -> Result<JobRun, ColumnError> {
        Ok(JobRun {
            id: r.col("id")?,
            job: r.col("job")?,
            kind: r.col("kind")?,
            target: r.col("target")?,
            scheduled_at: r.col("scheduled_at")?,
            started_at: r.col("started_at")?,
            finished_at: r.col("finished_at")?,
            status: r.col("status")?,
            runner: r.col("runner")?,
            rows: r.col("rows")?,
            bytes: r.col("bytes")?,
            message: r.col("message")?,
        })
    };
    Ok(rows.iter().map(run).collect::<Result<_, _>>()?)
}

/// The latest scheduled time recorded for a job (None: never scheduled).
pub async fn last_scheduled(client: &Client, job: &str) -> Result<Option<DateTime<Utc>>, JobRunsError> {
    Ok(client.query_one(LAST_SCHEDULED_SQL, &[&job]).await?.col("last")?)
}

/// Deletes runs that started before `older_than` (a stale "running" row of a killed process too).
pub async fn prune(client: &Client, older_than: DateTime<Utc>) -> Result<u64, JobRunsError> {
    Ok(client.execute(PRUNE_SQL, &[&older_than]).await?)
}

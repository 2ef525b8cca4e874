//! The scheduler's use of `dbtool.job_runs` (schema from `dbtool migrate`, API in
//! `db::job_runs`): claim a (job, scheduled_at) row, record how the run ended, find the last
//! scheduled run, prune. Adds the "run `dbtool migrate`" hint the scheduler's logs need.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::db::job_runs::{self, RunStatus};

/// Why a bookkeeping statement failed, with the fix when there is an obvious one.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("table dbtool.job_runs does not exist; run `dbtool migrate` against this target first")]
    NoTable,
    #[error("dbtool.job_runs: {0}")]
    Sql(String),
}

fn sql_error(e: job_runs::JobRunsError) -> HistoryError {
    use tokio_postgres::error::SqlState;
    if e.code() == Some(&SqlState::UNDEFINED_TABLE) || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) {
        return HistoryError::NoTable;
    }
    HistoryError::Sql(e.to_string())
}

/// Inserts the run's row; `None` when (job, scheduled_at) was already claimed (by the other
/// replica, or by this one before a restart).
pub async fn start(
    client: &Client,
    job: &str,
    kind: &str,
    target: &str,
    scheduled_at: DateTime<Utc>,
) -> Result<Option<i64>, HistoryError> {
    job_runs::start(client, job, kind, target, Some(scheduled_at))
        .await
        .map_err(sql_error)
}

/// Records the end of a run.
pub async fn finish(
    client: &Client,
    id: i64,
    status: RunStatus,
    rows: Option<i64>,
    bytes: Option<i64>,
    message: &str,
) -> Result<(), HistoryError> {
    job_runs::finish(client, id, status, rows, bytes, Some(message))
        .await
        .map_err(sql_error)
}

/// The latest scheduled time recorded for a job, to detect runs missed while no daemon ran.
pub async fn last_scheduled(client: &Client, job: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
    job_runs::last_scheduled(client, job).await.map_err(sql_error)
}

/// Deletes runs that started more than `keep` ago; returns how many went.
pub async fn prune(client: &Client, keep: std::time::Duration) -> Result<u64, HistoryError> {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let cutoff = Utc::now().checked_sub_signed(keep).unwrap_or(DateTime::<Utc>::MIN_UTC);
    job_runs::prune(client, cutoff).await.map_err(sql_error)
}

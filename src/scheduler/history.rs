//! The scheduler's use of `dbtool.job_runs` (created by `dbtool migrate`): claim a
//! (job, scheduled_at) row, record how the run ended, find the last scheduled run, prune.
//!
//! Timestamps travel as RFC 3339 text cast on the server (`$n::text::timestamptz`), so no
//! chrono feature of tokio-postgres is needed and the server's parser decides.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

/// Why a bookkeeping statement failed, with the fix when there is an obvious one.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("table dbtool.job_runs does not exist; run `dbtool migrate` against this target first")]
    NoTable,
    #[error("dbtool.job_runs: {0}")]
    Sql(String),
}

fn sql_error(e: tokio_postgres::Error) -> HistoryError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
        || e.code() == Some(&tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME)
    {
        return HistoryError::NoTable;
    }
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string());
    HistoryError::Sql(detail)
}

/// Inserts the run's row; `None` when (job, scheduled_at) was already claimed (by the other
/// replica, or by this one before a restart).
pub async fn start(
    client: &Client,
    job: &str,
    kind: &str,
    target: &str,
    scheduled_at: DateTime<Utc>,
    runner: &str,
) -> Result<Option<i64>, HistoryError> {
    let row = client
        .query_opt(
            "/* dbtool */ INSERT INTO dbtool.job_runs (job, kind, target, scheduled_at, runner) \
             VALUES ($1, $2, $3, $4::text::timestamptz, $5) \
             ON CONFLICT (job, scheduled_at) DO NOTHING RETURNING id",
            &[&job, &kind, &target, &scheduled_at.to_rfc3339(), &runner],
        )
        .await
        .map_err(sql_error)?;
    row.map(|r| r.try_get::<_, i64>(0)).transpose().map_err(sql_error)
}

/// Records the end of a run: status success | failure | timeout.
pub async fn finish(
    client: &Client,
    id: i64,
    status: &str,
    rows: Option<i64>,
    bytes: Option<i64>,
    message: &str,
) -> Result<(), HistoryError> {
    client
        .execute(
            "/* dbtool */ UPDATE dbtool.job_runs SET finished_at = now(), status = $2, rows = $3, bytes = $4, \
             message = $5 WHERE id = $1",
            &[&id, &status, &rows, &bytes, &message],
        )
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// The latest scheduled time recorded for a job, to detect runs missed while no daemon ran.
pub async fn last_scheduled(client: &Client, job: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
    let row = client
        .query_one(
            "/* dbtool */ SELECT to_char(max(scheduled_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM dbtool.job_runs WHERE job = $1",
            &[&job],
        )
        .await
        .map_err(sql_error)?;
    let text: Option<String> = row.try_get(0).map_err(sql_error)?;
    Ok(text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.with_timezone(&Utc))))
}

/// Deletes finished runs that started before `keep` ago; returns how many went.
pub async fn prune(client: &Client, keep: std::time::Duration) -> Result<u64, HistoryError> {
    let secs = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
    client
        .execute(
            "/* dbtool */ DELETE FROM dbtool.job_runs WHERE finished_at IS NOT NULL \
             AND started_at < now() - make_interval(secs => $1::bigint)",
            &[&secs],
        )
        .await
        .map_err(sql_error)
}

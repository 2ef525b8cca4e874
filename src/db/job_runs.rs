//! `dbtool.job_runs`: one row per job run, written by the commands and by the scheduler.
//!
//! `start` claims (job, scheduled_at) with INSERT … ON CONFLICT DO NOTHING: the unique key is
//! what lets two scheduler replicas agree that a scheduled time already ran. Hand-started runs
//! pass `scheduled_at = None` (NULLs never conflict). The schema comes from `db::migrate`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

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
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "/* dbtool */ UPDATE dbtool.job_runs r
             SET status = 'abandoned', finished_at = now(),
                 message = 'abandoned: the run ended without recording its end (killed, or its session was \
                            terminated); marked by a later run that found its lock free'
             WHERE r.job = $1 AND r.kind = $2 AND r.status = 'running' AND r.id IS DISTINCT FROM $3
               AND (r.scheduled_at IS NULL OR NOT EXISTS (
                    SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.classid = (($4::bigint >> 32) & 4294967295)::oid
                      AND l.objid = ($4::bigint & 4294967295)::oid))
             RETURNING r.id",
            &[&job, &kind, &current, &schedule_lock_key(job)],
        )
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Records the start of a run; `None` when (job, scheduled_at) was already claimed.
pub async fn start(
    client: &Client,
    job: &str,
    kind: &str,
    target: &str,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "/* dbtool */ INSERT INTO dbtool.job_runs (job, kind, target, scheduled_at, runner)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job, scheduled_at) DO NOTHING RETURNING id",
            &[&job, &kind, &target, &scheduled_at, &runner()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Records how run `id` ended.
pub async fn finish(
    client: &Client,
    id: i64,
    status: RunStatus,
    rows: Option<i64>,
    bytes: Option<i64>,
    message: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "/* dbtool */ UPDATE dbtool.job_runs
             SET finished_at = now(), status = $2, rows = $3, bytes = $4, message = $5 WHERE id = $1",
            &[&id, &status.as_str(), &rows, &bytes, &message],
        )
        .await?;
    Ok(())
}

/// The latest runs, newest first, of one job or of all.
pub async fn recent(client: &Client, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>, tokio_postgres::Error> {
    let rows = client
        .query(
            "/* dbtool */ SELECT id, job, kind, target, scheduled_at, started_at, finished_at, status, runner,
                    rows, bytes, message
             FROM dbtool.job_runs WHERE $1::text IS NULL OR job = $1
             ORDER BY started_at DESC, id DESC LIMIT $2",
            &[&job, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| JobRun {
            id: r.get("id"),
            job: r.get("job"),
            kind: r.get("kind"),
            target: r.get("target"),
            scheduled_at: r.get("scheduled_at"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            status: r.get("status"),
            runner: r.get("runner"),
            rows: r.get("rows"),
            bytes: r.get("bytes"),
            message: r.get("message"),
        })
        .collect())
}

/// Deletes runs that started before `older_than` (a stale "running" row of a killed process too).
pub async fn prune(client: &Client, older_than: DateTime<Utc>) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "/* dbtool */ DELETE FROM dbtool.job_runs WHERE started_at < $1",
            &[&older_than],
        )
        .await
}

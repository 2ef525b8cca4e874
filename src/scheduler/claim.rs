//! Exactly-once across replicas. A run first takes a session advisory lock on the job's name
//! (held for the whole run, so two replicas never run the same job at once) and then inserts
//! its (job, scheduled_at) row. The row is what makes it exactly-once: scheduled_at is the
//! cron time, identical on both replicas whatever their clock skew, so a job that finished in
//! 50 ms cannot run again on a replica whose clock is a second behind.

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::history::{self, HistoryError};
use crate::db::job_runs::RunStatus;
use crate::db::Target;
use crate::db::{connect, ConnectError, SessionSettings};

/// The outcome of trying to claim a run.
pub enum Claim {
    /// This replica runs it; keep the client until `release` (it holds the lock).
    Won(Held),
    /// Another replica holds the lock or already ran this scheduled time.
    Lost,
}

pub struct Held {
    pub client: Client,
    pub id: i64,
    key: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    History(#[from] HistoryError),
    #[error("advisory lock: {0}")]
    Lock(String),
}

/// The advisory lock key for a job (in `db::job_runs`, which also needs it to tell a live run
/// from a dead one).
pub use crate::db::job_runs::schedule_lock_key as lock_key;

/// `session` is the bookkeeping session (`settings::targets::bookkeeping`): writable, under
/// the configured statement and lock timeouts.
pub async fn claim(
    target: &Target,
    session: &SessionSettings,
    job: &str,
    kind: &str,
    scheduled_at: DateTime<Utc>,
) -> Result<Claim, ClaimError> {
    let client = connect(target.postgres_params()?, session).await?;
    let key = lock_key(job);
    let got = crate::db::lock::try_lock(&client, key)
        .await
        .map_err(|e| ClaimError::Lock(e.to_string()))?;
    if !got {
        return Ok(Claim::Lost);
    }
    match history::start(&client, job, kind, &target.name, scheduled_at).await? {
        Some(id) => Ok(Claim::Won(Held { client, id, key })),
        None => Ok(Claim::Lost),
    }
}

impl Held {
    /// Records the result and lets go of the lock. Failures here are logged by the caller; the
    /// lock goes with the session anyway.
    pub async fn release(
        self,
        status: RunStatus,
        rows: Option<i64>,
        bytes: Option<i64>,
        message: &str,
    ) -> Result<(), HistoryError> {
        let result = history::finish(&self.client, self.id, status, rows, bytes, message).await;
        let _ = crate::db::lock::unlock(&self.client, self.key).await;
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(super::lock_key("health"), super::lock_key("health"));
        assert_ne!(super::lock_key("health"), super::lock_key("backup"));
    }
}

//! A backup run by hand is a row in `dbtool.job_runs`, like a scheduled one, so `dbtool
//! history` shows every backup, where the database carries dbtool's schema (`dbtool migrate`).
//! A backup never creates it: taking a backup writes nothing else into the database, and a
//! role that may only read still gets its backup.

use tokio_postgres::Client;

use super::{BackupError, BackupReport};
use crate::db::job_runs::{self, RunStatus};
use crate::db::{migrate, SessionSettings, Target};

/// The job name of a backup started by hand (a scheduled one has its `[[jobs]]` name).
pub const JOB: &str = "backup";

/// A started row and the session that finishes it.
pub struct Recorded {
    client: Client,
    id: i64,
}

/// Records the start on the target's database; None (saying why) when it cannot.
pub async fn start(target: &Target, settings: &SessionSettings) -> Option<Recorded> {
    let started = async {
        let client = match async { crate::db::connect(target.postgres_params()?, settings).await }.await {
            Ok(client) => client,
            Err(e) => {
                // The backup connects next and reports the same problem, once.
                tracing::debug!(target = %target.name, error = %e, "this backup is not recorded in dbtool history");
                return Ok(None);
            }
        };
        if let Err(e) = migrate::require_current(&client).await {
            tracing::info!(target = %target.name, reason = %e,
                "this backup is not recorded in dbtool history (the database has no current dbtool schema; `dbtool migrate` records backups from then on)");
            return Ok(None);
        }
        let id = job_runs::start(&client, JOB, "backup", &target.name, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(id.map(|id| Recorded { client, id }))
    };
    match started.await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(target = %target.name, error = %e,
                "this backup is not recorded in dbtool history; run `dbtool migrate` as the database owner to record backups");
            None
        }
    }
}

/// What a finished run stores: status, bytes written, one message line.
pub fn outcome(result: &Result<BackupReport, BackupError>) -> (RunStatus, Option<i64>, String) {
    let report = match result {
        Ok(r) => r,
        Err(BackupError::Cancelled) => return (RunStatus::Cancelled, None, "cancelled".into()),
        Err(e) => return (RunStatus::Failure, None, e.to_string()),
    };
    let ok: Vec<&super::manifest::Manifest> = report.outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
    let bytes = ok.iter().map(|m| m.bytes).sum::<u64>();
    let mut parts: Vec<String> = ok.iter().map(|m| format!("{} verified", m.id)).collect();
    for o in &report.outcomes {
        if let Err(e) = &o.result {
            parts.push(format!("{} failed: {e}", o.database));
        }
    }
    let cancelled = report
        .outcomes
        .iter()
        .any(|o| matches!(o.result, Err(BackupError::Cancelled)));
    let status = match (report.all_ok(), cancelled) {
        (true, _) => RunStatus::Success,
        (false, true) => RunStatus::Cancelled,
        (false, false) => RunStatus::Failure,
    };
    if parts.is_empty() {
        parts.push("nothing was backed up".into());
    }
    (status, i64::try_from(bytes).ok(), parts.join("; "))
}

impl Recorded {
    pub async fn finish(self, result: &Result<BackupReport, BackupError>) {
        let (status, bytes, message) = outcome(result);
        if let Err(e) = job_runs::finish(&self.client, self.id, status, None, bytes, Some(&message)).await {
            tracing::warn!(error = %e, "the end of this backup is not recorded in dbtool history");
        }
    }
}

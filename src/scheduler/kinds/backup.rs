//! The `backup` kind: `jobs::backup` with the job's keys laid over `[backup]` (by `settings::jobs`).

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::db::Target;
use crate::jobs::backup::BackupOptions;
use crate::settings::{targets, Settings};

pub(super) async fn run(
    opts: &BackupOptions,
    target: &Target,
    loaded: &Settings,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let session = targets::session(&Default::default(), loaded, true);
    let report = crate::jobs::backup::run_with_session(opts, target, &session, cancel).await?;
    let mut bytes: i64 = 0;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for o in &report.outcomes {
        match &o.result {
            Ok(m) => {
                bytes = bytes.saturating_add(i64::try_from(m.bytes).unwrap_or(i64::MAX));
                done.push(format!("{} ({})", o.database, m.id));
            }
            Err(e) => failed.push(format!("backup of database {} failed: {e}", o.database)),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    if done.is_empty() {
        bail!("no database was backed up");
    }
    Ok(Outcome {
        bytes: Some(bytes),
        message: format!(
            "backed up {}; {} old backups pruned",
            done.join(", "),
            report.pruned.len()
        ),
        ..Outcome::default()
    })
}

//! The `backup` kind: `jobs::backup` with the job's keys laid over `[backup]`.

use anyhow::{anyhow, bail};
use tokio_util::sync::CancellationToken;
use toml::Value;

use super::Outcome;
use crate::db::Target;
use crate::jobs::backup::BackupOptions;
use crate::settings::schedule::Job;
use crate::settings::Loaded;

/// The `[backup]` section with the job's own keys laid over it: a key the job sets wins, the
/// rest keep the section's values (the same defaults `dbtool backup` uses).
pub(super) fn backup_options(job: &Job, loaded: &Loaded) -> Result<BackupOptions, String> {
    let table: toml::Table = job.options.clone().into_iter().collect();
    let own: BackupOptions = Value::Table(table).try_into().map_err(|e| e.message().to_string())?;
    let mut o = loaded.file.backup.clone();
    for key in job.options.keys() {
        match key.as_str() {
            "dest" => o.dest.clone_from(&own.dest),
            "databases" => o.databases.clone_from(&own.databases),
            "all" => o.all = own.all,
            "format" => o.format = own.format,
            "jobs" => o.jobs = own.jobs,
            "compress" => o.compress.clone_from(&own.compress),
            "globals" => o.globals = own.globals,
            "files" => o.files.clone_from(&own.files),
            "verify" => o.verify = own.verify,
            "lock_wait_timeout" => o.lock_wait_timeout = own.lock_wait_timeout,
            "keep_last" => o.keep_last = own.keep_last,
            "keep_daily" => o.keep_daily = own.keep_daily,
            "keep_weekly" => o.keep_weekly = own.keep_weekly,
            "keep_monthly" => o.keep_monthly = own.keep_monthly,
            "prune" => o.prune = own.prune,
            "metrics" => o.metrics.clone_from(&own.metrics),
            other => return Err(format!("unknown key '{other}'")),
        }
    }
    // A scheduled job has no terminal to draw progress on.
    o.progress = false;
    Ok(o)
}

pub(super) async fn run(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let opts = backup_options(job, loaded).map_err(|e| anyhow!("job '{}': {e}", job.name))?;
    let session = crate::commands::targets::session(&crate::cli::ConnArgs::default(), loaded, true);
    let report = crate::jobs::backup::run_with_session(&opts, target, &session, cancel).await?;
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

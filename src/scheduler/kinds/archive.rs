//! The `archive` kind: `jobs::archive` with the scheduler's own job_runs row.

use anyhow::{anyhow, bail, Context};
use tokio_util::sync::CancellationToken;
use toml::Value;

use super::Outcome;
use crate::db::Target;
use crate::jobs::archive::{ArchiveJob, StopReason};
use crate::settings::schedule::Job;
use crate::settings::Loaded;

/// The archive job to run: the `[[archive]]` section named by `job = "..."`, or the job's own
/// keys read as an `[[archive]]` section (named after the scheduler job).
pub(super) fn archive_job(job: &Job, loaded: &Loaded) -> Result<ArchiveJob, String> {
    let archive = match job.options.get("job").map(|v| v.as_str()) {
        Some(Some(name)) => {
            if job.options.len() > 1 {
                return Err("with job = \"...\" the other archive settings belong in that [[archive]] section".into());
            }
            loaded
                .file
                .archive
                .iter()
                .find(|a| a.job_name() == name)
                .cloned()
                .ok_or_else(|| format!("job = \"{name}\" names no [[archive]] section"))?
        }
        Some(None) => return Err("job: expected the name of an [[archive]] section".into()),
        None => {
            let mut table: toml::Table = job.options.clone().into_iter().collect();
            table.insert("name".into(), Value::String(job.name.clone()));
            Value::Table(table)
                .try_into::<ArchiveJob>()
                .map_err(|e| e.message().to_string())?
        }
    };
    // Its message repeats the job's name, which the caller already prefixes.
    let prefix = format!("archive job '{}': ", archive.job_name());
    archive.validate().map_err(|e| e.to_string().replace(&prefix, ""))?;
    Ok(archive)
}

pub(super) async fn run(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let archive = archive_job(job, loaded).map_err(|e| anyhow!("job '{}': {e}", job.name))?;
    let target = target.clone();
    // archive's run future holds a `&mut dyn Progress` (not Send), so it cannot be spawned on
    // the worker threads; it runs on a blocking thread that drives it on the same runtime.
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let mut quiet = crate::jobs::archive::run::Quiet;
            // The scheduler has claimed and will finish its own dbtool.job_runs row.
            let opts = crate::jobs::archive::RunOptions {
                progress: &mut quiet,
                record: false,
            };
            crate::jobs::archive::run_with(&archive, &target, cancel, opts).await
        })
    })
    .await
    .context("the archive run panicked")??;
    let message = format!(
        "{} rows from {} in {} batches, stopped: {}",
        report.rows,
        report.table,
        report.batches,
        report.stop.as_str()
    );
    if let StopReason::Error(e) = &report.stop {
        bail!("{message}: {e}");
    }
    if report.stop == StopReason::Signal {
        bail!("{message} (cancelled after the current batch)");
    }
    Ok(Outcome {
        rows: Some(report.rows),
        message,
        ..Outcome::default()
    })
}

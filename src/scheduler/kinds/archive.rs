//! The `archive` kind: `jobs::archive` with the scheduler's own job_runs row.

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::db::Target;
use crate::jobs::archive::{ArchiveJob, StopReason};

pub(super) async fn run(archive: &ArchiveJob, target: &Target, cancel: CancellationToken) -> anyhow::Result<Outcome> {
    let archive = archive.clone();
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

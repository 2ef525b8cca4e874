//! Listing and retention on object storage, by the directory code over a mirror of the
//! manifests: the same series, the same GFS decision, the same report.

use chrono::{DateTime, Utc};

use super::super::error::BackupError;
use super::super::manifest::{self, Manifest};
use super::super::options::Retention;
use super::super::prune::{self, PruneReport, LEFTOVER_AGE};
use super::mirror::{self, Scratch};
use super::Remote;

/// Verified backups (oldest first) of the remote.
pub async fn scan(remote: &Remote) -> Result<Vec<Manifest>, BackupError> {
    let scratch = Scratch::new()?;
    mirror::manifests(remote, scratch.path()).await?;
    manifest::scan(scratch.path()).map(|(b, _)| b)
}

/// `prune::prune` on the remote: the decision on the mirror (dry run), then the deletes,
/// each manifest first; unfinished uploads older than a day removed too.
pub async fn prune(
    remote: &Remote,
    r: Retention,
    databases: Option<&[String]>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<PruneReport, BackupError> {
    let scratch = Scratch::new()?;
    let objects = mirror::manifests(remote, scratch.path()).await?;
    let mut report = prune::prune(scratch.path(), r, databases, true, now)?;
    if !dry_run {
        for m in &report.deleted {
            if let Some(o) = objects.get(&m.id) {
                mirror::delete(remote, &m.id, o).await?;
            }
        }
    }
    let cutoff = now - chrono::Duration::from_std(LEFTOVER_AGE).unwrap_or_default();
    // Multipart uploads of killed runs first (their parts are billed), then the objects.
    let aborted = super::multipart::abort_pending(remote, |_| true, Some(cutoff), dry_run).await?;
    let mut cleaned = mirror::clean_unfinished(remote, None, Some(cutoff), dry_run).await?;
    cleaned.extend(
        aborted
            .into_iter()
            .filter(|id| !cleaned.contains(id))
            .collect::<Vec<_>>(),
    );
    report.leftovers = (cleaned.iter())
        .map(|id| format!("{}/.{id}.partial", remote.url()).into())
        .collect();
    report.foreign = (report.foreign.into_iter())
        .map(|(p, why)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (format!("{}/{name}", remote.url()).into(), why)
        })
        .collect();
    Ok(report)
}

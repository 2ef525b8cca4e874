//! Where a backup run writes: a directory; a directory and a copy in object storage
//! (`--copy-to`); or object storage alone (`--dest s3://…`): a custom-format dump streamed
//! straight into the store, a directory-format one through a private local staging directory
//! that holds one backup at a time and is removed after its upload. The run's small files
//! live in that private directory either way: the lock file, and the metrics state, fetched
//! from the store at the start and put back after each recorded attempt (`state.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::super::error::BackupError;
use super::super::manifest::Manifest;
use super::super::options::{BackupOptions, DumpFormat, Retention};
use super::super::prune::PruneReport;
use super::mirror::{self, Scratch};
use super::multipart;
use super::upload::{self, Uploaded};
use super::{is_remote, Remote};

/// The copy to object storage of a run, and what each database's upload took.
pub struct Shipping {
    pub remote: Remote,
    /// false for `--dest s3://…`: the staged backup is removed once uploaded.
    pub keep_local: bool,
    uploads: Mutex<BTreeMap<String, Uploaded>>,
}

impl Shipping {
    /// Before a database's upload (the caller holds its lock, so nothing of it is being
    /// written): aborts the multipart uploads an earlier killed run left, then removes the
    /// objects of its unfinished backups.
    pub async fn prepare(&self, database: &str) -> Result<(), BackupError> {
        let aborted = multipart::abort_pending(&self.remote, |id| mirror::is_id_of(id, database), None, false).await?;
        if !aborted.is_empty() {
            tracing::info!(ids = ?aborted, "aborted the multipart uploads of an earlier run");
        }
        let cleaned = mirror::clean_unfinished(&self.remote, Some(database), None, false).await?;
        if !cleaned.is_empty() {
            tracing::info!(ids = ?cleaned, "removed unfinished uploads of an earlier run");
        }
        Ok(())
    }

    /// Whether a backup in `format` goes straight to the store (`stream.rs`): `--dest s3://…`
    /// in custom format. A directory dump is staged, and `--copy-to` uploads the kept backup.
    pub fn streams(&self, format: DumpFormat) -> bool {
        !self.keep_local && format == DumpFormat::Custom
    }

    /// Uploads `m` from `dest/ID`, and removes the staged copy unless it is kept.
    pub async fn ship(&self, dest: &Path, m: &Manifest, cancel: &CancellationToken) -> Result<Uploaded, BackupError> {
        self.prepare(&m.database).await?;
        let dir = dest.join(&m.id);
        let result = upload::upload(&self.remote, &dir, m, cancel).await;
        if !self.keep_local {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(path = %dir.display(), error = %e, "could not remove the staged backup");
            }
        }
        let up = result?;
        self.record(&m.database, up);
        Ok(up)
    }

    /// What a database's upload took, for the metrics.
    pub fn record(&self, database: &str, up: Uploaded) {
        if let Ok(mut map) = self.uploads.lock() {
            map.insert(database.to_string(), up);
        }
    }

    pub fn uploaded(&self, database: &str) -> Option<Uploaded> {
        self.uploads.lock().ok().and_then(|m| m.get(database).copied())
    }
}

/// The run's local directory (the destination, or the staging directory) and its copy.
pub struct Place {
    local: PathBuf,
    pub shipping: Option<Shipping>,
    _staging: Option<Scratch>,
}

impl Place {
    /// Resolves `dest` and `copy_to`; checks both URLs before anything runs.
    pub async fn open(opts: &BackupOptions) -> Result<Place, BackupError> {
        let dest = opts.dest.as_deref().ok_or(BackupError::NoDest)?;
        let copy = match &opts.copy_to {
            Some(c) if !is_remote(c) => {
                return Err(BackupError::Options(format!(
                    "--copy-to {}: not an object storage URL; write s3://BUCKET/PREFIX (a second directory is a job for rsync)",
                    c.display()
                )))
            }
            Some(_) if is_remote(dest) => {
                return Err(BackupError::Options(
                    "--copy-to needs a local --dest to copy from; --dest s3://… already uploads".into(),
                ))
            }
            Some(c) => Some(Remote::parse(c)?),
            None => None,
        };
        let shipping = |remote, keep_local| Shipping {
            remote,
            keep_local,
            uploads: Mutex::new(BTreeMap::new()),
        };
        if is_remote(dest) {
            let remote = Remote::parse(dest)?;
            let staging = Scratch::new()?;
            // The remote's ids as empty directories: a new id never takes an existing one's
            // name (two backups within a second get "-2", as in a directory).
            for id in mirror::list(&remote).await?.keys() {
                if crate::jobs::backup::manifest::inside(id).is_ok() && !id.contains('/') {
                    let _ = std::fs::create_dir(staging.path().join(id));
                }
            }
            super::state::fetch(&remote, staging.path()).await;
            return Ok(Place {
                local: staging.path().to_path_buf(),
                shipping: Some(shipping(remote, false)),
                _staging: Some(staging),
            });
        }
        Ok(Place {
            local: dest.to_path_buf(),
            shipping: copy.map(|r| shipping(r, true)),
            _staging: None,
        })
    }

    pub fn local(&self) -> &Path {
        &self.local
    }

    /// Whether the local directory is the destination (not a staging directory).
    pub fn keeps_local(&self) -> bool {
        self.shipping.as_ref().is_none_or(|s| s.keep_local)
    }

    /// Puts the run's metrics state back into the store (`--dest s3://…`; a directory's file,
    /// `--copy-to` included, is written in place by `metrics.rs`). Never fails: logged.
    pub async fn save_state(&self) {
        if let Some(s) = self.shipping.as_ref().filter(|s| !s.keep_local) {
            super::state::put(&s.remote, &self.local).await;
        }
    }

    /// The remote's verified backups, for the metrics of a `--dest s3://…` run.
    pub async fn remote_backups(&self) -> Option<Vec<Manifest>> {
        let s = self.shipping.as_ref().filter(|s| !s.keep_local)?;
        match super::retain::scan(&s.remote).await {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the destination for the metrics");
                Some(Vec::new())
            }
        }
    }

    /// Retention on the remote copy, over the databases just backed up.
    pub async fn prune_remote(
        &self,
        r: Retention,
        databases: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<PruneReport>, BackupError> {
        let Some(s) = &self.shipping else { return Ok(None) };
        super::retain::prune(&s.remote, r, Some(databases), false, now)
            .await
            .map(Some)
    }
}

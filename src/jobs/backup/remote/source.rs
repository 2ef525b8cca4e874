//! A destination as the reading commands (`backups list|verify`, `restore`) see it: a
//! directory, or a local mirror of an object storage destination's manifests. A backup's
//! objects are streamed from the store (`restore.rs`) or, where a reader needs a file,
//! downloaded into the mirror and checked before anything reads them.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::db::{ConnParams, SessionSettings};

use super::super::crypt::Identities;
use super::super::error::BackupError;
use super::super::manifest::{self, Leftover, Manifest};
use super::super::options::VerifyLevel;
use super::super::pgbin::PgBin;
use super::super::restore::{self, PgRestoreArgs};
use super::super::verify::{self, Verified};
use super::mirror::{self, Scratch};
use super::{is_remote, Remote};

pub enum Source {
    Dir(PathBuf),
    Remote { remote: Remote, mirror: Scratch },
}

impl Source {
    /// The directory as it is, or the manifests of `s3://…` mirrored (objects not yet read).
    pub async fn open(dest: &Path) -> Result<Source, BackupError> {
        if !is_remote(dest) {
            return Ok(Source::Dir(dest.to_path_buf()));
        }
        let remote = Remote::parse(dest)?;
        let mirror = Scratch::new()?;
        mirror::manifests(&remote, mirror.path()).await?;
        Ok(Source::Remote { remote, mirror })
    }

    /// The directory the backup code reads: the destination, or the mirror.
    pub fn dir(&self) -> &Path {
        match self {
            Source::Dir(d) => d,
            Source::Remote { mirror, .. } => mirror.path(),
        }
    }

    /// The destination as the user wrote it.
    pub fn display(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            Source::Remote { remote, .. } => remote.url(),
        }
    }

    /// `manifest::scan`, with a remote's leftovers named by their URL: an id without a
    /// manifest is an unfinished upload, hidden like a local `.ID.partial`.
    pub fn scan(&self) -> Result<(Vec<Manifest>, Vec<Leftover>), BackupError> {
        let (backups, leftovers) = manifest::scan(self.dir())?;
        let Source::Remote { remote, .. } = self else {
            return Ok((backups, leftovers));
        };
        let renamed = leftovers
            .into_iter()
            .map(|l| {
                let name = l.name();
                let why = match name.starts_with('.') {
                    true => "unfinished upload (no manifest)".to_string(),
                    false => l.why.clone(),
                };
                Leftover {
                    path: format!("{}/{name}", remote.url()).into(),
                    why,
                    ..l
                }
            })
            .collect();
        Ok((backups, renamed))
    }

    /// Makes backup `m`'s files readable in `dir()`: downloads them from object storage.
    /// Nothing is trusted yet: `pin` checks every file against the manifest before use.
    pub async fn fetch(&self, m: &Manifest) -> Result<(), BackupError> {
        match self {
            Source::Dir(_) => Ok(()),
            Source::Remote { remote, mirror } => mirror::fetch(remote, mirror.path(), m).await,
        }
    }

    /// Removes a fetched backup's files from the mirror (verify reads one backup at a time).
    pub fn forget(&self, m: &Manifest) {
        if let Source::Remote { mirror, .. } = self {
            for f in &m.files {
                if let Ok(rel) = manifest::inside(&f.path) {
                    let _ = std::fs::remove_file(mirror.path().join(&m.id).join(rel));
                }
            }
        }
    }
}

impl Source {
    /// `verify::verify_backup` of `m`: streamed from the store when it can be, else downloaded
    /// into the mirror, verified there and removed.
    pub async fn verify(
        &self,
        m: &Manifest,
        bin: &PgBin,
        level: VerifyLevel,
        identities: Option<&Identities>,
        cancel: &CancellationToken,
    ) -> Result<Verified, BackupError> {
        if let Source::Remote { remote, .. } = self {
            if let Some(v) = super::restore::verify(remote, m, bin, level, identities, cancel).await? {
                return Ok(v);
            }
        }
        let result = match self.fetch(m).await {
            Ok(()) => verify::verify_backup(self.dir(), m, bin, level, identities, cancel).await,
            Err(e) => Err(e),
        };
        self.forget(m);
        result
    }

    /// `restore::restore` of `m` into `into`: streamed from the store when it can be (every
    /// object checked before the target is touched), else downloaded and checked first.
    pub async fn restore(
        &self,
        m: &Manifest,
        server: &ConnParams,
        into: &str,
        settings: &SessionSettings,
        args: &PgRestoreArgs,
        cancel: &CancellationToken,
    ) -> Result<(), BackupError> {
        if let Source::Remote { remote, .. } = self {
            if super::restore::restore(remote, m, server, into, settings, args, cancel).await? {
                return Ok(());
            }
        }
        self.fetch(m).await?;
        restore::restore(self.dir(), m, server, into, settings, args, cancel).await
    }
}

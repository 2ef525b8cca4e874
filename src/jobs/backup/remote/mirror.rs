//! Reading object storage through the backup-directory code: the manifests (or one backup's
//! objects) are downloaded into a private temporary directory laid out like a destination,
//! so `manifest::scan`, `pin`, `verify` and `restore` need no second implementation.
//! Also the remote side of retention and the clean-up of unfinished uploads.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::ObjectStore;
use tokio::io::AsyncWriteExt;

use super::super::error::BackupError;
use super::super::manifest::{self, Manifest, MANIFEST};
use super::Remote;

/// A 0700 directory under `$TMPDIR`, removed with everything in it when dropped.
pub struct Scratch(PathBuf);

const SCRATCH: &str = "dbtool-s3-";

impl Scratch {
    pub fn new() -> Result<Scratch, BackupError> {
        sweep(&std::env::temp_dir());
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{SCRATCH}{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(BackupError::io("create the local working directory", &path))?;
        Ok(Scratch(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove the local working directory");
        }
    }
}

/// Removes the working directories of dbtool processes that are gone (killed: a staged
/// dump of a `--dest s3://…` run is a whole copy of a database, not to be left in /tmp).
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(SCRATCH).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if !super::super::lock::pid_alive(pid) && e.path().is_dir() {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!(path = %e.path().display(), "removed the working directory of a killed run"),
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "could not remove the working directory of a killed run")
                }
            }
        }
    }
}

/// The objects of one backup id.
#[derive(Debug, Default)]
pub struct Objects {
    pub keys: Vec<Key>,
    pub newest: Option<DateTime<Utc>>,
    pub has_manifest: bool,
}

/// Every object under the prefix, by backup id. Objects outside `ID/…` are no backup: another
/// tool's, or dbtool's metrics state at the top of the prefix (`state.rs`), which listing,
/// retention and the clean-up of unfinished uploads must never take for one.
pub async fn list(remote: &Remote) -> Result<BTreeMap<String, Objects>, BackupError> {
    let root = remote.root();
    let strip = root.as_ref().map(|r| format!("{}/", r.as_ref())).unwrap_or_default();
    let mut out: BTreeMap<String, Objects> = BTreeMap::new();
    let mut stream = remote.store.list(root.as_ref());
    while let Some(meta) = stream.next().await {
        let meta = meta.map_err(|e| remote.err("list the objects", e))?;
        let Some(rest) = meta.location.as_ref().strip_prefix(strip.as_str()) else {
            continue;
        };
        let Some((id, rel)) = rest.split_once('/') else {
            continue;
        };
        // The markers of open multipart uploads are not a backup (see multipart.rs).
        if id == super::multipart::PENDING {
            continue;
        }
        let o = out.entry(id.to_string()).or_default();
        o.has_manifest |= rel == MANIFEST;
        o.newest = o.newest.max(Some(meta.last_modified));
        o.keys.push(meta.location);
    }
    Ok(out)
}

/// The manifests laid out in `dir` as a backup directory: `ID/manifest.json` for each
/// complete backup, an empty `.ID.partial` for each id without one (an unfinished upload).
pub async fn manifests(remote: &Remote, dir: &Path) -> Result<BTreeMap<String, Objects>, BackupError> {
    let all = list(remote).await?;
    for (id, o) in &all {
        // An id that is not a plain name cannot be laid out safely; it is not dbtool's.
        if manifest::inside(id).is_err() || id.contains('/') || id.starts_with('.') {
            continue;
        }
        if !o.has_manifest {
            mkdir(&manifest::partial_dir(dir, id))?;
            continue;
        }
        mkdir(&dir.join(id))?;
        download(remote, &remote.key(id, MANIFEST), &dir.join(id).join(MANIFEST)).await?;
    }
    Ok(all)
}

/// Downloads every file of backup `m` into `dir/ID/` (whose manifest `manifests` put there);
/// the caller checks them against the manifest (`pin`) before anything reads them.
pub async fn fetch(remote: &Remote, dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    for f in &m.files {
        let rel = manifest::inside(&f.path).map_err(|message| BackupError::Corrupt {
            id: m.id.clone(),
            message,
        })?;
        let to = dir.join(&m.id).join(rel);
        if let Some(parent) = to.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(BackupError::io("create", parent))?;
        }
        download(remote, &remote.key(&m.id, &f.path), &to).await?;
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result<(), BackupError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(BackupError::io("create", path))
}

/// Streams one object to a new file (chunks as they arrive: bounded memory).
async fn download(remote: &Remote, key: &Key, to: &Path) -> Result<(), BackupError> {
    let got = remote
        .store
        .get(key)
        .await
        .map_err(|e| remote.err(&format!("read {key}"), e))?;
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(BackupError::io("create", to))?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| remote.err(&format!("read {key}"), e))?;
        file.write_all(&chunk).await.map_err(BackupError::io("write", to))?;
    }
    file.flush().await.map_err(BackupError::io("write", to))
}

/// Deletes a backup: its manifest first, so an interrupted delete leaves an unfinished
/// upload (cleaned later), never a listed backup with missing objects.
pub async fn delete(remote: &Remote, id: &str, objects: &Objects) -> Result<(), BackupError> {
    let manifest = remote.key(id, MANIFEST);
    if objects.has_manifest {
        remote
            .store
            .delete(&manifest)
            .await
            .map_err(|e| remote.err(&format!("delete {manifest}"), e))?;
    }
    for key in objects.keys.iter().filter(|k| **k != manifest) {
        remote
            .store
            .delete(key)
            .await
            .map_err(|e| remote.err(&format!("delete {key}"), e))?;
    }
    Ok(())
}

/// Whether `id` is one of `database`'s ids: `SAFE_YYYYMMDDTHHMMSSZ` with an optional `-N`
/// (a prefix test alone would take `app_x`'s backups for `app`'s).
pub fn is_id_of(id: &str, database: &str) -> bool {
    let Some(rest) = id.strip_prefix(&format!("{}_", manifest::safe_name(database))) else {
        return false;
    };
    let (stamp, n) = rest.split_once('-').unwrap_or((rest, "1"));
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && !n.is_empty()
        && n.bytes().all(|c| c.is_ascii_digit())
}

/// Removes the objects of unfinished uploads (ids without a manifest): of `database` only
/// (a run holds that database's lock, so none of them is being written), or with `older`,
/// those whose newest object is older than it (`backups prune`: any database).
pub async fn clean_unfinished(
    remote: &Remote,
    database: Option<&str>,
    older: Option<DateTime<Utc>>,
    dry_run: bool,
) -> Result<Vec<String>, BackupError> {
    let mut cleaned = Vec::new();
    for (id, o) in list(remote).await? {
        let mine = database.is_none_or(|d| is_id_of(&id, d));
        let old = older.is_none_or(|t| o.newest.is_some_and(|n| n < t));
        if o.has_manifest || !mine || !old {
            continue;
        }
        if !dry_run {
            delete(remote, &id, &o).await?;
        }
        tracing::info!(id = %id, "removed the objects of an unfinished upload");
        cleaned.push(id);
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::is_id_of;

    #[test]
    fn ids_belong_to_their_database_only() {
        assert!(is_id_of("app_20261121T031500Z", "app"));
        assert!(is_id_of("app_20261121T031500Z-2", "app"));
        assert!(!is_id_of("app_x_20261121T031500Z", "app"));
        assert!(is_id_of("app_x_20261121T031500Z", "app.x"));
        assert!(!is_id_of("app_20261121T031500Z-", "app"));
        assert!(!is_id_of("app_2026112", "app"));
    }
}

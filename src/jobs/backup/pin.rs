//! Reading a backup only through bytes that match its manifest, for every reader (restore,
//! `restore --check`, `backups verify`).
//!
//! Every file is hard-linked into a private (0700) staging directory beside the backup and
//! hashed there; pg_restore then reads the staged links, never the backup's own paths. A link
//! pins the inode, so renaming or symlinking another file over a path of the backup after the
//! check cannot slip it in (the window of "hash the path, then hand the path over"), and it
//! costs no disk space. Where no link can be made, the file is copied, then the copy hashed.
//! What is not defended: the owner (or root) rewriting a file in place while it is restored;
//! backups are written 0700 for that reason.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::manifest::{self, Manifest, MANIFEST};
use super::verify;

/// The backup's files, checked against the manifest, readable under `root` while this lives.
#[derive(Debug)]
pub struct Pinned {
    root: PathBuf,
    /// The staging directory to remove on drop (None when the files were hashed in place).
    stage: Option<PathBuf>,
}

impl Pinned {
    /// Where a reader finds the manifest path `rel` (e.g. the dump).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(stage) = self.stage.take() {
            // Removes our links only; the backup's own names for the same files stay.
            if let Err(e) = std::fs::remove_dir_all(&stage) {
                tracing::warn!(path = %stage.display(), error = %e, "could not remove the restore staging directory");
            }
        }
    }
}

/// The first 12 hex digits of a digest, enough to tell two apart in a one-line error.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Every regular file under `root` (relative, sorted). A symlink or a special file is
/// refused: dbtool never writes one, and following it could read outside the backup.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        if kind.is_symlink() {
            return Err(format!(
                "{rel} is a symlink; dbtool never writes one into a backup, and it may point outside it: refusing to follow it"
            ));
        } else if kind.is_dir() {
            list_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push(rel);
        } else {
            return Err(format!("{rel} is not a regular file"));
        }
    }
    Ok(())
}

/// The manifest and the directory agree on which files there are, and the manifest agrees
/// with itself (the dump is covered by `files`, its recorded sha256 matches that list).
fn check_listing(dir: &Path, m: &Manifest) -> Result<(), String> {
    let mut actual = Vec::new();
    list_files(dir, dir, &mut actual)?;
    actual.retain(|p| p != MANIFEST);
    if let Some(want) = m.files.iter().find(|f| !actual.contains(&f.path)) {
        return Err(format!("{} is missing", want.path));
    }
    if let Some(extra) = actual.iter().find(|a| !m.files.iter().any(|f| &f.path == *a)) {
        return Err(format!("{extra} is not in the manifest"));
    }
    let prefix = format!("{}/", m.dump);
    if !m.files.iter().any(|f| f.path == m.dump || f.path.starts_with(&prefix)) {
        return Err(format!("the dump {} has no checksum in the manifest", m.dump));
    }
    if verify::dump_sha256(&m.files, &m.dump) != m.sha256 {
        return Err(format!(
            "the manifest's sha256 of the dump ({}…) does not match its own file list: {MANIFEST} was altered",
            short(&m.sha256)
        ));
    }
    Ok(())
}

/// A private staging directory in the destination (same filesystem, so links work). Named
/// `.….partial` so that `backups prune` removes it if dbtool is killed before it does.
fn make_stage(dest: &Path, id: &str) -> std::io::Result<PathBuf> {
    let stage = dest.join(format!(".{id}.read-{}.partial", std::process::id()));
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&stage)?;
    Ok(stage)
}

/// Links (or copies) `from` to `to`, creating its parent directories.
fn stage_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::DirBuilder::new().mode(0o700).recursive(true).create(parent)?;
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Checks every file of backup `m` in `dest` against its manifest and pins them for reading.
/// Err(Corrupt) names the first file that differs, with both digests' prefixes.
pub fn pin(dest: &Path, m: &Manifest) -> Result<Pinned, BackupError> {
    let corrupt = |message: String| BackupError::Corrupt {
        id: m.id.clone(),
        message,
    };
    let dir = dest.join(&m.id);
    let meta = std::fs::symlink_metadata(&dir).map_err(BackupError::io("read", &dir))?;
    if !meta.is_dir() {
        return Err(corrupt(format!("{} is not a directory (a symlink?)", dir.display())));
    }
    // Read again here: the manifest's paths are checked on every read, also for a value
    // built by a caller rather than read from disk.
    for f in &m.files {
        manifest::inside(&f.path).map_err(&corrupt)?;
    }
    manifest::inside(&m.dump).map_err(&corrupt)?;
    check_listing(&dir, m).map_err(&corrupt)?;
    let (root, stage) = match make_stage(dest, &m.id) {
        Ok(stage) => (stage.clone(), Some(stage)),
        Err(e) => {
            // A read-only backup volume: nobody rewrites it under us either; hash in place.
            tracing::warn!(dest = %dest.display(), error = %e, "cannot stage the backup's files; checking them in place");
            (dir.clone(), None)
        }
    };
    let pinned = Pinned { root, stage };
    for want in &m.files {
        let at = pinned.path(&want.path);
        if pinned.stage.is_some() {
            stage_file(&dir.join(&want.path), &at).map_err(BackupError::io("stage", &at))?;
        }
        let (bytes, sha256) = verify::hash_file(&at, false)?;
        if bytes != want.bytes {
            return Err(corrupt(format!(
                "{} has {bytes} bytes, the manifest says {}: the file changed on disk; restore another backup (`dbtool backups list`)",
                want.path, want.bytes
            )));
        }
        if sha256 != want.sha256 {
            return Err(corrupt(format!(
                "{} does not match its sha256: manifest {}…, file {}…: the file changed on disk; restore another backup (`dbtool backups list`)",
                want.path,
                short(&want.sha256),
                short(&sha256)
            )));
        }
    }
    Ok(pinned)
}

/// `pin` off the async runtime (hashing a large dump takes a while).
pub async fn pin_async(dest: &Path, m: &Manifest) -> Result<Pinned, BackupError> {
    let (dest, m2) = (dest.to_path_buf(), m.clone());
    tokio::task::spawn_blocking(move || pin(&dest, &m2))
        .await
        .map_err(|e| BackupError::Corrupt {
            id: m.id.clone(),
            message: format!("checksum task failed: {e}"),
        })?
}

//! Proving a backup reads back: sha256 of every file, and a test-read with pg_restore
//! (`--list` reads the table of contents; full reads every data block into /dev/null).

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::child;
use super::crypt::Identities;
use super::error::BackupError;
use super::manifest::{FileEntry, Manifest, MANIFEST};
use super::options::VerifyLevel;
use super::pgbin::PgBin;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and sha256 of a file; `fsync` also flushes it to disk (before the rename that
/// makes the backup count).
pub fn hash_file(path: &Path, fsync: bool) -> Result<(u64, String), BackupError> {
    let mut f = std::fs::File::open(path).map_err(BackupError::io("read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(BackupError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if fsync {
        f.sync_all().map_err(BackupError::io("fsync", path))?;
    }
    Ok((total, hex(&hasher.finalize())))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
    for entry in std::fs::read_dir(dir).map_err(BackupError::io("read", dir))? {
        let entry = entry.map_err(BackupError::io("read", dir))?;
        let path = entry.path();
        // file_type does not follow symlinks: a link in the tree is hashed as what it is, never
        // walked into whatever it points at.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

/// Every file under `dir` except the manifest, hashed (and fsynced when asked), sorted by path.
pub fn hash_tree(dir: &Path, fsync: bool) -> Result<Vec<FileEntry>, BackupError> {
    let mut paths = Vec::new();
    walk(dir, dir, &mut paths)?;
    paths.sort();
    let mut entries = Vec::new();
    for rel in paths.into_iter().filter(|p| p.as_os_str() != MANIFEST) {
        let (bytes, sha256) = hash_file(&dir.join(&rel), fsync)?;
        entries.push(FileEntry {
            path: rel.to_string_lossy().into_owned(),
            bytes,
            sha256,
        });
    }
    Ok(entries)
}

/// The dump's checksum: the file's own, or for a directory dump the sha256 of its
/// `sha256sum`-style listing, so one value still pins every byte.
pub fn dump_sha256(files: &[FileEntry], dump: &str) -> String {
    if let Some(f) = files.iter().find(|f| f.path == dump) {
        return f.sha256.clone();
    }
    let prefix = format!("{dump}/");
    let listing: String = files
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect();
    hex(&Sha256::digest(listing.as_bytes()))
}

/// The pg_restore that test-reads `dump`, or its stdin when None.
pub fn read_command(bin: &PgBin, level: VerifyLevel, dump: Option<&Path>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin.pg_restore());
    match level {
        VerifyLevel::List => cmd.arg("--list"),
        // why -f /dev/null: pg_restore then decompresses and reads every data block
        // without a server, which catches a truncated or corrupt archive that --list cannot.
        VerifyLevel::Full => cmd.args(["-f", "/dev/null"]),
    };
    cmd.args(dump);
    cmd
}

/// Test-reads a dump with pg_restore.
pub async fn test_read(
    bin: &PgBin,
    dump: &Path,
    level: VerifyLevel,
    cancel: &CancellationToken,
) -> Result<(), BackupError> {
    let cmd = read_command(bin, level, Some(dump));
    child::run(cmd, cancel, &[], None).await.map(|_| ())
}

/// How far `verify_backup` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Checksums and a pg_restore test-read (of the decrypted stream, for an encrypted backup).
    Read,
    /// An encrypted backup without a key: the checksums of the encrypted bytes only.
    ChecksumsOnly,
}

/// Recomputes every checksum of a finished backup and test-reads the very files it checked
/// (see `pin.rs`); an encrypted one is decrypted with `identities` on the way, and its
/// plaintext hash checked, or only checksummed without them.
pub async fn verify_backup(
    dest: &Path,
    m: &Manifest,
    bin: &PgBin,
    level: VerifyLevel,
    identities: Option<&Identities>,
    cancel: &CancellationToken,
) -> Result<Verified, BackupError> {
    let pinned = super::pin::pin_async(dest, m).await?;
    let Some(enc) = &m.encryption else {
        return test_read(bin, &pinned.path(&m.dump), level, cancel)
            .await
            .map(|()| Verified::Read)
            .map_err(|e| BackupError::Corrupt {
                id: m.id.clone(),
                message: format!("pg_restore cannot read the dump: {e}"),
            });
    };
    let Some(keys) = identities else {
        return Ok(Verified::ChecksumsOnly);
    };
    let plain = super::pipe::open_encrypted(&pinned.path(&m.dump), m, keys)?;
    let cmd = read_command(bin, level, None);
    let got = super::pipe::restore_from(plain, cmd, true, cancel)
        .await
        .map_err(|e| BackupError::Corrupt {
            id: m.id.clone(),
            message: format!("pg_restore cannot read the decrypted dump: {e}"),
        })?;
    super::pipe::check_plaintext(m, enc, &got)?;
    Ok(Verified::Read)
}

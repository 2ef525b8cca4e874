//! The manifest written beside every dump, and the destination's layout:
//! `DEST/ID/` holds the dump, optional globals.sql and files.tar.gz, and manifest.json;
//! a backup being written lives in `DEST/.ID.partial/` until it is verified and renamed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::BackupError;

pub const MANIFEST: &str = "manifest.json";
pub const SCHEMA: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Dumped, checksummed and test-read: the only status that counts.
    Verified,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup directory.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A table's row estimate (pg_class.reltuples) when the dump started; -1 when never analyzed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableEstimate {
    pub schema: String,
    pub name: String,
    pub rows: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub id: String,
    pub database: String,
    pub status: Status,
    /// "custom" or "directory".
    pub format: String,
    pub compression: Option<String>,
    pub server_version: String,
    pub pg_dump_version: String,
    pub dbtool_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// Sum of every file's size.
    pub bytes: u64,
    /// sha256 of the dump file; for a directory dump, of its `sha256sum`-style file list.
    pub sha256: String,
    /// The dump (file or directory) relative to the backup directory.
    pub dump: String,
    pub globals: Option<String>,
    pub files_archive: Option<String>,
    /// "list" or "full": how the dump was test-read.
    pub verified_with: String,
    pub files: Vec<FileEntry>,
    pub tables: Vec<TableEstimate>,
    /// The database's objects by kind when the dump started (`objects.rs`), which
    /// `restore --check` looks for after the restore; absent in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<super::objects::Inventory>,
    /// Set when the files are age-encrypted: then `sha256` and `files` hash the encrypted
    /// bytes, and this holds the recipients and the plaintext's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::crypt::Encryption>,
}

/// Something in the destination that is not a verified backup: a partial or a broken one.
#[derive(Clone, Debug)]
pub struct Leftover {
    pub path: PathBuf,
    pub modified: SystemTime,
    pub why: String,
}

impl Leftover {
    /// The directory's own name, as listed in the destination.
    pub fn name(&self) -> String {
        (self.path.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A file-system-safe rendering of a database name for ids and lock files.
pub fn safe_name(database: &str) -> String {
    database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// "app_20261121T031500Z".
pub fn make_id(database: &str, at: DateTime<Utc>) -> String {
    format!("{}_{}", safe_name(database), at.format("%Y%m%dT%H%M%SZ"))
}

pub fn partial_dir(dest: &Path, id: &str) -> PathBuf {
    dest.join(format!(".{id}.partial"))
}

/// A manifest path as a relative path that stays inside the backup directory, or why not:
/// a manifest is read from disk, and restore must never be pointed at `/etc/passwd` or
/// `../other/app.dump` by one that was edited or garbled.
pub fn inside(path: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    let p = Path::new(path);
    if path.is_empty() {
        return Err(format!("{MANIFEST} names an empty path"));
    }
    if p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Ok(p.to_path_buf());
    }
    Err(format!(
        "{MANIFEST} names {path:?}, which leaves the backup directory (absolute, `..` or `.`); refusing to read it"
    ))
}

pub fn read(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("no readable {MANIFEST}: {e}"))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| format!("{MANIFEST} does not parse: {e}"))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if name.as_deref() != Some(m.id.as_str()) {
        return Err(format!("{MANIFEST} names id {} but lives in {}", m.id, dir.display()));
    }
    let named = [Some(&m.dump), m.globals.as_ref(), m.files_archive.as_ref()];
    for p in named.into_iter().flatten().chain(m.files.iter().map(|f| &f.path)) {
        inside(p)?;
    }
    Ok(m)
}

/// Verified backups (oldest first) and leftovers in `dest`. Hidden entries other than
/// `.ID.partial` (lock and state files) are dbtool's bookkeeping and are skipped.
pub fn scan(dest: &Path) -> Result<(Vec<Manifest>, Vec<Leftover>), BackupError> {
    let entries = std::fs::read_dir(dest).map_err(BackupError::io("read the backup directory", dest))?;
    let mut backups = Vec::new();
    let mut leftovers = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.starts_with('.') {
            if name.ends_with(".partial") {
                let why = "unfinished backup".into();
                leftovers.push(Leftover {
                    path: entry.path(),
                    modified,
                    why,
                });
            }
            continue;
        }
        if !meta.is_dir() {
            continue;
        }
        match read(&entry.path()) {
            Ok(m) => backups.push(m),
            Err(why) => leftovers.push(Leftover {
                path: entry.path(),
                modified,
                why,
            }),
        }
    }
    backups.sort_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));
    Ok((backups, leftovers))
}

/// A backup by id, or the newest (of `database`, if given) for `--latest`.
pub fn find(dest: &Path, id: Option<&str>, database: Option<&str>) -> Result<Manifest, BackupError> {
    let (backups, leftovers) = scan(dest)?;
    let mut matching = backups.into_iter().filter(|m| database.is_none_or(|d| m.database == d));
    match id {
        Some(id) => matching.find(|m| m.id == id).ok_or_else(|| {
            // A backup whose manifest is garbled or unsafe is not "missing": say what is wrong.
            match leftovers
                .into_iter()
                .find(|l| l.path.file_name().is_some_and(|n| n == id))
            {
                Some(l) => BackupError::Corrupt {
                    id: id.to_string(),
                    message: format!("{}; it cannot be verified or restored", l.why),
                },
                None => BackupError::NotFound(id.to_string()),
            }
        }),
        None => {
            let all: Vec<Manifest> = matching.collect();
            let dbs: std::collections::BTreeSet<&str> = all.iter().map(|m| m.database.as_str()).collect();
            if dbs.len() > 1 {
                let names: Vec<&str> = dbs.into_iter().collect();
                return Err(BackupError::Options(format!(
                    "--latest is ambiguous: the destination holds backups of {}; add --database NAME",
                    names.join(", ")
                )));
            }
            all.into_iter()
                .next_back()
                .ok_or_else(|| BackupError::NotFound("(latest)".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifest_paths_must_stay_inside_the_backup() {
        assert!(super::inside("app.dump").is_ok());
        assert!(super::inside("app.dir/3345.dat.gz").is_ok());
        for bad in ["", "/etc/passwd", "../app.dump", "app.dir/../../x", "./app.dump"] {
            let e = super::inside(bad).err().unwrap_or_default();
            assert!(e.contains("manifest.json"), "{bad:?} was accepted");
        }
    }
}

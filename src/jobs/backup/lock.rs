//! Two backups of one database never run at once: an advisory lock on the server (held on a
//! dbtool session for the whole dump, so two hosts writing to different destinations are
//! kept apart) and a lock file in the destination (so two runs against one destination are,
//! even through different servers or a failover).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::manifest::safe_name;

/// Advisory lock key of a database's backup (see `db::lock`).
pub fn advisory_key(database: &str) -> i64 {
    crate::db::lock::key(crate::db::lock::Namespace::Backup, database)
}

/// `DEST/.lock-DB`, created with O_EXCL and removed on drop.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
}

pub(super) fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl LockFile {
    pub fn acquire(dest: &Path, database: &str) -> Result<LockFile, BackupError> {
        let path = dest.join(format!(".lock-{}", safe_name(database)));
        let me = crate::host::name();
        for _ in 0..2 {
            // 0600 whatever the umask: only dbtool reads it (the umask may only narrow a
            // mode at creation, hence the explicit chmod).
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            match created {
                Ok(mut f) => {
                    let line = format!("{} {} {}\n", std::process::id(), me, chrono::Utc::now().to_rfc3339());
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .and_then(|_| f.write_all(line.as_bytes()))
                        .and_then(|_| f.sync_all())
                        .map_err(BackupError::io("write the lock file", &path))?;
                    return Ok(LockFile { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut fields = text.split_whitespace();
                    let pid: Option<i32> = fields.next().and_then(|p| p.parse().ok());
                    let host = fields.next().unwrap_or("");
                    let since = fields.next().unwrap_or("?");
                    match pid {
                        Some(pid) if host == me && !pid_alive(pid) => {
                            tracing::warn!(path = %path.display(), pid, "removing a stale backup lock file (its process is gone)");
                            let _ = std::fs::remove_file(&path);
                        }
                        Some(pid) if host == me => {
                            return Err(BackupError::Busy {
                                database: database.into(),
                                holder: format!("pid {pid} since {since}, lock file {}", path.display()),
                            })
                        }
                        _ => {
                            return Err(BackupError::Busy {
                                database: database.into(),
                                holder: format!(
                                    "lock file {} from host '{host}' since {since}; remove it if no backup runs there",
                                    path.display()
                                ),
                            })
                        }
                    }
                }
                Err(e) => return Err(BackupError::io("create the lock file", &path)(e)),
            }
        }
        Err(BackupError::Busy {
            database: database.into(),
            holder: format!("lock file {} keeps reappearing", path.display()),
        })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_excludes_a_second_holder_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir();
        let Ok(dir) = dir else { panic!("tempdir") };
        let first = LockFile::acquire(dir.path(), "app");
        assert!(first.is_ok());
        // 0600, not whatever the umask leaves (0644 under the usual 022).
        let mode = std::fs::metadata(dir.path().join(".lock-app")).map(|m| m.permissions().mode() & 0o7777);
        assert_eq!(mode.ok(), Some(0o600));
        let second = LockFile::acquire(dir.path(), "app");
        assert!(matches!(second, Err(BackupError::Busy { .. })), "{second:?}");
        assert!(LockFile::acquire(dir.path(), "other").is_ok());
        drop(first);
        // A lock file left by a dead process (pid far above pid_max) is stale.
        let path = dir.path().join(".lock-app");
        assert!(std::fs::write(
            &path,
            format!("2147483000 {} 2026-01-01T00:00:00Z\n", crate::host::name())
        )
        .is_ok());
        assert!(LockFile::acquire(dir.path(), "app").is_ok());
        assert_ne!(advisory_key("app"), advisory_key("app2"));
    }
}

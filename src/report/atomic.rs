//! Every file dbtool writes (reports, textfiles, state) goes through here, and what is at the
//! path decides how. A regular file, or nothing, is replaced atomically: temp file beside the
//! final target of any symlinks, fsync, rename, fsync the directory, so a reader
//! (node_exporter's textfile collector) never sees half a file and a symlink stays a symlink.
//! A character device or FIFO (`/dev/stdout`, `/dev/null`) is written into, never replaced:
//! as root, renaming over /dev/null would turn it into a regular file. Directories, block
//! devices and sockets are refused. Modes are set explicitly, not left to the umask.

mod target;

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use target::existing_file;
use target::Target;

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// 0644: reports and metrics, read by node_exporter or a monitoring agent running as
    /// another user (the shipped unit's `UMask=0027` must not hide them).
    Shared,
    /// 0600: state files, which only dbtool itself reads.
    Private,
}

impl Access {
    /// The mode of the new file. A shared file that replaces one nobody else could read
    /// (no group or other bits) stays 0600: dbtool never widens what a DBA narrowed.
    fn mode(self, existing: Option<&Metadata>) -> u32 {
        let private = existing.is_some_and(|m| m.mode() & 0o077 == 0);
        match self {
            Access::Shared if !private => 0o644,
            _ => 0o600,
        }
    }
}

/// A file that could not be written; the message names the path (and the file a symlink led
/// to), the reason and what to do.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
    /// The final target of the symlinks at `path`, when it differs.
    target: Option<PathBuf>,
    /// Written into (a device, a FIFO) rather than replaced.
    stream: bool,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}", self.path.display())?;
        if let Some(t) = &self.target {
            write!(f, " (a symlink to {})", t.display())?;
        }
        if self.source.kind() == io::ErrorKind::InvalidInput {
            // A refusal from `target::resolve`: its text already says what to do.
            return write!(f, ": {}", self.source);
        }
        let hint = match self.source.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) if self.stream => "the device or pipe took no more",
            Some(libc::ENOSPC | libc::EDQUOT) => "free space there; the file it replaces is left as it was",
            Some(libc::EROFS) => "the file system is read-only; choose a path on a writable one",
            Some(libc::ELOOP) => "too many symlinks; point it at the file directly",
            _ => "check that the directory exists and is writable",
        };
        write!(f, ": {}; {hint}", self.source)
    }
}

impl std::error::Error for WriteError {
    /// The message already carries the OS error; as a source too it would print twice under
    /// `{:#}`. A broken pipe stays visible, so main exits quietly as it does for stdout.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        (self.source.kind() == io::ErrorKind::BrokenPipe).then_some(&self.source as _)
    }
}

/// Refuses early what a write would refuse at the end (a directory, a block device), so a
/// long job does not run only to fail on a mistyped path. Other errors (a missing directory,
/// permissions) are left to the write itself, which reports them.
pub fn check(path: &Path) -> Result<(), WriteError> {
    match target::resolve(path) {
        Err(source) if source.kind() == io::ErrorKind::InvalidInput => Err(WriteError {
            path: path.to_path_buf(),
            source,
            target: None,
            stream: false,
        }),
        _ => Ok(()),
    }
}

/// Writes a report or metrics file (0644).
pub fn write(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write_as(path, contents, Access::Shared)
}

/// Writes a state file (0600).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write_as(path, contents, Access::Private)
}

fn write_as(path: &Path, contents: &[u8], access: Access) -> Result<(), WriteError> {
    let err = |source, target: Option<&Path>, stream| WriteError {
        path: path.to_path_buf(),
        source,
        target: target.filter(|t| *t != path).map(Path::to_path_buf),
        stream,
    };
    match target::resolve(path).map_err(|e| err(e, None, false))? {
        Target::Stream(at) => stream(&at, contents).map_err(|e| err(e, Some(&at), true)),
        Target::File { path: at, existing } => {
            replace(&at, existing.as_ref(), contents, access).map_err(|e| err(e, Some(&at), false))
        }
    }
}

/// Into a device or FIFO: no create, no truncate. Append, so `--output /dev/stdout` onto a
/// file the shell opened with `>>` adds to it as `>>` promises.
fn stream(at: &Path, contents: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(at)?;
    f.write_all(contents)?;
    f.flush()
}

/// Temp file beside `at`, fsync, rename over `at`, fsync the directory. On any error the temp
/// file is removed and `at` is as it was.
fn replace(at: &Path, existing: Option<&Metadata>, contents: &[u8], access: Access) -> io::Result<()> {
    let dir = target::parent(at);
    let name = at
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "it is not a file name"))?;
    let mode = access.mode(existing);
    let (tmp, mut f) = create_temp(dir, &name.to_string_lossy(), mode)?;
    let result = (|| {
        // The umask narrowed the mode at creation; set exactly what we promise.
        f.set_permissions(Permissions::from_mode(mode))?;
        keep_owner(&f, existing)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, at)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.NAME.tmp.PID.N`, which the textfile collector (it reads only `*.prom`) ignores. Created
/// with O_EXCL, so a link planted at that name is never followed; one left by a dead process
/// of the same pid is removed once.
fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let open = || OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp);
    let f = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            open()?
        }
        other => other?,
    };
    Ok((tmp, f))
}

/// As root, the replacement keeps the replaced file's owner and group: a state file of the
/// `postgres` user that root wrote once must stay readable by the next cron run as postgres.
/// Anyone else cannot give files away, and the file becomes theirs, as with any editor.
fn keep_owner(f: &File, existing: Option<&Metadata>) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match existing {
        Some(m) if root => std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

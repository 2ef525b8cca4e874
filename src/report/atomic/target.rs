//! What a path names once its symlinks are followed, which decides how dbtool may write it.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Where the bytes go.
#[derive(Debug)]
pub enum Target {
    /// A regular file, or nothing yet: replaced (or created) atomically at `path`, the final
    /// target of any symlinks, so the links themselves stay links.
    File { path: PathBuf, existing: Option<Metadata> },
    /// A character device, a FIFO, or an open descriptor (`/dev/stdout`, `/proc/self/fd/N`):
    /// not ours to replace, so the bytes are written into it.
    Stream(PathBuf),
}

/// The kernel's own bound on symlinks in one lookup (beyond it, ELOOP).
const MAX_LINKS: usize = 40;

/// Follows `path` link by link with lstat. A dangling link resolves to the file it names,
/// which is then created. Directories, block devices and sockets are refused with a message
/// that says so (it becomes the error's reason).
pub fn resolve(path: &Path) -> io::Result<Target> {
    let mut at = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target::File {
                    path: at,
                    existing: None,
                })
            }
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            // /proc's fd links name open files, pipes and sockets, not paths: open them as they are.
            if on_procfs(parent(&at)) {
                return Ok(Target::Stream(at));
            }
            let link = std::fs::read_link(&at)?;
            // Relative to the link's own directory; joined, never normalised, so `..` means
            // what the kernel means by it.
            at = if link.is_relative() {
                parent(&at).join(link)
            } else {
                link
            };
            continue;
        }
        return if kind.is_file() {
            Ok(Target::File {
                path: at,
                existing: Some(meta),
            })
        } else if kind.is_char_device() || kind.is_fifo() {
            Ok(Target::Stream(at))
        } else if kind.is_dir() {
            Err(refused("it is a directory; name a file inside it"))
        } else if kind.is_block_device() {
            Err(refused(
                "it is a block device; dbtool writes only to files, character devices and FIFOs",
            ))
        } else {
            Err(refused(
                "it is a socket; dbtool writes only to files, character devices and FIFOs",
            ))
        };
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// The regular file `path` leads to, if there is one: what a previous run wrote. None when it
/// is missing, a device or a FIFO (reading /dev/full or a FIFO would never end).
pub fn existing_file(path: &Path) -> io::Result<Option<PathBuf>> {
    Ok(match resolve(path)? {
        Target::File {
            path,
            existing: Some(_),
        } => Some(path),
        _ => None,
    })
}

/// The directory a path's last component lives in ("." for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn refused(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

#[cfg(target_os = "linux")]
fn on_procfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs only writes into the zeroed struct we own; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type == libc::PROC_SUPER_MAGIC
}

#[cfg(not(target_os = "linux"))]
fn on_procfs(dir: &Path) -> bool {
    dir.starts_with("/proc") || dir.starts_with("/dev/fd")
}

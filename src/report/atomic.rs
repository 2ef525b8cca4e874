//! Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory,
//! so a reader (node_exporter's textfile collector) never sees half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}; check that the directory exists and is writable")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `contents` atomically. The temp file is named `.NAME.tmp.PID` so the
/// textfile collector, which reads only `*.prom`, ignores it.
pub fn write(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| err(std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(".{}.tmp.{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        // Readable by the exporter user; umask still applies to the final mode.
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { panic!("tempdir") };
        let p = dir.path().join("x.prom");
        assert!(super::write(&p, b"a 1\n").is_ok());
        assert!(super::write(&p, b"a 2\n").is_ok());
        assert_eq!(std::fs::read_to_string(&p).ok().as_deref(), Some("a 2\n"));
        let entries = std::fs::read_dir(dir.path()).map(|d| d.count()).ok();
        assert_eq!(entries, Some(1));
        let missing = dir.path().join("nodir/x.prom");
        let e = super::write(&missing, b"").err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("nodir")));
    }
}

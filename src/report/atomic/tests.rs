//! The writer against a real file system; devices, FIFOs and the umask are covered through
//! the binary in tests/files.rs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{write, write_private};

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p).ok().map(|m| m.mode() & 0o7777)
}

fn entries(dir: &Path) -> Option<usize> {
    std::fs::read_dir(dir).map(|d| d.count()).ok()
}

#[test]
fn replaces_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.prom");
    assert!(write(&p, b"a 1\n").is_ok());
    assert!(write(&p, b"a 2\n").is_ok());
    assert_eq!(std::fs::read_to_string(&p).ok().as_deref(), Some("a 2\n"));
    assert_eq!(entries(dir.path()), Some(1));
    let missing = dir.path().join("nodir/x.prom");
    let e = write(&missing, b"").err().map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("nodir") && e.contains("exists and is writable")));
}

#[test]
fn symlinks_stay_links_and_their_final_target_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real/x.prom");
    std::fs::create_dir(dir.path().join("real")).expect("mkdir");
    // link2 -> link1 -> real/x.prom, link1 relative to its own directory.
    let link1 = dir.path().join("link1");
    let link2 = dir.path().join("link2");
    std::os::unix::fs::symlink("real/x.prom", &link1).expect("symlink");
    std::os::unix::fs::symlink(&link1, &link2).expect("symlink");
    // Dangling at first: the file it names is created.
    assert!(write(&link2, b"a 1\n").is_ok());
    assert!(write(&link2, b"a 2\n").is_ok());
    for link in [&link1, &link2] {
        let meta = std::fs::symlink_metadata(link).expect("lstat");
        assert!(
            meta.file_type().is_symlink(),
            "{} is no longer a symlink",
            link.display()
        );
    }
    assert_eq!(std::fs::read_to_string(&real).ok().as_deref(), Some("a 2\n"));
    assert_eq!(
        entries(&dir.path().join("real")),
        Some(1),
        "a temp file was left beside the target"
    );
}

#[test]
fn a_directory_and_a_symlink_loop_are_refused_with_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = write(dir.path(), b"x").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.contains(&*dir.path().to_string_lossy()) && e.contains("is a directory"),
        "{e}"
    );
    let a = dir.path().join("a");
    std::os::unix::fs::symlink("b", &a).expect("symlink");
    std::os::unix::fs::symlink("a", dir.path().join("b")).expect("symlink");
    let e = write(&a, b"x").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("too many symlinks"), "{e}");
}

#[test]
fn modes_are_0644_and_0600_and_a_private_file_is_never_widened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("x.prom");
    let private = dir.path().join("state.json");
    assert!(write(&shared, b"a 1\n").is_ok());
    assert!(write_private(&private, b"{}").is_ok());
    assert_eq!(mode(&shared), Some(0o644));
    assert_eq!(mode(&private), Some(0o600));
    // A DBA narrowed the textfile: the next write keeps it private.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(write(&shared, b"a 2\n").is_ok());
    assert_eq!(mode(&shared), Some(0o600));
    // One the old umask left 0640 becomes readable again.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(write(&shared, b"a 3\n").is_ok());
    assert_eq!(mode(&shared), Some(0o644));
    // A state file someone widened is narrowed back.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(write_private(&private, b"{}").is_ok());
    assert_eq!(mode(&private), Some(0o600));
}

#[test]
fn only_a_regular_file_counts_as_a_previous_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    // Reading a FIFO would block until someone writes; /dev/full would never end.
    assert!(matches!(super::existing_file(&fifo), Ok(None)));
    let missing = dir.path().join("missing");
    assert!(matches!(super::existing_file(&missing), Ok(None)));
    let file = dir.path().join("x.prom");
    assert!(write(&file, b"a 1\n").is_ok());
    std::os::unix::fs::symlink("x.prom", dir.path().join("link")).expect("symlink");
    let found = super::existing_file(&dir.path().join("link")).ok().flatten();
    assert_eq!(found, Some(file));
    assert!(super::existing_file(dir.path()).is_err(), "a directory is an error");
}

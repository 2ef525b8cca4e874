//! Files dbtool writes (`--output`, `--state`, `--metrics`), through the real binary, as root
//! as CI runs it, onto what a path can name: a character device (mknod twins of /dev/null and
//! /dev/full in a temp dir: never the real ones, which a regressed writer would replace), a
//! FIFO, symlinks (relative, chained, through /proc's fd links like /dev/stdout), a directory,
//! a full file system; and the modes under the shipped unit's `UMask=0027`.
//!
//! Regression tests for "the atomic rename replaces whatever is at the path".

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{dbtool, fresh_db_blocking, fresh_db_on, SmallFs, TestDb};

/// Two cheap checks keep the report small (a FIFO holds 64 KiB) and quick; database_activity
/// carries the counters `--state` keeps.
const CHECKS: [&str; 4] = ["--check", "connections", "--check", "database_activity"];

fn health(db: &TestDb) -> Command {
    let mut cmd = dbtool();
    cmd.args(["health", "--format", "prometheus", "--dsn", &db.dsn()])
        .args(CHECKS);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run dbtool")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// health exits 0–3 by what it found (3 also when a check could not run); a file it could not
/// write is an error line on stderr.
fn assert_reported(out: &Output) {
    let code = out.status.code();
    let err = stderr(out);
    assert!(
        matches!(code, Some(0..=3)) && !err.contains("dbtool: error"),
        "exit {code:?}: {err}"
    );
}

fn mknod(path: &Path, minor: u32) {
    let ok = Command::new("mknod")
        .arg(path)
        .args(["c", "1", &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "mknod {} c 1 {minor} failed: these tests run as root, as CI does",
        path.display()
    );
}

fn assert_char_device(path: &Path, minor: u32) {
    let meta = std::fs::symlink_metadata(path).expect("lstat");
    assert!(
        meta.file_type().is_char_device(),
        "{} is no longer a character device: {:?}",
        path.display(),
        meta.file_type()
    );
    assert_eq!(
        meta.rdev(),
        libc::makedev(1, minor),
        "{} changed its device number",
        path.display()
    );
}

fn assert_symlink(path: &Path) {
    let meta = std::fs::symlink_metadata(path).expect("lstat");
    assert!(
        meta.file_type().is_symlink(),
        "{} is no longer a symlink",
        path.display()
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").mode() & 0o7777
}

/// The one error line of a failed run; fails when there is not exactly one.
fn one_line_error(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one error line, got: {err}");
    lines[0].to_string()
}

/// A database for tests that back up: on the major under test, dumped with client tools
/// that can dump it (tests/common/backup.rs).
fn backup_db(hint: &str) -> TestDb {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(fresh_db_on(common::backup::backup_cluster(), hint))
}

fn with_client(cmd: &mut Command) -> &mut Command {
    cmd.env("DBTOOL_PG_BIN", common::backup::client())
}

#[test]
fn a_character_device_stays_a_device_after_output_state_and_backup_metrics() {
    let db = backup_db("files null twin");
    let dir = tempfile::tempdir().expect("tempdir");
    let null = dir.path().join("null");
    mknod(&null, 3);
    // As root, the old writer renamed a regular file over it.
    assert_reported(&run(health(&db).arg("--output").arg(&null)));
    assert_char_device(&null, 3);
    // A state file on it means "remember nothing": it reads as empty, is written into.
    assert_reported(&run(health(&db).arg("--state").arg(&null)));
    assert_char_device(&null, 3);
    let dest = dir.path().join("backups");
    let out = run(with_client(&mut dbtool())
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest)
        .arg("--metrics")
        .arg(&null));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_char_device(&null, 3);
}

#[test]
fn a_full_device_is_a_one_line_error_exit_3_naming_the_path() {
    let db = fresh_db_blocking("files full twin");
    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full");
    mknod(&full, 7);
    let out = run(health(&db).arg("--output").arg(&full));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = one_line_error(&out);
    assert!(
        line.contains(&*full.to_string_lossy()) && line.contains("No space left on device"),
        "{line}"
    );
    assert_char_device(&full, 7);
}

#[test]
fn a_fifo_gets_the_report_and_stays_a_fifo() {
    let db = fresh_db_blocking("files fifo");
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("report.fifo");
    let ok = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    assert!(ok, "mkfifo failed");
    // Our read end is open before dbtool starts, so its open for writing does not wait, and
    // what it writes stays in the FIFO until we read it, even after it exited.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO's read end");
    let mut child = health(&db)
        .arg("--output")
        .arg(&fifo)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbtool");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    // Drain while it runs (a report larger than the FIFO's buffer must not block it), then
    // once more after it exited.
    loop {
        let exited = child.try_wait().expect("try_wait").is_some();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading the FIFO: {e}"),
            }
        }
        if exited {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("wait");
    assert_reported(&out);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("dbtool_up{"), "the FIFO got: {text}");
    let meta = std::fs::symlink_metadata(&fifo).expect("lstat");
    assert!(
        meta.file_type().is_fifo(),
        "the FIFO was replaced: {:?}",
        meta.file_type()
    );
}

#[test]
fn relative_and_chained_symlinks_stay_links_and_their_target_gets_the_file() {
    let db = fresh_db_blocking("files symlinks");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("textfiles")).expect("mkdir");
    let real = dir.path().join("textfiles/dbtool.prom");
    // chain.prom -> link.prom -> textfiles/dbtool.prom (relative, dangling at first);
    // state.json -> textfiles/state.json likewise.
    let link = dir.path().join("link.prom");
    let chain = dir.path().join("chain.prom");
    let state = dir.path().join("state.json");
    std::os::unix::fs::symlink("textfiles/dbtool.prom", &link).expect("symlink");
    std::os::unix::fs::symlink(&link, &chain).expect("symlink");
    std::os::unix::fs::symlink("textfiles/state.json", &state).expect("symlink");
    for _ in 0..2 {
        assert_reported(&run(health(&db).arg("--output").arg(&chain).arg("--state").arg(&state)));
        for l in [&link, &chain, &state] {
            assert_symlink(l);
        }
    }
    let text = std::fs::read_to_string(&real).expect("the link's target was written");
    assert!(text.contains("dbtool_up{"), "{text}");
    assert!(dir.path().join("textfiles/state.json").is_file());
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path().join("textfiles"))
        .expect("readdir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(names.len(), 2, "a temp file was left behind: {names:?}");
}

#[test]
fn a_link_to_dev_stdout_writes_to_stdout() {
    let db = fresh_db_blocking("files stdout");
    let dir = tempfile::tempdir().expect("tempdir");
    // The way /dev/stdout resolves (a symlink to /proc/self/fd/1, a link that names an open
    // pipe, not a path), without pointing a test at the real /dev/stdout.
    let out_link = dir.path().join("stdout");
    std::os::unix::fs::symlink("/dev/stdout", &out_link).expect("symlink");
    let out = run(health(&db).arg("--output").arg(&out_link));
    assert_reported(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dbtool_up{"), "stdout: {text}\nstderr: {}", stderr(&out));
    assert_symlink(&out_link);
}

#[test]
fn a_directory_is_refused_with_its_path_and_the_fix() {
    let db = backup_db("files directory");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(health(&db).arg("--output").arg(dir.path()));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = one_line_error(&out);
    assert!(
        line.contains(&*dir.path().to_string_lossy()) && line.contains("is a directory; name a file inside it"),
        "{line}"
    );
    assert!(dir.path().is_dir());
    // backup refuses it before dumping anything: a mistyped path must not cost a whole dump.
    let dest = dir.path().join("backups");
    let out = run(with_client(&mut dbtool())
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest)
        .arg("--metrics")
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = one_line_error(&out);
    assert!(line.contains("is a directory"), "{line}");
    assert!(!dest.exists(), "backup ran although --metrics was refused");
}

/// The shipped unit's UMask=0027, set in the child as systemd sets it.
fn umask_027(cmd: &mut Command) -> &mut Command {
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o027);
            Ok(())
        })
    }
}

#[test]
fn under_umask_027_textfiles_are_0644_and_state_files_0600() {
    let db = backup_db("files umask");
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = dir.path().join("dbtool.prom");
    let state = dir.path().join("state.json");
    let metrics = dir.path().join("backup.prom");
    let dest = dir.path().join("backups");
    let mut h = health(&db);
    h.arg("--output").arg(&prom).arg("--state").arg(&state);
    assert_reported(&run(umask_027(&mut h)));
    assert_eq!(mode(&prom), 0o644, "textfile");
    assert_eq!(mode(&state), 0o600, "state file");
    let pages = dir.path().join("man");
    let out = run(umask_027(dbtool().arg("man").arg("--out-dir").arg(&pages)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&pages.join("dbtool-health.1")), 0o644, "man page");
    let mut b = dbtool();
    b.args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest)
        .arg("--metrics")
        .arg(&metrics);
    let out = run(umask_027(with_client(&mut b)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&metrics), 0o644, "backup metrics");
    // The backup's own state file (the lock file is gone by now; src/jobs/backup/lock.rs pins it).
    let files: Vec<(PathBuf, u32)> = std::fs::read_dir(&dest)
        .expect("readdir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let m = mode(&p);
            (p, m)
        })
        .collect();
    assert!(!files.is_empty(), "no backup state file in {}", dest.display());
    assert!(files.iter().all(|(_, m)| *m == 0o600), "{files:?}");
}

#[test]
fn a_full_file_system_keeps_the_previous_file_and_leaves_no_temp_file() {
    let db = fresh_db_blocking("files full fs");
    let fs = SmallFs::mount();
    let prom = fs.dir.path().join("dbtool.prom");
    assert_reported(&run(health(&db).arg("--output").arg(&prom)));
    let before = std::fs::read(&prom).expect("first report");
    // Fill what is left, so the next report cannot be written.
    let mut filler = std::fs::File::create(fs.dir.path().join("filler")).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    let full = loop {
        if let Err(e) = filler.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "{full}");
    let out = run(health(&db).arg("--output").arg(&prom));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = one_line_error(&out);
    assert!(
        line.contains(&*prom.to_string_lossy()) && line.contains("No space left on device"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(&prom).expect("previous report"),
        before,
        "the previous report changed"
    );
    let mut names: Vec<String> = std::fs::read_dir(fs.dir.path())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dbtool.prom", "filler"], "a temp file was left behind");
}

#[tokio::test]
async fn archive_metrics_onto_a_device_and_through_a_symlink() {
    let db = common::fresh_db("files archive").await;
    let c = db.client().await;
    common::posts::create_posts(&c, "posts", 500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let null = dir.path().join("null");
    mknod(&null, 3);
    // archive reads its previous textfile for the counters: from a device it must read
    // nothing (from a /dev/full twin it would read forever), then write into it.
    let out = common::posts::archive(&db.dsn(), &["--metrics", &null.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::posts::text(&out));
    assert_char_device(&null, 3);
    let link = dir.path().join("archive.prom");
    std::os::unix::fs::symlink("real.prom", &link).expect("symlink");
    let out = common::posts::archive(&db.dsn(), &["--metrics", &link.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::posts::text(&out));
    assert_symlink(&link);
    let prom = std::fs::read_to_string(dir.path().join("real.prom")).expect("the link's target");
    assert!(prom.contains("dbtool_archive_rows_total{"), "{prom}");
}

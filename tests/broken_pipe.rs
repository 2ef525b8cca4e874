//! `dbtool … | head -c1`: a reader that goes away is not an error. Every command writes
//! stdout through a locked handle and main exits 0, silently, on EPIPE (println! would panic).

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Output, Stdio};

/// Runs dbtool with stdout on a pipe whose read end is already closed, so its first write
/// fails with EPIPE every time (no race with a reader that closes "soon").
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    // SAFETY: both descriptors were just created by pipe(2) and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    common::dbtool()
        .args(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run dbtool")
}

fn assert_quiet_success(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    assert!(stderr.is_empty(), "{what} wrote to stderr: {stderr}");
}

#[test]
fn config_check_into_a_closed_pipe_exits_0_without_a_panic() {
    // Regression: `dbtool config check FILE | true` panicked in println! ("failed printing to stdout").
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dbtool.toml");
    std::fs::write(&path, "").expect("write config");
    let out = with_closed_stdout(&["config", "check", path.to_str().expect("utf-8 path")]);
    assert_quiet_success(&out, "config check");
}

#[test]
fn checks_into_a_closed_pipe_exits_0_without_a_panic() {
    assert_quiet_success(&with_closed_stdout(&["checks"]), "checks");
}

#[tokio::test]
async fn migrate_into_a_closed_pipe_exits_0_without_a_panic() {
    let db = common::fresh_db("broken pipe migrate").await;
    let dsn = db.dsn();
    let out = with_closed_stdout(&["migrate", "--dsn", &dsn]);
    assert_quiet_success(&out, "migrate");
    let out = with_closed_stdout(&["migrate", "--status", "--dsn", &dsn]);
    assert_quiet_success(&out, "migrate --status");
}

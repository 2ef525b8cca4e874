//! Tests of the test harness itself: the throwaway cluster and the per-test databases.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cluster, connect, fresh_db, own_cluster};
use tempcluster::ClusterOptions;

/// Set in the child process of `reaper_cleans_up_after_a_killed_process`.
const REAPER_CHILD_VAR: &str = "DBTOOL_HARNESS_REAPER_CHILD";
/// Set in the child process of `a_hung_test_fails_its_binary_naming_it`.
const HUNG_CHILD_VAR: &str = "DBTOOL_HARNESS_HUNG_CHILD";

async fn one_row_text(dsn: &str, sql: &str) -> String {
    connect(dsn)
        .await
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn can_connect(dsn: &str) -> bool {
    tokio_postgres::connect(dsn, tokio_postgres::NoTls).await.is_ok()
}

#[tokio::test]
async fn accepts_queries_over_unix_socket_and_tcp() {
    let c = cluster();
    assert!(c
        .dsn("postgres")
        .contains(&format!("host={}", c.socket_dir().display())));
    // inet_server_addr() is NULL over a unix socket, the server's address over TCP.
    let over_socket = connect(&c.dsn("postgres")).await;
    let row = over_socket
        .query_one("SELECT inet_server_addr()::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    let addr = one_row_text(&c.tcp_dsn("postgres"), "SELECT host(inet_server_addr())").await;
    assert_eq!(addr, "127.0.0.1");
}

#[tokio::test]
async fn server_version_num_matches_the_server() {
    let c = cluster();
    let reported = one_row_text(&c.dsn("postgres"), "SELECT current_setting('server_version_num')").await;
    assert_eq!(reported, c.server_version_num().to_string());
}

/// Regression: nothing checked that a per-major pass of scripts/test ran that major. Re-runs
/// `server_version_num_matches_the_server` in a child with the right and a wrong
/// DBTOOL_TEST_PG_MAJOR: the wrong one must fail, naming both numbers.
#[test]
fn a_pass_fails_when_its_cluster_runs_another_major() {
    let major = cluster().server_version_num() / 10000;
    let run = |claimed: u32| {
        Command::new(std::env::current_exe().expect("current test binary"))
            .args(["server_version_num_matches_the_server", "--exact", "--test-threads=1"])
            .env("DBTOOL_TEST_PG_MAJOR", claimed.to_string())
            .output()
            .expect("re-run this test binary")
    };
    let right = run(major);
    assert!(right.status.success(), "{}", String::from_utf8_lossy(&right.stdout));
    let wrong = run(major + 1);
    let out = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        !wrong.status.success(),
        "a cluster of major {major} passed as {}: {out}",
        major + 1
    );
    let want = format!("DBTOOL_TEST_PG_MAJOR={} but the cluster", major + 1);
    assert!(
        out.contains(&want) && out.contains(&format!("(major {major})")),
        "{out}"
    );
}

#[tokio::test]
async fn fresh_databases_are_distinct_and_dropped() {
    let a = fresh_db("harness distinct").await;
    let b = fresh_db("harness distinct").await;
    assert_ne!(a.name(), b.name());
    let a_name: String = a
        .client()
        .await
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    let b_name: String = b
        .client()
        .await
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((a_name.as_str(), b_name.as_str()), (a.name(), b.name()));
    assert!(can_connect(&a.tcp_dsn()).await);

    let name = a.name().to_string();
    drop(a);
    let admin = connect(&cluster().dsn("postgres")).await;
    let left = admin
        .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert_eq!(
        left.get::<_, i64>(0),
        0,
        "database {name} should be dropped with its TestDb"
    );
}

#[tokio::test]
async fn stop_and_start_again_keep_port_and_socket() {
    let c = own_cluster(ClusterOptions::default());
    assert!(can_connect(&c.dsn("postgres")).await);
    c.stop().expect("stop");
    c.stop().expect("a second stop is a no-op");
    assert!(!can_connect(&c.dsn("postgres")).await);
    c.start_again().expect("start again");
    assert!(can_connect(&c.dsn("postgres")).await);
    assert!(can_connect(&c.tcp_dsn("postgres")).await);
}

#[tokio::test]
async fn drop_stops_the_server_and_removes_the_data_dir() {
    let c = own_cluster(ClusterOptions::default());
    let (data, dsn) = (c.data_dir().to_path_buf(), c.dsn("postgres"));
    assert!(data.join("PG_VERSION").is_file());
    drop(c);
    assert!(!data.exists(), "{} should be removed", data.display());
    assert!(!can_connect(&dsn).await);
}

#[tokio::test]
async fn options_reach_initdb_postgresql_conf_and_pg_hba() {
    let c = own_cluster(ClusterOptions {
        conf: vec!["max_connections = 20".into()],
        hba_prepend: vec!["host all refused 127.0.0.1/32 reject".into()],
        initdb_args: vec!["--data-checksums".into()],
        ..ClusterOptions::default()
    });
    let dsn = c.dsn("postgres");
    assert_eq!(one_row_text(&dsn, "SHOW max_connections").await, "20");
    assert_eq!(one_row_text(&dsn, "SHOW data_checksums").await, "on");
    assert_eq!(one_row_text(&dsn, "SHOW fsync").await, "off");
    connect(&dsn)
        .await
        .batch_execute("CREATE ROLE refused LOGIN")
        .await
        .unwrap();
    let refused = c.tcp_dsn("postgres").replace("user=postgres", "user=refused");
    assert!(!can_connect(&refused).await, "the prepended reject line should win");
}

#[tokio::test]
async fn preloads_pg_stat_statements_when_the_bin_dir_has_it() {
    let c = cluster();
    let libs = one_row_text(&c.dsn("postgres"), "SHOW shared_preload_libraries").await;
    let lib_dir = c.bin_dir().join("../lib");
    let shipped =
        lib_dir.join("pg_stat_statements.so").is_file() || lib_dir.join("postgresql/pg_stat_statements.so").is_file();
    assert_eq!(
        libs.contains("pg_stat_statements"),
        shipped,
        "shared_preload_libraries = {libs:?}"
    );
}

#[test]
fn run_as_owner_runs_server_binaries() {
    let c = cluster();
    let data = c.data_dir().to_string_lossy().into_owned();
    let out = c
        .run_as_owner(&c.bin_dir().join("pg_ctl"), &["status", "-D", &data])
        .expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("server is running"));
}

#[test]
fn dbtool_command_has_a_clean_libpq_environment() {
    let cmd = common::dbtool();
    let removed: Vec<String> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    for (key, _) in std::env::vars() {
        let leaks =
            key.starts_with("PG") || key == "DATABASE_URL" || (key.starts_with("DBTOOL_") && key != "DBTOOL_PG_BIN");
        assert_eq!(removed.contains(&key), leaks, "{key}");
    }
}

/// The killed process's Drop never runs; the detached reaper must still stop the server
/// and remove the directory.
#[test]
fn reaper_cleans_up_after_a_killed_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "reaper_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REAPER_CHILD_VAR, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("re-run this test binary");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let base = stdout
        .lines()
        .map_while(Result::ok)
        // libtest prints "test reaper_child ... " on the same line first.
        .find_map(|line| line.split_once("REAPER_CHILD_BASE=").map(|(_, dir)| PathBuf::from(dir)))
        .expect("the child prints its cluster dir");
    assert!(base.join("data/postmaster.pid").is_file());
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while base.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!base.exists(), "the reaper should remove {}", base.display());
}

/// Only does something as the child of `reaper_cleans_up_after_a_killed_process`.
#[test]
#[ignore = "helper process for reaper_cleans_up_after_a_killed_process"]
fn reaper_child() {
    if std::env::var_os(REAPER_CHILD_VAR).is_none() {
        return;
    }
    let c = own_cluster(ClusterOptions::default());
    println!("REAPER_CHILD_BASE={}", c.data_dir().parent().unwrap().display());
    std::thread::sleep(Duration::from_secs(120));
}

/// Regression: a hung test ran into CI's 90-minute limit. The harness's watchdog must end a
/// test that outlives DBTOOL_TEST_TIMEOUT_SECS, failing the binary and naming the test.
#[test]
fn a_hung_test_fails_its_binary_naming_it() {
    let mut child = Command::new(std::env::current_exe().expect("current test binary"))
        .args(["hung_child", "--exact", "--ignored", "--test-threads=1"])
        .env(HUNG_CHILD_VAR, "1")
        .env("DBTOOL_TEST_TIMEOUT_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-run this test binary");
    // Not a timing assert: only a bound, so a broken watchdog fails this test instead of hanging it.
    let give_up = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the watchdog did not end a test hung for 120s with a 2s limit");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("read stderr");
    assert!(!status.success(), "a hung test passed: {stderr}");
    assert!(stderr.contains("test hung_child has run for over 2s"), "{stderr}");
}

/// Only hangs as the child of `a_hung_test_fails_its_binary_naming_it`.
#[test]
#[ignore = "helper process for a_hung_test_fails_its_binary_naming_it"]
fn hung_child() {
    if std::env::var_os(HUNG_CHILD_VAR).is_none() {
        return;
    }
    let _ = common::dbtool();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The cluster lives in its own workspace crate (crates/tempcluster). A plain `cargo test` or
/// `cargo clippy` in the root covers only the dbtool package, so the README's test command and
/// CI must name the workspace, or tempcluster's unit tests and lints silently stop running.
#[test]
fn test_command_and_ci_cover_the_tempcluster_crate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let commands = |script: &str| -> Vec<String> {
        read(script)
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.starts_with("echo") && l.contains("cargo "))
            .map(String::from)
            .collect()
    };
    let test = commands("scripts/test");
    assert!(
        test.iter()
            .any(|l| l.starts_with("cargo test --workspace --all-targets")),
        "scripts/test must run `cargo test --workspace --all-targets`; its cargo lines: {test:?}"
    );
    let ci = commands(".ci/run");
    for wanted in [
        "cargo fmt --all --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
    ] {
        assert!(
            ci.iter().any(|l| l == wanted),
            ".ci/run must run `{wanted}`; its cargo lines: {ci:?}"
        );
    }
}

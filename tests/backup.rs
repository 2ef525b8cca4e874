//! `dbtool backup`, `backups`, `restore` against a real server with the real pg_dump.
//!
//! These tests always use Debian's PostgreSQL 15 (server and pg_dump) and ignore
//! DBTOOL_TEST_PG_BIN: the npm builds of majors 13–18 that the suite can also run against ship
//! no pg_dump, and a pg_dump 15 cannot dump a 16+ server. So they start a cluster of their own
//! from /usr/lib/postgresql/15/bin and point dbtool at the same bin dir with DBTOOL_PG_BIN.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{connect, dbtool, fresh_db_on, TestDb};
use dbtool::cluster::{ClusterOptions, TempCluster};

const PG15: &str = "/usr/lib/postgresql/15/bin";

fn pg15() -> PathBuf {
    let dir = PathBuf::from(PG15);
    assert!(
        dir.join("pg_dump").is_file(),
        "{PG15}/pg_dump is missing: install postgresql-15 and postgresql-client-15 (scripts/test does)"
    );
    dir
}

/// The backup tests' own PostgreSQL 15 cluster (see the module comment for why not `cluster()`).
fn backup_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| pg15_cluster())
}

fn pg15_cluster() -> TempCluster {
    common::own_cluster(ClusterOptions {
        bin_dir: Some(pg15()),
        ..ClusterOptions::default()
    })
}

/// dbtool with the PostgreSQL 15 client tools.
fn dbt() -> Command {
    let mut cmd = dbtool();
    cmd.env("DBTOOL_PG_BIN", pg15());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("could not run dbtool: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn backup(db: &TestDb, dest: &Path, extra: &[&str]) -> Output {
    run(dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(dest)
        .args(extra))
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Names in `dest`, sorted, hidden bookkeeping (state, lock files) excluded.
fn visible(dest: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dest)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| !n.starts_with(".dbtool-backup-state") && !n.starts_with(".lock-") && !n.ends_with(".prom"));
    names.sort();
    names
}

async fn exec(db: &TestDb, sql: &str) {
    db.client()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every row of every user table, in a stable order: the contents to compare after a restore.
async fn contents(dsn: &str) -> Vec<String> {
    let client = connect(dsn).await;
    let tables = client
        .query(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("listing tables: {e}"));
    let mut out = Vec::new();
    for t in tables {
        let name: String = t.get(0);
        let sql = format!("SELECT coalesce(string_agg(x::text, '|' ORDER BY x::text), '') FROM {name} x");
        let row = client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(format!("{name}: {}", row.get::<_, String>(0)));
    }
    out
}

async fn seed(db: &TestDb) {
    exec(
        db,
        "CREATE TABLE posts (id int PRIMARY KEY, body text, at timestamptz);
         INSERT INTO posts SELECT g, 'post ' || g, '2026-01-01'::timestamptz + g * interval '1 min'
           FROM generate_series(1, 5000) g;
         CREATE TABLE \"odd \"\"name\" (k text);
         INSERT INTO \"odd \"\"name\" VALUES ('a'), ('b\\c'), (NULL);
         CREATE SCHEMA chat;
         CREATE TABLE chat.messages (id bigserial PRIMARY KEY, post int REFERENCES posts, msg jsonb);
         INSERT INTO chat.messages (post, msg) SELECT g % 5000 + 1, jsonb_build_object('n', g) FROM generate_series(1, 2000) g;
         ANALYZE;",
    )
    .await;
}

fn manifest_ids(dest: &Path) -> Vec<String> {
    visible(dest).into_iter().filter(|n| !n.starts_with('.')).collect()
}

#[tokio::test]
async fn round_trip_backup_restore_and_check() {
    let c = backup_cluster();
    let db = fresh_db_on(c, "backup round trip").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    let metrics = dir.path().join("backup.prom");
    let out = backup(
        &db,
        &dest,
        &["--globals", "--metrics", metrics.to_str().unwrap_or_default()],
    );
    assert_exit(&out, 0);
    // Not a terminal: nothing but the result on stdout, and nothing on stderr.
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    let ids = manifest_ids(&dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(text(&out.stdout).starts_with(&ids[0]), "{}", text(&out.stdout));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dest.join(&ids[0]).join("manifest.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("manifest: {e}"));
    assert_eq!(m["status"], "verified");
    assert_eq!(m["database"], db.name());
    assert_eq!(m["globals"], "globals.sql");
    assert!(m["pg_dump_version"].as_str().is_some_and(|v| v.starts_with("15.")));
    let posts = m["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "posts").cloned());
    assert_eq!(posts.map(|p| p["rows"].clone()), Some(serde_json::json!(5000)));

    let prom = std::fs::read_to_string(&metrics).unwrap_or_default();
    assert!(prom.contains(&format!("dbtool_backup_last_status{{target=")), "{prom}");
    assert!(prom.contains(&format!("database=\"{}\"}} 1\n", db.name())), "{prom}");
    // The issue fixes the name dbtool_backups_count; promtool's only complaint may be its
    // naming lint about the `_count` suffix (a convention, not a parse error).
    let promtool = common::promtool_check_metrics(&prom).err().unwrap_or_default();
    let other: Vec<&str> = promtool
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("dbtool_backups_count non-histogram"))
        .collect();
    assert!(other.is_empty(), "promtool: {promtool}\n{prom}");

    let list = run(dbt().args(["backups", "list", "--json", "--dest"]).arg(&dest));
    assert_exit(&list, 0);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
    assert_eq!(list["backups"][0]["id"], ids[0].as_str());

    // Restore into a database that does not exist yet: created, then filled.
    let target = format!("{}_restored", db.name());
    let to = c.dsn(&target);
    let out = run(dbt().args(["restore", &ids[0], "--to", &to, "--dest"]).arg(&dest));
    assert_exit(&out, 0);
    assert_eq!(contents(&db.dsn()).await, contents(&to).await);
    // A second restore into the now non-empty database is refused, nothing overwritten.
    let again = run(dbt().args(["restore", "--latest", "--to", &to, "--dest"]).arg(&dest));
    assert_exit(&again, 3);
    assert!(text(&again.stderr).contains("not empty"), "{}", text(&again.stderr));

    let check = run(dbt()
        .args(["restore", "--latest", "--check", "--dsn", &db.dsn(), "--dest"])
        .arg(&dest));
    assert_exit(&check, 0);
    assert!(text(&check.stdout).contains("passed"), "{}", text(&check.stdout));
    let client = connect(&c.dsn("postgres")).await;
    let left = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'dbtool_check_%'",
            &[],
        )
        .await
        .map(|r| r.len())
        .ok();
    assert_eq!(left, Some(0), "the scratch database must be dropped");
    let _ = client
        .batch_execute(&format!("DROP DATABASE \"{target}\" WITH (FORCE)"))
        .await;
}

#[tokio::test]
async fn directory_format_with_jobs_round_trips_and_verifies_full() {
    let c = backup_cluster();
    let db = fresh_db_on(c, "backup directory").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = backup(
        &db,
        dir.path(),
        &["--format", "directory", "--jobs", "2", "--verify", "full"],
    );
    assert_exit(&out, 0);
    let verify = run(dbt()
        .args(["backups", "verify", "--latest", "--full", "--dest"])
        .arg(dir.path()));
    assert_exit(&verify, 0);
    let to = c.dsn(&format!("{}_r", db.name()));
    let out = run(dbt()
        .args(["restore", "--latest", "--jobs", "2", "--to", &to, "--dest"])
        .arg(dir.path()));
    assert_exit(&out, 0);
    assert_eq!(contents(&db.dsn()).await, contents(&to).await);
}

#[tokio::test]
async fn verification_catches_a_corrupted_byte() {
    let db = fresh_db_on(backup_cluster(), "backup corrupt").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    assert_exit(&backup(&db, dir.path(), &[]), 0);
    let ok = run(dbt().args(["backups", "verify", "--dest"]).arg(dir.path()));
    assert_exit(&ok, 0);
    let id = manifest_ids(dir.path()).remove(0);
    let dump = dir.path().join(&id).join(format!("{}.dump", db.name()));
    let mut bytes = std::fs::read(&dump).unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&dump, bytes).unwrap_or_else(|e| panic!("{e}"));
    let bad = run(dbt().args(["backups", "verify", &id, "--dest"]).arg(dir.path()));
    assert_exit(&bad, 2);
    assert!(
        text(&bad.stdout).contains("FAILED") && text(&bad.stderr).contains("sha256"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn bad_input_is_exit_3_with_a_clear_line() {
    let out = run(dbt().args(["backup", "--dsn", "host=/nonexistent dbname=x"]));
    assert_exit(&out, 3);
    assert!(text(&out.stderr).contains("--dest"), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = run(dbt()
        .args(["backup", "--jobs", "2", "--dsn", "host=/nonexistent dbname=x", "--dest"])
        .arg(dir.path()));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("--format directory"),
        "{}",
        text(&out.stderr)
    );
    for sub in [
        &["backup"][..],
        &["backups", "list"],
        &["backups", "verify"],
        &["backups", "prune"],
        &["restore"],
    ] {
        let help = run(dbt().args(sub).arg("--help"));
        assert!(
            text(&help.stdout).contains("Exit codes"),
            "{sub:?} --help lists no exit codes"
        );
    }
}

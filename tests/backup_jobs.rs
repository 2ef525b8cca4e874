//! Regression tests for "`backup --format directory --jobs 1000` is passed to pg_dump, which
//! used up max_connections and aborted": `--jobs` of backup and restore is bounded by the
//! connections the server has free, and refused before pg_dump or pg_restore starts.
//!
//! Every test runs on the major under test; the one that takes a backup with the suggested
//! --jobs uses client tools that can dump it (tests/common/backup.rs).

mod common;

use std::path::Path;

use chrono::Utc;
use common::backup::{assert_exit, backup_db, backup_ids, dbt, hidden_leftovers, run, text};
use common::{connect, fresh_db_on, own_cluster, TestDb};
use dbtool::jobs::backup::manifest::{make_id, FileEntry, Manifest, Status, SCHEMA};
use dbtool::jobs::backup::verify::{dump_sha256, hash_file};
use tempcluster::{ClusterOptions, TempCluster};

/// A server with few connections: 12 - 3 reserved for superusers = 9 for everyone else.
fn small_cluster(bin_dir: Option<std::path::PathBuf>) -> TempCluster {
    own_cluster(ClusterOptions {
        bin_dir,
        conf: vec!["max_connections = 12".into()],
        ..ClusterOptions::default()
    })
}

/// The server still lets a client in and answers.
async fn accepts_connections(db: &TestDb) {
    let row = db
        .client()
        .await
        .query_one("SELECT 1 AS one", &[])
        .await
        .unwrap_or_else(|e| panic!("the server no longer answers: {e}"));
    assert_eq!(row.get::<_, i32>("one"), 1);
}

/// The `N` of "use --jobs N or less" in a refusal.
fn suggested(err: &str) -> u32 {
    err.split("use --jobs ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no suggested --jobs in: {err}"))
}

#[tokio::test]
async fn backup_jobs_beyond_the_free_connections_are_refused_before_pg_dump_starts() {
    let c = small_cluster(None);
    let db = fresh_db_on(&c, "jobs backup").await;
    // Two sessions of the application, counted as in use.
    let _app = (connect(&db.dsn()).await, connect(&db.dsn()).await);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = backup_db(&db, dir.path(), &["--format", "directory", "--jobs", "1000"]);
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("--jobs 1000: pg_dump would open 1001 connections")
            && err.contains("free (max_connections 12 - 3 superuser_reserved_connections"),
        "{err}"
    );
    // At most 9 - (the two app sessions + dbtool's own, holding the lock) = 6 free, so
    // pg_dump --jobs 5 (a test's setup connection may still be closing: "at most").
    let n = suggested(&err);
    assert!((2..=5).contains(&n), "{err}");
    assert!(backup_ids(dir.path()).is_empty() && hidden_leftovers(dir.path()).is_empty());
    accepts_connections(&db).await;
}

/// A backup whose dump is not a real archive: enough for restore to check its checksum and
/// then ask the server, which is where --jobs must be refused.
fn synthetic_backup(dest: &Path) -> String {
    let at = Utc::now();
    let id = make_id("app", at);
    let dir = dest.join(&id);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("app.dump"), b"not a dump, but its checksum is right").unwrap_or_else(|e| panic!("{e}"));
    let (bytes, sha256) = hash_file(&dir.join("app.dump"), false).unwrap_or_else(|e| panic!("{e}"));
    let files = vec![FileEntry {
        path: "app.dump".into(),
        bytes,
        sha256,
    }];
    let m = Manifest {
        schema: SCHEMA,
        id: id.clone(),
        database: "app".into(),
        status: Status::Verified,
        format: "custom".into(),
        compression: None,
        server_version: "15.0".into(),
        pg_dump_version: "15.0".into(),
        dbtool_version: "0".into(),
        started_at: at,
        finished_at: at,
        duration_seconds: 0.0,
        bytes,
        sha256: dump_sha256(&files, "app.dump"),
        dump: "app.dump".into(),
        globals: None,
        files_archive: None,
        verified_with: "list".into(),
        files,
        tables: Vec::new(),
        objects: None,
        encryption: None,
    };
    let text = serde_json::to_vec(&m).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("manifest.json"), text).unwrap_or_else(|e| panic!("{e}"));
    id
}

#[tokio::test]
async fn restore_jobs_beyond_the_free_connections_are_refused_before_the_target_is_created() {
    let c = small_cluster(None);
    let db = fresh_db_on(&c, "jobs restore").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let id = synthetic_backup(dir.path());
    let target = format!("{}_r", db.name());
    let to = c.dsn(&target);
    let out = run(dbt()
        .args(["restore", &id, "--jobs", "1000", "--to", &to, "--dest"])
        .arg(dir.path()));
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("--jobs 1000: pg_restore would open 1000 connections"),
        "{err}"
    );
    let exists = db
        .client()
        .await
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&target])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(exists.is_empty(), "the restore target was created");
    accepts_connections(&db).await;
}

/// Waits until `hold`'s is the only client session on the server: the sessions of a previous
/// run or of the setup may still be exiting, and each would count as in use.
async fn only_session(hold: &tokio_postgres::Client) {
    let sql = "SELECT count(*) FROM pg_catalog.pg_stat_activity \
               WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let others: i64 = hold
            .query_one(sql, &[])
            .await
            .and_then(|r| r.try_get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        if others == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{others} other sessions after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_suggested_jobs_fit_and_the_backup_is_taken() {
    let c = small_cluster(None);
    let db = fresh_db_on(&c, "jobs fit").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE a (x int); CREATE TABLE b (x int); INSERT INTO a VALUES (1);")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // One session held open across both runs, so the sessions in use are the same for both.
    let hold = db.client().await;
    only_session(&hold).await;
    let out = backup_db(&db, dir.path(), &["--format", "directory", "--jobs", "100"]);
    assert_exit(&out, 2);
    let jobs = suggested(&text(&out.stderr)).to_string();
    only_session(&hold).await;
    let out = backup_db(&db, dir.path(), &["--format", "directory", "--jobs", &jobs]);
    assert_exit(&out, 0);
    assert_eq!(backup_ids(dir.path()).len(), 1);
    accepts_connections(&db).await;
}

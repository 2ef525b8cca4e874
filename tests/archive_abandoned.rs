//! Killed archive runs leave honest records (issue "Do no harm", item 9): after kill -9 or
//! pg_terminate_backend, the next run marks the dead run's `running` row `abandoned`, and the
//! remaining rows in the summary and the metrics are the real count, never a stand-in 0.

mod common;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::posts::{archive_cmd, count_old, create_posts, text};
use common::{dbtool, fresh_db, TestDb};
use dbtool::db::job_runs;

/// Starts a slow archive run and returns once it has moved rows and recorded its row.
// The child is returned for the caller to kill and wait on; clippy cannot follow it there.
#[allow(clippy::zombie_processes)]
async fn start_slow_run(db: &TestDb, c: &tokio_postgres::Client, metrics: &Path) -> Child {
    let mut cmd = archive_cmd(
        &db.dsn(),
        &[
            "--batch-size",
            "100",
            "--sleep",
            "50ms",
            "--metrics",
            metrics.to_str().expect("path"),
        ],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let moved = c
            .query_one(
                "SELECT (SELECT count(*) FROM archive.posts) > 0
                    AND (SELECT count(*) FROM dbtool.job_runs WHERE status = 'running') = 1",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0));
        if moved.unwrap_or(false) {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the run never got going: {}",
                text(&child.wait_with_output().expect("wait"))
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn statuses(c: &tokio_postgres::Client) -> Vec<(String, bool)> {
    c.query(
        "SELECT status, finished_at IS NOT NULL FROM dbtool.job_runs ORDER BY id",
        &[],
    )
    .await
    .expect("job_runs")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn remaining_metric(metrics: &Path) -> Option<i64> {
    let prom = std::fs::read_to_string(metrics).expect("metrics file");
    prom.lines()
        .filter(|l| l.starts_with("dbtool_archive_remaining_rows{target=\""))
        .find_map(|l| l.split_once(",table=\"public.posts\"} ").map(|(_, v)| v))
        .map(|v| v.trim().parse().expect("a number"))
}

/// A run right after a kill can find the dead session's lock for a moment (exit 1): retry that.
fn run_after_kill(dsn: &str, extra: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = archive_cmd(dsn, extra).output().expect("run");
        if out.status.code() != Some(1) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn history(dsn: &str) -> String {
    let out = dbtool()
        .args(["history", "--dsn", dsn, "--job", "posts"])
        .output()
        .expect("history");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn after_kill_9_the_next_run_marks_the_dead_run_abandoned_and_counts_what_is_left() {
    let db = fresh_db("archive_abandoned_kill").await;
    let c = db.client().await;
    create_posts(&c, "posts", 20_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("archive.prom");
    let mut child = start_slow_run(&db, &c, &metrics).await;
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    assert_eq!(statuses(&c).await, vec![("running".to_string(), false)]);

    // The next run stops early, so rows older than the cutoff remain for it to count.
    let m = metrics.to_str().expect("path");
    let out = run_after_kill(
        &db.dsn(),
        &[
            "--batch-size",
            "100",
            "--sleep",
            "50ms",
            "--max-runtime",
            "300ms",
            "--metrics",
            m,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        statuses(&c).await,
        vec![("abandoned".to_string(), true), ("success".to_string(), true)]
    );
    assert!(history(&db.dsn()).contains("abandoned"));
    let left = count_old(&c, "posts").await;
    assert!(left > 0, "the second run was meant to stop early");
    assert_eq!(remaining_metric(&metrics), Some(left));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("remaining:      {left}\n")), "{stdout}");
}

#[tokio::test]
async fn after_pg_terminate_backend_the_run_reports_the_real_remainder_and_is_marked_abandoned() {
    let db = fresh_db("archive_abandoned_term").await;
    let c = db.client().await;
    create_posts(&c, "posts", 20_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("archive.prom");
    let child = start_slow_run(&db, &c, &metrics).await;
    let killed: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'dbtool' AND pid <> pg_backend_pid()) t",
            &[],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "one archive session");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let left = count_old(&c, "posts").await;
    assert!(left > 0);
    assert_eq!(remaining_metric(&metrics), Some(left), "{}", text(&out));
    assert_eq!(statuses(&c).await, vec![("running".to_string(), false)]);

    let m = metrics.to_str().expect("path");
    let out = run_after_kill(&db.dsn(), &["--metrics", m]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        statuses(&c).await,
        vec![("abandoned".to_string(), true), ("success".to_string(), true)]
    );
    assert!(history(&db.dsn()).contains("abandoned"));
    assert_eq!(remaining_metric(&metrics), Some(0));
    assert_eq!(count_old(&c, "posts").await, 0);
}

/// A scheduled run's row is live while the scheduler's session holds the job's lock, and only
/// then (the lock key is split across pg_locks' classid and objid).
#[tokio::test]
async fn a_scheduled_row_is_abandoned_only_when_its_lock_is_free() {
    let db = fresh_db("archive_abandoned_sched").await;
    let mut c = db.client().await;
    dbtool::db::migrate::apply(&mut c).await.expect("migrate");
    for job in ["nightly", "hourly"] {
        c.execute(
            "INSERT INTO dbtool.job_runs (job, kind, scheduled_at) VALUES ($1, 'archive', now())",
            &[&job],
        )
        .await
        .expect("row");
    }
    let holder = db.client().await;
    let key = job_runs::schedule_lock_key("nightly");
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .expect("lock");
    let ids = job_runs::abandon_stale(&c, "nightly", "archive", None)
        .await
        .expect("abandon");
    assert!(ids.is_empty(), "the scheduler holding the lock is alive");
    let ids = job_runs::abandon_stale(&c, "hourly", "archive", None)
        .await
        .expect("abandon");
    assert_eq!(ids.len(), 1, "nobody holds hourly's lock");
    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .expect("unlock");
    let ids = job_runs::abandon_stale(&c, "nightly", "archive", None)
        .await
        .expect("abandon");
    assert_eq!(ids.len(), 1);
}

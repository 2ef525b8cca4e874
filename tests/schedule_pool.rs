//! The daemon's warm sessions: scheduled health runs reuse their sessions instead of opening
//! new ones, stay within the job's `max_connections`, get new sessions after a server restart,
//! and close them cleanly at shutdown.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{connect, dbtool, fresh_db_on, own_cluster};
use tempcluster::{ClusterOptions, TempCluster};

fn start(dir: &Path, dsn: &str, output: &Path) -> Daemon {
    let cfg = dir.join("dbtool.toml");
    let config = format!(
        "[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n\
         [[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"\ncatch_up = false\n\
         max_connections = 3\nformat = \"json\"\noutput = \"{}\"\n",
        output.display()
    );
    std::fs::write(&cfg, config).expect("write config");
    Daemon::start(&cfg, dir)
}

/// The sessions dbtool holds now, as (pid, "backend_start datname"); a health job claims
/// nothing, so every one of them is a health session.
async fn health_sessions(cluster: &TempCluster) -> BTreeSet<(i32, String)> {
    let client = connect(&cluster.dsn("postgres")).await;
    let rows = client
        .query(
            "SELECT pid, backend_start::text || ' ' || datname FROM pg_stat_activity \
             WHERE application_name = 'dbtool'",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The `generated_at` of the health output, once a run wrote it.
fn report_time(output: &Path) -> Option<(String, bool)> {
    let text = std::fs::read_to_string(output).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let up = doc["targets"][0]["up"].as_bool().unwrap_or(false);
    Some((doc["generated_at"].as_str()?.to_string(), up))
}

/// Polls until `n` more reports than `seen` were written (each one a finished run), recording
/// every health session seen meanwhile; fails with the daemon's log after `within`.
async fn watch_runs(
    d: &Daemon,
    cluster: &TempCluster,
    output: &Path,
    n: usize,
    within: Duration,
) -> (Vec<(String, bool)>, Vec<BTreeSet<(i32, String)>>) {
    let until = Instant::now() + within;
    let mut reports: Vec<(String, bool)> = Vec::new();
    let mut samples = Vec::new();
    let first = report_time(output);
    while reports.len() < n {
        assert!(
            Instant::now() < until,
            "{} of {n} runs seen: {}",
            reports.len(),
            d.log()
        );
        samples.push(health_sessions(cluster).await);
        if let Some(r) = report_time(output) {
            if Some(&r) != first.as_ref() && reports.last() != Some(&r) {
                reports.push(r);
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    (reports, samples)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_runs_reuse_bounded_sessions_and_replace_them_after_a_restart() {
    let cluster = own_cluster(ClusterOptions::default());
    // Four databases to visit (postgres and three of the test's) with three sessions allowed:
    // every run has to close an idle session of one database to open another's.
    let db = fresh_db_on(&cluster, "pool_main").await;
    let _other = fresh_db_on(&cluster, "pool_other").await;
    let _third = fresh_db_on(&cluster, "pool_third").await;
    let migrated = dbtool()
        .args(["migrate", "--dsn", &db.dsn()])
        .output()
        .expect("run migrate");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("health.json");
    let d = start(dir.path(), &db.dsn(), &output);

    let (reports, samples) = watch_runs(&d, &cluster, &output, 4, Duration::from_secs(60)).await;
    assert!(reports.iter().all(|(_, up)| *up), "{reports:?}: {}", d.log());
    let most = samples.iter().map(BTreeSet::len).max().unwrap_or(0);
    let over: Vec<_> = samples.iter().filter(|s| s.len() > 3).collect();
    assert!(
        most <= 3,
        "{most} health sessions at once with max_connections = 3: {over:?}"
    );
    // Warm: a backend of the first run still serves the last, where fresh sessions would be
    // closed at the end of each run (none between runs, new pids in each).
    let distinct: BTreeSet<_> = samples.iter().flatten().collect();
    let first = samples.iter().find(|s| !s.is_empty());
    let kept = first.map(|first| first.intersection(samples.last().unwrap_or(first)).count());
    assert!(kept.unwrap_or(0) >= 1, "no session lived across runs: {samples:?}");

    // A restart closes every pooled session; the first run after it opens new ones and works.
    let before: BTreeSet<i32> = distinct.iter().map(|(pid, _)| *pid).collect();
    cluster.stop().expect("stop the server");
    cluster.start_again().expect("start the server again");
    let (reports, samples) = watch_runs(&d, &cluster, &output, 3, Duration::from_secs(60)).await;
    // Runs that started while the server was down may say it was; the last ones say up.
    assert!(reports.last().is_some_and(|(_, up)| *up), "{reports:?}: {}", d.log());
    let after: BTreeSet<i32> = samples.iter().flatten().map(|(pid, _)| *pid).collect();
    assert!(!after.is_empty(), "no health sessions after the restart: {}", d.log());
    assert!(
        after.is_disjoint(&before),
        "a pre-restart session was reused: {before:?} {after:?}"
    );

    // SIGTERM: the daemon says goodbye on each session rather than dropping the socket.
    let pid = d.child.id().to_string();
    let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    assert!(ok.is_ok_and(|s| s.success()), "kill -TERM");
    let mut d = d;
    let until = Instant::now() + Duration::from_secs(30);
    while !matches!(d.child.try_wait(), Ok(Some(_))) {
        assert!(Instant::now() < until, "the daemon did not stop: {}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while !health_sessions(&cluster).await.is_empty() {
        assert!(Instant::now() < until, "sessions left after shutdown: {}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_log = std::fs::read_to_string(cluster.log_file()).unwrap_or_default();
    assert!(
        !server_log.contains("unexpected EOF on client connection"),
        "a session was dropped without a goodbye:\n{server_log}"
    );
}

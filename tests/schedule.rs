//! `dbtool schedule` against a real cluster, with every-second (6-field) schedules: firing
//! times, overlap, timeouts, shutdown, database restarts, bad configs, and two replicas.
//!
//! Slow and stuck jobs use the test-only `kind = "sleep"` (a `sleep` child process, enabled by
//! DBTOOL_TEST_JOBS=1): it behaves like backup's pg_dump child, and unlike a lock-blocked health
//! check it cannot be cut short by dbtool's own statement/lock timeouts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{dbtool, fresh_db, own_cluster, TestDb};
use tempcluster::ClusterOptions;

/// A running daemon; killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
    metrics: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, config: &str, extra: &[&str]) -> Daemon {
        Daemon::start_skewed(dir, name, config, extra, 0)
    }

    /// A daemon whose clock is `skew_ms` off (DBTOOL_TEST_CLOCK_SKEW_MS, honoured with test jobs only).
    fn start_skewed(dir: &Path, name: &str, config: &str, extra: &[&str], skew_ms: i64) -> Daemon {
        Daemon::spawn(dir, name, config, extra, skew_ms, None)
    }

    /// `pg_bin`: the client tools its backup jobs use (DBTOOL_PG_BIN).
    fn spawn(dir: &Path, name: &str, config: &str, extra: &[&str], skew_ms: i64, pg_bin: Option<PathBuf>) -> Daemon {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).expect("write config");
        let log = dir.join(format!("{name}.log"));
        let metrics = dir.join(format!("{name}.prom"));
        let mut cmd = dbtool();
        if let Some(dir) = pg_bin {
            cmd.env("DBTOOL_PG_BIN", dir);
        }
        let child = cmd
            .env("DBTOOL_TEST_JOBS", "1")
            .env("DBTOOL_TEST_CLOCK_SKEW_MS", skew_ms.to_string())
            .arg("--config")
            .arg(&cfg)
            .args(["schedule", "--metrics"])
            .arg(&metrics)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start dbtool schedule");
        Daemon { child, log, metrics }
    }

    /// A daemon with `--listen` on a free port, returned once /healthz answers. Another process
    /// may take the port between probing and binding: the daemon then exits ("cannot listen"),
    /// and it is started again on a fresh port, as the cluster helpers do.
    fn start_listening(dir: &Path, name: &str, config: &str) -> (Daemon, u16) {
        let ready = |port| common::http_get(port, "/healthz").is_some_and(|b| b.contains("ok"));
        let mut exits = Vec::new();
        for _ in 0..5 {
            let port = common::free_port();
            let mut d = Daemon::start(dir, name, config, &["--listen", &format!("127.0.0.1:{port}")]);
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                if !d.alive() {
                    exits.push(d.log());
                    break;
                }
                if ready(port) && d.alive() {
                    return (d, port);
                }
                assert!(Instant::now() < until, "/healthz never answered: {}", d.log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("dbtool schedule --listen did not start on 5 fresh ports: {exits:#?}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A sample of the metrics textfile, e.g. `dbtool_job_runs_total{target="main",job="a",result="success"}`.
    fn metric(&self, series: &str) -> f64 {
        let text = std::fs::read_to_string(&self.metrics).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the exit; None when it is still running after `limit`.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn migrate(db: &TestDb) {
    let out = dbtool()
        .args(["migrate", "--dsn", &db.dsn()])
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(dsn: &str, jobs: &str) -> String {
    format!("[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n{jobs}")
}

async fn sleep(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Polls the metrics textfile until `series` satisfies `done`; fails after `within` seconds.
async fn wait_for_metric(d: &Daemon, series: &str, done: impl Fn(f64) -> bool, within: u64) {
    let until = Instant::now() + Duration::from_secs(within);
    while !done(d.metric(series)) {
        assert!(
            Instant::now() < until,
            "{series} = {} after {within} s: {}",
            d.metric(series),
            d.log()
        );
        sleep(0.1).await;
    }
}

/// Polls the daemon's log until it contains `needle`; fails after `within` seconds.
async fn wait_for_log(d: &Daemon, needle: &str, within: u64) {
    let until = Instant::now() + Duration::from_secs(within);
    while !d.log().contains(needle) {
        assert!(Instant::now() < until, "no {needle:?} in the log: {}", d.log());
        sleep(0.1).await;
    }
}

/// Polls `sql` until its count satisfies `done`; after `within` seconds the test fails with
/// `what` and the daemon's log.
async fn wait_for_count(db: &TestDb, d: &Daemon, sql: &str, done: impl Fn(i64) -> bool, within: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(within);
    while !done(count(db, sql).await) {
        assert!(Instant::now() < until, "{what}: {}", d.log());
        sleep(0.1).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_fire_at_each_scheduled_second_and_serve_metrics() {
    let db = fresh_db("sched_fire").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("health.prom");
    // The claimed `tick` job's rows show the firing times; health, read-only, claims nothing.
    let jobs = format!(
        "[[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"\ntarget = \"main\"\n\
         output = \"{}\"\ncatch_up = false\nchecks = [\"connections\"]\n\n\
         [[jobs]]\nname = \"tick\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 0\ncatch_up = false\n",
        out.display()
    );
    let (mut d, port) = Daemon::start_listening(dir.path(), "d", &config(&db.dsn(), &jobs));
    // Until two runs have finished, however loaded the machine: a fixed sleep flaked.
    let success = "SELECT count(*) FROM dbtool.job_runs WHERE job = 'tick' AND status = 'success'";
    wait_for_count(&db, &d, success, |n| n >= 2, 60, "two successful runs").await;
    let until = Instant::now() + Duration::from_secs(60);
    while d.metric("dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}") < 2.0 {
        assert!(Instant::now() < until, "two successful health runs: {}", d.log());
        sleep(0.1).await;
    }
    let body = tokio::task::spawn_blocking(move || common::http_get(port, "/metrics"))
        .await
        .expect("join");
    let healthz = tokio::task::spawn_blocking(move || common::http_get(port, "/healthz"))
        .await
        .expect("join");
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(10)), Some(0), "{}", d.log());
    let runs = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs WHERE job = 'tick' AND status = 'success'",
    )
    .await;
    assert!(runs >= 2, "expected a run per second, got {runs}: {}", d.log());
    let health_rows = count(&db, "SELECT count(*) FROM dbtool.job_runs WHERE job = 'health'").await;
    assert_eq!(health_rows, 0, "a read-only health job wrote to dbtool.job_runs");
    // Each run is keyed by its cron time: whole seconds, consecutive, started at or after it and
    // in schedule order. How late a run starts depends on the machine's load, so it is not asserted.
    let bad = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs WHERE date_trunc('second', scheduled_at) <> scheduled_at \
         OR started_at < scheduled_at",
    )
    .await;
    assert_eq!(bad, 0, "runs not at their scheduled seconds");
    let out_of_order = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs a JOIN dbtool.job_runs b \
         ON a.scheduled_at < b.scheduled_at AND a.started_at > b.started_at",
    )
    .await;
    assert_eq!(out_of_order, 0, "runs started out of schedule order");
    let span = count(
        &db,
        "SELECT (extract(epoch FROM max(scheduled_at) - min(scheduled_at)))::bigint + 1 - count(*) FROM dbtool.job_runs",
    )
    .await;
    assert_eq!(span, 0, "a scheduled second was skipped");
    let health = std::fs::read_to_string(&out).expect("health output written");
    assert!(health.contains("dbtool_up{target=\"main\"} 1"), "{health}");
    let body = body.expect("/metrics answered");
    for family in [
        "dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}",
        "dbtool_job_last_success_timestamp_seconds{target=\"main\",job=\"health\"}",
        "dbtool_job_next_run_timestamp_seconds{target=\"main\",job=\"health\"}",
        "dbtool_job_running{target=\"main\",job=\"health\"}",
        "dbtool_up{target=\"main\"} 1",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(body.contains(family), "{family} missing from /metrics:\n{body}");
    }
    common::promtool_check_metrics(&body).expect("promtool accepts /metrics");
    assert!(healthz.is_some_and(|h| h.contains("ok")));
    assert!(d.log().contains("job finished"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_job_is_skipped_not_overlapped() {
    let db = fresh_db("sched_overlap").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs =
        "[[jobs]]\nname = \"slow\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 2.2\ncatch_up = false\n";
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), jobs), &[]);
    // Until a run finished and two seconds fell inside a run, however slowly the runs go.
    let success = "SELECT count(*) FROM dbtool.job_runs WHERE status = 'success'";
    wait_for_count(&db, &d, success, |n| n >= 1, 60, "no run finished").await;
    let series = "dbtool_job_runs_total{target=\"main\",job=\"slow\",result=\"skipped_overlap\"}";
    wait_for_metric(&d, series, |n| n >= 2.0, 60).await;
    let overlapping = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs a JOIN dbtool.job_runs b ON a.id < b.id \
         AND tstzrange(a.started_at, coalesce(a.finished_at, 'infinity')) && tstzrange(b.started_at, coalesce(b.finished_at, 'infinity'))",
    )
    .await;
    assert_eq!(overlapping, 0, "two runs overlapped: {}", d.log());
}

fn pid_alive(pid: &str) -> bool {
    // A reaped child has no /proc entry; a zombie would still show, so read its state too.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_cancels_a_stuck_job_and_kills_its_child() {
    let db = fresh_db("sched_timeout").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("child.pid");
    let jobs = format!(
        "[[jobs]]\nname = \"stuck\"\nkind = \"sleep\"\nschedule = \"*/10 * * * * *\"\nseconds = 300\ntimeout = \"1s\"\n\
         pid_file = \"{}\"\n",
        pid_file.display()
    );
    // The first run starts at the next multiple of 10 s, or at once as a catch-up: claim it by
    // hand-inserting an old history row so the daemon sees a missed time.
    db.client()
        .await
        .batch_execute(
            "INSERT INTO dbtool.job_runs (job, kind, scheduled_at, status, finished_at) \
             VALUES ('stuck', 'sleep', now() - interval '1 hour', 'success', now() - interval '1 hour')",
        )
        .await
        .expect("seed history");
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), &jobs), &[]);
    wait_for_count(
        &db,
        &d,
        "SELECT count(*) FROM dbtool.job_runs WHERE status = 'timeout'",
        |n| n > 0,
        8,
        "no timed-out run",
    )
    .await;
    // The first run's child (a later run may have started another by now).
    let pids = std::fs::read_to_string(&pid_file).expect("pid file");
    let pid = pids.lines().next().unwrap_or_default();
    assert!(!pid_alive(pid), "the child {pid} survived the timeout");
    let msg = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs WHERE status = 'timeout' AND message LIKE 'timed out after 1s%'",
    )
    .await;
    assert!(msg >= 1);
    wait_for_metric(
        &d,
        "dbtool_job_runs_total{target=\"main\",job=\"stuck\",result=\"timeout\"}",
        |n| n >= 1.0,
        10,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_running_job_finish_then_exits() {
    let db = fresh_db("sched_term").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs =
        "[[jobs]]\nname = \"work\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 2\ncatch_up = false\n";
    let mut d = Daemon::start(dir.path(), "d", &config(&db.dsn(), jobs), &["--grace-period", "30s"]);
    wait_for_count(
        &db,
        &d,
        "SELECT count(*) FROM dbtool.job_runs WHERE finished_at IS NULL",
        |n| n > 0,
        5,
        "never started",
    )
    .await;
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(10)), Some(0), "{}", d.log());
    let rows = count(&db, "SELECT count(*) FROM dbtool.job_runs").await;
    let ok = count(&db, "SELECT count(*) FROM dbtool.job_runs WHERE status = 'success'").await;
    assert_eq!(
        (rows, ok),
        (1, 1),
        "the running job must finish and no new one start: {}",
        d.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_after_the_grace_period() {
    let db = fresh_db("sched_grace").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("child.pid");
    let jobs = format!(
        "[[jobs]]\nname = \"long\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 300\ncatch_up = false\npid_file = \"{}\"\n",
        pid_file.display()
    );
    let mut d = Daemon::start(dir.path(), "d", &config(&db.dsn(), &jobs), &["--grace-period", "500ms"]);
    let until = Instant::now() + Duration::from_secs(5);
    while !pid_file.exists() {
        assert!(Instant::now() < until, "never started: {}", d.log());
        sleep(0.1).await;
    }
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(10)), Some(0), "{}", d.log());
    let pids = std::fs::read_to_string(&pid_file).expect("pid file");
    for pid in pids.lines() {
        assert!(!pid_alive(pid), "child {pid} outlived the daemon");
    }
    let failed = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs WHERE status = 'cancelled' AND message LIKE '%cancelled%'",
    )
    .await;
    assert_eq!(failed, 1, "{}", d.log());
    assert!(d.log().contains("grace period over"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_fails_runs_but_not_the_daemon() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = common::fresh_db_on(&cluster, "sched_restart").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("health.prom");
    let jobs = format!(
        "[[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"\ncatch_up = false\n\
         checks = [\"connections\"]\noutput = \"{}\"\n",
        out.display()
    );
    let mut d = Daemon::start(dir.path(), "d", &config(&db.dsn(), &jobs), &[]);
    wait_for_metric(
        &d,
        "dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}",
        |n| n >= 1.0,
        30,
    )
    .await;
    cluster.stop().expect("stop the server");
    // The health output says the server is down instead of keeping the last good report.
    let until = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&out).is_ok_and(|t| t.contains("dbtool_up{target=\"main\"} 0")) {
        assert!(d.alive(), "the daemon died with the database: {}", d.log());
        assert!(Instant::now() < until, "no down report: {}", d.log());
        sleep(0.1).await;
    }
    wait_for_metric(
        &d,
        "dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"failure\"}",
        |n| n >= 1.0,
        30,
    )
    .await;
    assert!(d.alive(), "the daemon died with the database: {}", d.log());
    common::start_again(&cluster);
    let before = d.metric("dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}");
    wait_for_metric(
        &d,
        "dbtool_job_runs_total{target=\"main\",job=\"health\",result=\"success\"}",
        |n| n > before,
        30,
    )
    .await;
    assert!(d.alive(), "{}", d.log());
    let until = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&out).is_ok_and(|t| t.contains("dbtool_up{target=\"main\"} 1")) {
        assert!(Instant::now() < until, "no up report after the restart: {}", d.log());
        sleep(0.1).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configs_are_refused_with_lines_and_a_bad_reload_keeps_the_old_one() {
    let db = fresh_db("sched_badcfg").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = config(
        &db.dsn(),
        "[[jobs]]\nname = \"a\"\nkind = \"helth\"\nschedule = \"* * * * *\"\n\n\
         [[jobs]]\nname = \"b\"\nkind = \"health\"\nschedule = \"61 * * * *\"\ntarget = \"nowhere\"\nbogus = 1\n\n\
         [[jobs]]\nname = \"c\"\nkind = \"backup\"\n",
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &bad).expect("write");
    let out = dbtool()
        .arg("config")
        .arg("check")
        .arg(&path)
        .output()
        .expect("config check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        ":7:8: job 'a': unknown kind 'helth'",
        ":13:12: job 'b': schedule: '61 * * * *': the minute field '61'",
        ":14:10: job 'b': target 'nowhere'",
        ":15:9: job 'b': unknown key 'bogus'",
        ":17:1: job 'c': missing key 'schedule'",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let out = dbtool()
        .arg("--config")
        .arg(&path)
        .arg("schedule")
        .output()
        .expect("schedule");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(":7:8: job 'a'") && err.contains(":17:1: job 'c'"),
        "the daemon names every problem: {err}"
    );

    let good = config(
        &db.dsn(),
        "[[jobs]]\nname = \"tick\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 0\ncatch_up = false\n",
    );
    let mut d = Daemon::start(dir.path(), "live", &good, &[]);
    let ticks = "SELECT count(*) FROM dbtool.job_runs WHERE job = 'tick'";
    wait_for_count(&db, &d, ticks, |n| n >= 1, 30, "the good configuration never ran").await;
    std::fs::write(dir.path().join("live.toml"), &bad).expect("break the config");
    d.signal("HUP");
    wait_for_log(&d, "reload refused", 30).await;
    assert!(d.alive(), "{}", d.log());
    let before = count(&db, ticks).await;
    wait_for_count(
        &db,
        &d,
        ticks,
        |n| n > before,
        30,
        "the old configuration stopped running",
    )
    .await;
    // A good reload replaces the jobs.
    let renamed = good.replace("\"tick\"", "\"tock\"");
    std::fs::write(dir.path().join("live.toml"), renamed).expect("fix the config");
    d.signal("HUP");
    let tock = "SELECT count(*) FROM dbtool.job_runs WHERE job = 'tock'";
    wait_for_count(&db, &d, tock, |n| n >= 1, 30, "the reloaded job never ran").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_run_each_scheduled_time_exactly_once() {
    let db = fresh_db("sched_two").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    // A 50 ms job: the replica that loses the race must not run it again a moment later.
    let jobs = "[[jobs]]\nname = \"quick\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 0.05\ncatch_up = false\n\n\
                [[jobs]]\nname = \"health\"\nkind = \"health\"\nschedule = \"* * * * * *\"\ncatch_up = false\nchecks = [\"connections\"]\n";
    let cfg = config(&db.dsn(), jobs);
    let mut a = Daemon::start(dir.path(), "a", &cfg, &[]);
    let b = Daemon::start(dir.path(), "b", &cfg, &[]);
    let quick = "SELECT count(*) FROM dbtool.job_runs WHERE job = 'quick'";
    wait_for_count(&db, &a, quick, |n| n >= 3, 60, "fewer than 3 runs").await;
    let series = "dbtool_job_runs_total{target=\"main\",job=\"quick\",result=\"skipped_locked\"}";
    let until = Instant::now() + Duration::from_secs(60);
    while a.metric(series) + b.metric(series) < 2.0 {
        assert!(
            Instant::now() < until,
            "the losing replica should count skipped_locked: {}\n{}",
            a.log(),
            b.log()
        );
        sleep(0.1).await;
    }
    let dupes = count(
        &db,
        "SELECT count(*) FROM (SELECT job, scheduled_at FROM dbtool.job_runs GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dupes, 0);
    // Seconds covered by both replicas ran once each; now kill one, the other carries on.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let killed = db
        .client()
        .await
        .query_one("SELECT now()::text", &[])
        .await
        .expect("now")
        .get::<_, String>(0);
    let after = format!(
        "SELECT count(DISTINCT scheduled_at) FROM dbtool.job_runs WHERE job = 'quick' AND scheduled_at > '{killed}'"
    );
    wait_for_count(&db, &b, &after, |n| n >= 2, 60, "the surviving replica stopped").await;
    let dupes = count(
        &db,
        "SELECT count(*) FROM (SELECT job, scheduled_at FROM dbtool.job_runs GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dupes, 0);
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_catch_up_run_after_downtime_and_none_when_disabled() {
    let db = fresh_db("sched_catchup").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    // Hourly jobs whose history says they last ran three hours before the current hour: the
    // times since were missed. Expectations come from the hours recorded around the daemon's
    // start, not from now(): a run that crosses the top of an hour sees two current hours.
    let seeded = "SELECT date_trunc('hour', now()) - interval '3 hours'";
    db.client()
        .await
        .batch_execute(&format!(
            "INSERT INTO dbtool.job_runs (job, kind, scheduled_at, status) VALUES \
             ('hourly', 'sleep', ({seeded}), 'success'), ('hourly-nocatch', 'sleep', ({seeded}), 'success')"
        ))
        .await
        .expect("seed");
    let hour = |db: &TestDb| {
        let c = db.dsn();
        async move {
            common::connect(&c)
                .await
                .query_one("SELECT date_trunc('hour', now())::text", &[])
                .await
                .expect("hour")
                .get::<_, String>(0)
        }
    };
    let first_hour = hour(&db).await;
    let jobs = "[[jobs]]\nname = \"hourly\"\nkind = \"sleep\"\nschedule = \"@hourly\"\nseconds = 0\n\n\
                [[jobs]]\nname = \"hourly-nocatch\"\nkind = \"sleep\"\nschedule = \"@hourly\"\nseconds = 0\ncatch_up = false\n";
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), jobs), &[]);
    let caught_up = "SELECT count(*) FROM dbtool.job_runs WHERE job = 'hourly' AND finished_at IS NOT NULL";
    wait_for_count(&db, &d, caught_up, |n| n >= 1, 30, "no catch-up run").await;
    let last_hour = hour(&db).await;
    // Runs other than the seeded one: none for the hours between (no storm of replays), and
    // the one catch-up for the latest missed time, the hour the daemon started in.
    let runs = |job: &str, cond: &str| {
        format!("SELECT count(*) FROM dbtool.job_runs WHERE job = '{job}' AND scheduled_at > ({seeded}) AND {cond}")
    };
    let replays = count(&db, &runs("hourly", &format!("scheduled_at < '{first_hour}'"))).await;
    assert_eq!(replays, 0, "missed times before the latest were replayed: {}", d.log());
    let window = format!("scheduled_at BETWEEN '{first_hour}' AND '{last_hour}'");
    let caught = count(&db, &runs("hourly", &window)).await;
    if first_hour == last_hour {
        assert_eq!(
            caught,
            1,
            "exactly one catch-up run, for the latest missed time: {}",
            d.log()
        );
    } else {
        // The hour turned while the daemon started: the catch-up was for one of the two hours
        // and the new hour may have run on schedule, each once.
        assert!((1..=2).contains(&caught), "{caught} runs across the hour: {}", d.log());
    }
    let nocatch = count(&db, &runs("hourly-nocatch", &format!("scheduled_at < '{last_hour}'"))).await;
    assert_eq!(nocatch, 0, "catch_up = false still caught up: {}", d.log());
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_example_config_parses_and_lists_every_job_kind() {
    let example = repo("deploy/dbtool.example.toml");
    let out = dbtool()
        .arg("config")
        .arg("check")
        .arg(&example)
        .output()
        .expect("config check");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dbtool()
        .arg("--config")
        .arg(&example)
        .args(["schedule", "--list"])
        .output()
        .expect("--list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for kind in ["(health,", "(pool-advise,", "(backup,", "(archive,"] {
        assert!(list.contains(kind), "the example has no {kind} job:\n{list}");
    }
    // Five upcoming times per job, in the configured timezone.
    assert_eq!(
        list.matches(" CET\n").count() + list.matches(" CEST\n").count(),
        20,
        "{list}"
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let tool = Path::new("/usr/bin/systemd-analyze");
    assert!(
        tool.exists(),
        "systemd-analyze is missing: apt-get install systemd (scripts/test installs it)"
    );
    let unit = std::fs::read_to_string(repo("deploy/systemd/dbtool-schedule.service")).expect("unit file");
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "reload must send SIGHUP"
    );
    // verify checks that ExecStart's binary exists: point it at the one under test.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dbtool-schedule.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/dbtool", env!("CARGO_BIN_EXE_dbtool")),
    )
    .expect("write unit");
    let out = std::process::Command::new(tool)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("dbtool-schedule.service:"),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn the_kubernetes_cronjob_forbids_concurrent_runs() {
    let text = std::fs::read_to_string(repo("deploy/kubernetes/cronjob.yaml")).expect("cronjob.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert_eq!(doc["kind"].as_str(), Some("CronJob"));
    assert_eq!(doc["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(doc["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let args = &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_sequence().is_some_and(|a| !a.is_empty()),
        "the container runs a dbtool command"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_job_moves_old_rows_once_and_records_the_count() {
    let db = fresh_db("sched_archive").await;
    migrate(&db);
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE posts (id text PRIMARY KEY, create_at bigint NOT NULL, message text); \
             INSERT INTO posts SELECT 'old' || g, (extract(epoch FROM now() - interval '3 years') * 1000)::bigint, 'x' \
               FROM generate_series(1, 250) g; \
             INSERT INTO posts SELECT 'new' || g, (extract(epoch FROM now()) * 1000)::bigint, 'y' FROM generate_series(1, 40) g;",
        )
        .await
        .expect("posts");
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = "[[jobs]]\nname = \"archive-posts\"\nkind = \"archive\"\nschedule = \"* * * * * *\"\ncatch_up = false\n\
                table = \"public.posts\"\ncolumn = \"create_at\"\ncolumn_type = \"epoch-ms\"\nolder_than = \"2y\"\nbatch_size = 100\n";
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), jobs), &[]);
    wait_for_count(
        &db,
        &d,
        "SELECT count(*) FROM dbtool.job_runs WHERE status = 'success'",
        |n| n >= 2,
        10,
        "no archive runs",
    )
    .await;
    assert_eq!(count(&db, "SELECT count(*) FROM posts").await, 40);
    assert_eq!(count(&db, "SELECT count(*) FROM archive.posts").await, 250);
    // One row per run, the scheduler's own (the job does not record a second one), with the count.
    let moved = count(
        &db,
        "SELECT coalesce(sum(rows), 0)::bigint FROM dbtool.job_runs WHERE job = 'archive-posts'",
    )
    .await;
    assert_eq!(moved, 250);
    let unscheduled = count(&db, "SELECT count(*) FROM dbtool.job_runs WHERE scheduled_at IS NULL").await;
    assert_eq!(unscheduled, 0);
    assert!(d.log().contains("rows=250"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_job_writes_a_verified_backup_and_records_its_bytes() {
    // The major under test, with client tools that can dump it (tests/common/backup.rs).
    let db = common::fresh_db_on(common::backup::backup_cluster(), "sched_backup").await;
    migrate(&db);
    db.client()
        .await
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        .await
        .expect("data");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("backups");
    // Each job run notifies [notify] (docs/src/notifications.md): a real receiver records it.
    let rx = common::receiver::Receiver::start(&[common::receiver::Answer::Status(200)]);
    let jobs = format!(
        "[[jobs]]\nname = \"nightly\"\nkind = \"backup\"\nschedule = \"*/2 * * * * *\"\ncatch_up = false\ntarget = \"main\"\n\
         dest = \"{}\"\nkeep_last = 1\n\n[notify]\non_success = [\"{}\"]\n",
        dest.display(),
        rx.url("/hooks/nightly")
    );
    let client = Some(common::backup::client());
    let d = Daemon::spawn(dir.path(), "d", &config(&db.dsn(), &jobs), &[], 0, client);
    wait_for_count(
        &db,
        &d,
        "SELECT count(*) FROM dbtool.job_runs WHERE job = 'nightly' AND finished_at IS NOT NULL",
        |n| n > 0,
        20,
        "no backup run finished",
    )
    .await;
    let ok = count(
        &db,
        "SELECT count(*) FROM dbtool.job_runs WHERE job = 'nightly' AND status = 'success' AND bytes > 0",
    )
    .await;
    assert!(ok >= 1, "{}", d.log());
    let out = dbtool()
        .args(["backups", "list", "--json", "--dest"])
        .arg(&dest)
        .output()
        .expect("backups list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains(db.name()),
        "the scheduled backup is listed: {list} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = rx.wait_for(1, Duration::from_secs(20));
    let doc = sent[0].json();
    assert_eq!(
        (doc["job"].as_str(), doc["kind"].as_str()),
        (Some("nightly"), Some("backup")),
        "{doc}"
    );
    assert_eq!(doc["status"], "success", "{doc}");
    assert_eq!(doc["target"], "main", "{doc}");
    assert!(doc["bytes"].as_u64().is_some_and(|b| b > 0), "{doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_whose_clocks_differ_still_run_each_time_once() {
    let db = fresh_db("sched_skew").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    // A 20 ms job on two hosts, one clock 1.5 s behind: when the late replica reaches second T,
    // the other finished T's run long ago. Only the (job, scheduled_at) row can stop a rerun.
    let jobs =
        "[[jobs]]\nname = \"quick\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 0.02\ncatch_up = false\n";
    let cfg = config(&db.dsn(), jobs);
    let ahead = Daemon::start(dir.path(), "ahead", &cfg, &[]);
    let behind = Daemon::start_skewed(dir.path(), "behind", &cfg, &[], -1500);
    let series = "dbtool_job_runs_total{target=\"main\",job=\"quick\",result=\"skipped_locked\"}";
    wait_for_metric(&behind, series, |n| n >= 2.0, 60).await;
    wait_for_count(
        &db,
        &ahead,
        "SELECT count(*) FROM dbtool.job_runs",
        |n| n >= 3,
        60,
        "fewer than 3 runs",
    )
    .await;
    let dupes = count(
        &db,
        "SELECT count(*) FROM (SELECT scheduled_at FROM dbtool.job_runs GROUP BY 1 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(dupes, 0, "{}\n{}", ahead.log(), behind.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_advise_job_samples_and_writes_its_advice() {
    let db = fresh_db("sched_pool").await;
    migrate(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("pool.prom");
    let jobs = format!(
        "[[jobs]]\nname = \"pools\"\nkind = \"pool-advise\"\nschedule = \"*/2 * * * * *\"\ncatch_up = false\n\
         sample = \"1s\"\ndb_cores = 2\napp_instances = 3\napp_max_open = 20\noutput = \"{}\"\n",
        out.display()
    );
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), &jobs), &[]);
    // Read-only: counted in the metrics, no claim and no dbtool.job_runs row.
    let until = Instant::now() + Duration::from_secs(15);
    let finished = |d: &Daemon| {
        ["success", "failure", "timeout"]
            .iter()
            .map(|r| {
                d.metric(&format!(
                    "dbtool_job_runs_total{{target=\"main\",job=\"pools\",result=\"{r}\"}}"
                ))
            })
            .sum::<f64>()
    };
    while finished(&d) < 1.0 {
        assert!(Instant::now() < until, "no pool-advise run finished: {}", d.log());
        sleep(0.1).await;
    }
    let ok = d.metric("dbtool_job_runs_total{target=\"main\",job=\"pools\",result=\"success\"}");
    assert!(ok >= 1.0, "{}", d.log());
    let rows = count(&db, "SELECT count(*) FROM dbtool.job_runs WHERE job = 'pools'").await;
    assert_eq!(rows, 0, "a read-only pool-advise job wrote to dbtool.job_runs");
    let text = std::fs::read_to_string(&out).expect("advice written");
    common::promtool_check_metrics(&text).expect("promtool accepts the advice");
    assert!(text.contains("target=\"main\""), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn old_history_is_pruned_after_history_keep() {
    let db = fresh_db("sched_prune").await;
    migrate(&db);
    db.client()
        .await
        .batch_execute(
            "INSERT INTO dbtool.job_runs (job, kind, scheduled_at, started_at, finished_at, status) VALUES \
             ('old', 'sleep', now() - interval '3 days', now() - interval '3 days', now() - interval '3 days', 'success'), \
             ('recent', 'sleep', now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', 'success')",
        )
        .await
        .expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = "[schedule]\nhistory_keep = \"2d\"\n\n[[jobs]]\nname = \"tick\"\nkind = \"sleep\"\nschedule = \"* * * * * *\"\nseconds = 0\ncatch_up = false\n";
    let d = Daemon::start(dir.path(), "d", &config(&db.dsn(), jobs), &[]);
    wait_for_count(
        &db,
        &d,
        "SELECT count(*) FROM dbtool.job_runs WHERE job = 'old'",
        |n| n == 0,
        8,
        "old history was not pruned",
    )
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM dbtool.job_runs WHERE job = 'recent'").await,
        1
    );
}

//! The metrics state of a `--dest s3://…` destination lives in the bucket, at
//! `PREFIX/.dbtool-backup-state.json`, so the failure and notification counters grow from one
//! run to the next as they do beside a backup directory; and that object is never a backup:
//! not listed, not verified, not pruned, not cleaned as an unfinished upload. Against moto's
//! S3 server with signature checking (`tests/common/s3.rs`) and a real PostgreSQL.
//!
//! Regression: the state used to live in the run's temporary directory, so
//! `dbtool_backup_failures_total` never exceeded 1 and `dbtool_notify_failures_total` reset.

mod common;

use common::backup::{assert_exit, backup_cluster, exec, seed, text};
use common::fresh_db_on;
use common::receiver::{Answer, Receiver};
use common::s3::{ids, S3};

const STATE: &str = "state/app/.dbtool-backup-state.json";

/// The value of the series of `name` whose labels contain `label`.
fn value(prom: &str, name: &str, label: &str) -> f64 {
    prom.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} with {label} missing:\n{prom}"))
}

#[tokio::test]
async fn an_s3_destination_keeps_its_counters_across_runs_in_the_bucket() {
    let s3 = S3::start();
    let db = fresh_db_on(backup_cluster(), "s3_state").await;
    seed(&db, 500).await;
    // Backed up before it exists: two runs fail as a cron job's would, then it is created.
    let later = format!("{}_later", db.name());
    let hook = Receiver::start(&[Answer::Status(500)]);
    let tmp = tempfile::tempdir().expect("tmp");
    let metrics = tmp.path().join("backup.prom");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let url = s3.url("state/app");
    // A garbled state object is no reason to fail: the first run starts from 0 and says so.
    s3.put(STATE, b"{not json");
    let backup = |extra: &[&str]| {
        let mut cmd = s3.dbtool(&work);
        cmd.args(["backup", "--dsn", &db.dsn(), "-d", &later, "--dest", &url, "--metrics"])
            .arg(&metrics)
            .args(["--notify", &hook.url("/hook"), "--notify-retries", "0"])
            .args(extra);
        s3.run_quiet(&mut cmd, &[])
    };
    let of_db = format!("database=\"{later}\"");
    let endpoint = format!("127.0.0.1:{}", hook.port);
    let (mut first_log, mut proms) = (String::new(), Vec::new());
    for n in 1..=2 {
        let out = backup(&[]);
        assert_exit(&out, 2);
        if n == 1 {
            first_log = text(&out.stderr);
        }
        let prom = std::fs::read_to_string(&metrics).expect("metrics file");
        assert_eq!(
            value(&prom, "dbtool_backup_failures_total", &of_db),
            f64::from(n),
            "run {n}"
        );
        assert_eq!(value(&prom, "dbtool_backup_last_status", &of_db), 0.0, "run {n}");
        proms.push(prom);
    }
    for (n, prom) in (1..).zip(&proms) {
        assert_eq!(
            value(prom, "dbtool_notify_failures_total", &endpoint),
            f64::from(n),
            "run {n}"
        );
    }
    assert!(first_log.contains("the backup state is not readable"), "{first_log}");
    exec(&db.dsn(), &format!("CREATE DATABASE \"{later}\"")).await;
    let out = backup(&[]);
    assert_exit(&out, 0);
    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    assert_eq!(value(&prom, "dbtool_backup_failures_total", &of_db), 2.0, "{prom}");
    assert_eq!(value(&prom, "dbtool_backup_last_status", &of_db), 1.0, "{prom}");
    assert_eq!(value(&prom, "dbtool_backups_verified", &of_db), 1.0, "{prom}");
    assert!(value(&prom, "dbtool_backup_last_upload_bytes", &of_db) > 0.0, "{prom}");
    // The success is notified too, and refused: counted after the run's own attempt.
    assert_eq!(value(&prom, "dbtool_notify_failures_total", &endpoint), 3.0, "{prom}");
    assert_eq!(hook.requests().len(), 3, "one attempt per run");

    let state: serde_json::Value = serde_json::from_slice(&s3.get(STATE)).expect("state object");
    assert_eq!(state["databases"][&later]["failures_total"], 2, "{state}");
    assert_eq!(state["databases"][&later]["last_ok"], true, "{state}");
    let only = ids(&s3.listed(&work, &url));
    assert_eq!(only.len(), 1, "the state object is not a backup: {only:?}");
    let out = s3.run_quiet(s3.dbtool(&work).args(["backups", "verify", "--dest", &url]), &[]);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).lines().count(), 1, "{}", text(&out.stdout));

    // A second backup, then retention that deletes everything it may (the newest stays).
    assert_exit(&backup(&["--no-prune"]), 0);
    assert_eq!(ids(&s3.listed(&work, &url)).len(), 2);
    let out = s3.run_quiet(
        s3.dbtool(&work).args(["backups", "prune", "--dest", &url]).args([
            "--keep-last",
            "0",
            "--keep-daily",
            "0",
            "--keep-weekly",
            "0",
            "--keep-monthly",
            "0",
        ]),
        &[],
    );
    assert_exit(&out, 0);
    let left = ids(&s3.listed(&work, &url));
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], only[0], "the newest is kept");
    let keys = s3.keys("state/app/");
    assert!(
        keys.iter().any(|k| k == STATE),
        "prune deleted the state object: {keys:?}"
    );
    assert!(
        !text(&out.stdout).contains(".dbtool-backup-state"),
        "{}",
        text(&out.stdout)
    );
    let state: serde_json::Value = serde_json::from_slice(&s3.get(STATE)).expect("state object");
    assert_eq!(state["databases"][&later]["failures_total"], 2, "{state}");
    exec(&db.dsn(), &format!("DROP DATABASE \"{later}\"")).await;
}

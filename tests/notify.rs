//! `--notify` and `[notify]`: backup and archive runs POST their result to a real HTTP
//! receiver the test starts (tests/common/receiver.rs), which can fail, retry and hang.

mod common;

use std::path::Path;
use std::time::Duration;

use common::backup::{assert_exit, backup_cluster, dbt, run, text};
use common::fresh_db_on;
use common::receiver::{Answer, Receiver};

/// A DSN nobody answers, with a password that must never reach a notification.
const DEAD: &str = "host=/nonexistent/dbtool-notify port=5999 user=app password=s3cret-pw dbname=chat";

fn config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("dbtool.toml");
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[test]
fn a_failed_backup_posts_on_failure_after_a_retry_and_keeps_its_exit_code() {
    // 500 first: the notification is retried, and the second attempt lands.
    let rx = Receiver::start(&[Answer::Status(500), Answer::Status(200)]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cfg = config(
        dir.path(),
        &format!(
            "[notify]\non_success = [\"{}\"]\non_failure = [\"{}\"]\ntimeout = \"5s\"\nretries = 2\n",
            rx.url("/ok/secret-token"),
            rx.url("/failed/secret-token")
        ),
    );
    let out = run(dbt()
        .arg("backup")
        .arg("--config")
        .arg(&cfg)
        .args(["--dsn", DEAD, "--dest"])
        .arg(dir.path().join("b")));
    assert_exit(&out, 2);
    let got = rx.wait_for(2, Duration::from_secs(30));
    assert_eq!(got.len(), 2, "{got:?}");
    for r in &got {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/failed/secret-token"));
        assert!(
            !r.body.contains("s3cret-pw"),
            "a password in the notification: {}",
            r.body
        );
    }
    let doc = got[1].json();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["status"], "failure");
    assert_eq!(doc["kind"], "backup");
    assert_eq!(doc["database"], "chat");
    assert!(doc["error"].as_str().is_some_and(|e| e.contains("connect")), "{doc}");
    assert!(doc["text"].as_str().is_some_and(|t| t.contains("FAILED")), "{doc}");
    // The retry is logged without the URL's secret path.
    let err = text(&out.stderr);
    assert!(!err.contains("secret-token"), "{err}");
}

#[tokio::test]
async fn a_backup_posts_its_result_and_a_hanging_receiver_never_fails_it() {
    let c = backup_cluster();
    let db = fresh_db_on(c, "notify backup").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = Receiver::start(&[Answer::Status(200)]);
    let hang = Receiver::start(&[Answer::Never]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let metrics = dir.path().join("backup.prom");
    let out = run(dbt()
        .args(["backup", "--dsn", &db.dsn(), "--dest"])
        .arg(dir.path().join("b"))
        .arg("--metrics")
        .arg(&metrics)
        .args([
            "--notify",
            &ok.url("/hook/T0/B0/xyz"),
            "--notify",
            &hang.url("/hc/abc-uuid"),
        ])
        .args(["--notify-timeout", "1s", "--notify-retries", "1"]));
    // The receiver that never answers costs two bounded attempts, not the backup.
    assert_exit(&out, 0);
    let got = ok.wait_for(1, Duration::from_secs(10));
    let doc = got[0].json();
    assert_eq!(doc["status"], "success", "{doc}");
    assert_eq!(doc["database"], db.name());
    assert!(doc["bytes"].as_u64().is_some_and(|b| b > 0), "{doc}");
    assert!(
        doc["detail"].as_str().is_some_and(|d| d.starts_with("notify_backup")),
        "{doc}"
    );
    assert!(doc["text"].as_str().is_some_and(|t| t.contains("succeeded")), "{doc}");
    assert_eq!(hang.requests().len(), 2, "one attempt and one retry");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("notification not delivered"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&format!("http://127.0.0.1:{}/…", hang.port)), "{err}");
    assert!(!err.contains("abc-uuid"), "{err}");
    let prom = std::fs::read_to_string(&metrics).unwrap_or_default();
    let series = format!(
        "dbtool_notify_failures_total{{target=\"default\",endpoint=\"http://127.0.0.1:{}/…\"}} 1",
        hang.port
    );
    assert!(
        prom.lines().any(|l| l.ends_with(" 1")
            && l.starts_with("dbtool_notify_failures_total")
            && l.contains(&format!("127.0.0.1:{}", hang.port))),
        "{series}\n{prom}"
    );
    assert_eq!(common::promtool_check_metrics(&prom), Ok(()), "{prom}");
}

#[test]
fn healthchecks_urls_get_fail_and_a_bad_url_is_refused_up_front() {
    let rx = Receiver::start(&[Answer::Status(200)]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = run(dbt()
        .args(["backup", "--dsn", DEAD, "--dest"])
        .arg(dir.path().join("b"))
        .args(["--notify", &rx.url("/ping/abc-uuid"), "--notify-style", "healthchecks"]));
    assert_exit(&out, 2);
    let got = rx.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].path, "/ping/abc-uuid/fail");

    let out = run(dbt()
        .args(["backup", "--dsn", DEAD, "--dest"])
        .arg(dir.path().join("b"))
        .args(["--notify", "hooks.example.com/T0/secret"]));
    assert_exit(&out, 3);
    let err = text(&out.stderr);
    assert!(
        err.contains("not an http:// or https:// URL") && !err.contains("secret"),
        "{err}"
    );
}

#[tokio::test]
async fn an_archive_run_posts_the_rows_it_moved() {
    let db = common::fresh_db("notify_archive").await;
    let c = db.client().await;
    common::posts::create_posts(&c, "posts", 2_000).await;
    let old = common::posts::count_old(&c, "posts").await;
    let rx = Receiver::start(&[Answer::Status(200)]);
    let out = common::posts::archive(&db.dsn(), &["--notify", &rx.url("/hooks/archive")]);
    assert_eq!(out.status.code(), Some(0), "{}", common::posts::text(&out));
    let doc = rx.wait_for(1, Duration::from_secs(10))[0].json();
    assert_eq!(
        (doc["kind"].as_str(), doc["status"].as_str()),
        (Some("archive"), Some("success")),
        "{doc}"
    );
    assert_eq!(doc["rows"].as_i64(), Some(old), "{doc}");
    assert!(doc["bytes"].is_null(), "{doc}");
}

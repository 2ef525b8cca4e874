//! Item 5: a mistyped DSN never puts its password on the screen, in a log or in a label.
//! Through the binary (`health`, every format) and the scheduler's start and SIGHUP reload.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{dbtool, fresh_db_blocking};

const SECRET: &str = "SECRETpw";

/// DSNs whose password once reached an error or the `target` label.
fn mistyped() -> Vec<String> {
    [
        "postgresql:/u:SECRETpw@h/db",
        "jdbc:postgresql://u:SECRETpw@h/db",
        "postgres://u:57/SECRETpw@h/db",
        "postgres://u:SECRETpw@h:x/db",
        "postgres://u:SECR%zzETpw@h/db",
        "host=h password=SECRET pw",
        "host=h password='SECRETpw",
        "password=SECRETpw postgresql:/x",
    ]
    .map(String::from)
    .to_vec()
}

/// Some 4-character piece of the secret in `text`, if any: "not even partially".
fn leaked(text: &str) -> Option<&'static str> {
    (0..=SECRET.len() - 4)
        .map(|i| &SECRET[i..i + 4])
        .find(|w| text.contains(w))
}

#[test]
fn health_never_prints_a_mistyped_dsns_password() {
    for dsn in mistyped() {
        for format in ["table", "json", "prometheus", "nagios"] {
            let out = dbtool()
                .args(["health", "--format", format, "--dsn", &dsn])
                .output()
                .expect("run dbtool");
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(out.status.code(), Some(3), "{dsn}: {stdout}{stderr}");
            assert!(
                stderr.contains("--dsn number 1") && stderr.contains("at character"),
                "{dsn}: {stderr}"
            );
            for text in [&stdout, &stderr] {
                assert!(leaked(text).is_none(), "{dsn} ({format}): {text}");
            }
        }
    }
}

/// The scheduler resolves `[[targets]]` at start and on every SIGHUP; a refused reload is
/// logged with its reason, which must not carry the DSN.
#[test]
fn the_scheduler_never_logs_a_mistyped_dsns_password() {
    let db = fresh_db_blocking("secrets_sched");
    let dir = tempfile::tempdir().expect("tempdir");
    // A yearly job: the daemon runs, nothing fires during the test.
    let config = |dsn: &str| {
        let dsn = dsn.replace('\\', "\\\\").replace('"', "\\\"");
        format!(
            "[[targets]]\nname = \"main\"\ndsn = \"{dsn}\"\n\n[[jobs]]\nname = \"yearly\"\nkind = \"health\"\n\
             schedule = \"0 0 1 1 *\"\ncatch_up = false\n"
        )
    };
    for dsn in mistyped() {
        let path = dir.path().join("start.toml");
        std::fs::write(&path, config(&dsn)).expect("write config");
        let out = dbtool()
            .arg("--config")
            .arg(&path)
            .arg("schedule")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{dsn}: {err}");
        assert!(
            err.contains("[[targets]] 'main'") && leaked(&err).is_none(),
            "{dsn}: {err}"
        );
    }

    let path = dir.path().join("live.toml");
    std::fs::write(&path, config(&db.dsn())).expect("write config");
    let log_path = dir.path().join("live.log");
    let mut child = dbtool()
        .arg("--config")
        .arg(&path)
        .arg("schedule")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("start dbtool schedule");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let wait_for = |what: &str, n: usize| {
        let until = Instant::now() + Duration::from_secs(30);
        while log().matches(what).count() < n {
            assert!(Instant::now() < until, "no {what:?} in the log: {}", log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("scheduler started", 1);
    for (i, dsn) in mistyped().iter().enumerate() {
        std::fs::write(&path, config(dsn)).expect("break the config");
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(hup.success());
        wait_for("reload refused", i + 1);
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = log();
    assert!(text.contains("at character"), "the refusal says where: {text}");
    assert!(leaked(&text).is_none(), "{text}");
}

/// clap prints an `env` flag's current value in `--help`: DATABASE_URL and DBTOOL_PGBOUNCER
/// hold passwords.
#[test]
fn help_does_not_show_the_dsn_from_the_environment() {
    for command in ["health", "archive", "pool-advise", "migrate"] {
        let out = dbtool()
            .args([command, "--help"])
            .env("DATABASE_URL", "postgres://u:SECRETpw@h/db")
            .env("DBTOOL_PGBOUNCER", "postgres://u:SECRETpw@h:6432/pgbouncer")
            .output()
            .expect("run dbtool");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{command}: {text}");
        assert!(
            text.contains("DATABASE_URL") && leaked(&text).is_none(),
            "{command}: {text}"
        );
    }
}

/// Issue 13 items 5 and 7: the `target` label of archive's series, the history's target and
/// the JSON documents are built from parsed parts of the DSN, never its password (the suite's
/// cluster trusts local connections, so the password is sent to nobody).
#[tokio::test]
async fn labels_and_json_never_carry_the_password() {
    let db = common::fresh_db("secrets_labels").await;
    let dsn = format!("{} password={SECRET}", db.dsn());
    let run = |args: &[&str]| {
        let out = dbtool().args(args).output().expect("run dbtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        assert!(leaked(&text).is_none(), "{args:?}: {text}");
        text
    };
    common::posts::create_daily_posts(&db.client().await, 50).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("archive.prom");
    let m = metrics.display().to_string();
    let archived = run(&[
        "archive",
        "--dsn",
        &dsn,
        "--table",
        "posts",
        "--column",
        "create_at",
        "--older-than",
        "10d",
        "--metrics",
        &m,
        "--format",
        "json",
    ]);
    assert!(archived.contains("\"schema\""), "{archived}");
    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    assert!(prom.contains("dbtool_archive_status{target=\""), "{prom}");
    assert!(leaked(&prom).is_none(), "{prom}");
    run(&["migrate", "--status", "--dsn", &dsn, "--format", "json"]);
    let history = run(&["history", "--dsn", &dsn, "--format", "json"]);
    assert!(history.contains("\"kind\":\"archive\""), "{history}");
}

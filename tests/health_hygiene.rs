//! Server hygiene made for real on clusters of the test's own: a restart-only setting changed
//! with ALTER SYSTEM and reloaded is named as pending restart, and a data page corrupted on
//! disk under data checksums is a CRITICAL checksum failure, as a `pg_monitor` role sees them.

mod common;

use std::io::{Seek, SeekFrom, Write};

use common::{check_of, findings, fresh_db_on, health_report, metric, own_cluster, wait_until};
use tempcluster::ClusterOptions;

#[tokio::test]
async fn a_restart_only_setting_changed_and_reloaded_is_named_pending_restart() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = fresh_db_on(&cluster, "pending").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "CREATE ROLE dbtool_hygiene_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE dbtool_hygiene_plain LOGIN",
        )
        .await
        .expect("roles");
    let monitor = format!("{} user=dbtool_hygiene_monitor", db.dsn());
    let (code, report) = health_report(&monitor, &["--check", "hygiene"]).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (0, Some("OK")), "{h:#}");

    // max_connections takes effect only at a restart; the reload marks it pending.
    for sql in ["ALTER SYSTEM SET max_connections = 123", "SELECT pg_reload_conf()"] {
        admin.batch_execute(sql).await.expect(sql);
    }
    wait_until(
        &admin,
        "SELECT bool_or(pending_restart) FROM pg_settings WHERE name = 'max_connections'",
    )
    .await;
    let (code, report) = health_report(&monitor, &["--check", "hygiene"]).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (1, Some("WARNING")), "{h:#}");
    assert!(
        findings(h)
            .iter()
            .any(|(s, o, m)| s == "WARNING" && o == "settings" && m.contains("max_connections (running with")),
        "{h:#}"
    );
    assert_eq!(metric(h, "dbtool_settings_pending_restart", &[]), Some(1.0), "{h:#}");

    for sql in ["ALTER SYSTEM RESET max_connections", "SELECT pg_reload_conf()"] {
        admin.batch_execute(sql).await.expect(sql);
    }
    wait_until(
        &admin,
        "SELECT NOT bool_or(pending_restart) FROM pg_settings WHERE name = 'max_connections'",
    )
    .await;

    // Without pg_read_all_settings superuser-only settings are hidden: UNKNOWN naming the grant.
    let plain = format!("{} user=dbtool_hygiene_plain", db.dsn());
    let (code, report) = health_report(&plain, &["--check", "hygiene"]).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (3, Some("UNKNOWN")), "{h:#}");
    assert!(
        findings(h)
            .iter()
            .any(|(_, _, m)| m.contains("grant pg_monitor to dbtool_hygiene_plain")),
        "{h:#}"
    );
}

#[tokio::test]
async fn a_corrupt_page_is_a_critical_checksum_failure() {
    let cluster = own_cluster(ClusterOptions {
        initdb_args: vec!["--data-checksums".into()],
        ..Default::default()
    });
    let db = fresh_db_on(&cluster, "checksums").await;
    let admin = db.client().await;
    // Frozen and checkpointed: nothing rewrites the page (hint bits, recovery) after it is damaged.
    for sql in [
        "CREATE ROLE dbtool_checksum_monitor LOGIN IN ROLE pg_monitor",
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100) g",
        "VACUUM (FREEZE) t",
        "CHECKPOINT",
    ] {
        admin.batch_execute(sql).await.expect(sql);
    }
    let file: String = admin
        .query_one("SELECT pg_relation_filepath('t')", &[])
        .await
        .expect("path")
        .get(0);
    drop(admin);
    cluster.stop().expect("stop");
    let path = cluster.data_dir().join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open the table's file");
    f.seek(SeekFrom::Start(8000))
        .expect("seek into the first page's tuples");
    f.write_all(b"corrupt!").expect("damage the page");
    f.sync_all().expect("sync");
    drop(f);
    common::start_again(&cluster);

    let admin = db.client().await;
    let read = admin.batch_execute("SELECT count(*) FROM t").await;
    assert!(read.is_err(), "reading the damaged page must fail");
    wait_until(
        &admin,
        "SELECT checksum_failures > 0 FROM pg_stat_database WHERE datname = current_database()",
    )
    .await;
    let monitor = format!("{} user=dbtool_checksum_monitor", db.dsn());
    let (code, report) = health_report(&monitor, &["--check", "hygiene"]).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (2, Some("CRITICAL")), "{h:#}");
    let object = format!("database {}", db.name());
    assert!(
        findings(h)
            .iter()
            .any(|(s, o, m)| s == "CRITICAL" && o == &object && m.contains("checksum failure")),
        "{h:#}"
    );
    let n = metric(h, "dbtool_database_checksum_failures_total", &[("database", db.name())]);
    assert!(n.is_some_and(|n| n >= 1.0), "{h:#}");
}

/// Issue 16 item 5: with --state, the configured settings changed since the previous run are a
/// WARNING naming old and new values, once; a secret's value is neither shown nor stored.
#[tokio::test]
async fn settings_changed_since_the_previous_run_warn_once_without_showing_secrets() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = fresh_db_on(&cluster, "changed").await;
    let admin = db.client().await;
    admin
        .batch_execute("CREATE ROLE dbtool_settings_monitor LOGIN IN ROLE pg_monitor")
        .await
        .expect("role");
    let monitor = format!("{} user=dbtool_settings_monitor", db.dsn());
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let state_arg = state.display().to_string();
    let args = ["--check", "hygiene", "--state", &state_arg];

    // The first run has nothing to compare with.
    let (code, report) = health_report(&monitor, &args).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (0, Some("OK")), "{h:#}");
    assert_eq!(metric(h, "dbtool_settings_changed", &[]), None, "{h:#}");

    // primary_conninfo is reloadable since PostgreSQL 13 and may carry a password.
    for sql in [
        "ALTER SYSTEM SET work_mem = '7MB'",
        "ALTER SYSTEM SET primary_conninfo = 'host=nowhere password=hunter2-secret'",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.expect(sql);
    }
    wait_until(
        &admin,
        "SELECT setting = '7168' FROM pg_settings WHERE name = 'work_mem'",
    )
    .await;
    let (code, report) = health_report(&monitor, &args).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (1, Some("WARNING")), "{h:#}");
    let changed: Vec<_> = findings(h).into_iter().filter(|(_, o, _)| o == "settings").collect();
    assert_eq!(changed.len(), 1, "{h:#}");
    let message = &changed[0].2;
    assert!(
        message.starts_with("2 setting(s) changed since the previous run"),
        "{message}"
    );
    assert!(message.contains("work_mem (default) → 7168 kB"), "{message}");
    assert!(
        message.contains("primary_conninfo (default) → fingerprint "),
        "{message}"
    );
    assert_eq!(metric(h, "dbtool_settings_changed", &[]), Some(2.0), "{h:#}");
    let stored = std::fs::read_to_string(&state).expect("state file");
    assert!(stored.contains("\"work_mem\""), "{stored}");
    for text in [report.to_string(), stored] {
        assert!(!text.contains("hunter2"), "a secret setting's value leaked: {text}");
    }

    // A change is reported once: the next run compares with the new values.
    let (code, report) = health_report(&monitor, &args).await;
    let h = check_of(&report, "hygiene");
    assert_eq!((code, h["status"].as_str()), (0, Some("OK")), "{h:#}");
    assert_eq!(metric(h, "dbtool_settings_changed", &[]), Some(0.0), "{h:#}");
}

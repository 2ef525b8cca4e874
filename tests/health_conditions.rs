//! Checks against conditions made for real on a throwaway cluster, which fixture rows alone
//! cannot prove: a failing archive_command, a table with known bloat.

mod common;

use common::{check_of as check, findings, fresh_db, fresh_db_on, health_report, own_cluster, wait_until};
use tempcluster::ClusterOptions;

#[tokio::test]
async fn a_failing_archive_command_is_critical_and_named() {
    // `false` fails every attempt, as a full or unmounted archive would.
    let cluster = own_cluster(ClusterOptions {
        conf: vec!["archive_mode = on".into(), "archive_command = 'false'".into()],
        ..Default::default()
    });
    let db = fresh_db_on(&cluster, "archiver_fails").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g; SELECT pg_switch_wal()")
        .await
        .expect("write and switch");
    // The archiver retries a segment three times before it records the failure.
    wait_until(&c, "SELECT failed_count > 0 FROM pg_stat_archiver").await;
    let (code, report) = health_report(&db.dsn(), &["--check", "archiver"]).await;
    let a = check(&report, "archiver");
    assert_eq!((code, a["status"].as_str()), (2, Some("CRITICAL")), "{a}");
    let f = findings(a);
    assert!(
        f.iter().any(|(sev, object, msg)| sev == "CRITICAL"
            && object == "archiver"
            && msg.contains("archiving is failing")
            && msg.contains("archive_command")),
        "{f:?}"
    );
    let failing = common::metric(a, "dbtool_archiver_failing", &[]);
    assert_eq!(failing, Some(1.0), "{a}");
}

#[tokio::test]
async fn a_table_with_known_bloat_warns_and_a_dense_one_does_not() {
    let db = fresh_db("bloat").await;
    let c = db.client().await;
    // Two tables of the same ~8 MB; nine rows in ten deleted from one (no autovacuum to
    // clean up behind the test), then ANALYZE so the estimate sees the live rows.
    c.batch_execute(
        "CREATE TABLE bloated (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         CREATE TABLE dense (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false);
         INSERT INTO bloated SELECT g, md5(g::text) || md5(g::text) FROM generate_series(1, 80000) g;
         INSERT INTO dense SELECT g, md5(g::text) || md5(g::text) FROM generate_series(1, 80000) g;
         DELETE FROM bloated WHERE id % 10 <> 0;
         ANALYZE bloated; ANALYZE dense;",
    )
    .await
    .expect("tables");
    // Bloat warns above a share (50 %) and a size: 1 GiB by default, 1 MB here.
    let (code, report) = health_report(
        &db.dsn(),
        &[
            "--check",
            "bloat",
            "--database",
            db.name(),
            "--set",
            "bloat.warning_gib=0.001",
        ],
    )
    .await;
    let b = check(&report, "bloat");
    assert_eq!((code, b["status"].as_str()), (1, Some("WARNING")), "{b}");
    let f = findings(b);
    let table = format!("{}.public.bloated", db.name());
    let warned: Vec<&String> = f
        .iter()
        .filter(|(sev, _, _)| sev == "WARNING")
        .map(|(_, o, _)| o)
        .collect();
    // The table and its primary key index (nine in ten of its entries point at dead rows).
    let index = format!("{table}_pkey");
    assert_eq!(warned, [&table, &index], "only the bloated table warns: {f:?}");
    let (_, _, msg) = f
        .iter()
        .find(|(_, o, _)| o == &table)
        .expect("the bloated table's finding");
    assert!(
        msg.contains("table public.bloated") && msg.contains("is bloat"),
        "{msg}"
    );
    let share = common::metric(b, "dbtool_bloat_ratio", &[("table", "bloated"), ("kind", "table")]);
    assert!(
        share.is_some_and(|s| s > 0.8),
        "nine tenths deleted, share {share:?}: {b}"
    );
}

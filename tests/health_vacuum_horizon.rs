//! The xmin horizon made for real on a cluster of the test's own (prepared transactions need
//! max_prepared_transactions > 0, logical slots wal_level = logical): a session holding a
//! snapshot, a prepared transaction and a replication slot are each named as the holder,
//! seen as a `pg_monitor` role; a role without it is told what it cannot see.

mod common;

use common::{check_of, findings, fresh_db_on, health_report, metric, own_cluster};
use tempcluster::ClusterOptions;

const MONITOR: &str = "dbtool_horizon_monitor";
const PLAIN: &str = "dbtool_horizon_plain";

/// Consumes transaction ids, so the holder falls `n` behind the current one.
async fn burn_xids(c: &tokio_postgres::Client, n: usize) {
    for _ in 0..n {
        c.batch_execute("SELECT txid_current()").await.expect("txid_current");
    }
}

/// (status, object of the first finding, its message, the holder kind's xid age).
async fn horizon(dsn: &str, kind: &str) -> (String, String, String, Option<f64>) {
    let (_, report) = health_report(dsn, &["--check", "xmin_horizon"]).await;
    let c = check_of(&report, "xmin_horizon");
    let f = findings(c);
    let (_, object, message) = f.first().cloned().unwrap_or_else(|| panic!("no finding: {c:#}"));
    let age = metric(c, "dbtool_xmin_horizon_age_xids", &[("holder", kind)]);
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        object,
        message,
        age,
    )
}

#[tokio::test]
async fn each_holder_of_the_horizon_is_named_as_pg_monitor_sees_it() {
    let cluster = own_cluster(ClusterOptions {
        conf: vec!["max_prepared_transactions = 5".into(), "wal_level = logical".into()],
        ..Default::default()
    });
    let db = fresh_db_on(&cluster, "horizon").await;
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {MONITOR} LOGIN IN ROLE pg_monitor; CREATE ROLE {PLAIN} LOGIN;
             CREATE TABLE t (id int); INSERT INTO t VALUES (1)"
        ))
        .await
        .expect("set up");
    let monitor = format!("{} user={MONITOR}", db.dsn());

    // A session in REPEATABLE READ keeps its snapshot (and xmin) until it ends.
    let reader = db.client().await;
    let pid: i32 = reader
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t")
        .await
        .expect("snapshot");
    burn_xids(&admin, 5).await;
    let (status, object, message, age) = horizon(&monitor, "session").await;
    assert_eq!(object, format!("session {pid}"), "{message}");
    assert!(message.contains("SELECT count(*) FROM t"), "{message}");
    assert!(message.contains("idle in transaction"), "{message}");
    assert_eq!(status, "OK", "{message}");
    assert!(age.is_some_and(|a| a >= 5.0), "{age:?}");
    reader.batch_execute("COMMIT").await.expect("end snapshot");

    // A prepared transaction outlives its session; the gid is the client's text.
    let gid = "pay\"ment\\ 'x'";
    let preparer = db.client().await;
    preparer
        .batch_execute(&format!(
            "BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION '{}'",
            gid.replace('\'', "''")
        ))
        .await
        .expect("prepare");
    drop(preparer);
    burn_xids(&admin, 5).await;
    let (_, object, message, age) = horizon(&monitor, "prepared_xact").await;
    assert_eq!(object, format!("prepared xact {gid}"), "{message}");
    assert!(message.contains("ROLLBACK PREPARED"), "{message}");
    assert!(age.is_some_and(|a| a >= 5.0), "{age:?}");
    // Over the threshold it warns.
    let (_, report) = health_report(
        &monitor,
        &["--check", "xmin_horizon", "--set", "xmin_horizon.warning_xids=3"],
    )
    .await;
    assert_eq!(check_of(&report, "xmin_horizon")["status"], "WARNING", "{report:#}");
    admin
        .batch_execute(&format!("ROLLBACK PREPARED '{}'", gid.replace('\'', "''")))
        .await
        .expect("rollback prepared");

    // A logical slot keeps catalog_xmin until its consumer confirms; nobody consumes this one.
    admin
        .batch_execute("SELECT pg_create_logical_replication_slot('horizon_cdc', 'pgoutput')")
        .await
        .expect("slot");
    burn_xids(&admin, 5).await;
    let (_, object, message, age) = horizon(&monitor, "slot").await;
    assert_eq!(object, "slot horizon_cdc", "{message}");
    assert!(
        message.contains("logical replication slot horizon_cdc") && message.contains("inactive"),
        "{message}"
    );
    assert!(age.is_some_and(|a| a >= 5.0), "{age:?}");

    // Without pg_read_all_stats other roles' sessions (and their xmin) are hidden: UNKNOWN.
    let plain = format!("{} user={PLAIN}", db.dsn());
    let (code, report) = health_report(&plain, &["--check", "xmin_horizon"]).await;
    let c = check_of(&report, "xmin_horizon");
    assert_eq!((code, c["status"].as_str()), (3, Some("UNKNOWN")), "{c:#}");
    assert!(
        findings(c)
            .iter()
            .any(|(_, _, m)| m.contains(&format!("grant pg_monitor to {PLAIN}"))),
        "{c:#}"
    );
    admin
        .batch_execute("SELECT pg_drop_replication_slot('horizon_cdc')")
        .await
        .expect("drop slot");
}

#[tokio::test]
async fn a_standby_query_held_by_hot_standby_feedback_is_named() {
    let primary = own_cluster(ClusterOptions::default());
    let standby = common::streaming_standby(&primary).await;
    let p = common::connect(&primary.dsn("postgres")).await;
    p.batch_execute("CREATE TABLE t AS SELECT 1 AS one")
        .await
        .expect("write");
    let s = common::caught_up(&p, &standby).await;
    common::wait_until(&s, "SELECT to_regclass('public.t') IS NOT NULL").await;
    for sql in ["ALTER SYSTEM SET hot_standby_feedback = on", "SELECT pg_reload_conf()"] {
        s.batch_execute(sql).await.expect(sql);
    }
    // A snapshot kept open on the standby; with feedback on, the primary's walsender holds
    // its xmin (pg_stat_replication.backend_xmin) so vacuum spares the rows it may read.
    s.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t")
        .await
        .expect("snapshot on the standby");
    wait_until_feedback(&p).await;
    burn_xids(&p, 5).await;
    let (_, object, message, age) = horizon(&primary.dsn("postgres"), "standby").await;
    assert!(object.starts_with("standby dbtool_standby"), "{object}: {message}");
    assert!(message.contains("hot_standby_feedback"), "{message}");
    assert!(age.is_some_and(|a| a >= 5.0), "{age:?}");
    s.batch_execute("COMMIT").await.expect("end snapshot");
}

async fn wait_until_feedback(p: &tokio_postgres::Client) {
    common::wait_until(
        p,
        "SELECT count(*) > 0 FROM pg_stat_replication WHERE backend_xmin IS NOT NULL",
    )
    .await;
}

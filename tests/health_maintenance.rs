//! Maintenance in progress made for real: a CREATE INDEX CONCURRENTLY held in its "waiting for
//! writers" phase by an open transaction is listed with its table and phase, and counted, as a
//! `pg_monitor` role sees it; autovacuum workers against autovacuum_max_workers; an
//! anti-wraparound autovacuum, made by consuming transaction IDs past a low
//! autovacuum_freeze_max_age, waiting for a lock on its table.

mod common;

use std::time::{Duration, Instant};

use common::{check_of, findings, fresh_db, fresh_db_on, health_report, metric, own_cluster, wait_until};
use tempcluster::ClusterOptions;

#[tokio::test]
async fn a_create_index_held_by_an_open_transaction_is_listed_with_its_phase() {
    let db = fresh_db("maint").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE dbtool_maint_monitor LOGIN IN ROLE pg_monitor; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 1000)",
        )
        .await
        .expect("setup");
    // A writer's open transaction: CREATE INDEX CONCURRENTLY waits for it after its first phase.
    let writer = db.client().await;
    writer
        .batch_execute("BEGIN; INSERT INTO orders VALUES (0)")
        .await
        .expect("writer");
    let builder = db.client().await;
    let build = tokio::spawn(async move {
        builder
            .batch_execute("CREATE INDEX CONCURRENTLY orders_id ON orders (id)")
            .await
    });
    wait_until(
        &admin,
        "SELECT EXISTS (SELECT FROM pg_stat_progress_create_index WHERE relid = 'orders'::regclass \
         AND phase LIKE 'waiting for writers%')",
    )
    .await;

    let monitor = format!("{} user=dbtool_maint_monitor", db.dsn());
    let (code, report) = health_report(&monitor, &["--check", "maintenance"]).await;
    let m = check_of(&report, "maintenance");
    assert_eq!((code, m["status"].as_str()), (0, Some("OK")), "{m:#}");
    let object = format!("{}.orders", db.name());
    let f = findings(m);
    assert!(
        f.iter().any(|(_, o, msg)| *o == object
            && msg.starts_with("create index (pid ")
            && msg.contains("phase waiting for writers")),
        "{f:?}"
    );
    // Other tests' maintenance may run in the same cluster: at least this one.
    assert!(
        metric(m, "dbtool_maintenance_running", &[("command", "create_index")]).is_some_and(|n| n >= 1.0),
        "{m:#}"
    );
    assert!(
        metric(m, "dbtool_maintenance_running", &[("command", "vacuum_full")]).is_some(),
        "{m:#}"
    );
    let max: String = admin
        .query_one("SELECT current_setting('autovacuum_max_workers')", &[])
        .await
        .expect("setting")
        .get(0);
    assert_eq!(
        metric(m, "dbtool_autovacuum_max_workers", &[]),
        max.parse().ok(),
        "{m:#}"
    );
    assert!(metric(m, "dbtool_autovacuum_workers", &[]).is_some(), "{m:#}");

    writer.batch_execute("COMMIT").await.expect("commit");
    build
        .await
        .expect("join")
        .expect("the index builds once the writer is done");
}

#[tokio::test]
async fn an_anti_wraparound_autovacuum_waiting_for_a_lock_warns() {
    let cluster = own_cluster(ClusterOptions {
        conf: vec![
            "autovacuum_freeze_max_age = 100000".into(),
            "autovacuum_naptime = 1".into(),
        ],
        ..Default::default()
    });
    let db = fresh_db_on(&cluster, "wrap").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "CREATE ROLE dbtool_wrap_monitor LOGIN IN ROLE pg_monitor; \
             CREATE TABLE ledger (id int); INSERT INTO ledger SELECT generate_series(1, 100)",
        )
        .await
        .expect("setup");
    // The lock anti-wraparound autovacuum needs (it does not skip a locked table, unlike others).
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE ledger IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .expect("lock");
    // Past autovacuum_freeze_max_age: one transaction ID per committed loop iteration.
    admin
        .batch_execute("DO $$ BEGIN FOR i IN 1..110000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$")
        .await
        .expect("consume transaction IDs");
    let waiting = "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' \
                   AND query LIKE '%ledger%(to prevent wraparound)%' AND wait_event_type = 'Lock')";
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let row = admin.query_one(waiting, &[]).await.expect("pg_stat_activity");
        if row.get::<_, bool>(0) {
            break;
        }
        assert!(
            Instant::now() < until,
            "no anti-wraparound autovacuum of ledger waited within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let monitor = format!("{} user=dbtool_wrap_monitor", db.dsn());
    let (code, report) = health_report(&monitor, &["--check", "maintenance"]).await;
    let m = check_of(&report, "maintenance");
    assert_eq!((code, m["status"].as_str()), (1, Some("WARNING")), "{m:#}");
    let object = format!("database {}", db.name());
    assert!(
        findings(m).iter().any(|(s, o, msg)| s == "WARNING"
            && *o == object
            && msg.contains("ledger (to prevent wraparound)")
            && msg.contains("waits for a lock")),
        "{m:#}"
    );
    assert!(
        metric(m, "dbtool_autovacuum_wraparound_workers", &[]).is_some_and(|n| n >= 1.0),
        "{m:#}"
    );
    holder.batch_execute("COMMIT").await.expect("unlock");
}

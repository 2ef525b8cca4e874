//! Maintenance in progress made for real: a CREATE INDEX CONCURRENTLY held in its "waiting for
//! writers" phase by an open transaction is listed with its table and phase, and counted, as a
//! `pg_monitor` role sees it; autovacuum workers against autovacuum_max_workers.

mod common;

use common::{check_of, findings, fresh_db, health_report, metric, wait_until};

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

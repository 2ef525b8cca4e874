//! Wait events made for real: a session blocked on another's row lock is counted under
//! Lock/transactionid (or Lock/tuple) as a `pg_monitor` role sees it; without
//! pg_read_all_stats the check says what it cannot see.

mod common;

use common::{check_of, findings, fresh_db, health_report, metric, wait_until};

#[tokio::test]
async fn a_session_blocked_on_a_row_lock_is_counted_under_lock() {
    let db = fresh_db("waits").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE dbtool_waits_monitor LOGIN IN ROLE pg_monitor; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             DO $$ BEGIN CREATE ROLE dbtool_waits_plain LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)",
        )
        .await
        .expect("set up");
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
        .await
        .expect("hold the row");
    let waiter = db.client().await;
    let blocked = tokio::spawn(async move {
        waiter
            .batch_execute("UPDATE t SET v = 2 WHERE id = 1")
            .await
            .map(|_| waiter)
    });
    wait_until(
        &admin,
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE t SET v = 2%'",
    )
    .await;

    let monitor = format!("{} user=dbtool_waits_monitor", db.dsn());
    let (_, report) = health_report(&monitor, &["--check", "waits"]).await;
    let w = check_of(&report, "waits");
    assert_eq!(w["status"], "OK", "{w:#}");
    let on_lock: f64 = ["transactionid", "tuple"]
        .iter()
        .filter_map(|e| {
            metric(
                w,
                "dbtool_sessions_wait_event",
                &[("wait_event_type", "Lock"), ("wait_event", e)],
            )
        })
        .sum();
    assert!(on_lock >= 1.0, "{w:#}");
    assert!(
        metric(w, "dbtool_sessions_lock_waiting", &[]).is_some_and(|n| n >= 1.0),
        "{w:#}"
    );
    assert!(w["summary"].as_str().unwrap_or_default().contains("Lock/"), "{w:#}");

    // One lock wait is over a threshold of 1: WARNING naming the lock waits.
    let (code, report) = health_report(
        &monitor,
        &["--check", "waits", "--set", "waits.lock_warning_sessions=1"],
    )
    .await;
    let w = check_of(&report, "waits");
    assert_eq!((code, w["status"].as_str()), (1, Some("WARNING")), "{w:#}");
    assert!(
        findings(w)
            .iter()
            .any(|(_, o, m)| o == "lock waits" && m.contains("wait on locks")),
        "{w:#}"
    );

    let plain = format!("{} user=dbtool_waits_plain", db.dsn());
    let (code, report) = health_report(&plain, &["--check", "waits"]).await;
    let w = check_of(&report, "waits");
    assert_eq!((code, w["status"].as_str()), (3, Some("UNKNOWN")), "{w:#}");
    assert!(
        findings(w)
            .iter()
            .any(|(_, _, m)| m.contains("grant pg_monitor to dbtool_waits_plain")),
        "{w:#}"
    );

    holder.batch_execute("ROLLBACK").await.expect("release");
    blocked
        .await
        .expect("join")
        .expect("the waiter finishes once the row is released");
}

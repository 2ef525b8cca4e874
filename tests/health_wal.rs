//! WAL kept on disk for real: an inactive physical slot holds segments through switches and a
//! checkpoint, and the wal check names it with the bytes it retains, as a `pg_monitor` role.

mod common;

use common::{check_of, findings, fresh_db_on, health_report, metric, own_cluster};
use tempcluster::ClusterOptions;

const MIB: f64 = 1024.0 * 1024.0;

#[tokio::test]
async fn an_inactive_slot_retaining_wal_is_named_with_its_bytes() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = fresh_db_on(&cluster, "wal").await;
    let admin = db.client().await;
    admin
        .batch_execute(
            "CREATE ROLE dbtool_wal_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE dbtool_wal_plain LOGIN;
             SELECT pg_create_physical_replication_slot('wal_keeper', true);
             CREATE TABLE t (v text)",
        )
        .await
        .expect("set up");
    // Each switch starts a new segment; the slot keeps every one since its restart_lsn.
    for _ in 0..4 {
        admin
            .batch_execute("INSERT INTO t SELECT md5(g::text) FROM generate_series(1, 1000) g; SELECT pg_switch_wal()")
            .await
            .expect("write and switch");
    }
    admin.batch_execute("CHECKPOINT").await.expect("checkpoint");

    let monitor = format!("{} user=dbtool_wal_monitor", db.dsn());
    let (_, report) = health_report(&monitor, &["--check", "wal"]).await;
    let w = check_of(&report, "wal");
    assert_eq!(w["status"], "OK", "{w:#}");
    let slot = w["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["object"] == "slot wal_keeper"))
        .unwrap_or_else(|| panic!("the slot is not named: {w:#}"));
    let retained = slot["value"].as_f64().unwrap_or_default();
    assert!(retained >= 3.0 * 16.0 * MIB, "four switches retain 3+ segments: {slot}");
    let message = slot["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("physical slot wal_keeper retains") && message.contains("inactive"),
        "{message}"
    );
    assert!(
        w["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("slot wal_keeper retains"),
        "{w:#}"
    );
    let on_disk = metric(w, "dbtool_wal_directory_bytes", &[]).unwrap_or_default();
    assert!(
        on_disk >= retained,
        "pg_wal {on_disk} holds what the slot retains {retained}"
    );

    // Over the ratio pg_wal warns and says which slot holds it.
    let (code, report) = health_report(&monitor, &["--check", "wal", "--set", "wal.warning_ratio=0.01"]).await;
    let w = check_of(&report, "wal");
    assert_eq!((code, w["status"].as_str()), (1, Some("WARNING")), "{w:#}");
    assert!(
        findings(w)
            .iter()
            .any(|(s, o, m)| s == "WARNING" && o == "pg_wal" && m.contains("slot wal_keeper")),
        "{w:#}"
    );

    // pg_ls_waldir() is refused without pg_monitor: UNKNOWN naming it, not an OK over nothing.
    let plain = format!("{} user=dbtool_wal_plain", db.dsn());
    let (code, report) = health_report(&plain, &["--check", "wal"]).await;
    let w = check_of(&report, "wal");
    assert_eq!((code, w["status"].as_str()), (3, Some("UNKNOWN")), "{w:#}");
    assert!(
        findings(w)
            .iter()
            .any(|(_, _, m)| m.contains("permission denied") && m.contains("grant pg_monitor to dbtool_wal_plain")),
        "{w:#}"
    );
    admin
        .batch_execute("SELECT pg_drop_replication_slot('wal_keeper')")
        .await
        .expect("drop slot");
}

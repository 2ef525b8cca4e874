//! Streaming replication: a primary and a standby started by the suite; the replication
//! check seen from both sides, the idle-primary case and an inactive slot.

mod common;

use std::time::Duration;

use common::{caught_up, check_of, connect, findings, health_report, metric, own_cluster, streaming_standby};
use tempcluster::ClusterOptions;

#[tokio::test]
async fn lag_on_both_sides_idle_primary_is_zero_and_inactive_slot_is_reported() {
    let primary = own_cluster(ClusterOptions::default());
    let standby = streaming_standby(&primary).await;
    let p = connect(&primary.dsn("postgres")).await;
    p.batch_execute("SELECT pg_create_physical_replication_slot('dbtool_idle_slot', true)")
        .await
        .expect("slot");
    // The switch writes the WAL out (the suite runs with synchronous_commit=off, and
    // pg_current_wal_lsn is the write position), so the slot visibly retains some.
    p.batch_execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g; SELECT pg_switch_wal()")
        .await
        .expect("write");
    caught_up(&p, &standby).await;

    // The primary's side: one streaming standby with small lag, and the slot nobody uses.
    let (code, report) = health_report(&primary.dsn("postgres"), &["--check", "replication"]).await;
    let rep = check_of(&report, "replication");
    assert_eq!((code, rep["status"].as_str()), (0, Some("OK")), "{rep}");
    assert_eq!(metric(rep, "dbtool_replication_in_recovery", &[]), Some(0.0));
    let replay = metric(
        rep,
        "dbtool_replication_standby_lag_seconds",
        &[("standby", "dbtool_standby"), ("kind", "replay")],
    );
    assert!(replay.is_some_and(|v| (0.0..60.0).contains(&v)), "{rep}");
    let bytes = metric(
        rep,
        "dbtool_replication_standby_lag_bytes",
        &[("standby", "dbtool_standby"), ("kind", "replay")],
    );
    assert!(bytes.is_some_and(|b| b >= 0.0), "{rep}");
    assert_eq!(
        metric(rep, "dbtool_replication_slot_active", &[("slot", "dbtool_idle_slot")]),
        Some(0.0)
    );
    assert!(
        metric(
            rep,
            "dbtool_replication_slot_retained_bytes",
            &[("slot", "dbtool_idle_slot")]
        )
        .is_some_and(|b| b > 0.0),
        "{rep}"
    );
    let f = findings(rep);
    assert!(
        f.iter()
            .any(|(sev, o, m)| sev == "OK" && o == "slot dbtool_idle_slot" && m.contains("inactive")),
        "{f:?}"
    );
    // Over the 1 GiB default it would warn: a threshold below what it retains shows it does.
    let retained = metric(
        rep,
        "dbtool_replication_slot_retained_bytes",
        &[("slot", "dbtool_idle_slot")],
    );
    let below = format!(
        "replication.inactive_slot_gib={}",
        retained.unwrap_or(0.0) / 2.0 / f64::from(1u32 << 30)
    );
    let (code, report) = health_report(&primary.dsn("postgres"), &["--check", "replication", "--set", &below]).await;
    assert_eq!(code, 1, "{}", check_of(&report, "replication"));

    // The standby's side. The primary is idle now: everything received has been replayed,
    // so the replay lag is 0, however old the last replayed transaction is. Background WAL
    // (a running-xacts record) may be in flight at one instant, hence a few attempts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut seen_zero = false;
    for _ in 0..10 {
        let (code, report) = health_report(&standby.dsn("postgres"), &["--check", "replication"]).await;
        let rep = check_of(&report, "replication");
        assert_eq!((code, rep["status"].as_str()), (0, Some("OK")), "{rep}");
        assert_eq!(metric(rep, "dbtool_replication_in_recovery", &[]), Some(1.0));
        assert_eq!(
            metric(rep, "dbtool_replication_receiver_streaming", &[]),
            Some(1.0),
            "{rep}"
        );
        let lag = metric(rep, "dbtool_replication_replay_lag_seconds", &[]);
        assert!(lag.is_some_and(|l| l < 60.0), "{rep}");
        if lag == Some(0.0) && metric(rep, "dbtool_replication_replay_lag_bytes", &[]) == Some(0.0) {
            seen_zero = true;
            assert!(
                rep["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("standby, replay lag 0s"),
                "{rep}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(seen_zero, "an idle primary's standby never reported replay lag 0");
}

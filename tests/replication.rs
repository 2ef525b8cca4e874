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
    // (a running-xacts record) may be in flight at one instant, hence polling (30 s at most)
    // rather than a fixed pause before a few attempts.
    let mut seen_zero = false;
    for _ in 0..100 {
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

/// Runs the replication check on `dsn` until its exit code is `code`, writing on the primary
/// (`p`) between runs so the standby keeps receiving and reporting; 60 s at most. Returns the
/// check's JSON.
async fn poll_replication(p: &tokio_postgres::Client, dsn: &str, set: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["--check", "replication"];
    for s in set {
        args.extend(["--set", s]);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        p.batch_execute("INSERT INTO t SELECT 1")
            .await
            .expect("write on the primary");
        let (got, report) = health_report(dsn, &args).await;
        let rep = check_of(&report, "replication").clone();
        if got == code {
            return rep;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "exit {got}, not {code}, after 60 s: {rep}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn paused_replay_raises_lag_to_warning_then_critical_on_both_sides() {
    let primary = own_cluster(ClusterOptions::default());
    let standby = streaming_standby(&primary).await;
    let p = connect(&primary.dsn("postgres")).await;
    // A commit the standby replays before the pause, so it has a last replayed transaction to
    // measure from. Synchronous: under the suite's synchronous_commit=off the commit record could
    // still sit in the primary's WAL buffers, past the position caught_up waits for.
    p.batch_execute("SET synchronous_commit = on; CREATE TABLE t (n int)")
        .await
        .expect("table");
    let s = caught_up(&p, &standby).await;
    // The standby keeps receiving WAL but applies none of it: its lag grows for real.
    s.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    let sdsn = standby.dsn("postgres");
    let warn = ["replication.warning_seconds=1", "replication.critical_seconds=3600"];
    // The pause alone warns at once; wait for the lag to cross its own threshold too.
    let lag_warns = |rep: &serde_json::Value| {
        findings(rep)
            .iter()
            .any(|(sev, o, m)| sev == "WARNING" && o == "this standby" && m.starts_with("replay lag"))
    };
    let mut rep = poll_replication(&p, &sdsn, &warn, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !lag_warns(&rep) {
        assert!(tokio::time::Instant::now() < deadline, "lag never warned: {rep}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        rep = poll_replication(&p, &sdsn, &warn, 1).await;
    }
    assert_eq!(rep["status"], "WARNING", "{rep}");
    assert!(
        findings(&rep)
            .iter()
            .any(|(sev, o, m)| sev == "WARNING" && o == "this standby" && m.starts_with("replay lag")),
        "{rep}"
    );
    assert!(
        findings(&rep)
            .iter()
            .any(|(sev, _, m)| sev == "WARNING" && m.contains("replay is paused")),
        "{rep}"
    );
    let crit = ["replication.warning_seconds=1", "replication.critical_seconds=2"];
    let rep = poll_replication(&p, &sdsn, &crit, 2).await;
    assert!(
        findings(&rep)
            .iter()
            .any(|(sev, o, _)| sev == "CRITICAL" && o == "this standby"),
        "{rep}"
    );
    assert!(
        metric(&rep, "dbtool_replication_replay_lag_bytes", &[]).is_some_and(|b| b > 0.0),
        "received but not replayed: {rep}"
    );
    // The primary sees the same standby fall behind.
    let rep = poll_replication(&p, &primary.dsn("postgres"), &crit, 2).await;
    assert!(
        findings(&rep)
            .iter()
            .any(|(sev, o, _)| sev == "CRITICAL" && o.starts_with("standby dbtool_standby")),
        "{rep}"
    );
    // Resumed, it catches up and is OK again under the default thresholds.
    s.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .expect("resume replay");
    caught_up(&p, &standby).await;
    let (code, report) = health_report(&sdsn, &["--check", "replication"]).await;
    assert_eq!(code, 0, "{}", check_of(&report, "replication"));
}

#[tokio::test]
async fn unreplayed_wal_before_any_replayed_transaction_is_unknown_not_zero() {
    let primary = own_cluster(ClusterOptions::default());
    let standby = streaming_standby(&primary).await;
    let s = connect(&standby.dsn("postgres")).await;
    // Paused before any transaction was replayed: pg_last_xact_replay_timestamp() stays NULL.
    s.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    let p = connect(&primary.dsn("postgres")).await;
    p.batch_execute("CREATE TABLE t (n int)").await.expect("table");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        p.batch_execute("INSERT INTO t SELECT 1; SELECT pg_switch_wal()")
            .await
            .expect("write on the primary");
        let (_, report) = health_report(&standby.dsn("postgres"), &["--check", "replication"]).await;
        let rep = check_of(&report, "replication").clone();
        let f = findings(&rep);
        if f.iter()
            .any(|(sev, _, m)| sev == "UNKNOWN" && m.starts_with("replay lag unknown"))
        {
            assert!(!f.iter().any(|(_, _, m)| m == "replay lag 0s"), "{rep}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no unknown lag after 60 s: {rep}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn target_session_attrs_standby_picks_the_real_standby_of_a_multi_host_dsn() {
    let primary = own_cluster(ClusterOptions::default());
    let standby = streaming_standby(&primary).await;
    // The primary first: a client that took the first host that answers would report it.
    let hosts = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres sslmode=disable",
        primary.port(),
        standby.port()
    );
    let in_recovery =
        |report: &serde_json::Value| metric(check_of(report, "replication"), "dbtool_replication_in_recovery", &[]);
    for (attrs, expected) in [("standby", 1.0), ("primary", 0.0), ("read-write", 0.0), ("any", 0.0)] {
        let dsn = format!("{hosts} target_session_attrs={attrs}");
        let (code, report) = health_report(&dsn, &["--check", "replication"]).await;
        assert_eq!(
            (code, in_recovery(&report)),
            (0, Some(expected)),
            "target_session_attrs={attrs}: {report}"
        );
    }
    // Reversed, `primary` must pass over the standby that answers first.
    let reversed = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres sslmode=disable target_session_attrs=primary",
        standby.port(),
        primary.port()
    );
    let (code, report) = health_report(&reversed, &["--check", "replication"]).await;
    assert_eq!((code, in_recovery(&report)), (0, Some(0.0)), "{report}");
}

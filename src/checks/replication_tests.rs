//! Unit tests of the replication check.

use super::*;
use crate::checks::testing::{eval, outcome};

fn receiver_row(in_recovery: &str, status: Option<&str>, lag: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("in_recovery", Some(in_recovery)),
        ("receiver_status", status),
        ("last_message_seconds", None),
        ("replay_lag_seconds", lag),
        ("replay_lag_bytes", None),
        ("replay_paused", Some("f")),
    ])
}

fn standby(replay: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("pid", Some("1")),
        ("application_name", Some("s1")),
        ("client_addr", Some("127.0.0.1")),
        ("state", Some("streaming")),
        ("sync_state", Some("async")),
        ("write_lag_seconds", None),
        ("flush_lag_seconds", None),
        ("replay_lag_seconds", replay),
        ("sent_lag_bytes", Some("0")),
        ("write_lag_bytes", Some("0")),
        ("flush_lag_bytes", None),
        ("replay_lag_bytes", Some("100")),
    ])
}

fn slot_row(active: &str, retained: Option<&str>, status: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("slot_name", Some("s")),
        ("slot_type", Some("physical")),
        ("database", Some("")),
        ("active", Some(active)),
        ("wal_status", status),
        ("safe_wal_size", None),
        ("retained_bytes", retained),
    ])
}

#[test]
fn primary_with_idle_caught_up_standby_is_ok_and_lag_zero() {
    let out = eval(
        &Replication,
        vec![
            outcome(&RECEIVER, vec![receiver_row("f", None, None)]),
            outcome(&STANDBYS, vec![standby(None)]),
            outcome(&SLOTS, vec![]),
        ],
    );
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].severity, Severity::Ok);
    let replay = out
        .samples
        .iter()
        .find(|s| s.family.name == STANDBY_LAG_SECONDS.name && s.labels.contains(&("kind", "replay".into())));
    assert_eq!(replay.map(|s| s.value), Some(0.0));
}

#[test]
fn unreplayed_wal_without_a_replay_time_is_unknown_and_a_paused_replay_warns() {
    let row = Row::from_pairs(&[
        ("in_recovery", Some("t")),
        ("receiver_status", Some("streaming")),
        ("last_message_seconds", None),
        ("replay_lag_seconds", None),
        ("replay_lag_bytes", Some("16777216")),
        ("replay_paused", Some("t")),
    ]);
    let out = eval(
        &Replication,
        vec![
            outcome(&RECEIVER, vec![row]),
            outcome(&STANDBYS, vec![]),
            outcome(&SLOTS, vec![]),
        ],
    );
    let texts: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.message.as_str())).collect();
    assert!(
        texts
            .iter()
            .any(|(s, m)| *s == Severity::Unknown && m.contains("16.0 MiB") && m.contains("unknown")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(s, m)| *s == Severity::Warning && m.contains("paused")),
        "{texts:?}"
    );
}

#[test]
fn lagging_standby_and_stopped_receiver() {
    let out = eval(
        &Replication,
        vec![
            outcome(&RECEIVER, vec![receiver_row("t", Some("stopping"), Some("400"))]),
            outcome(&STANDBYS, vec![standby(Some("70"))]),
            outcome(&SLOTS, vec![]),
        ],
    );
    let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
    assert_eq!(sev, vec![Severity::Critical, Severity::Warning, Severity::Warning]);
    assert!(out.summary.starts_with("standby"), "{}", out.summary);
}

#[test]
fn slots_inactive_big_lost_and_null_retained() {
    let big = (2.0 * GIB).to_string();
    let out = eval(
        &Replication,
        vec![
            outcome(&RECEIVER, vec![receiver_row("f", None, None)]),
            outcome(&STANDBYS, vec![]),
            outcome(
                &SLOTS,
                vec![
                    slot_row("f", Some(&big), Some("extended")),
                    slot_row("f", None, None),
                    slot_row("t", Some("1"), Some("lost")),
                    slot_row("t", Some("1"), Some("reserved")),
                ],
            ),
        ],
    );
    let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
    assert_eq!(sev, vec![Severity::Warning, Severity::Ok, Severity::Critical]);
}

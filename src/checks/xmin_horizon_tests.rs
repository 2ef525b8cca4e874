use super::*;
use crate::checks::testing::{eval, outcome};

fn h(kind: &str, name: &str, xids: &str, secs: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("holder", Some(kind)),
        ("name", Some(name)),
        ("usename", Some("app")),
        ("application_name", Some("worker")),
        ("datname", Some("shop")),
        (
            "state",
            Some(if kind == "slot" {
                "logical"
            } else {
                "idle in transaction"
            }),
        ),
        ("age_xids", Some(xids)),
        ("age_seconds", secs),
        ("query", Some("SELECT\n1")),
        ("active", if kind == "slot" { Some("f") } else { None }),
    ])
}

fn role(sees_all: &str) -> Row {
    Row::from_pairs(&[
        ("role_name", Some("mon")),
        ("read_all_stats", Some(sees_all)),
        ("read_all_settings", Some("t")),
    ])
}

fn sample(out: &CheckOutput, family: &str, holder: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.family.name == family && s.labels.iter().any(|(_, v)| v == holder))
        .map(|s| s.value)
}

#[test]
fn the_oldest_holder_is_named_and_every_kind_has_a_series() {
    let rows = vec![
        h("session", "42", "20000000", Some("7300")),
        h("slot", "cdc", "150000000", None),
        h("prepared_xact", "tx1", "5", Some("10")),
    ];
    let out = eval(
        &XminHorizon,
        vec![outcome(&XMIN_HORIZON, rows), outcome(&ROLE, vec![role("t")])],
    );
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    let f = &out.findings[0];
    assert_eq!((f.severity, f.object.as_str()), (Severity::Critical, "slot cdc"));
    assert!(
        f.message.contains("inactive") && f.message.contains("150000000"),
        "{}",
        f.message
    );
    assert_eq!(sample(&out, AGE_XIDS.name, "session"), Some(20000000.0));
    assert_eq!(sample(&out, AGE_XIDS.name, "standby"), Some(0.0));
    assert_eq!(sample(&out, AGE_SECONDS.name, "session"), Some(7300.0));
}

#[test]
fn an_old_session_warns_by_seconds_and_its_query_is_one_line() {
    let rows = vec![h("session", "42", "3", Some("7300"))];
    let out = eval(
        &XminHorizon,
        vec![outcome(&XMIN_HORIZON, rows), outcome(&ROLE, vec![role("t")])],
    );
    let f = &out.findings[0];
    assert_eq!((f.severity, f.object.as_str()), (Severity::Warning, "session 42"));
    assert!(
        f.message.contains("SELECT 1") && f.message.contains("2h01m"),
        "{}",
        f.message
    );
}

#[test]
fn nothing_held_is_ok_and_hidden_sessions_are_unknown() {
    let out = eval(
        &XminHorizon,
        vec![outcome(&XMIN_HORIZON, vec![]), outcome(&ROLE, vec![role("t")])],
    );
    assert!(out.findings.is_empty());
    assert_eq!(out.summary, "nothing holds the xmin horizon back");
    let out = eval(
        &XminHorizon,
        vec![outcome(&XMIN_HORIZON, vec![]), outcome(&ROLE, vec![role("f")])],
    );
    assert_eq!(out.findings[0].severity, Severity::Unknown);
    assert!(out.findings[0].message.contains("grant pg_monitor to mon"));
}

use super::*;
use crate::checks::testing::{eval, outcome};
use crate::db::row::Row;

fn a(state: Option<&str>, kind: Option<&str>, event: Option<&str>, backend: &str, is_self: &str) -> Row {
    Row::from_pairs(&[
        ("state", state),
        ("wait_event_type", kind),
        ("wait_event", event),
        ("backend_type", Some(backend)),
        ("is_self", Some(is_self)),
    ])
}

fn role() -> Row {
    Row::from_pairs(&[
        ("role_name", Some("mon")),
        ("read_all_stats", Some("t")),
        ("read_all_settings", Some("t")),
    ])
}

fn value(out: &CheckOutput, kind: &str, event: &str) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| {
            s.family.name == WAIT_EVENT.name
                && s.labels.contains(&("wait_event_type", kind.to_string()))
                && s.labels.contains(&("wait_event", event.to_string()))
        })
        .map(|s| s.value)
}

#[test]
fn active_sessions_by_event_without_idle_self_or_walsenders() {
    let cb = "client backend";
    let rows = vec![
        a(Some("active"), Some("Lock"), Some("transactionid"), cb, "f"),
        a(Some("active"), Some("Lock"), Some("transactionid"), cb, "f"),
        a(Some("active"), None, None, cb, "f"),
        a(Some("active"), None, None, cb, "t"),
        a(Some("idle"), Some("Client"), Some("ClientRead"), cb, "f"),
        a(
            Some("active"),
            Some("Activity"),
            Some("WalSenderMain"),
            "walsender",
            "f",
        ),
        a(None, None, None, cb, "f"),
    ];
    let out = eval(&Waits, vec![outcome(&ACTIVITY, rows), outcome(&ROLE, vec![role()])]);
    assert_eq!(value(&out, "Lock", "transactionid"), Some(2.0));
    assert_eq!(value(&out, "running", "running"), Some(1.0));
    assert_eq!(value(&out, "Client", "ClientRead"), None);
    assert!(out.findings.is_empty());
    assert_eq!(
        out.summary,
        "3 active, 2 waiting on locks; 2 Lock/transactionid, 1 running/running"
    );
}

#[test]
fn the_label_set_is_bounded_and_many_lock_waits_warn() {
    let mut rows: Vec<Row> = (0..30)
        .map(|i| {
            a(
                Some("active"),
                Some("Extension"),
                Some(&format!("ev{i:02}")),
                "client backend",
                "f",
            )
        })
        .collect();
    rows.extend((0..12).map(|_| a(Some("active"), Some("Lock"), Some("tuple"), "client backend", "f")));
    let out = eval(&Waits, vec![outcome(&ACTIVITY, rows), outcome(&ROLE, vec![role()])]);
    let series = out.samples.iter().filter(|s| s.family.name == WAIT_EVENT.name).count();
    assert_eq!(series, MAX_EVENTS + 1);
    assert_eq!(value(&out, "other", "other"), Some(11.0));
    assert_eq!(value(&out, "Lock", "tuple"), Some(12.0));
    assert_eq!(out.findings[0].severity, Severity::Warning);
}

//! The runner's evaluation of failed and vanished queries.

use super::*;
use crate::checks::{Check, Thresholds};
use crate::db::row::Row;

fn failed_in(db: Option<&str>) -> QueryFailure {
    QueryFailure {
        database: db.map(str::to_string),
        message: "terminated".into(),
        sqlstate: Some("57P01".into()),
        needs_version: None,
        not_visited: false,
    }
}

#[test]
fn failures_of_a_database_dropped_mid_run_are_forgotten() {
    // Regression: a test database dropped while health ran made the whole report UNKNOWN.
    let mut failures = vec![failed_in(Some("gone")), failed_in(Some("app")), failed_in(None)];
    retain_existing(&mut failures, &["app", "postgres"]);
    let left: Vec<Option<&str>> = failures.iter().map(|f| f.database.as_deref()).collect();
    assert_eq!(left, vec![Some("app"), None]);
}

fn outcomes_with_tables_failure(sqlstate: &str) -> Outcomes {
    use crate::checks::shared::{DATABASES, TABLES};
    let mut o = Outcomes::new();
    let db = Row::from_pairs(&[
        ("datname", Some("app")),
        ("datallowconn", Some("t")),
        ("xid_age", Some("10")),
        ("mxid_age", Some("1")),
    ]);
    o.insert(
        DATABASES.name,
        QueryOutcome {
            rows: vec![db],
            succeeded: 1,
            ..Default::default()
        },
    );
    // The tables query answered (no tables) in one database and failed in another.
    let mut f = failed_in(Some("other"));
    f.sqlstate = Some(sqlstate.into());
    o.insert(
        TABLES.name,
        QueryOutcome {
            rows: vec![],
            succeeded: 1,
            failures: vec![f],
            ..Default::default()
        },
    );
    o
}

#[test]
fn a_session_terminated_in_one_database_is_told_not_alerted() {
    // Regression: DROP DATABASE … WITH (FORCE) elsewhere made vacuum and cache_hit UNKNOWN.
    let check = &crate::checks::vacuum::Vacuum;
    let t = Thresholds::defaults(check.thresholds());
    let r = evaluate(check, &t, &outcomes_with_tables_failure("57P01"), 20, 160000, "u");
    assert_eq!(r.status, Severity::Ok, "{:?}", r.findings);
    assert!(r.findings.iter().any(|f| f.message.contains("not checked this run")));
    assert!(
        r.summary.starts_with("oldest xid age"),
        "evaluated despite the failure: {}",
        r.summary
    );
}

#[test]
fn a_missing_privilege_in_one_database_is_unknown_naming_the_grant() {
    let check = &crate::checks::vacuum::Vacuum;
    let t = Thresholds::defaults(check.thresholds());
    let r = evaluate(check, &t, &outcomes_with_tables_failure("42501"), 20, 160000, "monitor");
    assert_eq!(r.status, Severity::Unknown);
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("grant pg_monitor to monitor")),
        "{:?}",
        r.findings
    );
}

//! evaluate() of the vacuum check over fixture rows, NULLs included.

use super::*;
use crate::checks::testing::{eval, outcome};
use crate::db::row::Row;

fn db(name: &str, xid: &str) -> Row {
    Row::from_pairs(&[
        ("datname", Some(name)),
        ("datallowconn", Some("t")),
        ("xid_age", Some(xid)),
        ("mxid_age", Some("5")),
    ])
}

fn table(name: &str, dead: Option<&str>, vac_age: Option<&str>, av: &str) -> Row {
    Row::from_pairs(&[
        ("datname", Some("app")),
        ("schemaname", Some("public")),
        ("relname", Some(name)),
        ("xid_age", Some("1000")),
        ("n_live_tup", Some("1000")),
        ("n_dead_tup", dead),
        ("autovacuum_threshold", Some("250")),
        ("vacuum_age_seconds", vac_age),
        ("autovacuum_enabled", Some(av)),
    ])
}

#[test]
fn wraparound_thresholds_match_check_postgres_defaults() {
    let out = eval(
        &Vacuum,
        vec![
            outcome(
                &DATABASES,
                vec![db("a", "1350000000"), db("b", "1500000000"), db("c", "10")],
            ),
            outcome(&TABLES, vec![]),
        ],
    );
    let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
    assert_eq!(sev, vec![Severity::Warning, Severity::Critical]);
}

#[test]
fn dead_tuples_over_threshold_and_never_vacuumed_warn_recently_vacuumed_do_not() {
    let rows = vec![
        table("never", Some("5000"), None, "f"),
        table("recent", Some("5000"), Some("60"), "t"),
        table("clean", Some("10"), None, "t"),
        table("nostats", None, None, "t"),
    ];
    let out = eval(
        &Vacuum,
        vec![outcome(&DATABASES, vec![db("app", "10")]), outcome(&TABLES, rows)],
    );
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].object, "app.public.never");
    assert!(out.findings[0].message.contains("autovacuum is disabled"));
    let never = out
        .samples
        .iter()
        .find(|s| s.family.name == TABLE_VACUUM_AGE.name && s.labels.contains(&("table", "never".into())));
    assert_eq!(never.map(|s| s.value), Some(f64::INFINITY));
}

#[test]
fn a_table_without_a_live_count_gets_no_dead_ratio_not_100_percent() {
    // Regression: a NULL n_live_tup became 0, so its dead tuples read as 100% of its rows.
    let nolive = Row::from_pairs(&[
        ("datname", Some("app")),
        ("schemaname", Some("public")),
        ("relname", Some("nolive")),
        ("xid_age", Some("1000")),
        ("n_live_tup", None),
        ("n_dead_tup", Some("5000")),
        ("autovacuum_threshold", Some("250")),
        ("vacuum_age_seconds", None),
        ("autovacuum_enabled", Some("t")),
    ]);
    let out = eval(
        &Vacuum,
        vec![
            outcome(&DATABASES, vec![db("app", "10")]),
            outcome(&TABLES, vec![nolive]),
        ],
    );
    assert!(
        !out.samples.iter().any(|s| s.family.name == TABLE_DEAD_RATIO.name),
        "{:?}",
        out.samples
    );
    assert_eq!(out.findings.len(), 1);
    assert!(!out.findings[0].message.contains("100"), "{}", out.findings[0].message);
}

#[test]
fn a_null_xid_age_is_an_error_naming_the_column_not_age_0() {
    let cols = [
        ("datname", Some("app")),
        ("schemaname", Some("public")),
        ("relname", Some("t")),
        ("xid_age", None),
        ("n_live_tup", Some("1")),
        ("n_dead_tup", Some("0")),
        ("autovacuum_threshold", Some("50")),
        ("vacuum_age_seconds", None),
        ("autovacuum_enabled", Some("t")),
    ];
    let result = crate::checks::testing::try_eval(
        &Vacuum,
        vec![
            outcome(&DATABASES, vec![db("app", "10")]),
            outcome(&TABLES, vec![Row::from_pairs(&cols)]),
        ],
    );
    let err = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("xid_age"), "{err:?}");
}

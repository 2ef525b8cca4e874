//! evaluate() over fixture rows: ranking, counters, texts, the missing extension.

use super::*;
use crate::checks::testing::{eval, outcome};
use crate::checks::QueryOutcome;
use crate::db::row::Row;

fn top(queryid: Option<&str>, total: Option<&str>) -> Row {
    Row::from_pairs(&[
        ("statements", Some("2")),
        ("all_calls", Some("10")),
        ("all_exec_seconds", Some("1.5")),
        ("all_rows", Some("7")),
        ("queryid", queryid),
        ("rolname", None),
        ("datname", Some("app")),
        ("calls", Some("4")),
        ("total_seconds", total),
        ("mean_ms", None),
        ("rows", Some("1")),
        ("own_role", Some("dbtool")),
        ("own_excluded", Some("t")),
    ])
}

fn text(queryid: &str, query: &str) -> Row {
    Row::from_pairs(&[("queryid", Some(queryid)), ("query", Some(query))])
}

fn plan(query_texts: bool, top_n: usize) -> Plan {
    Plan {
        checks: Vec::new(),
        databases: None,
        top_n,
        query_texts,
        max_connections: 1,
        session: crate::db::SessionSettings::default(),
    }
}

#[test]
fn top_statements_and_counters_without_query_labels() {
    let out = eval(
        &TopQueries,
        vec![
            outcome(&EXTENSIONS, vec![]),
            outcome(&TOP_QUERIES, vec![top(Some("42"), Some("1.2"))]),
            outcome(&TOP_QUERY_TEXTS, vec![text("42", "SELECT $1")]),
        ],
    );
    assert_eq!(out.findings.len(), 1);
    assert!(
        out.findings[0].message.ends_with("user ?: SELECT $1"),
        "{:?}",
        out.findings
    );
    assert_eq!(out.samples.len(), 5);
    for s in &out.samples {
        let names: Vec<&str> = s.labels.iter().map(|(n, _)| *n).collect();
        if std::ptr::eq(s.family, &TOP_EXEC_SECONDS) {
            assert_eq!(names, ["queryid", "database", "user"]);
        } else {
            assert!(names.is_empty(), "{s:?}");
        }
    }
    assert!(
        out.summary.contains("role dbtool (dbtool's own) not counted"),
        "{}",
        out.summary
    );
}

#[test]
fn without_the_text_query_findings_name_the_queryid_only() {
    let out = eval(
        &TopQueries,
        vec![
            outcome(&EXTENSIONS, vec![]),
            outcome(&TOP_QUERIES, vec![top(Some("42"), Some("1.2"))]),
        ],
    );
    assert_eq!(out.findings[0].object, "queryid 42");
    assert!(out.findings[0].message.ends_with("user ?"), "{:?}", out.findings);
}

#[test]
fn texts_are_asked_for_the_top_n_only_and_only_for_a_report_that_shows_them() {
    let rows = vec![
        top(Some("-7"), Some("3")),
        top(Some("42"), Some("2")),
        top(Some("42"), Some("1.5")),
        top(Some("9"), Some("1")),
    ];
    let outcomes: BTreeMap<&'static str, QueryOutcome> = [(
        TOP_QUERIES.name,
        QueryOutcome {
            rows,
            succeeded: 1,
            ..Default::default()
        },
    )]
    .into();
    assert_eq!(TopQueries.follow_up(&outcomes, &plan(false, 20)), None);
    let f = TopQueries.follow_up(&outcomes, &plan(true, 3)).expect("a text query");
    assert_eq!(f.name, "top_query_texts");
    assert!(f.sql.contains("ANY('{-7,42}'::bigint[])"), "{}", f.sql);
    assert!(f.sql.contains("showtext := true"));
    assert!(!TOP_QUERIES
        .sql_for(130000)
        .unwrap_or_default()
        .contains("showtext := true"));
}

#[test]
fn a_superuser_connection_says_its_statements_are_counted() {
    let row = Row::from_pairs(&[
        ("statements", Some("1")),
        ("all_calls", Some("4")),
        ("all_exec_seconds", Some("1.5")),
        ("all_rows", Some("1")),
        ("own_role", Some("postgres")),
        ("own_excluded", Some("f")),
        ("queryid", Some("42")),
        ("rolname", Some("postgres")),
        ("datname", Some("app")),
        ("calls", Some("4")),
        ("total_seconds", Some("1.2")),
        ("mean_ms", Some("300")),
        ("rows", Some("1")),
    ]);
    let out = eval(
        &TopQueries,
        vec![outcome(&EXTENSIONS, vec![]), outcome(&TOP_QUERIES, vec![row])],
    );
    assert!(
        out.summary.contains("counted: it connects as superuser postgres"),
        "{}",
        out.summary
    );
}

#[test]
fn a_statement_without_a_mean_says_so_instead_of_0_ms() {
    // Regression: mean_ms is NULL for a statement with 0 calls and showed as "0.000 ms mean".
    let out = eval(
        &TopQueries,
        vec![
            outcome(&EXTENSIONS, vec![]),
            outcome(&TOP_QUERIES, vec![top(Some("42"), Some("1.2"))]),
        ],
    );
    let message = &out.findings[0].message;
    assert!(message.contains("? ms mean"), "{message}");
    assert!(!message.contains("0.000 ms mean"), "{message}");
}

#[test]
fn empty_pg_stat_statements_shows_nothing() {
    let out = eval(
        &TopQueries,
        vec![
            outcome(&EXTENSIONS, vec![]),
            outcome(&TOP_QUERIES, vec![top(None, None)]),
        ],
    );
    assert!(out.findings.is_empty());
}

#[test]
fn missing_extension_is_a_note_not_an_error() {
    let failed = QueryOutcome {
        failures: vec![QueryFailure {
            database: None,
            message: "relation \"pg_stat_statements\" does not exist".into(),
            sqlstate: Some("42P01".into()),
            needs_version: None,
            not_visited: false,
        }],
        ..Default::default()
    };
    let out = eval(
        &TopQueries,
        vec![outcome(&EXTENSIONS, vec![]), (TOP_QUERIES.name, failed)],
    );
    assert_eq!(out.findings[0].severity, Severity::Ok);
    assert!(out.findings[0].message.contains("not installed"));
    assert!(TopQueries.expected_failure(&QueryFailure {
        database: None,
        message: "relation \"pg_stat_statements\" does not exist".into(),
        sqlstate: Some("42P01".into()),
        needs_version: None,
        not_visited: false,
    }));
}

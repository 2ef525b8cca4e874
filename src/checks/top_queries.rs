//! The statements with the most total execution time, from pg_stat_statements when it is
//! installed in the connected database. Query text goes to the table and JSON only: it is
//! never a metric label (unbounded cardinality); Prometheus gets aggregate counters.

use super::{Check, CheckOutput, EvalContext, EvalError, Query, QueryFailure, RowContext};

use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(EXTENSIONS, "extensions", Cluster, [0 => "extensions.sql"]);
query!(TOP_QUERIES, "top_queries", Cluster, [0 => "top_queries.sql"]);

pub struct TopQueries;

pub static CALLS: MetricFamily = MetricFamily {
    name: "dbtool_statements_calls_total",
    help: "Executions of all statements tracked by pg_stat_statements.",
    kind: MetricKind::Counter,
};
pub static EXEC_SECONDS: MetricFamily = MetricFamily {
    name: "dbtool_statements_exec_seconds_total",
    help: "Execution time of all statements tracked by pg_stat_statements.",
    kind: MetricKind::Counter,
};
pub static ROWS: MetricFamily = MetricFamily {
    name: "dbtool_statements_rows_total",
    help: "Rows returned or affected by all statements tracked by pg_stat_statements.",
    kind: MetricKind::Counter,
};
pub static TRACKED: MetricFamily = MetricFamily {
    name: "dbtool_statements_tracked",
    help: "Distinct statements pg_stat_statements currently tracks.",
    kind: MetricKind::Gauge,
};

/// The extension is missing (undefined_table) or not preloaded (object_not_in_prerequisite_state).
fn is_missing_extension(f: &QueryFailure) -> bool {
    matches!(f.sqlstate.as_deref(), Some("42P01") | Some("55000")) && f.message.contains("pg_stat_statements")
}

/// Why there is nothing to show, when pg_stat_statements cannot be read.
fn not_available(ctx: &EvalContext<'_>) -> Result<Option<String>, EvalError> {
    let q = &EXTENSIONS;
    let failure = ctx
        .outcomes
        .get(TOP_QUERIES.name)
        .and_then(|o| o.failures.iter().find(|f| is_missing_extension(f)));
    let Some(failure) = failure else { return Ok(None) };
    let installed = ctx
        .rows(q)
        .iter()
        .find(|r| r.str("extname").ok() == Some("pg_stat_statements"));
    Ok(Some(match installed {
        None => "pg_stat_statements is not installed in this database: add it to shared_preload_libraries \
                 and CREATE EXTENSION pg_stat_statements to see top queries"
            .to_string(),
        Some(r) if r.opt_bool("on_search_path").in_query(q)? == Some(false) => format!(
            "pg_stat_statements is installed in schema {}, which is not on dbtool's search_path",
            r.str("schemaname").in_query(q)?
        ),
        Some(_) => format!("pg_stat_statements cannot be read: {}", failure.message),
    }))
}

impl Check for TopQueries {
    fn name(&self) -> &'static str {
        "top_queries"
    }
    fn description(&self) -> &'static str {
        "Top statements by total execution time (pg_stat_statements, when installed)"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&EXTENSIONS, &TOP_QUERIES];
        L
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CALLS, &EXEC_SECONDS, &ROWS, &TRACKED];
        L
    }
    fn privilege(&self) -> &'static str {
        "pg_read_all_stats (part of pg_monitor)"
    }
    fn expected_failure(&self, failure: &QueryFailure) -> bool {
        is_missing_extension(failure)
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        if let Some(why) = not_available(ctx)? {
            out.findings
                .push(Finding::new(Severity::Ok, "pg_stat_statements", why.clone()));
            out.summary = "pg_stat_statements not available".into();
            return Ok(out);
        }
        let q = &TOP_QUERIES;
        let rows = ctx.rows(q);
        if let Some(r) = rows.first() {
            for (family, col) in [
                (&CALLS, "all_calls"),
                (&EXEC_SECONDS, "all_exec_seconds"),
                (&ROWS, "all_rows"),
                (&TRACKED, "statements"),
            ] {
                if let Some(v) = r.opt_f64(col).in_query(q)? {
                    out.samples.push(Sample::new(family, v));
                }
            }
        }
        let mut shown = 0;
        for r in rows.iter().take(ctx.top_n) {
            // The totals row of an empty pg_stat_statements has no statement.
            let Some(total) = r.opt_f64("total_seconds").in_query(q)? else {
                continue;
            };
            shown += 1;
            out.findings.push(
                Finding::new(
                    Severity::Ok,
                    format!("queryid {}", r.opt_str("queryid").in_query(q)?.unwrap_or("?")),
                    format!(
                        "{total:.3}s total, {} calls, {} ms mean, {} rows; db {}, user {}: {}",
                        figure(r.opt_f64("calls").in_query(q)?, 0),
                        // NULL when calls is 0: there is no mean, not a mean of 0.
                        figure(r.opt_f64("mean_ms").in_query(q)?, 3),
                        figure(r.opt_f64("rows").in_query(q)?, 0),
                        r.opt_str("datname").in_query(q)?.unwrap_or("?"),
                        r.opt_str("rolname").in_query(q)?.unwrap_or("?"),
                        r.opt_str("query").in_query(q)?.unwrap_or("")
                    ),
                )
                .with_value(total),
            );
        }
        let tracked = match rows.first() {
            Some(r) => r.opt_f64("all_exec_seconds").in_query(q)?,
            None => None,
        };
        out.summary = format!(
            "{shown} top statement(s) shown; {}s execution time tracked",
            figure(tracked, 1)
        );
        Ok(out)
    }
}

/// A figure with `digits` decimals, or "?" when the server did not give one.
fn figure(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "?".to_string(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
mod tests {
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
            ("query", Some("SELECT $1")),
        ])
    }

    #[test]
    fn top_statements_and_counters_without_query_labels() {
        let out = eval(
            &TopQueries,
            vec![
                outcome(&EXTENSIONS, vec![]),
                outcome(&TOP_QUERIES, vec![top(Some("42"), Some("1.2"))]),
            ],
        );
        assert_eq!(out.findings.len(), 1);
        assert!(out.findings[0].message.contains("SELECT $1"));
        assert!(out.samples.iter().all(|s| s.labels.is_empty()));
        assert_eq!(out.samples.len(), 4);
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
}

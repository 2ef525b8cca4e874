//! The statements with the most total execution time, from pg_stat_statements when it is
//! installed in the connected database. The ranking and the totals never read query texts
//! (`showtext := false`); a table or JSON report then fetches the texts of the top statements
//! only. Text is never a metric label (unbounded cardinality): Prometheus gets aggregate
//! counters and the top statements' time by queryid.

use std::collections::{BTreeMap, HashMap};

use super::plan::Plan;
use super::{Check, CheckOutput, EvalContext, EvalError, FollowUp, Query, QueryFailure, QueryOutcome, RowContext};

use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(EXTENSIONS, "extensions", Cluster, [0 => "extensions.sql"]);
query!(TOP_QUERIES, "top_queries", Cluster, [0 => "top_queries.sql"]);
// Not among `queries()`: a follow-up, with the top statements' queryids filled in.
query!(TOP_QUERY_TEXTS, "top_query_texts", Cluster, [0 => "top_query_texts.sql"]);

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
pub static TOP_EXEC_SECONDS: MetricFamily = MetricFamily {
    name: "dbtool_statement_top_exec_seconds_total",
    help: "Execution time of each of the top statements (--top), by queryid; no query text.",
    kind: MetricKind::Counter,
};
pub static TRACKED: MetricFamily = MetricFamily {
    name: "dbtool_statements_tracked",
    help: "Distinct statements pg_stat_statements currently tracks.",
    kind: MetricKind::Gauge,
};

/// The extension is missing (undefined_function, undefined_table) or not preloaded
/// (object_not_in_prerequisite_state).
fn is_missing_extension(f: &QueryFailure) -> bool {
    matches!(f.sqlstate.as_deref(), Some("42883") | Some("42P01") | Some("55000"))
        && f.message.contains("pg_stat_statements")
}

/// The queryids of the `top_n` statements, as the server gave them (bigint), for the text query.
fn top_queryids(rows: &[crate::db::row::Row], top_n: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.opt_i64("queryid").ok().flatten())
        .take(top_n)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The top statements' texts by queryid, and why there are none when the text query failed.
fn texts<'a>(ctx: &'a EvalContext<'_>) -> (HashMap<&'a str, &'a str>, Option<&'a str>) {
    let Some(o) = ctx.outcomes.get(TOP_QUERY_TEXTS.name) else {
        return (HashMap::new(), None);
    };
    let by_id = o
        .rows
        .iter()
        .filter_map(|r| Some((r.opt_str("queryid").ok()??, r.opt_str("query").ok()??)))
        .collect();
    (by_id, o.failures.first().map(|f| f.message.as_str()))
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
        static L: &[&MetricFamily] = &[&CALLS, &EXEC_SECONDS, &ROWS, &TRACKED, &TOP_EXEC_SECONDS];
        L
    }
    fn privilege(&self) -> &'static str {
        "pg_read_all_stats (part of pg_monitor)"
    }
    fn expected_failure(&self, failure: &QueryFailure) -> bool {
        is_missing_extension(failure)
    }
    fn follow_up(&self, outcomes: &BTreeMap<&'static str, QueryOutcome>, plan: &Plan) -> Option<FollowUp> {
        if !plan.query_texts {
            return None;
        }
        let ids = top_queryids(&outcomes.get(TOP_QUERIES.name)?.rows, plan.top_n);
        if ids.is_empty() {
            return None;
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let sql = TOP_QUERY_TEXTS
            .sql_for(0)
            .ok()?
            .replace(":queryids", &format!("{{{}}}", list.join(",")));
        Some(FollowUp {
            name: TOP_QUERY_TEXTS.name,
            sql,
        })
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
        let (texts, texts_failed) = texts(ctx);
        let mut shown = 0;
        for r in rows.iter().take(ctx.top_n) {
            // The totals row of an empty pg_stat_statements has no statement.
            let Some(total) = r.opt_f64("total_seconds").in_query(q)? else {
                continue;
            };
            shown += 1;
            let queryid = r.opt_str("queryid").in_query(q)?.unwrap_or("?");
            let (db, user) = (
                r.opt_str("datname").in_query(q)?.unwrap_or("?"),
                r.opt_str("rolname").in_query(q)?.unwrap_or("?"),
            );
            out.samples.push(
                Sample::new(&TOP_EXEC_SECONDS, total)
                    .label("queryid", queryid)
                    .label("database", db)
                    .label("user", user),
            );
            let text = texts.get(queryid).map_or(String::new(), |t| format!(": {t}"));
            out.findings.push(
                Finding::new(
                    Severity::Ok,
                    format!("queryid {queryid}"),
                    format!(
                        "{total:.3}s total, {} calls, {} ms mean, {} rows; db {db}, user {user}{text}",
                        figure(r.opt_f64("calls").in_query(q)?, 0),
                        // NULL when calls is 0: there is no mean, not a mean of 0.
                        figure(r.opt_f64("mean_ms").in_query(q)?, 3),
                        figure(r.opt_f64("rows").in_query(q)?, 0),
                    ),
                )
                .with_value(total),
            );
        }
        out.summary = summary(rows.first(), shown, texts_failed).in_query(q)?;
        Ok(out)
    }
}

/// The summary line: what was shown, the time tracked, whose statements were left out.
fn summary(
    first: Option<&crate::db::row::Row>,
    shown: usize,
    texts_failed: Option<&str>,
) -> Result<String, crate::db::row::RowError> {
    let mut line = format!("{shown} top statement(s) shown");
    let Some(r) = first else { return Ok(line) };
    line += &format!(
        "; {}s execution time tracked",
        figure(r.opt_f64("all_exec_seconds")?, 1)
    );
    let role = r.opt_str("own_role")?.unwrap_or("?");
    line += &match r.opt_bool("own_excluded")? {
        Some(true) => format!("; statements of role {role} (dbtool's own) not counted"),
        _ => format!(
            "; dbtool's own statements are counted: it connects as superuser {role} (give it a pg_monitor role of its own)"
        ),
    };
    if let Some(why) = texts_failed {
        line += &format!("; texts not read: {why}");
    }
    Ok(line)
}

/// A figure with `digits` decimals, or "?" when the server did not give one.
fn figure(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "?".to_string(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
#[path = "top_queries_tests.rs"]
mod tests;

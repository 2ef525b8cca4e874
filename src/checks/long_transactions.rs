//! Long-running queries and sessions idle in transaction (client backends, not dbtool's own).

use super::shared::ACTIVITY;
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

pub struct LongTransactions;

pub static LONGEST_QUERY: MetricFamily = MetricFamily {
    name: "dbtool_longest_query_seconds",
    help: "Age of the longest-running active query of a client backend (0 when none).",
    kind: MetricKind::Gauge,
};
pub static LONGEST_XACT: MetricFamily = MetricFamily {
    name: "dbtool_longest_transaction_seconds",
    help: "Age of the oldest open transaction of a client backend (0 when none).",
    kind: MetricKind::Gauge,
};
pub static LONGEST_IDLE: MetricFamily = MetricFamily {
    name: "dbtool_longest_idle_in_transaction_seconds",
    help: "Longest time a session has sat idle in transaction (0 when none).",
    kind: MetricKind::Gauge,
};
pub static SLOW_QUERIES: MetricFamily = MetricFamily {
    name: "dbtool_long_queries",
    help: "Active queries running longer than the warning threshold.",
    kind: MetricKind::Gauge,
};
pub static IDLE_SESSIONS: MetricFamily = MetricFamily {
    name: "dbtool_idle_in_transaction_sessions",
    help: "Sessions idle in transaction longer than the idle warning threshold.",
    kind: MetricKind::Gauge,
};

struct Offender {
    severity: Severity,
    seconds: f64,
    finding: Finding,
}

impl Check for LongTransactions {
    fn name(&self) -> &'static str {
        "long_transactions"
    }
    fn description(&self) -> &'static str {
        "Queries running too long and sessions idle in transaction"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&ACTIVITY];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "query_warning_seconds",
            critical: "query_critical_seconds",
            family: &LONGEST_QUERY,
            scale: 1.0,
            uom: "s",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "query_warning_seconds",
                default: 120.0,
                help: "an active query has run this long",
            },
            ThresholdSpec {
                key: "query_critical_seconds",
                default: 600.0,
                help: "an active query has run this long",
            },
            ThresholdSpec {
                key: "idle_warning_seconds",
                default: 300.0,
                help: "a session has been idle in transaction this long",
            },
            ThresholdSpec {
                key: "idle_critical_seconds",
                default: 0.0,
                help: "a session has been idle in transaction this long (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &LONGEST_QUERY,
            &LONGEST_XACT,
            &LONGEST_IDLE,
            &SLOW_QUERIES,
            &IDLE_SESSIONS,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let (qw, qc) = (t.get("query_warning_seconds"), t.get("query_critical_seconds"));
        let (iw, ic) = (t.get("idle_warning_seconds"), t.get("idle_critical_seconds"));
        let q = &ACTIVITY;
        let (mut longest_query, mut longest_xact, mut longest_idle) = (0f64, 0f64, 0f64);
        let (mut slow, mut idle) = (0u32, 0u32);
        let mut offenders = Vec::new();
        for row in ctx.rows(q) {
            if row.str("backend_type").in_query(q)? != "client backend" || row.bool("is_self").in_query(q)? {
                continue;
            }
            let state = row.opt_str("state").in_query(q)?.unwrap_or("");
            longest_xact = longest_xact.max(row.opt_f64("xact_seconds").in_query(q)?.unwrap_or(0.0));
            let (seconds, kind, sev) = match state {
                "active" => {
                    let s = row.opt_f64("query_seconds").in_query(q)?.unwrap_or(0.0);
                    longest_query = longest_query.max(s);
                    (s, "running a query for", Severity::above(s, qw, qc))
                }
                "idle in transaction" | "idle in transaction (aborted)" => {
                    let s = row.opt_f64("state_seconds").in_query(q)?.unwrap_or(0.0);
                    longest_idle = longest_idle.max(s);
                    (s, "idle in transaction for", Severity::above(s, iw, ic))
                }
                _ => continue,
            };
            if sev == Severity::Ok {
                continue;
            }
            if kind.starts_with("running") {
                slow += 1
            } else {
                idle += 1
            }
            let pid = row.i64("pid").in_query(q)?;
            let message = format!(
                "pid {pid} (user {}, db {}, application '{}') {state}: {kind} {}: {}",
                row.str("usename").in_query(q)?,
                row.str("datname").in_query(q)?,
                row.str("application_name").in_query(q)?,
                human_secs(seconds),
                row.opt_str("query").in_query(q)?.unwrap_or("").replace('\n', " "),
            );
            offenders.push(Offender {
                severity: sev,
                seconds,
                finding: Finding::new(sev, format!("pid {pid}"), message).with_value(seconds),
            });
        }
        offenders.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        let mut out = CheckOutput {
            summary: format!(
                "longest query {}, longest idle in transaction {}",
                human_secs(longest_query),
                human_secs(longest_idle)
            ),
            ..Default::default()
        };
        let worst = offenders.iter().fold(Severity::Ok, |w, o| w.worst(o.severity));
        out.findings = offenders.into_iter().take(ctx.top_n).map(|o| o.finding).collect();
        if worst != Severity::Ok {
            out.summary = format!("{slow} long running, {idle} idle in transaction; {}", out.summary);
        }
        out.samples = vec![
            Sample::new(&LONGEST_QUERY, longest_query),
            Sample::new(&LONGEST_XACT, longest_xact),
            Sample::new(&LONGEST_IDLE, longest_idle),
            Sample::new(&SLOW_QUERIES, f64::from(slow)),
            Sample::new(&IDLE_SESSIONS, f64::from(idle)),
        ];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn a(pid: &str, ty: &str, state: Option<&str>, q: &str, st: &str, is_self: &str) -> Row {
        Row::from_pairs(&[
            ("pid", Some(pid)),
            ("usename", Some("app")),
            ("datname", Some("chat")),
            ("application_name", Some("")),
            ("backend_type", Some(ty)),
            ("state", state),
            ("xact_seconds", Some(q)),
            ("query_seconds", Some(q)),
            ("state_seconds", Some(st)),
            ("query", Some("SELECT\n1")),
            ("is_self", Some(is_self)),
        ])
    }

    #[test]
    fn flags_long_queries_and_idle_transactions_but_not_self_or_workers() {
        let rows = vec![
            a("1", "client backend", Some("active"), "700", "700", "f"),
            a("2", "client backend", Some("idle in transaction"), "400", "350", "f"),
            a("3", "client backend", Some("active"), "9000", "9000", "t"),
            a("4", "autovacuum worker", Some("active"), "9000", "9000", "f"),
            a("5", "client backend", None, "9000", "9000", "f"),
        ];
        let out = eval(&LongTransactions, vec![outcome(&ACTIVITY, rows)]);
        let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
        assert_eq!(sev, vec![Severity::Critical, Severity::Warning]);
        assert!(!out.findings[0].message.contains('\n'));
        let idle = out.samples.iter().find(|s| s.family.name == LONGEST_IDLE.name);
        assert_eq!(idle.map(|s| s.value), Some(350.0));
    }
}

//! PgBouncer traffic per database (SHOW STATS): transactions, queries, bytes and the time
//! spent in them or waiting for a server, as counters (`--state` turns them into rates), and
//! PgBouncer's own averages over its `stats_period`.

use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MetricFamily, Sample, Severity};

crate::query!(STATS, "pgbouncer_stats", Cluster, [0 => "pgbouncer_stats.sql"]);

family!(
    XACTS,
    Counter,
    "dbtool_pgbouncer_transactions_total",
    "Transactions pooled (total_xact_count)."
);
family!(
    QUERIES,
    Counter,
    "dbtool_pgbouncer_queries_total",
    "Queries pooled (total_query_count)."
);
family!(
    XACT_SECONDS,
    Counter,
    "dbtool_pgbouncer_transaction_seconds_total",
    "Time spent in transactions, as clients see it (total_xact_time)."
);
family!(
    QUERY_SECONDS,
    Counter,
    "dbtool_pgbouncer_query_seconds_total",
    "Time spent in queries (total_query_time)."
);
family!(
    WAIT_SECONDS,
    Counter,
    "dbtool_pgbouncer_client_wait_seconds_total",
    "Time clients spent waiting for a server (total_wait_time)."
);
family!(
    RECEIVED,
    Counter,
    "dbtool_pgbouncer_received_bytes_total",
    "Bytes received from clients (total_received)."
);
family!(
    SENT,
    Counter,
    "dbtool_pgbouncer_sent_bytes_total",
    "Bytes sent to clients (total_sent)."
);
family!(
    AVG_XACT,
    Gauge,
    "dbtool_pgbouncer_average_transaction_seconds",
    "Mean transaction time over PgBouncer's last stats_period (avg_xact_time)."
);
family!(
    AVG_QUERY,
    Gauge,
    "dbtool_pgbouncer_average_query_seconds",
    "Mean query time over PgBouncer's last stats_period (avg_query_time)."
);
family!(
    AVG_WAIT,
    Gauge,
    "dbtool_pgbouncer_average_wait_seconds",
    "Mean time a client waited for a server over PgBouncer's last stats_period (avg_wait_time)."
);

pub struct PgbouncerStats;

/// (column, family, divisor into the family's unit)
const COLUMNS: &[(&str, &MetricFamily, f64)] = &[
    ("total_xact_count", &XACTS, 1.0),
    ("total_query_count", &QUERIES, 1.0),
    ("total_xact_time", &XACT_SECONDS, 1e6),
    ("total_query_time", &QUERY_SECONDS, 1e6),
    ("total_wait_time", &WAIT_SECONDS, 1e6),
    ("total_received", &RECEIVED, 1.0),
    ("total_sent", &SENT, 1.0),
    ("avg_xact_time", &AVG_XACT, 1e6),
    ("avg_query_time", &AVG_QUERY, 1e6),
    ("avg_wait_time", &AVG_WAIT, 1e6),
];

impl Check for PgbouncerStats {
    fn name(&self) -> &'static str {
        "pgbouncer_stats"
    }
    fn description(&self) -> &'static str {
        "PgBouncer: transactions, queries and client wait time per database"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Pgbouncer
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&STATS];
        L
    }
    fn privilege(&self) -> &'static str {
        super::pgbouncer_pools::PRIVILEGE
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "avg_wait_warning",
                default: 0.5,
                help: "mean seconds a client waited for a server over PgBouncer's stats_period",
            },
            ThresholdSpec {
                key: "avg_wait_critical",
                default: 0.0,
                help: "mean seconds a client waited for a server (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &XACTS,
            &QUERIES,
            &XACT_SECONDS,
            &QUERY_SECONDS,
            &WAIT_SECONDS,
            &RECEIVED,
            &SENT,
            &AVG_XACT,
            &AVG_QUERY,
            &AVG_WAIT,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let q = &STATS;
        let mut out = CheckOutput::default();
        let (mut xacts, mut worst) = (0.0, 0.0f64);
        for r in ctx.rows(q) {
            let db = r.str("database").in_query(q)?;
            for (column, family, divisor) in COLUMNS {
                let v = r.f64(column).in_query(q)? / divisor;
                out.samples.push(Sample::new(family, v).label("database", db));
            }
            xacts += r.f64("total_xact_count").in_query(q)?;
            let wait = r.f64("avg_wait_time").in_query(q)? / 1e6;
            worst = worst.max(wait);
            let sev = Severity::above(wait, t.get("avg_wait_warning"), t.get("avg_wait_critical"));
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(
                        sev,
                        format!("database {db}"),
                        format!("clients waited {wait:.3}s on average for a server over PgBouncer's stats_period"),
                    )
                    .with_value(wait),
                );
            }
        }
        out.summary = format!("{xacts} transactions since start; mean wait for a server {worst:.3}s at most");
        Ok(out)
    }
}

//! Per-database activity counters (commits, rollbacks, deadlocks, conflicts, temp files,
//! rows) and sizes, and the tables read most by sequential scans. Deadlocks are judged
//! against the previous run by `--state` (see `checks::state`), not here: a lifetime count
//! alone says nothing about now.

use super::shared::{table_object, DATABASES, TABLES};
use crate::query;

query!(DATABASE_SIZE, "database_size", EachDatabase, [0 => "database_size.sql"]);
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext};
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample};

pub struct DatabaseActivity;

macro_rules! counter {
    ($ident:ident, $name:literal, $help:literal) => {
        pub static $ident: MetricFamily = MetricFamily {
            name: $name,
            help: $help,
            kind: MetricKind::Counter,
        };
    };
}

counter!(
    COMMITS,
    "dbtool_database_xact_commit_total",
    "Transactions committed in the database."
);
counter!(
    ROLLBACKS,
    "dbtool_database_xact_rollback_total",
    "Transactions rolled back in the database."
);
counter!(
    DEADLOCKS,
    "dbtool_database_deadlocks_total",
    "Deadlocks detected in the database."
);
counter!(
    CONFLICTS,
    "dbtool_database_conflicts_total",
    "Queries cancelled by recovery conflicts (standbys)."
);
counter!(
    TEMP_FILES,
    "dbtool_database_temp_files_total",
    "Temporary files created by queries."
);
counter!(
    TEMP_BYTES,
    "dbtool_database_temp_bytes_total",
    "Bytes written to temporary files by queries."
);
counter!(
    TUPLES,
    "dbtool_database_tuples_total",
    "Rows returned, fetched, inserted, updated, deleted (op label)."
);
counter!(
    SEQ_SCANS,
    "dbtool_table_seq_scan_total",
    "Sequential scans of the tables read most that way (top N)."
);
counter!(
    SEQ_ROWS,
    "dbtool_table_seq_tup_read_total",
    "Rows read by sequential scans of those tables (top N)."
);
counter!(
    IDX_SCANS,
    "dbtool_table_idx_scan_total",
    "Index scans of those tables (top N)."
);
pub static SIZE: MetricFamily = MetricFamily {
    name: "dbtool_database_size_bytes",
    help: "Size of the database estimated from pg_class.relpages (as of the last VACUUM/ANALYZE).",
    kind: MetricKind::Gauge,
};

/// Column → (family, op label) for the per-database counters.
const DB_COUNTERS: &[(&str, &MetricFamily, Option<&str>)] = &[
    ("xact_commit", &COMMITS, None),
    ("xact_rollback", &ROLLBACKS, None),
    ("deadlocks", &DEADLOCKS, None),
    ("conflicts", &CONFLICTS, None),
    ("temp_files", &TEMP_FILES, None),
    ("temp_bytes", &TEMP_BYTES, None),
    ("tup_returned", &TUPLES, Some("returned")),
    ("tup_fetched", &TUPLES, Some("fetched")),
    ("tup_inserted", &TUPLES, Some("inserted")),
    ("tup_updated", &TUPLES, Some("updated")),
    ("tup_deleted", &TUPLES, Some("deleted")),
];

fn databases(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<(f64, f64), EvalError> {
    let q = &DATABASES;
    let (mut deadlocks, mut size) = (0.0, 0.0);
    for r in ctx.rows(q) {
        let db = r.str("datname").in_query(q)?;
        for (column, family, op) in DB_COUNTERS {
            let Some(v) = r.opt_f64(column).in_query(q)? else {
                continue;
            };
            if *column == "deadlocks" {
                deadlocks += v;
            }
            let mut s = Sample::new(family, v).label("database", db);
            if let Some(op) = op {
                s = s.label("op", *op);
            }
            out.samples.push(s);
        }
    }
    let q = &DATABASE_SIZE;
    for r in ctx.rows(q) {
        if let Some(b) = r.opt_f64("size_bytes").in_query(q)? {
            size += b;
            out.samples
                .push(Sample::new(&SIZE, b).label("database", r.str("datname").in_query(q)?));
        }
    }
    Ok((deadlocks, size))
}

struct Scans {
    db: String,
    schema: String,
    table: String,
    seq: f64,
    seq_rows: f64,
    idx: Option<f64>,
    bytes: f64,
}

/// Tables whose sequential scans read the most rows: where an index is probably missing.
fn seq_scanned(ctx: &EvalContext<'_>) -> Result<Vec<Scans>, EvalError> {
    let q = &TABLES;
    let mut out = Vec::new();
    for r in ctx.rows(q) {
        let (Some(seq), Some(seq_rows)) = (
            r.opt_f64("seq_scan").in_query(q)?,
            r.opt_f64("seq_tup_read").in_query(q)?,
        ) else {
            continue;
        };
        if seq_rows <= 0.0 {
            continue;
        }
        out.push(Scans {
            db: r.str("datname").in_query(q)?.to_string(),
            schema: r.str("schemaname").in_query(q)?.to_string(),
            table: r.str("relname").in_query(q)?.to_string(),
            seq,
            seq_rows,
            idx: r.opt_f64("idx_scan").in_query(q)?,
            bytes: r.opt_f64("heap_bytes").in_query(q)?.unwrap_or(0.0),
        });
    }
    out.sort_by(|a, b| b.seq_rows.total_cmp(&a.seq_rows));
    Ok(out)
}

impl Check for DatabaseActivity {
    fn name(&self) -> &'static str {
        "database_activity"
    }
    fn description(&self) -> &'static str {
        "Per database: commits, rollbacks, deadlocks, conflicts, temp files, rows, size; most seq-scanned tables"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&DATABASES, &TABLES, &DATABASE_SIZE];
        L
    }
    // Its counters feed rates over 10 minutes or more (the deadlock rule's `increase(..[10m])`).
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &COMMITS,
            &ROLLBACKS,
            &DEADLOCKS,
            &CONFLICTS,
            &TEMP_FILES,
            &TEMP_BYTES,
            &TUPLES,
            &SIZE,
            &SEQ_SCANS,
            &SEQ_ROWS,
            &IDX_SCANS,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let (deadlocks, size) = databases(ctx, &mut out)?;
        for t in seq_scanned(ctx)?.iter().take(ctx.top_n) {
            let lbl = |s: Sample| {
                s.label("database", t.db.as_str())
                    .label("schema", t.schema.as_str())
                    .label("table", t.table.as_str())
            };
            out.samples.push(lbl(Sample::new(&SEQ_SCANS, t.seq)));
            out.samples.push(lbl(Sample::new(&SEQ_ROWS, t.seq_rows)));
            if let Some(i) = t.idx {
                out.samples.push(lbl(Sample::new(&IDX_SCANS, i)));
            }
            out.findings.push(
                Finding::new(
                    crate::report::finding::Severity::Ok,
                    table_object(&t.db, &t.schema, &t.table),
                    format!(
                        "{:.0} sequential scans read {:.0} rows ({:.1} MB table); index scans: {}",
                        t.seq,
                        t.seq_rows,
                        t.bytes / 1e6,
                        t.idx
                            .map_or_else(|| "none possible (no index)".into(), |i| format!("{i:.0}"))
                    ),
                )
                .with_value(t.seq_rows),
            );
        }
        out.summary = format!(
            "{} database(s), {:.1} MB in those visited; {deadlocks} deadlocks since statistics reset",
            ctx.rows(&DATABASES).len(),
            size / 1e6
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;
    use crate::report::finding::Severity;

    fn db(name: &str, deadlocks: Option<&str>) -> Row {
        let mut pairs: Vec<(&str, Option<&str>)> = DB_COUNTERS.iter().map(|(c, _, _)| (*c, Some("1"))).collect();
        pairs.retain(|(c, _)| *c != "deadlocks");
        pairs.extend([("datname", Some(name)), ("deadlocks", deadlocks)]);
        Row::from_pairs(&pairs)
    }

    fn table(name: &str, seq_rows: Option<&str>, idx: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("relname", Some(name)),
            ("seq_scan", Some("3")),
            ("seq_tup_read", seq_rows),
            ("idx_scan", idx),
            ("heap_bytes", Some("8192")),
        ])
    }

    #[test]
    fn counters_per_database_and_worst_seq_scanned_tables_first() {
        let out = eval(
            &DatabaseActivity,
            vec![
                outcome(&DATABASES, vec![db("app", Some("4")), db("other", None)]),
                outcome(
                    &DATABASE_SIZE,
                    vec![Row::from_pairs(&[("datname", Some("app")), ("size_bytes", None)])],
                ),
                outcome(
                    &TABLES,
                    vec![
                        table("small", Some("10"), Some("5")),
                        table("big", Some("1000"), None),
                        table("none", None, None),
                    ],
                ),
            ],
        );
        let deadlocks: Vec<f64> = out
            .samples
            .iter()
            .filter(|s| s.family.name == DEADLOCKS.name)
            .map(|s| s.value)
            .collect();
        assert_eq!(deadlocks, vec![4.0]);
        assert_eq!(out.findings.len(), 2);
        assert_eq!(out.findings[0].object, "app.public.big");
        assert!(out.findings.iter().all(|f| f.severity == Severity::Ok));
        assert!(out.summary.contains("4 deadlocks"), "{}", out.summary);
    }
}

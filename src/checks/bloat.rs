//! Table and B-tree index bloat, estimated from planner statistics (no pgstattuple scan):
//! WARNING when an object is both mostly bloat and big in absolute terms.

use super::shared::table_object;
use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(BLOAT_TABLES, "bloat_tables", EachDatabase, [0 => "bloat_tables.sql"]);
query!(BLOAT_INDEXES, "bloat_indexes", EachDatabase, [0 => "bloat_indexes.sql"]);

pub struct Bloat;

pub static BLOAT_BYTES: MetricFamily = MetricFamily {
    name: "dbtool_bloat_bytes",
    help: "Estimated wasted bytes of the most bloated tables and indexes (kind label), top N.",
    kind: MetricKind::Gauge,
};
pub static BLOAT_RATIO: MetricFamily = MetricFamily {
    name: "dbtool_bloat_ratio",
    help: "Estimated share of the object that is bloat, for the same objects.",
    kind: MetricKind::Gauge,
};
pub static DB_BLOAT: MetricFamily = MetricFamily {
    name: "dbtool_database_bloat_bytes",
    help: "Estimated wasted bytes per database and kind (table, index), objects of 1 MB and more.",
    kind: MetricKind::Gauge,
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const HIDDEN_FIX: &str = "grant SELECT on them, or pg_read_all_data (PostgreSQL 14+); pg_monitor alone is not enough";

struct Bloated {
    kind: &'static str,
    db: String,
    schema: String,
    table: String,
    index: Option<String>,
    bytes: f64,
    share: f64,
    real: f64,
}

/// Objects of 1 MB+ per database whose statistics this role may not read: not estimated.
type Hidden = std::collections::BTreeMap<String, u64>;

fn read(
    ctx: &EvalContext<'_>,
    q: &'static Query,
    kind: &'static str,
    out: &mut Vec<Bloated>,
    hidden: &mut Hidden,
) -> Result<(), EvalError> {
    for r in ctx.rows(q) {
        // Estimates built on missing statistics are noise, not findings; but statistics the
        // role may not see are said, or pg_monitor alone would get "OK, 0 objects".
        if r.opt_bool("is_na").in_query(q)? != Some(false) {
            if r.opt_bool("stats_hidden").in_query(q)? == Some(true) {
                *hidden.entry(r.str("datname").in_query(q)?.to_string()).or_default() += 1;
            }
            continue;
        }
        let (Some(bytes), Some(share)) = (
            r.opt_f64("bloat_bytes").in_query(q)?,
            r.opt_f64("bloat_share").in_query(q)?,
        ) else {
            continue;
        };
        out.push(Bloated {
            kind,
            db: r.str("datname").in_query(q)?.to_string(),
            schema: r.str("schemaname").in_query(q)?.to_string(),
            table: r.str("tablename").in_query(q)?.to_string(),
            index: r.opt_str("indexname").ok().flatten().map(str::to_string),
            // The estimate goes below zero for an object denser than its model (fresh, or
            // fillfactor 100): no bloat, never "-0.0 MB".
            bytes: not_negative(bytes),
            share: not_negative(share),
            real: r.opt_f64("real_bytes").in_query(q)?.unwrap_or(0.0),
        });
    }
    Ok(())
}

fn not_negative(v: f64) -> f64 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

impl Check for Bloat {
    fn name(&self) -> &'static str {
        "bloat"
    }
    fn description(&self) -> &'static str {
        "Estimated table and index bloat from statistics (no scan)"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&BLOAT_TABLES, &BLOAT_INDEXES];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning",
                default: 50.0,
                help: "percentage of an object that is bloat (and warning_gib wasted)",
            },
            ThresholdSpec {
                key: "warning_gib",
                default: 1.0,
                help: "GiB wasted by an object (and warning percent)",
            },
        ]
    }
    // The estimates change only when ANALYZE or VACUUM rewrites the statistics they read.
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(15 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&BLOAT_BYTES, &BLOAT_RATIO, &DB_BLOAT];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let (mut all, mut hidden) = (Vec::new(), Hidden::new());
        read(ctx, &BLOAT_TABLES, "table", &mut all, &mut hidden)?;
        read(ctx, &BLOAT_INDEXES, "index", &mut all, &mut hidden)?;
        all.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
        let mut out = CheckOutput::default();
        let mut totals: std::collections::BTreeMap<(&str, &str), f64> = Default::default();
        for b in &all {
            *totals.entry((b.db.as_str(), b.kind)).or_default() += b.bytes;
        }
        for ((db, kind), v) in &totals {
            out.samples
                .push(Sample::new(&DB_BLOAT, *v).label("database", *db).label("kind", *kind));
        }
        let (warn, warn_bytes) = (
            ctx.thresholds.get("warning") / 100.0,
            ctx.thresholds.get("warning_gib") * GIB,
        );
        for b in all.iter().take(ctx.top_n) {
            let lbl = |s: Sample| {
                let s = s
                    .label("database", b.db.as_str())
                    .label("schema", b.schema.as_str())
                    .label("table", b.table.as_str())
                    .label("kind", b.kind);
                s.label("index", b.index.clone().unwrap_or_default())
            };
            out.samples.push(lbl(Sample::new(&BLOAT_BYTES, b.bytes)));
            out.samples.push(lbl(Sample::new(&BLOAT_RATIO, b.share)));
            let bad = b.share >= warn && b.bytes >= warn_bytes;
            let name = match &b.index {
                Some(i) => format!("index {}.{i} on {}", b.schema, b.table),
                None => format!("table {}.{}", b.schema, b.table),
            };
            // Below half the warning share it is ordinary free space, not worth a line.
            if bad || b.share >= warn / 2.0 {
                out.findings.push(
                    Finding::new(
                        if bad { Severity::Warning } else { Severity::Ok },
                        table_object(&b.db, &b.schema, b.index.as_deref().unwrap_or(&b.table)),
                        format!(
                            "{name}: about {:.1} MB of {:.1} MB ({}) is bloat{}",
                            b.bytes / 1048576.0,
                            b.real / 1048576.0,
                            pct(b.share),
                            if bad {
                                "; VACUUM FULL, pg_repack or REINDEX CONCURRENTLY reclaims it"
                            } else {
                                ""
                            }
                        ),
                    )
                    .with_value(b.bytes),
                );
            }
        }
        let wasted: f64 = totals.values().sum();
        out.summary = format!(
            "about {:.1} MB estimated bloat in {} object(s) of 1 MB+",
            wasted / 1048576.0,
            all.len()
        );
        let not_estimated: u64 = hidden.values().sum();
        if not_estimated > 0 {
            out.summary += &format!("; {not_estimated} not estimated: statistics hidden from this role");
        }
        // Judged nothing at all: UNKNOWN, not a reassuring OK. Judged some: a note.
        let severity = if all.is_empty() {
            Severity::Unknown
        } else {
            Severity::Ok
        };
        for (db, n) in &hidden {
            out.findings.push(Finding::new(
                severity,
                format!("database {db}"),
                format!("{n} table(s) or index(es) of 1 MB+ not estimated: pg_stats hides the statistics of tables this role may not SELECT; {HIDDEN_FIX}"),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn row(table: &str, index: Option<&str>, bytes: &str, share: &str, na: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("tablename", Some(table)),
            ("indexname", index),
            ("real_bytes", Some("4000000000")),
            ("bloat_bytes", Some(bytes)),
            ("bloat_share", Some(share)),
            ("is_na", na),
            ("stats_hidden", Some("f")),
        ])
    }

    fn hidden(table: &str) -> Row {
        Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("tablename", Some(table)),
            ("real_bytes", Some("4000000")),
            ("bloat_bytes", None),
            ("bloat_share", None),
            ("is_na", Some("t")),
            ("stats_hidden", Some("t")),
        ])
    }

    #[test]
    fn statistics_hidden_from_the_role_are_said_unknown_when_nothing_was_judged() {
        let out = eval(
            &Bloat,
            vec![
                outcome(&BLOAT_TABLES, vec![hidden("a"), hidden("b")]),
                outcome(&BLOAT_INDEXES, vec![]),
            ],
        );
        let sev: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(sev, vec![(Severity::Unknown, "database app")]);
        assert!(
            out.findings[0].message.starts_with("2 table(s)"),
            "{}",
            out.findings[0].message
        );
        assert!(out.summary.contains("2 not estimated"), "{}", out.summary);
        let out = eval(
            &Bloat,
            vec![
                outcome(
                    &BLOAT_TABLES,
                    vec![hidden("a"), row("seen", None, "1000", "0.01", Some("f"))],
                ),
                outcome(&BLOAT_INDEXES, vec![]),
            ],
        );
        let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
        assert_eq!(sev, vec![Severity::Ok], "a note when some objects were judged");
    }

    #[test]
    fn warns_only_when_both_share_and_size_are_high() {
        let gib2 = (2.0 * GIB).to_string();
        let out = eval(
            &Bloat,
            vec![
                outcome(
                    &BLOAT_TABLES,
                    vec![
                        row("big", None, &gib2, "0.6", Some("f")),
                        row("mostly_small", None, "1000000", "0.9", Some("f")),
                        row("ordinary_free_space", None, "5000000", "0.1", Some("f")),
                        row("no_stats", None, &gib2, "0.9", Some("t")),
                        row("null_na", None, &gib2, "0.9", None),
                    ],
                ),
                outcome(
                    &BLOAT_INDEXES,
                    vec![row("big", Some("big_pkey"), &gib2, "0.3", Some("f"))],
                ),
            ],
        );
        let sev: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(
            sev,
            vec![
                (Severity::Warning, "app.public.big"),
                (Severity::Ok, "app.public.big_pkey"),
                (Severity::Ok, "app.public.mostly_small"),
            ]
        );
    }

    /// Issue 13 item 10: a negative estimate printed "about -0.0 MB".
    #[test]
    fn a_negative_estimate_is_no_bloat() {
        let out = eval(
            &Bloat,
            vec![
                outcome(&BLOAT_TABLES, vec![row("dense", None, "-8192", "-0.002", Some("f"))]),
                outcome(
                    &BLOAT_INDEXES,
                    vec![row("dense", Some("dense_pkey"), "-40", "-0.6", Some("f"))],
                ),
            ],
        );
        assert!(out.summary.starts_with("about 0.0 MB"), "{}", out.summary);
        assert!(
            out.findings.iter().all(|f| !f.message.contains("-0")),
            "{:?}",
            out.findings
        );
        assert!(out.samples.iter().all(|s| s.value == 0.0 && s.value.is_sign_positive()));
    }
}

//! Indexes that cost without helping: invalid ones (a failed CREATE INDEX CONCURRENTLY),
//! large ones never scanned since the statistics were reset, and duplicates.

use std::collections::BTreeMap;

use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};

use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(INDEXES, "indexes", EachDatabase, [0 => "indexes.sql"], snapshot_stats);

pub struct Indexes;

pub static INVALID: MetricFamily = MetricFamily {
    name: "dbtool_indexes_invalid",
    help: "Invalid indexes (left by a failed CREATE INDEX CONCURRENTLY), per database.",
    kind: MetricKind::Gauge,
};
pub static UNUSED_BYTES: MetricFamily = MetricFamily {
    name: "dbtool_indexes_unused_bytes",
    help: "Size of indexes above the unused threshold never scanned since stats reset, per database.",
    kind: MetricKind::Gauge,
};
pub static DUPLICATE: MetricFamily = MetricFamily {
    name: "dbtool_indexes_duplicate",
    help: "Indexes that duplicate another index of the same table, per database.",
    kind: MetricKind::Gauge,
};

#[derive(Default)]
struct PerDb {
    invalid: f64,
    unused_bytes: f64,
    duplicate: f64,
}

struct Index<'a> {
    db: &'a str,
    table: String,
    name: String,
    bytes: f64,
}

impl Index<'_> {
    fn object(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }
}

impl Check for Indexes {
    fn name(&self) -> &'static str {
        "indexes"
    }
    fn description(&self) -> &'static str {
        "Invalid indexes, unused indexes above a size, duplicate indexes"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&INDEXES];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[ThresholdSpec {
            key: "unused_mb",
            default: 10.0,
            help: "report never-scanned indexes at least this big (MB; 1 at the least)",
        }]
    }
    // Invalid, unused and duplicate indexes change with DDL and slow usage counters.
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&INVALID, &UNUSED_BYTES, &DUPLICATE];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let q = &INDEXES;
        let unused_min = ctx.thresholds.get("unused_mb") * 1024.0 * 1024.0;
        let mut out = CheckOutput::default();
        let mut per_db: BTreeMap<&str, PerDb> = BTreeMap::new();
        let mut groups: BTreeMap<(&str, &str), Vec<Index<'_>>> = BTreeMap::new();
        let mut unused = Vec::new();
        for r in ctx.rows(q) {
            let db = r.str("datname").in_query(q)?;
            let schema = r.str("schemaname").in_query(q)?;
            // pg_relation_size is NULL for an index dropped while the query ran: it is gone,
            // so there is nothing to report about it (and no size to invent).
            let Some(bytes) = r.opt_f64("size_bytes").in_query(q)? else {
                continue;
            };
            let ix = Index {
                db,
                table: format!("{schema}.{}", r.str("tablename").in_query(q)?),
                name: format!("{schema}.{}", r.str("indexname").in_query(q)?),
                bytes,
            };
            let stats = per_db.entry(db).or_default();
            if !r.bool("valid").in_query(q)? {
                if r.opt_bool("in_progress").in_query(q)? == Some(true) {
                    out.findings.push(Finding::new(
                        Severity::Ok,
                        ix.object(),
                        format!("index {} on {} is being built", ix.name, ix.table),
                    ));
                } else {
                    stats.invalid += 1.0;
                    out.findings.push(Finding::new(
                        Severity::Critical,
                        ix.object(),
                        format!(
                            "index {} on {} is INVALID (a failed CREATE INDEX CONCURRENTLY?): it slows writes and \
                             serves no query; DROP INDEX CONCURRENTLY it, or REINDEX INDEX CONCURRENTLY",
                            ix.name, ix.table
                        ),
                    ));
                }
                continue;
            }
            let constraint = r.bool("is_unique").in_query(q)? || r.bool("is_primary").in_query(q)?;
            // NULL scans: the server keeps no statistics for it, so it was not scanned since
            // they were reset, which is what "unused" means here.
            let unscanned = r.opt_f64("idx_scan").in_query(q)?.is_none_or(|n| n == 0.0);
            if unscanned && !constraint && ix.bytes >= unused_min {
                stats.unused_bytes += ix.bytes;
                unused.push((ix.object(), format!("index {} on {}", ix.name, ix.table), ix.bytes));
            }
            if r.i64("same_signature").in_query(q)? > 1 {
                groups
                    .entry((db, r.str("signature").in_query(q)?))
                    .or_default()
                    .push(ix);
            }
        }
        // Invalid copies share the signature but were reported above: only valid twins count.
        for ixs in groups.values().filter(|g| g.len() > 1) {
            let names: Vec<&str> = ixs.iter().map(|i| i.name.as_str()).collect();
            if let Some(first) = ixs.first() {
                per_db.entry(first.db).or_default().duplicate += (ixs.len() - 1) as f64;
                out.findings.push(Finding::new(
                    Severity::Warning,
                    first.object(),
                    format!(
                        "indexes {} on {} are identical (same columns, operator classes, predicate): keep one",
                        names.join(", "),
                        first.table
                    ),
                ));
            }
        }
        unused.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (object, what, bytes) in unused.into_iter().take(ctx.top_n) {
            out.findings.push(
                Finding::new(
                    Severity::Ok,
                    object,
                    format!(
                        "{what} ({:.1} MB) has not been scanned since the statistics were reset",
                        bytes / 1048576.0
                    ),
                )
                .with_value(bytes),
            );
        }
        let (mut invalid, mut dup) = (0.0, 0.0);
        for (db, s) in &per_db {
            invalid += s.invalid;
            dup += s.duplicate;
            out.samples
                .push(Sample::new(&INVALID, s.invalid).label("database", *db));
            out.samples
                .push(Sample::new(&UNUSED_BYTES, s.unused_bytes).label("database", *db));
            out.samples
                .push(Sample::new(&DUPLICATE, s.duplicate).label("database", *db));
        }
        out.summary = format!("{invalid} invalid, {dup} duplicate index(es)");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn ix(name: &str, valid: &str, scans: Option<&str>, size: &str, sig: &str, same: &str) -> Row {
        Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("tablename", Some("posts")),
            ("indexname", Some(name)),
            ("valid", Some(valid)),
            ("is_unique", Some("f")),
            ("is_primary", Some("f")),
            ("idx_scan", scans),
            ("size_bytes", Some(size)),
            ("signature", Some(sig)),
            ("same_signature", Some(same)),
            ("in_progress", None),
        ])
    }

    #[test]
    fn invalid_duplicate_and_unused() {
        let big = (20 * 1024 * 1024).to_string();
        let rows = vec![
            ix("broken", "f", Some("0"), "8192", "a", "1"),
            ix("d1", "t", Some("5"), "8192", "b", "2"),
            ix("d2", "t", Some("1"), "8192", "b", "2"),
            ix("idle_big", "t", None, &big, "c", "1"),
            ix("idle_small", "t", Some("0"), "8192", "e", "1"),
        ];
        let out = eval(&Indexes, vec![outcome(&INDEXES, rows)]);
        let sev: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(
            sev,
            vec![
                (Severity::Critical, "app.public.broken"),
                (Severity::Warning, "app.public.d1"),
                (Severity::Ok, "app.public.idle_big"),
            ]
        );
        assert_eq!(out.summary, "1 invalid, 1 duplicate index(es)");
    }

    #[test]
    fn an_index_dropped_during_the_query_is_not_reported_with_size_0() {
        // Regression: a NULL size_bytes (pg_relation_size of a dropped index) became 0 and
        // the vanished index was still reported as INVALID.
        let gone = Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("tablename", Some("posts")),
            ("indexname", Some("gone")),
            ("valid", Some("f")),
            ("is_unique", Some("f")),
            ("is_primary", Some("f")),
            ("idx_scan", Some("0")),
            ("size_bytes", None),
            ("signature", Some("a")),
            ("same_signature", Some("1")),
            ("in_progress", None),
        ]);
        let out = eval(&Indexes, vec![outcome(&INDEXES, vec![gone])]);
        assert!(out.findings.is_empty(), "{:?}", out.findings);
        assert_eq!(out.summary, "0 invalid, 0 duplicate index(es)");
    }

    #[test]
    fn a_null_duplicate_count_is_an_error_naming_the_column() {
        let row = Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("tablename", Some("posts")),
            ("indexname", Some("i")),
            ("valid", Some("t")),
            ("is_unique", Some("f")),
            ("is_primary", Some("f")),
            ("idx_scan", Some("3")),
            ("size_bytes", Some("8192")),
            ("signature", Some("a")),
            ("same_signature", None),
            ("in_progress", None),
        ]);
        let result = crate::checks::testing::try_eval(&Indexes, vec![outcome(&INDEXES, vec![row])]);
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("same_signature"), "{err:?}");
    }
}

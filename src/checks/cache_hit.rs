//! Buffer cache hit ratio per database, and the tables and indexes that miss the cache most.

use super::shared::{table_object, DATABASES, TABLES};
use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

pub struct CacheHit;

pub static DB_RATIO: MetricFamily = MetricFamily {
    name: "dbtool_database_cache_hit_ratio",
    help: "blks_hit / (blks_hit + blks_read) since the statistics were reset.",
    kind: MetricKind::Gauge,
};
pub static DB_HIT: MetricFamily = MetricFamily {
    name: "dbtool_database_blocks_hit_total",
    help: "Blocks found in shared buffers (use rate() for a current hit ratio).",
    kind: MetricKind::Counter,
};
pub static DB_READ: MetricFamily = MetricFamily {
    name: "dbtool_database_blocks_read_total",
    help: "Blocks read from the operating system (page cache or disk).",
    kind: MetricKind::Counter,
};
pub static TABLE_RATIO: MetricFamily = MetricFamily {
    name: "dbtool_table_cache_hit_ratio",
    help: "Cache hit ratio of the worst tables (kind=heap) and their indexes (kind=index), top N.",
    kind: MetricKind::Gauge,
};

struct Io {
    object: String,
    labels: [(&'static str, String); 3],
    kind: &'static str,
    hit: f64,
    read: f64,
}

impl Io {
    fn ratio(&self) -> f64 {
        self.hit / (self.hit + self.read).max(1.0)
    }
}

fn table_io(ctx: &EvalContext<'_>, min_blocks: f64) -> Result<Vec<Io>, EvalError> {
    let q = &TABLES;
    let mut out = Vec::new();
    for r in ctx.rows(q) {
        let (db, schema, name) = (
            r.str("datname").in_query(q)?,
            r.str("schemaname").in_query(q)?,
            r.str("relname").in_query(q)?,
        );
        for (kind, hit, read) in [
            ("heap", "heap_blks_hit", "heap_blks_read"),
            ("index", "idx_blks_hit", "idx_blks_read"),
        ] {
            let (Some(hit), Some(read)) = (r.opt_f64(hit).in_query(q)?, r.opt_f64(read).in_query(q)?) else {
                continue;
            };
            if hit + read >= min_blocks {
                out.push(Io {
                    object: table_object(db, schema, name),
                    labels: [
                        ("database", db.into()),
                        ("schema", schema.into()),
                        ("table", name.into()),
                    ],
                    kind,
                    hit,
                    read,
                });
            }
        }
    }
    Ok(out)
}

impl Check for CacheHit {
    fn name(&self) -> &'static str {
        "cache_hit"
    }
    fn description(&self) -> &'static str {
        "Buffer cache hit ratio per database; the tables and indexes that miss most"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&DATABASES, &TABLES];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning",
            critical: "critical",
            family: &DB_RATIO,
            scale: 100.0,
            uom: "%",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning",
                default: 98.0,
                help: "hit ratio below this percentage",
            },
            ThresholdSpec {
                key: "critical",
                default: 90.0,
                help: "hit ratio below this percentage",
            },
            ThresholdSpec {
                key: "min_blocks",
                default: 10000.0,
                help: "blocks accessed before a ratio is judged",
            },
        ]
    }
    fn lower_is_worse(&self) -> bool {
        true
    }
    // Hit ratios are judged over whole counters; a few minutes' delay changes no verdict.
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&DB_RATIO, &DB_HIT, &DB_READ, &TABLE_RATIO];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let (warn, crit, min_blocks) = (t.get("warning"), t.get("critical"), t.get("min_blocks"));
        let q = &DATABASES;
        let mut out = CheckOutput::default();
        let (mut judged, mut too_few, mut worst) = (0u32, 0u32, None::<(f64, String)>);
        for r in ctx.rows(q) {
            let db = r.str("datname").in_query(q)?;
            // A database without statistics yet (never connected to) has NULL counters.
            let (Some(hit), Some(read)) = (r.opt_f64("blks_hit").in_query(q)?, r.opt_f64("blks_read").in_query(q)?)
            else {
                continue;
            };
            let ratio = hit / (hit + read).max(1.0);
            out.samples.push(Sample::new(&DB_HIT, hit).label("database", db));
            out.samples.push(Sample::new(&DB_READ, read).label("database", db));
            out.samples.push(Sample::new(&DB_RATIO, ratio).label("database", db));
            if hit + read < min_blocks {
                too_few += 1;
                continue;
            }
            judged += 1;
            if worst.as_ref().is_none_or(|(w, _)| ratio < *w) {
                worst = Some((ratio, db.to_string()));
            }
            let sev = Severity::below(ratio * 100.0, warn, crit);
            if sev != Severity::Ok {
                out.findings.push(Finding::new(sev, format!("database {db}"), format!(
                    "cache hit ratio {} over {:.0} block reads since stats reset (below {warn}%); shared_buffers may be too small for the working set", pct(ratio), hit + read)).with_value(ratio));
            }
        }
        let mut io = table_io(ctx, min_blocks)?;
        io.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        for i in io.iter().take(ctx.top_n) {
            let [d, s, n] = i.labels.clone();
            out.samples.push(
                Sample::new(&TABLE_RATIO, i.ratio())
                    .label(d.0, d.1)
                    .label(s.0, s.1)
                    .label(n.0, n.1)
                    .label("kind", i.kind),
            );
        }
        if let Some(i) = io.first().filter(|i| i.ratio() * 100.0 < warn) {
            out.findings.push(
                Finding::new(
                    Severity::Ok,
                    i.object.clone(),
                    format!(
                        "worst {} cache hit ratio {} ({:.0} blocks read from disk)",
                        i.kind,
                        pct(i.ratio()),
                        i.read
                    ),
                )
                .with_value(i.ratio()),
            );
        }
        out.summary = match worst {
            Some((r, db)) => format!(
                "lowest {} in {db}; {judged} database(s) judged, {too_few} with too few reads",
                pct(r)
            ),
            None => format!("{too_few} database(s) with too few reads to judge (< {min_blocks:.0} blocks)"),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn db(name: &str, hit: Option<&str>, read: Option<&str>) -> Row {
        Row::from_pairs(&[("datname", Some(name)), ("blks_hit", hit), ("blks_read", read)])
    }

    #[test]
    fn judges_only_databases_with_enough_reads() {
        let rows = vec![
            db("busy_bad", Some("85000"), Some("15000")),
            db("busy_ok", Some("99900"), Some("100")),
            db("quiet", Some("10"), Some("90")),
            db("never", None, None),
        ];
        let out = eval(&CacheHit, vec![outcome(&DATABASES, rows), outcome(&TABLES, vec![])]);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert_eq!(out.findings[0].object, "database busy_bad");
        assert!(out.summary.contains("1 with too few reads"), "{}", out.summary);
    }
}

//! Transaction-ID and multixact wraparound, and tables whose dead tuples autovacuum is not clearing.

use super::shared::{table_object, DATABASES, TABLES};
use super::{human_secs, pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

pub struct Vacuum;

/// Transaction IDs are 32-bit and compared modulo 2^31: the wraparound horizon.
pub const WRAPAROUND_HORIZON: f64 = 2_147_483_648.0;

pub static DB_XID_AGE: MetricFamily = MetricFamily {
    name: "dbtool_database_xid_age",
    help: "Age of the database's datfrozenxid in transactions.",
    kind: MetricKind::Gauge,
};
pub static DB_MXID_AGE: MetricFamily = MetricFamily {
    name: "dbtool_database_mxid_age",
    help: "Age of the database's datminmxid in multixacts.",
    kind: MetricKind::Gauge,
};
pub static DB_WRAP: MetricFamily = MetricFamily {
    name: "dbtool_database_wraparound_ratio",
    help: "The larger of xid and multixact age as a share of the 2^31 wraparound horizon.",
    kind: MetricKind::Gauge,
};
pub static TABLE_XID_AGE: MetricFamily = MetricFamily {
    name: "dbtool_table_xid_age",
    help: "relfrozenxid age of the oldest tables (including their TOAST table), top N.",
    kind: MetricKind::Gauge,
};
pub static TABLE_DEAD: MetricFamily = MetricFamily {
    name: "dbtool_table_dead_tuples",
    help: "Estimated dead tuples of the tables with the most, top N.",
    kind: MetricKind::Gauge,
};
pub static TABLE_DEAD_RATIO: MetricFamily = MetricFamily {
    name: "dbtool_table_dead_ratio",
    help: "Dead tuples as a share of live plus dead, for the same tables.",
    kind: MetricKind::Gauge,
};
pub static TABLE_AV_THRESHOLD: MetricFamily = MetricFamily {
    name: "dbtool_table_autovacuum_threshold_tuples",
    help: "Dead tuples at which autovacuum would vacuum the table (threshold + scale factor x reltuples).",
    kind: MetricKind::Gauge,
};
pub static TABLE_VACUUM_AGE: MetricFamily = MetricFamily {
    name: "dbtool_table_last_vacuum_age_seconds",
    help: "Seconds since the last manual or auto vacuum (+Inf when never vacuumed).",
    kind: MetricKind::Gauge,
};
pub static OVERDUE: MetricFamily = MetricFamily {
    name: "dbtool_tables_vacuum_overdue",
    help: "Tables past their autovacuum threshold and not vacuumed within the limit.",
    kind: MetricKind::Gauge,
};

struct Table {
    db: String,
    schema: String,
    name: String,
    xid_age: f64,
    /// None: the server has no statistics for the table (not "0 rows").
    live: Option<f64>,
    dead: Option<f64>,
    threshold: f64,
    vacuum_age: f64,
    autovacuum: bool,
}

impl Table {
    fn labelled(&self, s: Sample) -> Sample {
        s.label("database", self.db.as_str())
            .label("schema", self.schema.as_str())
            .label("table", self.name.as_str())
    }
    fn object(&self) -> String {
        table_object(&self.db, &self.schema, &self.name)
    }
    /// Dead tuples, when the server counts some.
    fn dead_tuples(&self) -> Option<f64> {
        self.dead.filter(|d| *d > 0.0)
    }
    /// Share of dead rows, when both counts are known.
    fn dead_ratio(&self) -> Option<f64> {
        let (dead, live) = (self.dead?, self.live?);
        Some(dead / (dead + live).max(1.0))
    }
}

/// Most dead tuples first; tables without statistics last (an ordering, not a value).
fn most_dead_first(a: &Table, b: &Table) -> std::cmp::Ordering {
    let key = |t: &Table| t.dead.unwrap_or(f64::NEG_INFINITY);
    key(b).total_cmp(&key(a))
}

fn tables(ctx: &EvalContext<'_>) -> Result<Vec<Table>, EvalError> {
    let q = &TABLES;
    ctx.rows(q)
        .iter()
        .map(|r| {
            Ok(Table {
                db: r.str("datname").in_query(q)?.to_string(),
                schema: r.str("schemaname").in_query(q)?.to_string(),
                name: r.str("relname").in_query(q)?.to_string(),
                xid_age: r.f64("xid_age").in_query(q)?,
                live: r.opt_f64("n_live_tup").in_query(q)?,
                dead: r.opt_f64("n_dead_tup").in_query(q)?,
                threshold: r.f64("autovacuum_threshold").in_query(q)?,
                vacuum_age: r.opt_f64("vacuum_age_seconds").in_query(q)?.unwrap_or(f64::INFINITY),
                autovacuum: r.opt_bool("autovacuum_enabled").in_query(q)?.unwrap_or(true),
            })
        })
        .collect()
}

fn wraparound(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<f64, EvalError> {
    let q = &DATABASES;
    let (warn, crit) = (ctx.thresholds.get("xid_warning"), ctx.thresholds.get("xid_critical"));
    let mut oldest = 0f64;
    for r in ctx.rows(q) {
        let db = r.str("datname").in_query(q)?;
        let xid = r.f64("xid_age").in_query(q)?;
        let mxid = r.f64("mxid_age").in_query(q)?;
        oldest = oldest.max(xid);
        out.samples.push(Sample::new(&DB_XID_AGE, xid).label("database", db));
        out.samples.push(Sample::new(&DB_MXID_AGE, mxid).label("database", db));
        out.samples
            .push(Sample::new(&DB_WRAP, xid.max(mxid) / WRAPAROUND_HORIZON).label("database", db));
        for (what, age) in [("transaction ID", xid), ("multixact", mxid)] {
            let sev = Severity::above(age, warn, crit);
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(
                        sev,
                        format!("database {db}"),
                        format!(
                            "{what} age {age:.0} is {} of the wraparound horizon; run VACUUM (FREEZE) on its oldest tables (see dbtool_table_xid_age)",
                            pct(age / WRAPAROUND_HORIZON)
                        ),
                    )
                    .with_value(age),
                );
            }
        }
    }
    Ok(oldest)
}

impl Check for Vacuum {
    fn name(&self) -> &'static str {
        "vacuum"
    }
    fn description(&self) -> &'static str {
        "Transaction-ID and multixact wraparound age; dead tuples autovacuum is not clearing"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&DATABASES, &TABLES];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "xid_warning",
                default: 1.3e9,
                help: "transaction-ID or multixact age of a database or table",
            },
            ThresholdSpec {
                key: "xid_critical",
                default: 1.4e9,
                help: "transaction-ID or multixact age of a database or table",
            },
            ThresholdSpec {
                key: "vacuum_age_seconds",
                default: 86400.0,
                help: "a table past its autovacuum threshold not vacuumed for this long",
            },
        ]
    }
    // Overdue vacuums and XID age move over hours; autovacuum's own naptime is a minute.
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &DB_XID_AGE,
            &DB_MXID_AGE,
            &DB_WRAP,
            &TABLE_XID_AGE,
            &TABLE_DEAD,
            &TABLE_DEAD_RATIO,
            &TABLE_AV_THRESHOLD,
            &TABLE_VACUUM_AGE,
            &OVERDUE,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let oldest = wraparound(ctx, &mut out)?;
        let mut tables = tables(ctx)?;
        let (warn, crit) = (ctx.thresholds.get("xid_warning"), ctx.thresholds.get("xid_critical"));
        let max_age = ctx.thresholds.get("vacuum_age_seconds");

        tables.sort_by(|a, b| b.xid_age.total_cmp(&a.xid_age));
        for t in tables.iter().take(ctx.top_n) {
            out.samples.push(t.labelled(Sample::new(&TABLE_XID_AGE, t.xid_age)));
            let sev = Severity::above(t.xid_age, warn, crit);
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(
                        sev,
                        t.object(),
                        format!(
                            "relfrozenxid age {:.0} ({} of the horizon); VACUUM (FREEZE, VERBOSE) {}.{}",
                            t.xid_age,
                            pct(t.xid_age / WRAPAROUND_HORIZON),
                            t.schema,
                            t.name
                        ),
                    )
                    .with_value(t.xid_age),
                );
            }
        }

        let mut overdue: Vec<(&Table, f64)> = tables
            .iter()
            .filter_map(|t| Some((t, t.dead_tuples()?)))
            .filter(|(t, dead)| *dead > t.threshold && t.vacuum_age >= max_age)
            .collect();
        overdue.sort_by(|a, b| most_dead_first(a.0, b.0));
        let mut per_db = std::collections::BTreeMap::<&str, u32>::new();
        for (t, _) in &overdue {
            *per_db.entry(t.db.as_str()).or_default() += 1;
        }
        for r in ctx.rows(&DATABASES) {
            if r.bool("datallowconn").in_query(&DATABASES)? {
                let db = r.str("datname").in_query(&DATABASES)?;
                let n = per_db.get(db).copied().unwrap_or(0);
                out.samples
                    .push(Sample::new(&OVERDUE, f64::from(n)).label("database", db));
            }
        }
        for &(t, dead) in overdue.iter().take(ctx.top_n) {
            let share = t
                .dead_ratio()
                .map_or_else(String::new, |r| format!(" ({} of rows)", pct(r)));
            let why = if t.autovacuum {
                ""
            } else {
                " (autovacuum is disabled for it)"
            };
            out.findings.push(
                Finding::new(
                    Severity::Warning,
                    t.object(),
                    format!(
                        "{dead:.0} dead tuples{share} exceed the autovacuum threshold {:.0}; {}{why}",
                        t.threshold,
                        if t.vacuum_age.is_finite() {
                            format!("last vacuumed {} ago", human_secs(t.vacuum_age))
                        } else {
                            "never vacuumed".into()
                        }
                    ),
                )
                .with_value(dead),
            );
        }

        let overdue_count = overdue.len();
        tables.sort_by(most_dead_first);
        for (t, dead) in tables
            .iter()
            .filter_map(|t| Some((t, t.dead_tuples()?)))
            .take(ctx.top_n)
        {
            out.samples.push(t.labelled(Sample::new(&TABLE_DEAD, dead)));
            if let Some(ratio) = t.dead_ratio() {
                out.samples.push(t.labelled(Sample::new(&TABLE_DEAD_RATIO, ratio)));
            }
            out.samples
                .push(t.labelled(Sample::new(&TABLE_AV_THRESHOLD, t.threshold)));
            out.samples
                .push(t.labelled(Sample::new(&TABLE_VACUUM_AGE, t.vacuum_age)));
        }
        out.summary = format!(
            "oldest xid age {oldest:.0} ({} of horizon); {} table(s) overdue for vacuum",
            pct(oldest / WRAPAROUND_HORIZON),
            overdue_count
        );
        Ok(out)
    }
}

#[cfg(test)]
#[path = "vacuum_tests.rs"]
mod tests;

//! Sequences (serial and identity columns included) close to the end of their range: the
//! sequence's own limit, or the range of the column it feeds when that is narrower.

use super::shared::table_object;
use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::row::Row;
use crate::query;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

query!(SEQUENCES, "sequences", EachDatabase, [0 => "sequences.sql"]);

pub struct Sequences;

pub static USED: MetricFamily = MetricFamily {
    name: "dbtool_sequence_used_ratio",
    help: "Share of a sequence's usable range consumed (top N by share).",
    kind: MetricKind::Gauge,
};
pub static MAX_USED: MetricFamily = MetricFamily {
    name: "dbtool_sequence_max_used_ratio",
    help: "The highest share of its range any sequence in the database has consumed.",
    kind: MetricKind::Gauge,
};
pub static HIDDEN: MetricFamily = MetricFamily {
    name: "dbtool_sequences_not_visible",
    help: "Sequences whose position this role cannot read (needs SELECT or USAGE on them).",
    kind: MetricKind::Gauge,
};

struct Seq {
    db: String,
    object: String,
    labels: [(&'static str, String); 3],
    share: f64,
    feeds: String,
}

/// Share of the usable range consumed, or None when the position is not visible.
fn share(r: &Row) -> Result<Option<(f64, String)>, EvalError> {
    let q = &SEQUENCES;
    if !r.bool("visible").in_query(q)? {
        return Ok(None);
    }
    let f = |c: &str| r.opt_f64(c).in_query(q);
    let (inc, mut min, mut max) = (f("increment_by")?.unwrap_or(1.0), f("min_value")?, f("max_value")?);
    // A column narrower than the sequence overflows first.
    if let (Some(cmax), Some(m)) = (f("column_max")?, max) {
        max = Some(m.min(cmax));
    }
    if let (Some(cmin), Some(m)) = (f("column_min")?, min) {
        min = Some(m.max(cmin));
    }
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(None);
    };
    let range = (max - min).max(1.0);
    // Never used (is_called false): nothing consumed yet.
    let last = f("last_value")?.unwrap_or(if inc > 0.0 { min } else { max });
    let used = if inc > 0.0 { last - min } else { max - last };
    let limit = if inc > 0.0 { max } else { min };
    let kind = match r.opt_bool("is_identity").in_query(q)? {
        Some(true) => "identity column",
        Some(false) => "serial column",
        None => "no owning column",
    };
    let feeds = match (
        r.opt_str("table_name").in_query(q)?,
        r.opt_str("column_name").in_query(q)?,
    ) {
        (Some(t), Some(c)) => format!(
            "{kind} {t}.{c} ({})",
            r.opt_str("column_type").in_query(q)?.unwrap_or("?")
        ),
        _ => kind.to_string(),
    };
    Ok(Some((
        (used / range).clamp(0.0, 1.0),
        format!("{feeds}; at {last} of limit {limit}"),
    )))
}

/// Sequences with a visible position (fullest first), and per database how many are not visible.
type Collected = (Vec<Seq>, Vec<(String, f64)>);

fn collect(ctx: &EvalContext<'_>) -> Result<Collected, EvalError> {
    let q = &SEQUENCES;
    let (mut seqs, mut hidden) = (Vec::new(), Vec::<(String, f64)>::new());
    for r in ctx.rows(q) {
        let db = r.str("datname").in_query(q)?;
        let (schema, name) = (r.str("schemaname").in_query(q)?, r.str("sequencename").in_query(q)?);
        if r.opt_bool("cycle").in_query(q)? == Some(true) {
            continue; // a cycling sequence wraps around instead of failing
        }
        match share(r)? {
            Some((share, feeds)) => seqs.push(Seq {
                db: db.to_string(),
                object: table_object(db, schema, name),
                labels: [
                    ("database", db.into()),
                    ("schema", schema.into()),
                    ("sequence", name.into()),
                ],
                share,
                feeds,
            }),
            None => match hidden.iter_mut().find(|(d, _)| d == db) {
                Some((_, n)) => *n += 1.0,
                None => hidden.push((db.to_string(), 1.0)),
            },
        }
    }
    seqs.sort_by(|a, b| b.share.total_cmp(&a.share));
    Ok((seqs, hidden))
}

impl Check for Sequences {
    fn name(&self) -> &'static str {
        "sequences"
    }
    fn description(&self) -> &'static str {
        "Sequences and identity/serial columns near the end of their range"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&SEQUENCES];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning",
            critical: "critical",
            family: &MAX_USED,
            scale: 100.0,
            uom: "%",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning",
                default: 85.0,
                help: "percentage of the range used",
            },
            ThresholdSpec {
                key: "critical",
                default: 95.0,
                help: "percentage of the range used",
            },
        ]
    }
    // A sequence nears its end over days, not minutes.
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5 * 60)
    }

    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&USED, &MAX_USED, &HIDDEN];
        L
    }
    fn privilege(&self) -> &'static str {
        "SELECT or USAGE on the sequences (pg_monitor alone cannot read their position)"
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let (warn, crit) = (ctx.thresholds.get("warning"), ctx.thresholds.get("critical"));
        let mut out = CheckOutput::default();
        let (seqs, hidden) = collect(ctx)?;
        let mut max_per_db: Vec<(&str, f64)> = Vec::new();
        for s in &seqs {
            if !max_per_db.iter().any(|(d, _)| *d == s.db) {
                max_per_db.push((&s.db, s.share)); // sorted: the first seen is the highest
            }
        }
        for (db, v) in &max_per_db {
            out.samples.push(Sample::new(&MAX_USED, *v).label("database", *db));
        }
        for (db, n) in &hidden {
            out.samples
                .push(Sample::new(&HIDDEN, *n).label("database", db.as_str()));
            out.findings.push(Finding::new(
                Severity::Unknown,
                format!("database {db}"),
                format!("{n} sequence(s) not readable by this role: grant SELECT or USAGE on them"),
            ));
        }
        for s in seqs.iter().take(ctx.top_n) {
            let mut sample = Sample::new(&USED, s.share);
            for (k, v) in &s.labels {
                sample = sample.label(k, v.as_str());
            }
            out.samples.push(sample);
            let sev = Severity::above(s.share * 100.0, warn, crit);
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(
                        sev,
                        s.object.as_str(),
                        format!("{} of its range used: {}", pct(s.share), s.feeds),
                    )
                    .with_value(s.share * 100.0),
                );
            }
        }
        let unread: f64 = hidden.iter().map(|(_, n)| n).sum();
        out.summary = match (seqs.first(), unread > 0.0) {
            (Some(s), false) => format!("{} sequence(s); fullest {} at {}", seqs.len(), s.object, pct(s.share)),
            (Some(s), true) => format!(
                "{} sequence(s) read, {unread} not readable by this role; fullest read {} at {}",
                seqs.len(),
                s.object,
                pct(s.share)
            ),
            (None, true) => format!("no sequence readable: {unread} not readable by this role"),
            (None, false) => "no sequences".into(),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};

    /// A sequence row; `column` is (type, max, min) of the owning column.
    fn seq(name: &str, last: Option<&str>, max: &str, inc: &str, column: Option<(&str, &str, &str)>) -> Row {
        Row::from_pairs(&[
            ("datname", Some("app")),
            ("schemaname", Some("public")),
            ("sequencename", Some(name)),
            ("data_type", Some("bigint")),
            ("increment_by", Some(inc)),
            ("min_value", Some(if inc.starts_with('-') { "-100" } else { "1" })),
            ("max_value", Some(max)),
            ("cycle", Some("f")),
            ("visible", Some(if name == "hidden" { "f" } else { "t" })),
            ("last_value", last),
            ("table_name", column.map(|_| "public.t")),
            ("column_name", column.map(|_| "id")),
            ("column_type", column.map(|c| c.0)),
            ("is_identity", column.map(|_| "t")),
            ("column_max", column.map(|c| c.1)),
            ("column_min", column.map(|c| c.2)),
        ])
    }

    #[test]
    fn narrow_column_decides_the_limit() {
        // A bigint sequence at 32000 feeding a smallint identity column: 97.7% used.
        let rows = vec![
            seq(
                "narrow",
                Some("32000"),
                "9223372036854775807",
                "1",
                Some(("smallint", "32767", "-32768")),
            ),
            seq("fine", Some("10"), "100", "1", None),
            seq("unused", None, "100", "1", None),
            seq("hidden", None, "100", "1", None),
            seq("down", Some("-90"), "-1", "-1", None),
        ];
        let out = eval(&Sequences, vec![outcome(&SEQUENCES, rows)]);
        let sev: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(
            sev,
            vec![
                (Severity::Unknown, "database app"),
                (Severity::Critical, "app.public.narrow"),
                (Severity::Warning, "app.public.down"),
            ]
        );
        assert!(out.findings[1]
            .message
            .contains("identity column public.t.id (smallint)"));
        let max = out
            .samples
            .iter()
            .find(|s| s.family.name == MAX_USED.name)
            .map(|s| s.value);
        assert!(max.is_some_and(|m| m > 0.97), "{max:?}");
    }
}

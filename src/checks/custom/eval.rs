//! A custom check's rows → series and findings: one series per value column and label set
//! (at most `MAX_SERIES` label sets), NULL or text where a number belongs is UNKNOWN (never 0).

use std::collections::BTreeSet;

use super::{CustomCheck, Direction, DATABASE_COLUMN, MAX_SERIES};
use crate::checks::{CheckOutput, EvalContext, EvalError, RowContext};
use crate::report::finding::{Finding, Sample, Severity};

/// "database shop region=eu": what a series is about.
fn object(database: &str, labels: &[(&str, String)]) -> String {
    let mut o = format!("database {database}");
    for (k, v) in labels {
        o.push_str(&format!(" {k}={}", v.escape_debug()));
    }
    o
}

/// A value judged against the thresholds in force; 0 turns a threshold off.
fn judge(value: f64, warning: f64, critical: f64, direction: Direction) -> Severity {
    let crosses = |t: f64| {
        t > 0.0
            && match direction {
                Direction::Above => value >= t,
                Direction::Below => value < t,
            }
    };
    if crosses(critical) {
        Severity::Critical
    } else if crosses(warning) {
        Severity::Warning
    } else {
        Severity::Ok
    }
}

/// A value as the server wrote it: float8, integer and numeric text all parse (a numeric beyond
/// f64 becomes ±Inf rather than an error), a timestamp with time zone is its Unix time.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    text.parse::<f64>().ok().or_else(|| {
        let t = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z").ok()?;
        Some(t.timestamp_micros() as f64 / 1e6)
    })
}

/// postgres_exporter's reading of a value: NULL is NaN, a boolean 1 or 0.
fn exporter_number(text: Option<&str>) -> Option<f64> {
    match text {
        None => Some(f64::NAN),
        Some("t") => Some(1.0),
        Some("f") => Some(0.0),
        Some(t) => number(t),
    }
}

pub(super) fn evaluate(check: &CustomCheck, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
    let query = check.queries[0];
    let judged = check
        .main
        .map(|_| (ctx.thresholds.get("warning"), ctx.thresholds.get("critical")));
    let mut rows = Vec::new();
    for row in ctx.rows(query) {
        let database = row.str(DATABASE_COLUMN).in_query(query)?.to_string();
        let mut labels = Vec::new();
        for l in &check.labels {
            labels.push((*l, row.opt_str(l).in_query(query)?.unwrap_or("").to_string()));
        }
        rows.push((database, labels, row));
    }
    // In a stable order whichever lane answered first, so that a cut keeps the same series.
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out = CheckOutput::default();
    let mut seen = BTreeSet::new();
    let (mut repeated, mut cut) = (0usize, 0usize);
    let mut extreme: Option<(f64, String)> = None;
    for (database, labels, row) in &rows {
        if seen.contains(&(database, labels)) {
            repeated += 1;
            continue;
        }
        if seen.len() >= MAX_SERIES {
            cut += 1;
            continue;
        }
        seen.insert((database, labels));
        let obj = object(database, labels);
        for (i, v) in check.values.iter().enumerate() {
            let text = row.opt_str(v.column).in_query(query)?;
            let parsed = match (check.exporter, text) {
                (true, t) => exporter_number(t),
                (false, Some(t)) => number(t),
                (false, None) => {
                    out.findings.push(Finding::new(
                        Severity::Unknown,
                        obj.clone(),
                        format!(
                            "{}: column {} is NULL; the query must return a number (NULL is not 0)",
                            check.name, v.column
                        ),
                    ));
                    continue;
                }
            };
            let Some(value) = parsed else {
                out.findings.push(Finding::new(
                    Severity::Unknown,
                    obj.clone(),
                    format!(
                        "{}: column {} holds '{}', which is not a number",
                        check.name,
                        v.column,
                        text.unwrap_or_default().escape_debug()
                    ),
                ));
                continue;
            };
            let mut sample = Sample::new(v.family, value).label("database", database.clone());
            for (k, l) in labels {
                sample = sample.label(k, l.clone());
            }
            out.samples.push(sample);
            let (Some((warning, critical)), 0) = (judged, i) else {
                continue;
            };
            let worse = extreme.as_ref().is_none_or(|(e, _)| match check.direction {
                Direction::Above => value > *e,
                Direction::Below => value < *e,
            });
            if worse {
                extreme = Some((value, obj.clone()));
            }
            let severity = judge(value, warning, critical, check.direction);
            if severity != Severity::Ok {
                let (key, limit) = if severity == Severity::Critical {
                    ("critical", critical)
                } else {
                    ("warning", warning)
                };
                let side = if check.direction == Direction::Above {
                    "at or above"
                } else {
                    "below"
                };
                out.findings.push(
                    Finding::new(
                        severity,
                        obj.clone(),
                        format!("{value} is {side} the {key} threshold {limit}"),
                    )
                    .with_value(value),
                );
            }
        }
    }
    if repeated > 0 {
        out.findings.push(Finding::new(
            Severity::Unknown,
            check.name,
            format!("{repeated} rows repeat a label set already seen and were left out; add a label column that tells them apart"),
        ));
    }
    if cut > 0 {
        out.findings.push(Finding::new(
            Severity::Unknown,
            check.name,
            format!("{cut} label sets beyond the first {MAX_SERIES} were cut; narrow the query or drop a label"),
        ));
    }
    for note in &check.notes {
        out.findings.push(Finding::new(Severity::Ok, check.name, note.clone()));
    }
    out.summary = match (&extreme, rows.len()) {
        (_, 0) => "the query returned no rows".to_string(),
        (Some((v, obj)), n) => {
            let word = if check.direction == Direction::Above {
                "highest"
            } else {
                "lowest"
            };
            format!("{} series; {word} {v} ({obj})", n.min(MAX_SERIES))
        }
        (None, 1) => format!("1 row, {} series", out.samples.len()),
        (None, n) => format!("{n} rows, {} series", out.samples.len()),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_threshold_off_and_below_alerts_under_it() {
        assert_eq!(judge(5.0, 0.0, 0.0, Direction::Above), Severity::Ok);
        assert_eq!(judge(5.0, 5.0, 10.0, Direction::Above), Severity::Warning);
        assert_eq!(judge(10.0, 5.0, 10.0, Direction::Above), Severity::Critical);
        assert_eq!(judge(3.0, 5.0, 2.0, Direction::Below), Severity::Warning);
        assert_eq!(judge(1.0, 5.0, 2.0, Direction::Below), Severity::Critical);
        assert_eq!(judge(0.0, 0.0, 0.0, Direction::Below), Severity::Ok);
    }

    #[test]
    fn numbers_of_every_postgres_spelling_parse() {
        assert_eq!(number("42"), Some(42.0));
        assert_eq!(number("1.5e3"), Some(1500.0));
        assert_eq!(number("NaN").map(f64::is_nan), Some(true));
        assert_eq!(number(&"9".repeat(400)), Some(f64::INFINITY));
        assert_eq!(number("t"), None);
        assert_eq!(number("2026-12-03 09:51:02.5+00"), Some(1_796_291_462.5));
        assert_eq!(number("2026-12-03 10:51:02+01"), Some(1_796_291_462.0));
        assert_eq!(exporter_number(Some("t")), Some(1.0));
        assert_eq!(exporter_number(None).map(f64::is_nan), Some(true));
    }
}

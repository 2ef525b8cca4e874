//! WAL archiving: failures, the backlog of segments waiting, and the age of the last one
//! archived. Only judged when archive_mode is on.

use super::shared::{settings, SETTINGS};
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(ARCHIVER, "archiver", Cluster, [0 => "archiver.sql"]);

pub struct Archiver;

pub static ARCHIVED: MetricFamily = MetricFamily {
    name: "dbtool_archiver_archived_total",
    help: "WAL segments archived successfully since the statistics were reset.",
    kind: MetricKind::Counter,
};
pub static FAILED: MetricFamily = MetricFamily {
    name: "dbtool_archiver_failed_total",
    help: "Failed attempts to archive a WAL segment since the statistics were reset.",
    kind: MetricKind::Counter,
};
pub static READY: MetricFamily = MetricFamily {
    name: "dbtool_archiver_ready_segments",
    help: "WAL segments waiting to be archived (.ready files in pg_wal/archive_status).",
    kind: MetricKind::Gauge,
};
pub static LAST_ARCHIVED_AGE: MetricFamily = MetricFamily {
    name: "dbtool_archiver_last_archived_age_seconds",
    help: "Seconds since the last segment was archived (absent when none ever was).",
    kind: MetricKind::Gauge,
};
pub static FAILING: MetricFamily = MetricFamily {
    name: "dbtool_archiver_failing",
    help: "1 when the last archive attempt failed (last failure after last success).",
    kind: MetricKind::Gauge,
};

impl Check for Archiver {
    fn name(&self) -> &'static str {
        "archiver"
    }
    fn description(&self) -> &'static str {
        "WAL archiving: failures, segments waiting (.ready), age of the last archived segment"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&ARCHIVER, &SETTINGS];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning_ready",
                default: 10.0,
                help: "segments waiting to be archived",
            },
            ThresholdSpec {
                key: "critical_ready",
                default: 100.0,
                help: "segments waiting to be archived",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&ARCHIVED, &FAILED, &READY, &LAST_ARCHIVED_AGE, &FAILING];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let q = &ARCHIVER;
        let mut out = CheckOutput::default();
        let mode = settings(ctx)?
            .get("archive_mode")
            .cloned()
            .unwrap_or_else(|| "off".into());
        let Some(r) = ctx.rows(q).first() else {
            out.summary = "no archiver statistics".into();
            return Ok(out);
        };
        let archived = r.opt_f64("archived_count").in_query(q)?;
        let failed = r.opt_f64("failed_count").in_query(q)?;
        let ready = r.opt_f64("ready_count").in_query(q)?.unwrap_or(0.0);
        let age = r.opt_f64("last_archived_seconds").in_query(q)?;
        let failing = r.opt_bool("failing").in_query(q)?.unwrap_or(false);
        if let Some(v) = archived {
            out.samples.push(Sample::new(&ARCHIVED, v));
        }
        if let Some(v) = failed {
            out.samples.push(Sample::new(&FAILED, v));
        }
        out.samples.push(Sample::new(&READY, ready));
        if let Some(a) = age {
            out.samples.push(Sample::new(&LAST_ARCHIVED_AGE, a));
        }
        out.samples.push(Sample::new(&FAILING, if failing { 1.0 } else { 0.0 }));
        if mode == "off" {
            out.summary = "archive_mode is off".into();
            return Ok(out);
        }
        let last = age.map_or_else(|| "never".to_string(), |a| format!("{} ago", human_secs(a)));
        if failing {
            let wal = r.opt_str("last_failed_wal").in_query(q)?.unwrap_or("?");
            out.findings.push(Finding::new(
                Severity::Critical,
                "archiver",
                format!(
                    "archiving is failing: the last attempt (segment {wal}) failed after the last success ({last}); \
                     check archive_command/archive_library and the server log"
                ),
            ));
        }
        let t = ctx.thresholds;
        let sev = Severity::above(ready, t.get("warning_ready"), t.get("critical_ready"));
        if sev != Severity::Ok {
            out.findings.push(
                Finding::new(
                    sev,
                    "archiver",
                    format!("{ready} WAL segments are waiting to be archived; pg_wal grows until they are"),
                )
                .with_value(ready),
            );
        }
        out.summary = format!(
            "archive_mode {mode}; last archived {last}; {ready} waiting; {} failed since reset",
            failed.unwrap_or(0.0)
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn setting(v: &str) -> Row {
        Row::from_pairs(&[("name", Some("archive_mode")), ("setting", Some(v))])
    }

    fn row(failing: Option<&str>, ready: &str, age: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("archived_count", Some("5")),
            ("failed_count", Some("2")),
            ("last_archived_wal", None),
            ("last_failed_wal", Some("000000010000000000000003")),
            ("last_archived_seconds", age),
            ("last_failed_seconds", Some("3")),
            ("failing", failing),
            ("ready_count", Some(ready)),
        ])
    }

    #[test]
    fn failing_archiver_with_backlog() {
        let out = eval(
            &Archiver,
            vec![
                outcome(&SETTINGS, vec![setting("on")]),
                outcome(&ARCHIVER, vec![row(Some("t"), "12", None)]),
            ],
        );
        let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
        assert_eq!(sev, vec![Severity::Critical, Severity::Warning]);
        assert!(out.findings[0].message.contains("000000010000000000000003"));
    }

    #[test]
    fn archive_mode_off_is_not_judged_and_nulls_are_fine() {
        let out = eval(
            &Archiver,
            vec![
                outcome(&SETTINGS, vec![setting("off")]),
                outcome(&ARCHIVER, vec![row(None, "0", None)]),
            ],
        );
        assert!(out.findings.is_empty());
        assert_eq!(out.summary, "archive_mode is off");
    }
}

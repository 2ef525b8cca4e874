//! Checkpoints and the background writer: timed versus requested checkpoints, write and
//! sync time, and who writes buffers out (checkpointer, bgwriter, ordinary backends).
//! PostgreSQL 17 moved these into pg_stat_checkpointer and pg_stat_io: see the SQL variants.

use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};

use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(CHECKPOINTS, "checkpoints", Cluster, [
    0 => "checkpoints.sql",
    170000 => "checkpoints.pg17.sql",
    180000 => "checkpoints.pg18.sql",
]);

pub struct Checkpoints;

pub static CHECKPOINTS_TOTAL: MetricFamily = MetricFamily {
    name: "dbtool_checkpoints_total",
    help: "Checkpoints performed, by kind (timed: checkpoint_timeout; requested: WAL volume or explicit).",
    kind: MetricKind::Counter,
};
pub static CHECKPOINT_TIME: MetricFamily = MetricFamily {
    name: "dbtool_checkpoint_time_seconds_total",
    help: "Time checkpoints spent writing and syncing files (phase label).",
    kind: MetricKind::Counter,
};
pub static BUFFERS_WRITTEN: MetricFamily = MetricFamily {
    name: "dbtool_buffers_written_total",
    help: "Shared buffers written out, by writer (checkpointer, bgwriter, backend).",
    kind: MetricKind::Counter,
};
pub static BACKEND_FSYNC: MetricFamily = MetricFamily {
    name: "dbtool_buffers_backend_fsync_total",
    help: "fsync calls ordinary backends had to do themselves (should stay 0).",
    kind: MetricKind::Counter,
};
pub static MAXWRITTEN: MetricFamily = MetricFamily {
    name: "dbtool_bgwriter_maxwritten_clean_total",
    help: "Times the background writer stopped a round because it wrote bgwriter_lru_maxpages.",
    kind: MetricKind::Counter,
};
pub static BUFFERS_ALLOC: MetricFamily = MetricFamily {
    name: "dbtool_buffers_allocated_total",
    help: "Shared buffers allocated.",
    kind: MetricKind::Counter,
};

impl Check for Checkpoints {
    fn name(&self) -> &'static str {
        "checkpoints"
    }
    fn description(&self) -> &'static str {
        "Timed vs requested checkpoints, write/sync time, buffers written by checkpointer/bgwriter/backends"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&CHECKPOINTS];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "requested_warning",
                default: 50.0,
                help: "share (%) of checkpoints that were requested rather than timed: raise max_wal_size",
            },
            ThresholdSpec {
                key: "min_checkpoints",
                default: 20.0,
                help: "checkpoints since reset before the share is judged",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &CHECKPOINTS_TOTAL,
            &CHECKPOINT_TIME,
            &BUFFERS_WRITTEN,
            &BACKEND_FSYNC,
            &MAXWRITTEN,
            &BUFFERS_ALLOC,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let q = &CHECKPOINTS;
        let mut out = CheckOutput::default();
        let Some(r) = ctx.rows(q).first() else {
            out.summary = "no checkpointer statistics".into();
            return Ok(out);
        };
        let get = |c: &str| r.opt_f64(c).in_query(q);
        let (timed, requested) = (get("timed")?, get("requested")?);
        for (kind, v) in [("timed", timed), ("requested", requested)] {
            if let Some(v) = v {
                out.samples.push(Sample::new(&CHECKPOINTS_TOTAL, v).label("kind", kind));
            }
        }
        for (phase, col) in [("write", "write_time_ms"), ("sync", "sync_time_ms")] {
            if let Some(ms) = get(col)? {
                out.samples
                    .push(Sample::new(&CHECKPOINT_TIME, ms / 1000.0).label("phase", phase));
            }
        }
        let writers = [
            ("checkpointer", "buffers_checkpoint"),
            ("bgwriter", "buffers_clean"),
            ("backend", "buffers_backend"),
        ];
        let mut written = [0.0; 3];
        for (i, (writer, col)) in writers.iter().enumerate() {
            if let Some(v) = get(col)? {
                written[i] = v;
                out.samples
                    .push(Sample::new(&BUFFERS_WRITTEN, v).label("writer", *writer));
            }
        }
        for (family, col) in [
            (&BACKEND_FSYNC, "buffers_backend_fsync"),
            (&MAXWRITTEN, "maxwritten_clean"),
            (&BUFFERS_ALLOC, "buffers_alloc"),
        ] {
            if let Some(v) = get(col)? {
                out.samples.push(Sample::new(family, v));
            }
        }
        let (timed, requested) = (timed.unwrap_or(0.0), requested.unwrap_or(0.0));
        let total = timed + requested;
        let share = requested / total.max(1.0);
        let t = ctx.thresholds;
        if total >= t.get("min_checkpoints")
            && share * 100.0 >= t.get("requested_warning")
            && t.get("requested_warning") > 0.0
        {
            out.findings.push(
                Finding::new(
                    Severity::Warning,
                    "checkpoints",
                    format!(
                        "{} of {total} checkpoints were requested, not timed: WAL volume forces them; raise max_wal_size",
                        pct(share)
                    ),
                )
                .with_value(share * 100.0),
            );
        }
        let all_written: f64 = written.iter().sum();
        out.summary = format!(
            "{total} checkpoints ({} requested); buffers written: {} checkpointer, {} bgwriter, {} backends",
            pct(share),
            pct(written[0] / all_written.max(1.0)),
            pct(written[1] / all_written.max(1.0)),
            pct(written[2] / all_written.max(1.0)),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn row(timed: &str, requested: &str, backend: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("timed", Some(timed)),
            ("requested", Some(requested)),
            ("write_time_ms", Some("1500")),
            ("sync_time_ms", None),
            ("buffers_checkpoint", Some("100")),
            ("buffers_clean", Some("0")),
            ("maxwritten_clean", Some("0")),
            ("buffers_backend", backend),
            ("buffers_backend_fsync", None),
            ("buffers_alloc", Some("10")),
            ("stats_reset_seconds", None),
        ])
    }

    #[test]
    fn mostly_requested_checkpoints_warn() {
        let out = eval(
            &Checkpoints,
            vec![outcome(&CHECKPOINTS, vec![row("5", "30", Some("100"))])],
        );
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        let write = out.samples.iter().find(|s| s.family.name == CHECKPOINT_TIME.name);
        assert_eq!(write.map(|s| s.value), Some(1.5));
        assert!(out.summary.contains("50.0% backends"), "{}", out.summary);
    }

    #[test]
    fn few_checkpoints_are_not_judged_and_nulls_are_skipped() {
        let out = eval(&Checkpoints, vec![outcome(&CHECKPOINTS, vec![row("1", "9", None)])]);
        assert!(out.findings.is_empty());
        assert!(!out
            .samples
            .iter()
            .any(|s| s.labels.contains(&("writer", "backend".into()))));
    }
}

//! WAL on disk: pg_wal's size against max_wal_size, what of it replication slots retain and
//! how much more each may keep (safe_wal_size), the archiver's backlog in bytes, and the WAL
//! generated (pg_stat_wal, 14+). Slots' wal_status (unreserved, lost) is judged by
//! `replication`; this check says where pg_wal's bytes go.

use super::shared::SLOTS;
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(WAL, "wal", Cluster, [0 => "wal.sql", 140000 => "wal.pg14.sql"]);

pub struct Wal;

const MIB: f64 = 1024.0 * 1024.0;

pub static DIRECTORY: MetricFamily = MetricFamily {
    name: "dbtool_wal_directory_bytes",
    help: "Size of pg_wal (pg_ls_waldir()).",
    kind: MetricKind::Gauge,
};
pub static MAX_SIZE: MetricFamily = MetricFamily {
    name: "dbtool_wal_max_size_bytes",
    help: "max_wal_size: pg_wal's soft limit between checkpoints.",
    kind: MetricKind::Gauge,
};
pub static READY: MetricFamily = MetricFamily {
    name: "dbtool_wal_archive_ready_bytes",
    help: "WAL waiting to be archived (.ready files times the segment size).",
    kind: MetricKind::Gauge,
};
pub static SLOT_SAFE: MetricFamily = MetricFamily {
    name: "dbtool_wal_slot_safe_bytes",
    help: "Per slot, WAL that can still be written before the slot loses WAL it needs (safe_wal_size; absent when max_slot_wal_keep_size is unlimited).",
    kind: MetricKind::Gauge,
};
pub static GENERATED: MetricFamily = MetricFamily {
    name: "dbtool_wal_generated_bytes_total",
    help: "WAL generated since the statistics were reset (pg_stat_wal, 14+).",
    kind: MetricKind::Counter,
};
pub static RECORDS: MetricFamily = MetricFamily {
    name: "dbtool_wal_records_total",
    help: "WAL records generated since the statistics were reset (pg_stat_wal, 14+).",
    kind: MetricKind::Counter,
};
pub static FPI: MetricFamily = MetricFamily {
    name: "dbtool_wal_full_page_images_total",
    help: "Full page images written to WAL since the statistics were reset (pg_stat_wal, 14+).",
    kind: MetricKind::Counter,
};
pub static BUFFERS_FULL: MetricFamily = MetricFamily {
    name: "dbtool_wal_buffers_full_total",
    help: "Times WAL was written because wal_buffers was full (pg_stat_wal, 14+; raise wal_buffers if it climbs).",
    kind: MetricKind::Counter,
};

/// The slot retaining the most WAL: (name, bytes), for the summary and the finding.
fn slots(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<Option<(String, f64)>, EvalError> {
    let q = &SLOTS;
    let mut biggest: Option<(String, f64)> = None;
    let mut told = Vec::new();
    for r in ctx.rows(q) {
        let name = r.str("slot_name").in_query(q)?;
        let retained = r.opt_f64("retained_bytes").in_query(q)?.unwrap_or(0.0);
        let safe = r.opt_f64("safe_wal_size").in_query(q)?;
        if let Some(s) = safe {
            out.samples.push(Sample::new(&SLOT_SAFE, s).label("slot", name));
        }
        if biggest.as_ref().is_none_or(|(_, b)| retained > *b) {
            biggest = Some((name.to_string(), retained));
        }
        let active = r.bool("active").in_query(q)?;
        let limit = safe.map_or_else(
            || "no limit (max_slot_wal_keep_size -1)".to_string(),
            |s| format!("{:.1} MB more before it loses WAL", s / MIB),
        );
        told.push((
            retained,
            Finding::new(
                Severity::Ok,
                format!("slot {name}"),
                format!(
                    "{} slot {name} retains {:.1} MB of WAL ({}, wal_status {}); {limit}",
                    r.str("slot_type").in_query(q)?,
                    retained / MIB,
                    if active { "active" } else { "inactive" },
                    r.opt_str("wal_status").in_query(q)?.unwrap_or("-"),
                ),
            )
            .with_value(retained),
        ));
    }
    told.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.findings.extend(told.into_iter().take(ctx.top_n).map(|(_, f)| f));
    Ok(biggest)
}

impl Check for Wal {
    fn name(&self) -> &'static str {
        "wal"
    }
    fn description(&self) -> &'static str {
        "pg_wal's size against max_wal_size, WAL retained by each slot, archive backlog in bytes, WAL generated"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&WAL, &SLOTS];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning_ratio",
                default: 2.0,
                help: "pg_wal is this many times max_wal_size",
            },
            ThresholdSpec {
                key: "critical_ratio",
                default: 0.0,
                help: "pg_wal is this many times max_wal_size (0: off; the disk's free space is node_exporter's)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &DIRECTORY,
            &MAX_SIZE,
            &READY,
            &SLOT_SAFE,
            &GENERATED,
            &RECORDS,
            &FPI,
            &BUFFERS_FULL,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let q = &WAL;
        let mut out = CheckOutput::default();
        let Some(r) = ctx.rows(q).first() else {
            out.summary = "no WAL statistics".into();
            return Ok(out);
        };
        let size = r.f64("wal_bytes").in_query(q)?;
        let max = r.f64("max_wal_bytes").in_query(q)?;
        let ready = r.f64("ready_files").in_query(q)? * r.f64("segment_bytes").in_query(q)?;
        out.samples.push(Sample::new(&DIRECTORY, size));
        out.samples.push(Sample::new(&MAX_SIZE, max));
        out.samples.push(Sample::new(&READY, ready));
        for (family, col) in [
            (&GENERATED, "wal_generated_bytes"),
            (&RECORDS, "wal_records"),
            (&FPI, "wal_fpi"),
            (&BUFFERS_FULL, "wal_buffers_full"),
        ] {
            if let Some(v) = r.opt_f64(col).in_query(q)? {
                out.samples.push(Sample::new(family, v));
            }
        }
        let biggest = slots(ctx, &mut out)?;
        let ratio = if max > 0.0 { size / max } else { 0.0 };
        let t = ctx.thresholds;
        let sev = Severity::above(ratio, t.get("warning_ratio"), t.get("critical_ratio"));
        let slot = biggest
            .filter(|(_, b)| *b > 0.0)
            .map_or_else(String::new, |(n, b)| format!("; slot {n} retains {:.1} MB", b / MIB));
        out.summary = format!(
            "pg_wal {:.1} MB ({:.1}× max_wal_size){slot}; {:.1} MB waiting to be archived",
            size / MIB,
            ratio,
            ready / MIB
        );
        if sev != Severity::Ok {
            out.findings.insert(
                0,
                Finding::new(
                    sev,
                    "pg_wal",
                    format!(
                        "pg_wal is {:.1} MB, {ratio:.1}× max_wal_size ({:.0} MB){slot}; {:.1} MB waiting to be archived: \
                         drop slots whose consumer is gone, fix archiving, or make room",
                        size / MIB,
                        max / MIB,
                        ready / MIB
                    ),
                )
                .with_value(size),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;

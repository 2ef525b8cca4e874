//! Streaming replication from both sides: standbys' lag (on a primary), replay lag and the
//! WAL receiver (on a standby), and replication slots holding WAL back.

use super::shared::SLOTS;
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};

use crate::db::row::Row;
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(STANDBYS, "replication_standbys", Cluster, [0 => "replication_standbys.sql"]);
query!(RECEIVER, "replication_receiver", Cluster, [0 => "replication_receiver.sql"]);

pub struct Replication;

pub static IN_RECOVERY: MetricFamily = MetricFamily {
    name: "dbtool_replication_in_recovery",
    help: "1 when this server is a standby (in recovery), 0 on a primary.",
    kind: MetricKind::Gauge,
};
pub static STANDBY_LAG_SECONDS: MetricFamily = MetricFamily {
    name: "dbtool_replication_standby_lag_seconds",
    help: "Per connected standby, its write/flush/replay lag in seconds (0 when caught up).",
    kind: MetricKind::Gauge,
};
pub static STANDBY_LAG_BYTES: MetricFamily = MetricFamily {
    name: "dbtool_replication_standby_lag_bytes",
    help: "Per connected standby, WAL bytes not yet sent/written/flushed/replayed there.",
    kind: MetricKind::Gauge,
};
pub static REPLAY_LAG_SECONDS: MetricFamily = MetricFamily {
    name: "dbtool_replication_replay_lag_seconds",
    help: "On a standby: age of the last replayed transaction, 0 when all received WAL is replayed.",
    kind: MetricKind::Gauge,
};
pub static REPLAY_LAG_BYTES: MetricFamily = MetricFamily {
    name: "dbtool_replication_replay_lag_bytes",
    help: "On a standby: WAL bytes received but not yet replayed.",
    kind: MetricKind::Gauge,
};
pub static RECEIVER_UP: MetricFamily = MetricFamily {
    name: "dbtool_replication_receiver_streaming",
    help: "On a standby: 1 when the WAL receiver is streaming from its primary.",
    kind: MetricKind::Gauge,
};
pub static SLOT_RETAINED: MetricFamily = MetricFamily {
    name: "dbtool_replication_slot_retained_bytes",
    help: "WAL bytes a replication slot keeps from being removed.",
    kind: MetricKind::Gauge,
};
pub static SLOT_ACTIVE: MetricFamily = MetricFamily {
    name: "dbtool_replication_slot_active",
    help: "1 when a consumer is connected to the replication slot.",
    kind: MetricKind::Gauge,
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The standbys of this server: lag samples and a finding per standby.
fn standbys(ctx: &EvalContext<'_>, out: &mut CheckOutput, warn: f64, crit: f64) -> Result<usize, EvalError> {
    let q = &STANDBYS;
    let rows = ctx.rows(q);
    for r in rows {
        let name = r.str("application_name").in_query(q)?;
        let addr = r.str("client_addr").in_query(q)?;
        let state = r.opt_str("state").in_query(q)?.unwrap_or("unknown");
        let mut replay = 0.0;
        for kind in ["write", "flush", "replay"] {
            // NULL once the standby has caught up on an idle primary: no lag.
            let secs = r.opt_f64(&format!("{kind}_lag_seconds")).in_query(q)?.unwrap_or(0.0);
            if kind == "replay" {
                replay = secs;
            }
            let lbl = |s: Sample| s.label("standby", name).label("client_addr", addr).label("kind", kind);
            out.samples.push(lbl(Sample::new(&STANDBY_LAG_SECONDS, secs)));
            if let Some(bytes) = r.opt_f64(&format!("{kind}_lag_bytes")).in_query(q)? {
                out.samples.push(lbl(Sample::new(&STANDBY_LAG_BYTES, bytes)));
            }
        }
        let bytes = r.opt_f64("replay_lag_bytes").in_query(q)?;
        let mut severity = Severity::above(replay, warn, crit);
        if state != "streaming" {
            severity = severity.worst(Severity::Warning);
        }
        out.findings.push(
            Finding::new(
                severity,
                format!("standby {name} ({addr})"),
                format!(
                    "standby {name} at {addr} is {state}, replay lag {} ({} bytes behind)",
                    human_secs(replay),
                    bytes.map_or_else(|| "?".to_string(), |b| format!("{b:.0}"))
                ),
            )
            .with_value(replay),
        );
    }
    Ok(rows.len())
}

/// This server's own recovery state. Returns whether it is a standby and its replay lag.
fn receiver(ctx: &EvalContext<'_>, out: &mut CheckOutput, warn: f64, crit: f64) -> Result<Option<f64>, EvalError> {
    let q = &RECEIVER;
    let Some(r) = ctx.rows(q).first() else {
        return Ok(None);
    };
    let in_recovery = r.bool("in_recovery").in_query(q)?;
    out.samples
        .push(Sample::new(&IN_RECOVERY, if in_recovery { 1.0 } else { 0.0 }));
    if !in_recovery {
        return Ok(None);
    }
    let status = r.opt_str("receiver_status").in_query(q)?;
    let streaming = status == Some("streaming");
    out.samples
        .push(Sample::new(&RECEIVER_UP, if streaming { 1.0 } else { 0.0 }));
    // NULL: nothing replayed since the standby started and nothing received (e.g. archive
    // recovery): the lag cannot be told, which is not the same as a big one.
    let lag = r.opt_f64("replay_lag_seconds").in_query(q)?;
    if let Some(lag) = lag {
        out.samples.push(Sample::new(&REPLAY_LAG_SECONDS, lag));
        out.findings.push(
            Finding::new(
                Severity::above(lag, warn, crit),
                "this standby",
                format!("replay lag {}", human_secs(lag)),
            )
            .with_value(lag),
        );
    }
    let bytes = r.opt_f64("replay_lag_bytes").in_query(q)?;
    if let Some(bytes) = bytes {
        out.samples.push(Sample::new(&REPLAY_LAG_BYTES, bytes));
    }
    // Received but not replayed, with no transaction replayed since the standby started: how
    // old the backlog is cannot be told, and "0s" would hide it.
    if let (None, Some(b)) = (lag, bytes.filter(|b| *b > 0.0)) {
        out.findings.push(Finding::new(
            Severity::Unknown,
            "this standby",
            format!(
                "replay lag unknown: {:.1} MiB of WAL received but not replayed, and no transaction replayed since the standby started",
                b / 1024.0 / 1024.0
            ),
        ));
    }
    if r.opt_bool("replay_paused").in_query(q)? == Some(true) {
        out.findings.push(Finding::new(
            Severity::Warning,
            "this standby",
            "WAL replay is paused: the standby falls behind until `SELECT pg_wal_replay_resume()`",
        ));
    }
    if !streaming {
        out.findings.push(Finding::new(
            Severity::Warning,
            "this standby",
            format!(
                "WAL receiver is {}: this standby is not streaming from its primary",
                status.unwrap_or("not running")
            ),
        ));
    }
    Ok(Some(lag.unwrap_or(0.0)))
}

fn slot(r: &Row, out: &mut CheckOutput, inactive_warn: f64) -> Result<(), EvalError> {
    let q = &SLOTS;
    let name = r.str("slot_name").in_query(q)?;
    let kind = r.str("slot_type").in_query(q)?;
    let active = r.bool("active").in_query(q)?;
    let retained = r.opt_f64("retained_bytes").in_query(q)?;
    let wal_status = r.opt_str("wal_status").in_query(q)?;
    let lbl = |s: Sample| s.label("slot", name).label("slot_type", kind);
    out.samples
        .push(lbl(Sample::new(&SLOT_ACTIVE, if active { 1.0 } else { 0.0 })));
    if let Some(b) = retained {
        out.samples.push(lbl(Sample::new(&SLOT_RETAINED, b)));
    }
    let retained_text = retained.map_or_else(|| "no WAL".to_string(), |b| format!("{:.2} GiB of WAL", b / GIB));
    let (severity, why) = match wal_status {
        Some("lost") => (
            Severity::Critical,
            "its WAL was removed (wal_status lost): the consumer must be re-created",
        ),
        Some("unreserved") => (Severity::Warning, "it is about to lose WAL (wal_status unreserved)"),
        _ if !active && retained.unwrap_or(0.0) > inactive_warn * GIB => (
            Severity::Warning,
            "it is inactive and holds WAL back: drop it if its consumer is gone",
        ),
        _ if !active => (Severity::Ok, "it is inactive"),
        _ => return Ok(()),
    };
    out.findings.push(
        Finding::new(
            severity,
            format!("slot {name}"),
            format!("{kind} slot {name} retains {retained_text}; {why}"),
        )
        .with_value(retained.unwrap_or(0.0)),
    );
    Ok(())
}

impl Check for Replication {
    fn name(&self) -> &'static str {
        "replication"
    }
    fn description(&self) -> &'static str {
        "Standby lag in seconds and bytes (both sides), WAL receiver, replication slots"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&STANDBYS, &SLOTS, &RECEIVER];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning_seconds",
                default: 60.0,
                help: "replay lag of a standby",
            },
            ThresholdSpec {
                key: "critical_seconds",
                default: 300.0,
                help: "replay lag of a standby",
            },
            ThresholdSpec {
                key: "inactive_slot_gib",
                default: 1.0,
                help: "WAL retained by an inactive slot (GiB)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &IN_RECOVERY,
            &STANDBY_LAG_SECONDS,
            &STANDBY_LAG_BYTES,
            &REPLAY_LAG_SECONDS,
            &REPLAY_LAG_BYTES,
            &RECEIVER_UP,
            &SLOT_RETAINED,
            &SLOT_ACTIVE,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let (warn, crit) = (t.get("warning_seconds"), t.get("critical_seconds"));
        let mut out = CheckOutput::default();
        let own = receiver(ctx, &mut out, warn, crit)?;
        let n = standbys(ctx, &mut out, warn, crit)?;
        let slots = ctx.rows(&SLOTS);
        for r in slots {
            slot(r, &mut out, t.get("inactive_slot_gib"))?;
        }
        let role = match own {
            Some(lag) => format!("standby, replay lag {}", human_secs(lag)),
            None => "primary".to_string(),
        };
        out.summary = format!("{role}; {n} standby(s) connected; {} slot(s)", slots.len());
        Ok(out)
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;

//! What active sessions wait on: counts by wait_event_type/wait_event (a bounded label set),
//! and sessions waiting on heavyweight locks against the rest. Read from the pg_stat_activity
//! rows every run already fetches, so it costs no query of its own.

use std::collections::BTreeMap;

use super::shared::{sees_all_sessions, ACTIVITY, ROLE};
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

pub struct Waits;

/// At most this many (type, event) series; the rest are summed under "other", so a server
/// with many extension wait events cannot explode the series count.
const MAX_EVENTS: usize = 20;
/// The label of an active session that waits on nothing: it is running (on CPU, or in I/O
/// the server does not instrument).
const RUNNING: &str = "running";

pub static WAIT_EVENT: MetricFamily = MetricFamily {
    name: "dbtool_sessions_wait_event",
    help: "Active sessions by wait_event_type and wait_event (\"running\" when waiting on nothing; top 20, the rest as \"other\").",
    kind: MetricKind::Gauge,
};
pub static ACTIVE: MetricFamily = MetricFamily {
    name: "dbtool_sessions_active",
    help: "Active sessions (state active, not walsenders, not dbtool itself).",
    kind: MetricKind::Gauge,
};
pub static LOCK_WAITING: MetricFamily = MetricFamily {
    name: "dbtool_sessions_lock_waiting",
    help: "Active sessions waiting on a heavyweight lock (wait_event_type Lock).",
    kind: MetricKind::Gauge,
};

/// Active sessions counted by (wait_event_type, wait_event).
fn count(ctx: &EvalContext<'_>) -> Result<BTreeMap<(String, String), u64>, EvalError> {
    let q = &ACTIVITY;
    let mut by_event = BTreeMap::new();
    for row in ctx.rows(q) {
        let active = row.opt_str("state").in_query(q)? == Some("active");
        if !active || row.bool("is_self").in_query(q)? || row.str("backend_type").in_query(q)? == "walsender" {
            continue;
        }
        let kind = row.opt_str("wait_event_type").in_query(q)?.unwrap_or(RUNNING);
        let event = row.opt_str("wait_event").in_query(q)?.unwrap_or(RUNNING);
        *by_event.entry((kind.to_string(), event.to_string())).or_default() += 1;
    }
    Ok(by_event)
}

impl Check for Waits {
    fn name(&self) -> &'static str {
        "waits"
    }
    fn description(&self) -> &'static str {
        "What active sessions wait on, by wait event type and event; lock waits against the rest"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&ACTIVITY, &ROLE];
        L
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "lock_warning_sessions",
                default: 10.0,
                help: "this many active sessions wait on locks at once",
            },
            ThresholdSpec {
                key: "lock_critical_sessions",
                default: 0.0,
                help: "this many active sessions wait on locks at once (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&WAIT_EVENT, &ACTIVE, &LOCK_WAITING];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let by_event = count(ctx)?;
        let mut ranked: Vec<(&(String, String), u64)> = by_event.iter().map(|(k, n)| (k, *n)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let active: u64 = ranked.iter().map(|(_, n)| n).sum();
        let locks: u64 = ranked.iter().filter(|((t, _), _)| t == "Lock").map(|(_, n)| n).sum();
        let mut out = CheckOutput::default();
        for ((kind, event), n) in ranked.iter().take(MAX_EVENTS) {
            out.samples.push(
                Sample::new(&WAIT_EVENT, *n as f64)
                    .label("wait_event_type", kind.as_str())
                    .label("wait_event", event.as_str()),
            );
        }
        let rest: u64 = ranked.iter().skip(MAX_EVENTS).map(|(_, n)| n).sum();
        if rest > 0 {
            out.samples.push(
                Sample::new(&WAIT_EVENT, rest as f64)
                    .label("wait_event_type", "other")
                    .label("wait_event", "other"),
            );
        }
        out.samples.push(Sample::new(&ACTIVE, active as f64));
        out.samples.push(Sample::new(&LOCK_WAITING, locks as f64));
        let top: Vec<String> = ranked
            .iter()
            .take(5)
            .map(|((kind, event), n)| format!("{n} {kind}/{event}"))
            .collect();
        out.summary = match active {
            0 => "no active sessions".into(),
            _ => format!("{active} active, {locks} waiting on locks; {}", top.join(", ")),
        };
        let t = ctx.thresholds;
        let sev = Severity::above(
            locks as f64,
            t.get("lock_warning_sessions"),
            t.get("lock_critical_sessions"),
        );
        if sev != Severity::Ok {
            out.findings.push(
                Finding::new(
                    sev,
                    "lock waits",
                    format!(
                        "{locks} of {active} active sessions wait on locks ({}); `dbtool health --check locks` names the root blockers",
                        top.join(", ")
                    ),
                )
                .with_value(locks as f64),
            );
        }
        if let Some(f) = sees_all_sessions(ctx, self.name())? {
            out.summary = format!("{}; other roles' sessions not visible", out.summary);
            out.findings.push(f);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "waits_tests.rs"]
mod tests;

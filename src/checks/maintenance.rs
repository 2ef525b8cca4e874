//! Maintenance in progress: VACUUM, ANALYZE, CREATE INDEX, CLUSTER and VACUUM FULL from the
//! progress views (table, phase, share done, running time), anti-wraparound autovacuums, and
//! autovacuum workers at work against `autovacuum_max_workers`. Informational: a snapshot of
//! work in progress is no fault; all workers busy for long is (the shipped rule waits 30m), and
//! an anti-wraparound autovacuum waiting for its table's lock is a WARNING.

use std::collections::BTreeMap;

use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(PROGRESS, "maintenance_progress", Cluster, [130000 => "maintenance_progress.sql"]);
query!(AUTOVACUUM, "autovacuum_workers", Cluster, [0 => "autovacuum_workers.sql"]);

pub struct Maintenance;

/// The `command` label's values: every one is emitted, 0 when idle, so a series never vanishes.
const COMMANDS: &[&str] = &[
    "vacuum",
    "autovacuum",
    "analyze",
    "autoanalyze",
    "create_index",
    "cluster",
    "vacuum_full",
];

pub static RUNNING: MetricFamily = MetricFamily {
    name: "dbtool_maintenance_running",
    help: "Maintenance commands running now, by command (vacuum, autovacuum, analyze, autoanalyze, create_index, cluster, vacuum_full).",
    kind: MetricKind::Gauge,
};
pub static WORKERS: MetricFamily = MetricFamily {
    name: "dbtool_autovacuum_workers",
    help: "Autovacuum workers at work.",
    kind: MetricKind::Gauge,
};
pub static MAX_WORKERS: MetricFamily = MetricFamily {
    name: "dbtool_autovacuum_max_workers",
    help: "The autovacuum_max_workers setting.",
    kind: MetricKind::Gauge,
};
pub static WRAPAROUND: MetricFamily = MetricFamily {
    name: "dbtool_autovacuum_wraparound_workers",
    help: "Autovacuum workers running an anti-wraparound vacuum.",
    kind: MetricKind::Gauge,
};

/// One finding per command in progress; returns the count per command.
fn progress(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<BTreeMap<String, u32>, EvalError> {
    let q = &PROGRESS;
    let mut running = BTreeMap::new();
    for r in ctx.rows(q) {
        let command = r.str("command").in_query(q)?;
        *running.entry(command.to_string()).or_insert(0) += 1;
        let db = r.opt_str("datname").in_query(q)?.unwrap_or("?");
        let relation = r.opt_str("relation").in_query(q)?.unwrap_or("?");
        let done = r
            .opt_f64("percent")
            .in_query(q)?
            .map_or_else(String::new, |p| format!(", {p:.1}% done"));
        let ran = r
            .opt_f64("running_seconds")
            .in_query(q)?
            .map_or_else(|| "unknown time".to_string(), human_secs);
        let wraparound = if r.bool("wraparound").in_query(q)? {
            " to prevent wraparound"
        } else {
            ""
        };
        out.findings.push(Finding::new(
            Severity::Ok,
            format!("{db}.{relation}"),
            format!(
                "{}{wraparound} (pid {}): phase {}{done}, running for {ran}",
                command.replace('_', " "),
                r.str("pid").in_query(q)?,
                r.opt_str("phase").in_query(q)?.unwrap_or("?"),
            ),
        ));
    }
    Ok(running)
}

/// Autovacuum workers: the samples, a note when all are busy, and anti-wraparound workers the
/// progress views do not show (waiting for their table's lock: WARNING, nothing freezes it
/// meanwhile). Returns (busy, autovacuum_max_workers).
fn autovacuum(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<(usize, Option<f64>), EvalError> {
    let q = &AUTOVACUUM;
    let rows = ctx.rows(q);
    let Some(first) = rows.first() else {
        return Ok((0, None));
    };
    let max = first.f64("max_workers").in_query(q)?;
    let (mut busy, mut wraparound) = (0, 0);
    for r in rows {
        let Some(pid) = r.opt_str("pid").in_query(q)? else {
            continue;
        };
        busy += 1;
        if !r.bool("wraparound").in_query(q)? {
            continue;
        }
        wraparound += 1;
        if r.opt_str("wait_event_type").in_query(q)? != Some("Lock") {
            continue;
        }
        let ran = r
            .opt_f64("running_seconds")
            .in_query(q)?
            .map_or_else(|| "unknown time".to_string(), human_secs);
        out.findings.push(Finding::new(
            Severity::Warning,
            format!("database {}", r.opt_str("datname").in_query(q)?.unwrap_or("?")),
            format!(
                "{} (pid {pid}) waits for a lock ({}) since {ran}: the table cannot be frozen meanwhile; \
                 find the holder with dbtool health --check locks and end its transaction",
                r.opt_str("query")
                    .in_query(q)?
                    .unwrap_or("autovacuum to prevent wraparound"),
                r.opt_str("wait_event").in_query(q)?.unwrap_or("?"),
            ),
        ));
    }
    out.samples.push(Sample::new(&WORKERS, busy as f64));
    out.samples.push(Sample::new(&MAX_WORKERS, max));
    out.samples.push(Sample::new(&WRAPAROUND, f64::from(wraparound)));
    if busy as f64 >= max && max > 0.0 {
        out.findings.push(Finding::new(
            Severity::Ok,
            "autovacuum",
            format!(
                "all {busy} autovacuum workers are busy: tables waiting for vacuum wait longer; if this lasts, \
                 vacuum cannot keep up (raise autovacuum_max_workers, lower autovacuum_vacuum_cost_delay, or \
                 look at the biggest tables)"
            ),
        ));
    }
    Ok((busy, Some(max)))
}

impl Check for Maintenance {
    fn name(&self) -> &'static str {
        "maintenance"
    }
    fn description(&self) -> &'static str {
        "Maintenance in progress (vacuum, analyze, create index, cluster), autovacuum workers busy, anti-wraparound autovacuum blocked (WARNING)"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&PROGRESS, &AUTOVACUUM];
        L
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&RUNNING, &WORKERS, &MAX_WORKERS, &WRAPAROUND];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let running = progress(ctx, &mut out)?;
        for command in COMMANDS {
            let n = running.get(*command).copied().unwrap_or(0);
            out.samples
                .push(Sample::new(&RUNNING, f64::from(n)).label("command", *command));
        }
        let (busy, max) = autovacuum(ctx, &mut out)?;
        let workers = match max {
            Some(max) => format!("{busy} of {max} autovacuum workers busy"),
            None => "autovacuum workers not read".to_string(),
        };
        let total: u32 = running.values().sum();
        out.summary = format!("{total} maintenance command(s) running; {workers}");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn row(command: &str, percent: Option<&str>, wraparound: &str) -> Row {
        Row::from_pairs(&[
            ("pid", Some("4242")),
            ("datname", Some("shop")),
            ("relation", Some("public.orders")),
            ("command", Some(command)),
            ("phase", Some("scanning heap")),
            ("percent", percent),
            ("running_seconds", Some("75")),
            ("wraparound", Some(wraparound)),
        ])
    }

    fn worker(pid: Option<&str>, wraparound: &str, wait: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("max_workers", Some("3")),
            ("pid", pid),
            ("datname", Some("shop")),
            (
                "query",
                Some("autovacuum: VACUUM public.ledger (to prevent wraparound)"),
            ),
            ("wait_event_type", wait),
            ("wait_event", wait.map(|_| "relation")),
            ("running_seconds", Some("120")),
            ("wraparound", Some(wraparound)),
        ])
    }

    #[test]
    fn commands_in_progress_are_listed_and_counted_with_every_command_a_series() {
        let out = eval(
            &Maintenance,
            vec![
                outcome(
                    &PROGRESS,
                    vec![row("autovacuum", Some("42.5"), "t"), row("create_index", None, "f")],
                ),
                outcome(&AUTOVACUUM, vec![worker(Some("7"), "f", None)]),
            ],
        );
        assert_eq!(out.findings.len(), 2);
        assert_eq!(out.findings[0].object, "shop.public.orders");
        assert_eq!(
            out.findings[0].message,
            "autovacuum to prevent wraparound (pid 4242): phase scanning heap, 42.5% done, running for 1m15s"
        );
        assert_eq!(
            out.findings[1].message,
            "create index (pid 4242): phase scanning heap, running for 1m15s"
        );
        let running: Vec<_> = out
            .samples
            .iter()
            .filter(|s| std::ptr::eq(s.family, &RUNNING))
            .collect();
        assert_eq!(running.len(), COMMANDS.len());
        assert!(out.findings.iter().all(|f| f.severity == Severity::Ok));
        assert_eq!(
            out.summary,
            "2 maintenance command(s) running; 1 of 3 autovacuum workers busy"
        );
    }

    #[test]
    fn all_autovacuum_workers_busy_is_noted_and_a_wraparound_one_waiting_on_a_lock_warns() {
        let out = eval(
            &Maintenance,
            vec![
                outcome(&PROGRESS, vec![]),
                outcome(
                    &AUTOVACUUM,
                    vec![
                        worker(Some("7"), "t", Some("Lock")),
                        worker(Some("8"), "t", None),
                        worker(Some("9"), "f", Some("Lock")),
                    ],
                ),
            ],
        );
        let f: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(f, [(Severity::Warning, "database shop"), (Severity::Ok, "autovacuum")]);
        assert!(
            out.findings[0].message.starts_with(
                "autovacuum: VACUUM public.ledger (to prevent wraparound) (pid 7) waits for a lock (relation) since 2m00s"
            ),
            "{}",
            out.findings[0].message
        );
        assert!(out.findings[1].message.starts_with("all 3 autovacuum workers are busy"));
        let wraparound = out.samples.iter().find(|s| std::ptr::eq(s.family, &WRAPAROUND));
        assert_eq!(wraparound.map(|s| s.value), Some(2.0));
    }

    #[test]
    fn no_worker_is_a_row_of_nulls_and_zero_busy() {
        let out = eval(
            &Maintenance,
            vec![
                outcome(&PROGRESS, vec![]),
                outcome(&AUTOVACUUM, vec![worker(None, "f", None)]),
            ],
        );
        assert!(out.findings.is_empty());
        assert_eq!(
            out.summary,
            "0 maintenance command(s) running; 0 of 3 autovacuum workers busy"
        );
    }
}

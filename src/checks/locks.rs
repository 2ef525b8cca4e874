//! Lock counts, and blocked sessions with their blocking chain back to the root blocker.

use std::collections::{BTreeMap, HashMap};

use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};

use crate::db::row::Row;
use crate::query;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

query!(LOCKS, "locks", Cluster, [0 => "locks.sql"]);
query!(BLOCKED, "blocked", Cluster, [0 => "blocked.sql", 140000 => "blocked.pg14.sql"]);

pub struct Locks;

pub static LOCK_COUNT: MetricFamily = MetricFamily {
    name: "dbtool_locks",
    help: "Locks held or awaited, by database, mode and whether granted.",
    kind: MetricKind::Gauge,
};
pub static BLOCKED_SESSIONS: MetricFamily = MetricFamily {
    name: "dbtool_blocked_sessions",
    help: "Sessions waiting for a lock held by another session.",
    kind: MetricKind::Gauge,
};
pub static LONGEST_WAIT: MetricFamily = MetricFamily {
    name: "dbtool_blocked_longest_wait_seconds",
    help: "Longest time any session has been waiting for a lock (0 when none waits).",
    kind: MetricKind::Gauge,
};

/// A session from the blocked query.
struct Session<'a> {
    pid: i64,
    user: &'a str,
    db: &'a str,
    state: Option<&'a str>,
    xact_seconds: Option<f64>,
    wait_seconds: Option<f64>,
    query: Option<&'a str>,
    blocked_by: Vec<i64>,
}

fn session(row: &Row) -> Result<Session<'_>, EvalError> {
    let q = &BLOCKED;
    let blocked_by = row.opt_str("blocked_by").in_query(q)?.unwrap_or("");
    Ok(Session {
        pid: row.i64("pid").in_query(q)?,
        user: row.str("usename").in_query(q)?,
        db: row.str("datname").in_query(q)?,
        state: row.opt_str("state").in_query(q)?,
        xact_seconds: row.opt_f64("xact_seconds").in_query(q)?,
        wait_seconds: row.opt_f64("wait_seconds").in_query(q)?,
        query: row.opt_str("query").in_query(q)?,
        blocked_by: blocked_by.split(',').filter_map(|p| p.trim().parse().ok()).collect(),
    })
}

/// Follows the first blocker of each session until one that is not itself waiting; cycles
/// (a deadlock about to be detected) stop at the first repeat.
fn root_blocker(start: i64, by_pid: &HashMap<i64, &Session<'_>>) -> i64 {
    let mut seen = vec![start];
    let mut pid = start;
    while let Some(next) = by_pid.get(&pid).and_then(|s| s.blocked_by.first()).copied() {
        if seen.contains(&next) {
            break;
        }
        seen.push(next);
        pid = next;
    }
    pid
}

fn describe_root(pid: i64, by_pid: &HashMap<i64, &Session<'_>>) -> String {
    if pid == 0 {
        return "a prepared transaction (see pg_prepared_xacts)".into();
    }
    match by_pid.get(&pid) {
        Some(s) => format!(
            "pid {pid} (user {}, db {}, {}, transaction open {}): {}",
            s.user,
            s.db,
            s.state.unwrap_or("state not visible"),
            s.xact_seconds.map_or_else(|| "-".into(), human_secs),
            s.query.unwrap_or("").replace('\n', " ")
        ),
        None => format!("pid {pid} (gone)"),
    }
}

impl Check for Locks {
    fn name(&self) -> &'static str {
        "locks"
    }
    fn description(&self) -> &'static str {
        "Lock counts by mode and database; blocked sessions and their root blocker"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&LOCKS, &BLOCKED];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning_seconds",
            critical: "critical_seconds",
            family: &LONGEST_WAIT,
            scale: 1.0,
            uom: "s",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning_seconds",
                default: 60.0,
                help: "a session has waited for a lock this long",
            },
            ThresholdSpec {
                key: "critical_seconds",
                default: 300.0,
                help: "a session has waited for a lock this long",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&LOCK_COUNT, &BLOCKED_SESSIONS, &LONGEST_WAIT];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let mut counts: BTreeMap<(String, String, bool), i64> = BTreeMap::new();
        for row in ctx.rows(&LOCKS) {
            let key = (
                row.str("datname").in_query(&LOCKS)?.to_string(),
                row.str("mode").in_query(&LOCKS)?.to_string(),
                row.bool("granted").in_query(&LOCKS)?,
            );
            *counts.entry(key).or_default() += row.i64("n").in_query(&LOCKS)?;
        }
        for ((db, mode, granted), n) in &counts {
            out.samples.push(
                Sample::new(&LOCK_COUNT, *n as f64)
                    .label("database", db.as_str())
                    .label("mode", mode.as_str())
                    .label("granted", granted.to_string()),
            );
        }

        let sessions = ctx.rows(&BLOCKED).iter().map(session).collect::<Result<Vec<_>, _>>()?;
        let by_pid: HashMap<i64, &Session<'_>> = sessions.iter().map(|s| (s.pid, s)).collect();
        let mut waiters: Vec<&Session<'_>> = sessions.iter().filter(|s| !s.blocked_by.is_empty()).collect();
        waiters.sort_by(|a, b| b.wait_seconds.unwrap_or(0.0).total_cmp(&a.wait_seconds.unwrap_or(0.0)));
        let longest = waiters.first().and_then(|s| s.wait_seconds).unwrap_or(0.0);
        out.samples.push(Sample::new(&BLOCKED_SESSIONS, waiters.len() as f64));
        out.samples.push(Sample::new(&LONGEST_WAIT, longest));

        let (warn, crit) = (
            ctx.thresholds.get("warning_seconds"),
            ctx.thresholds.get("critical_seconds"),
        );
        for w in waiters.iter().take(ctx.top_n) {
            let waited = w.wait_seconds.unwrap_or(0.0);
            let root = root_blocker(w.pid, &by_pid);
            let blockers: Vec<String> = w.blocked_by.iter().map(i64::to_string).collect();
            let severity = Severity::above(waited, warn, crit);
            out.findings.push(
                Finding::new(
                    severity,
                    format!("pid {}", w.pid),
                    format!(
                        "pid {} (user {}, db {}) has waited {} for a lock, blocked by pid {}; root blocker {}",
                        w.pid,
                        w.user,
                        w.db,
                        human_secs(waited),
                        blockers.join(","),
                        describe_root(root, &by_pid)
                    ),
                )
                .with_value(waited),
            );
        }
        out.summary = match waiters.len() {
            0 => format!("no blocked sessions; {} locks", counts.values().sum::<i64>()),
            n => format!("{n} blocked session(s), longest wait {}", human_secs(longest)),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};

    fn s(pid: &str, state: &str, wait: Option<&str>, by: &str) -> Row {
        Row::from_pairs(&[
            ("pid", Some(pid)),
            ("usename", Some("u")),
            ("datname", Some("app")),
            ("state", Some(state)),
            ("xact_seconds", Some("100")),
            ("wait_seconds", wait),
            ("query", Some("LOCK posts")),
            ("blocked_by", if by.is_empty() { None } else { Some(by) }),
        ])
    }

    #[test]
    fn names_the_root_blocker_of_a_chain() {
        // 30 waits on 20, which waits on 10 (idle in transaction): the root is 10.
        let rows = vec![
            s("10", "idle in transaction", None, ""),
            s("20", "active", Some("400"), "10"),
            s("30", "active", Some("70"), "20"),
        ];
        let out = eval(&Locks, vec![outcome(&LOCKS, vec![]), outcome(&BLOCKED, rows)]);
        assert_eq!(out.findings.len(), 2);
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert_eq!(out.findings[1].severity, Severity::Warning);
        assert!(
            out.findings[1].message.contains("root blocker pid 10"),
            "{}",
            out.findings[1].message
        );
        let longest = out.samples.iter().find(|s| s.family.name == LONGEST_WAIT.name);
        assert_eq!(longest.map(|s| s.value), Some(400.0));
    }

    #[test]
    fn prepared_transaction_and_null_wait_do_not_break() {
        let rows = vec![s("20", "active", None, "0")];
        let out = eval(&Locks, vec![outcome(&LOCKS, vec![]), outcome(&BLOCKED, rows)]);
        assert_eq!(out.findings[0].severity, Severity::Ok);
        assert!(out.findings[0].message.contains("prepared transaction"));
    }
}

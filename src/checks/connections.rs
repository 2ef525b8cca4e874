//! Connections by state and database, and usage of the usable connection limit.

use std::collections::BTreeMap;

use super::shared::{self, ACTIVITY, SETTINGS};
use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::report::finding::{Finding, MainThreshold, MetricFamily, MetricKind, Sample, Severity};

pub struct Connections;

pub static CONNECTIONS: MetricFamily = MetricFamily {
    name: "dbtool_connections",
    help: "Client backends by database and state.",
    kind: MetricKind::Gauge,
};
pub static USABLE: MetricFamily = MetricFamily {
    name: "dbtool_connections_usable",
    help: "Connections usable by ordinary roles: max_connections minus superuser_reserved_connections and reserved_connections.",
    kind: MetricKind::Gauge,
};
pub static MAX: MetricFamily = MetricFamily {
    name: "dbtool_connections_max",
    help: "The max_connections setting.",
    kind: MetricKind::Gauge,
};
pub static USAGE: MetricFamily = MetricFamily {
    name: "dbtool_connections_usage_ratio",
    help:
        "Client backends as a share of the usable connection limit (can exceed 1 when superusers use reserved slots).",
    kind: MetricKind::Gauge,
};

/// The states pg_stat_activity reports for client backends, always emitted (as 0 when absent)
/// so that alert expressions never see a series vanish.
const STATES: &[&str] = &[
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
];

impl Check for Connections {
    fn name(&self) -> &'static str {
        "connections"
    }
    fn description(&self) -> &'static str {
        "Client connections by state and database, as a share of the usable limit"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&SETTINGS, &ACTIVITY];
        L
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning",
            critical: "critical",
            family: &USAGE,
            scale: 100.0,
            uom: "%",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning",
                default: 70.0,
                help: "usage of the usable limit, percent",
            },
            ThresholdSpec {
                key: "critical",
                default: 90.0,
                help: "usage of the usable limit, percent",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CONNECTIONS, &USABLE, &MAX, &USAGE];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let settings = shared::settings(ctx)?;
        // Without max_connections a 0 would make every connection "over the limit": CRITICAL.
        let max = shared::required_setting_f64(&settings, "max_connections")?;
        // reserved_connections is new in 16: before, nothing is reserved for it.
        let reserved = shared::required_setting_f64(&settings, "superuser_reserved_connections")?
            + shared::setting_f64(&settings, "reserved_connections").unwrap_or(0.0);
        let usable = (max - reserved).max(1.0);

        let mut by_db_state: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut total = 0u64;
        for row in ctx.rows(&ACTIVITY) {
            if row.str("backend_type").in_query(&ACTIVITY)? != "client backend" {
                continue;
            }
            let db = row.str("datname").in_query(&ACTIVITY)?.to_string();
            // A NULL state means the role may not see that session's details (no pg_read_all_stats).
            let state = row
                .opt_str("state")
                .in_query(&ACTIVITY)?
                .unwrap_or("unknown")
                .to_string();
            *by_db_state.entry((db, state)).or_default() += 1;
            total += 1;
        }

        let mut out = CheckOutput::default();
        let mut dbs: Vec<&String> = by_db_state.keys().map(|(d, _)| d).collect();
        dbs.dedup();
        for db in dbs {
            let mut states: Vec<&str> = STATES.to_vec();
            for (d, s) in by_db_state.keys() {
                if d == db && !states.contains(&s.as_str()) {
                    states.push(s);
                }
            }
            for state in states {
                let n = by_db_state.get(&(db.clone(), state.to_string())).copied().unwrap_or(0);
                out.samples.push(
                    Sample::new(&CONNECTIONS, n as f64)
                        .label("database", db.as_str())
                        .label("state", state),
                );
            }
        }
        let share = total as f64 / usable;
        out.samples.push(Sample::new(&USABLE, usable));
        out.samples.push(Sample::new(&MAX, max));
        out.samples.push(Sample::new(&USAGE, share));

        let (warn, crit) = (ctx.thresholds.get("warning"), ctx.thresholds.get("critical"));
        let severity = Severity::above(share * 100.0, warn, crit);
        out.summary = format!("{total} of {usable} usable connections ({})", pct(share));
        if severity != Severity::Ok {
            let mut per_state: BTreeMap<&str, u64> = BTreeMap::new();
            for ((_, s), n) in &by_db_state {
                *per_state.entry(s.as_str()).or_default() += n;
            }
            let breakdown: Vec<String> = per_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
            out.findings.push(
                Finding::new(
                    severity,
                    "connections",
                    format!(
                        "{total} of {usable} usable connections in use ({}; max_connections {max}, {reserved} reserved): {}",
                        pct(share),
                        breakdown.join(", ")
                    ),
                )
                .with_value(share),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome, try_eval};
    use crate::db::row::Row;

    fn backend(db: &str, state: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("backend_type", Some("client backend")),
            ("datname", Some(db)),
            ("state", state),
        ])
    }

    fn settings(max: &str, su: &str, reserved: Option<&str>) -> Vec<Row> {
        let mut rows = vec![
            Row::from_pairs(&[("name", Some("max_connections")), ("setting", Some(max))]),
            Row::from_pairs(&[("name", Some("superuser_reserved_connections")), ("setting", Some(su))]),
        ];
        if let Some(r) = reserved {
            rows.push(Row::from_pairs(&[
                ("name", Some("reserved_connections")),
                ("setting", Some(r)),
            ]));
        }
        rows
    }

    #[test]
    fn usage_counts_against_usable_limit_including_reserved_connections() {
        let mut act: Vec<Row> = (0..9).map(|_| backend("app", Some("active"))).collect();
        act.push(backend("app", None));
        act.push(Row::from_pairs(&[
            ("backend_type", Some("autovacuum worker")),
            ("datname", Some("")),
            ("state", None),
        ]));
        let out = eval(
            &Connections,
            vec![
                outcome(&SETTINGS, settings("15", "2", Some("2"))),
                outcome(&ACTIVITY, act),
            ],
        );
        // 10 client backends of 15 - 2 - 2 = 11 usable: 90.9% → CRITICAL.
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert!(out.summary.starts_with("10 of 11"), "{}", out.summary);
        let unknown = out
            .samples
            .iter()
            .find(|s| s.labels.iter().any(|(_, v)| v == "unknown"));
        assert_eq!(unknown.map(|s| s.value), Some(1.0));
    }

    #[test]
    fn a_missing_max_connections_is_an_error_naming_it_not_a_limit_of_0() {
        // Regression: max_connections absent became 0, so one connection read as CRITICAL.
        let rows = vec![Row::from_pairs(&[
            ("name", Some("superuser_reserved_connections")),
            ("setting", Some("3")),
        ])];
        let result = try_eval(
            &Connections,
            vec![
                outcome(&SETTINGS, rows),
                outcome(&ACTIVITY, vec![backend("app", Some("idle"))]),
            ],
        );
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("max_connections"), "{err:?}");
    }

    #[test]
    fn low_usage_is_ok_and_emits_zero_for_absent_states() {
        let act = vec![backend("app", Some("idle"))];
        let out = eval(
            &Connections,
            vec![outcome(&SETTINGS, settings("100", "3", None)), outcome(&ACTIVITY, act)],
        );
        assert!(out.findings.is_empty());
        let active = out
            .samples
            .iter()
            .find(|s| s.family.name == "dbtool_connections" && s.labels.contains(&("state", "active".into())));
        assert_eq!(active.map(|s| s.value), Some(0.0));
    }
}

//! Server hygiene: data checksum failures (CRITICAL: storage is returning corrupt pages) and
//! settings that were changed and reloaded but wait for a restart (WARNING: the running
//! server is not what its configuration says). It also hands the configured settings to
//! `--state`, which reports those changed since the previous run (`state_settings.rs`).

use super::shared::ROLE;
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(CHECKSUM_FAILURES, "checksum_failures", Cluster, [0 => "checksum_failures.sql"]);
query!(PENDING_RESTART, "pending_restart", Cluster, [0 => "pending_restart.sql"]);
query!(SETTINGS_CONFIGURED, "settings_configured", Cluster, [0 => "settings_configured.sql"]);

pub struct Hygiene;

pub static CHECKSUM_FAILED: MetricFamily = MetricFamily {
    name: "dbtool_database_checksum_failures_total",
    help:
        "Data page checksum failures per database since the statistics were reset (absent when data checksums are off).",
    kind: MetricKind::Counter,
};
pub static PENDING: MetricFamily = MetricFamily {
    name: "dbtool_settings_pending_restart",
    help: "Settings changed and reloaded that take effect only when the server restarts.",
    kind: MetricKind::Gauge,
};
pub static CHANGED: MetricFamily = MetricFamily {
    name: "dbtool_settings_changed",
    help: "Configured server settings changed since the previous run (with --state only).",
    kind: MetricKind::Gauge,
};

fn checksums(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<f64, EvalError> {
    let q = &CHECKSUM_FAILURES;
    let mut total = 0.0;
    for r in ctx.rows(q) {
        let db = r.str("datname").in_query(q)?;
        let failures = r.f64("checksum_failures").in_query(q)?;
        out.samples
            .push(Sample::new(&CHECKSUM_FAILED, failures).label("database", db));
        if failures > 0.0 {
            total += failures;
            let last = r
                .opt_f64("last_failure_seconds")
                .in_query(q)?
                .map_or_else(|| "unknown".to_string(), |s| format!("{} ago", human_secs(s)));
            out.findings.push(
                Finding::new(
                    Severity::Critical,
                    format!("database {db}"),
                    format!(
                        "{failures} data checksum failure(s) in {db}, the last {last}: storage returned corrupt pages; \
                         read the server log for the relation and block, check the disk, restore from a backup \
                         (pg_stat_reset() in that database clears the count once handled)"
                    ),
                )
                .with_value(failures),
            );
        }
    }
    Ok(total)
}

fn pending_restart(ctx: &EvalContext<'_>, out: &mut CheckOutput) -> Result<usize, EvalError> {
    let q = &PENDING_RESTART;
    let mut names = Vec::new();
    for r in ctx.rows(q) {
        let unit = r.str("unit").in_query(q)?;
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" × {unit}")
        };
        names.push(format!(
            "{} (running with {}{unit})",
            r.str("name").in_query(q)?,
            r.str("setting").in_query(q)?
        ));
    }
    out.samples.push(Sample::new(&PENDING, names.len() as f64));
    if !names.is_empty() {
        out.findings.push(Finding::new(
            Severity::Warning,
            "settings",
            format!(
                "changed but waiting for a restart: {}; restart the server (or revert the change) so the \
                 configuration files say what runs",
                names.join(", ")
            ),
        ));
    }
    Ok(names.len())
}

impl Check for Hygiene {
    fn name(&self) -> &'static str {
        "hygiene"
    }
    fn description(&self) -> &'static str {
        "Data checksum failures (CRITICAL), settings waiting for a restart (WARNING) and, with --state, settings changed since the previous run (WARNING)"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&CHECKSUM_FAILURES, &PENDING_RESTART, &SETTINGS_CONFIGURED, &ROLE];
        L
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CHECKSUM_FAILED, &PENDING, &CHANGED];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let failures = checksums(ctx, &mut out)?;
        let pending = pending_restart(ctx, &mut out)?;
        let sums = if ctx.rows(&CHECKSUM_FAILURES).is_empty() {
            "data checksums off".to_string()
        } else {
            format!("{failures} checksum failure(s)")
        };
        out.summary = format!("{sums}; {pending} setting(s) pending restart");
        let q = &SETTINGS_CONFIGURED;
        for r in ctx.rows(q) {
            let value = r.opt_str("value").in_query(q)?.unwrap_or("(null)");
            out.settings
                .insert(r.str("name").in_query(q)?.to_string(), value.to_string());
        }
        if let Some(r) = ctx.rows(&ROLE).first() {
            if !r.bool("read_all_settings").in_query(&ROLE)? {
                let role = r.str("role_name").in_query(&ROLE)?;
                out.findings.push(Finding::new(
                    Severity::Unknown,
                    "settings",
                    format!(
                        "superuser-only settings are hidden from {role} (no pg_read_all_settings); grant pg_monitor to {role}"
                    ),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn db(name: &str, failures: &str, last: Option<&str>) -> Row {
        Row::from_pairs(&[
            ("datname", Some(name)),
            ("checksum_failures", Some(failures)),
            ("last_failure_seconds", last),
        ])
    }

    fn role(settings: &str) -> Row {
        Row::from_pairs(&[
            ("role_name", Some("mon")),
            ("read_all_stats", Some("t")),
            ("read_all_settings", Some(settings)),
        ])
    }

    fn setting(name: &str, value: &str, unit: &str) -> Row {
        Row::from_pairs(&[("name", Some(name)), ("setting", Some(value)), ("unit", Some(unit))])
    }

    #[test]
    fn a_checksum_failure_is_critical_and_a_pending_restart_warns() {
        let out = eval(
            &Hygiene,
            vec![
                outcome(
                    &CHECKSUM_FAILURES,
                    vec![db("shop", "2", Some("90")), db("(shared)", "0", None)],
                ),
                outcome(&PENDING_RESTART, vec![setting("shared_buffers", "16384", "8kB")]),
                outcome(&ROLE, vec![role("t")]),
            ],
        );
        let f: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(
            f,
            [(Severity::Critical, "database shop"), (Severity::Warning, "settings")]
        );
        assert!(
            out.findings[0].message.contains("the last 1m30s ago"),
            "{}",
            out.findings[0].message
        );
        assert!(out.findings[1]
            .message
            .contains("shared_buffers (running with 16384 × 8kB)"));
        assert_eq!(out.summary, "2 checksum failure(s); 1 setting(s) pending restart");
    }

    #[test]
    fn checksums_off_nothing_pending_is_ok_and_hidden_settings_are_unknown() {
        let out = eval(
            &Hygiene,
            vec![
                outcome(&CHECKSUM_FAILURES, vec![]),
                outcome(&PENDING_RESTART, vec![]),
                outcome(&ROLE, vec![role("t")]),
            ],
        );
        assert!(out.findings.is_empty());
        assert_eq!(out.summary, "data checksums off; 0 setting(s) pending restart");
        let out = eval(
            &Hygiene,
            vec![
                outcome(&CHECKSUM_FAILURES, vec![]),
                outcome(&PENDING_RESTART, vec![]),
                outcome(&ROLE, vec![role("f")]),
            ],
        );
        assert_eq!(out.findings[0].severity, Severity::Unknown);
    }
}

//! The server itself: version, uptime, recovery state, data checksums, and settings that
//! commonly hurt (fsync off, autovacuum off, track_counts off ...) as WARNING.

use std::collections::HashMap;

use super::shared::{settings, SETTINGS};
use super::{human_secs, Check, CheckOutput, EvalContext, EvalError, Query, RowContext};
use crate::query;
use crate::report::finding::{Finding, MetricFamily, MetricKind, Sample, Severity};

query!(SERVER, "server", Cluster, [0 => "server.sql"]);

pub struct Server;

pub static START_TIME: MetricFamily = MetricFamily {
    name: "dbtool_server_start_time_seconds",
    help: "When the postmaster started, as a Unix timestamp.",
    kind: MetricKind::Gauge,
};
pub static IN_RECOVERY: MetricFamily = MetricFamily {
    name: "dbtool_server_in_recovery",
    help: "1 when the server is a standby or recovering.",
    kind: MetricKind::Gauge,
};
pub static CHECKSUMS: MetricFamily = MetricFamily {
    name: "dbtool_server_data_checksums",
    help: "1 when data checksums are enabled.",
    kind: MetricKind::Gauge,
};
pub static DANGEROUS: MetricFamily = MetricFamily {
    name: "dbtool_server_setting_risky",
    help: "1 for each setting in a state that commonly hurts (setting label), 0 otherwise.",
    kind: MetricKind::Gauge,
};

/// (setting, risky value, why). Each is a WARNING when set to the risky value.
const RISKY: &[(&str, &str, &str)] = &[
    ("fsync", "off", "a crash can corrupt the database"),
    ("full_page_writes", "off", "a crash can leave torn pages"),
    ("autovacuum", "off", "dead rows pile up and transaction IDs wrap around"),
    (
        "track_counts",
        "off",
        "autovacuum cannot see which tables need work, statistics checks go blind",
    ),
    (
        "zero_damaged_pages",
        "on",
        "damaged pages are silently zeroed: data is destroyed",
    ),
    (
        "ignore_checksum_failure",
        "on",
        "corruption is read instead of reported",
    ),
];

fn risky(settings: &HashMap<String, String>, out: &mut CheckOutput) -> usize {
    let mut n = 0;
    for (name, bad, why) in RISKY {
        let Some(v) = settings.get(*name) else { continue };
        let is_bad = v == bad;
        out.samples
            .push(Sample::new(&DANGEROUS, if is_bad { 1.0 } else { 0.0 }).label("setting", *name));
        if is_bad {
            n += 1;
            out.findings.push(Finding::new(
                Severity::Warning,
                format!("setting {name}"),
                format!("{name} = {v}: {why}"),
            ));
        }
    }
    n
}

impl Check for Server {
    fn name(&self) -> &'static str {
        "server"
    }
    fn description(&self) -> &'static str {
        "Version, uptime, recovery, data checksums; risky settings (fsync, autovacuum, track_counts off)"
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&SERVER, &SETTINGS];
        L
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&START_TIME, &IN_RECOVERY, &CHECKSUMS, &DANGEROUS];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let q = &SERVER;
        let mut out = CheckOutput::default();
        let s = settings(ctx)?;
        let n_risky = risky(&s, &mut out);
        let checksums = s.get("data_checksums").map(|v| v == "on");
        if let Some(c) = checksums {
            out.samples.push(Sample::new(&CHECKSUMS, if c { 1.0 } else { 0.0 }));
            if !c {
                out.findings.push(Finding::new(
                    Severity::Ok,
                    "data_checksums",
                    "data checksums are off: corruption goes undetected (pg_checksums --enable, offline)",
                ));
            }
        }
        let Some(r) = ctx.rows(q).first() else {
            out.summary = "no server information".into();
            return Ok(out);
        };
        if let Some(t) = r.opt_f64("start_time").in_query(q)? {
            out.samples.push(Sample::new(&START_TIME, t));
        }
        let recovery = r.bool("in_recovery").in_query(q)?;
        out.samples
            .push(Sample::new(&IN_RECOVERY, if recovery { 1.0 } else { 0.0 }));
        let version = r.str("version").in_query(q)?;
        let short: String = version.split(" on ").next().unwrap_or(version).to_string();
        out.summary = format!(
            "{short}, up {}, {}, checksums {}{}",
            r.opt_f64("uptime_seconds")
                .in_query(q)?
                .map_or_else(|| "?".into(), human_secs),
            if recovery { "standby" } else { "primary" },
            match checksums {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            },
            if n_risky > 0 {
                format!("; {n_risky} risky setting(s)")
            } else {
                String::new()
            }
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{eval, outcome};
    use crate::db::row::Row;

    fn set(name: &str, v: &str) -> Row {
        Row::from_pairs(&[("name", Some(name)), ("setting", Some(v))])
    }

    #[test]
    fn fsync_off_warns_and_checksums_are_reported() {
        let server = Row::from_pairs(&[
            ("version", Some("PostgreSQL 17.4 on x86_64-pc-linux-gnu")),
            ("version_num", Some("170004")),
            ("start_time", Some("1700000000")),
            ("uptime_seconds", None),
            ("in_recovery", Some("f")),
            ("conf_age_seconds", None),
        ]);
        let out = eval(
            &Server,
            vec![
                outcome(&SERVER, vec![server]),
                outcome(
                    &SETTINGS,
                    vec![
                        set("fsync", "off"),
                        set("autovacuum", "on"),
                        set("data_checksums", "off"),
                    ],
                ),
            ],
        );
        let sev: Vec<(Severity, &str)> = out.findings.iter().map(|f| (f.severity, f.object.as_str())).collect();
        assert_eq!(
            sev,
            vec![(Severity::Warning, "setting fsync"), (Severity::Ok, "data_checksums")]
        );
        assert_eq!(
            out.summary,
            "PostgreSQL 17.4, up ?, primary, checksums off; 1 risky setting(s)"
        );
    }
}

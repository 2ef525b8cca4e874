//! JSON output. The wire format is versioned (`"schema": 1`) and documented in the manual (docs/src/health.md);
//! field names here are interface: add fields freely, never rename or remove them.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::report::finding::{Finding, Severity};

use super::{Report, JSON_SCHEMA};

#[derive(Serialize)]
struct WireReport<'a> {
    schema: u32,
    dbtool_version: &'static str,
    generated_at: String,
    status: Severity,
    exit_code: u8,
    duration_seconds: f64,
    targets: Vec<WireTarget<'a>>,
}

#[derive(Serialize)]
struct WireTarget<'a> {
    target: &'a str,
    kind: &'static str,
    up: bool,
    status: Severity,
    error: Option<&'a str>,
    server_version: Option<&'a str>,
    server_version_num: Option<u32>,
    duration_seconds: f64,
    /// With `--state`: when the run was taken that deltas are measured from.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_run: Option<String>,
    checks: Vec<WireCheck<'a>>,
}

#[derive(Serialize)]
struct WireCheck<'a> {
    name: &'a str,
    status: Severity,
    summary: &'a str,
    threshold: &'a str,
    duration_seconds: f64,
    /// In a scheduled job that keeps results (`refresh`): when the check's rows were read,
    /// their age at this run, and whether this run reused them (no query, duration 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reused: Option<bool>,
    findings: &'a [Finding],
    metrics: Vec<WireMetric<'a>>,
}

#[derive(Serialize)]
struct WireMetric<'a> {
    name: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
    /// Non-finite values (a table never vacuumed: +Inf) are written as null.
    value: Option<f64>,
    /// With `--state`, counters only: the increase since the previous run.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
}

pub fn render(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let status = report.status();
    let wire = WireReport {
        schema: JSON_SCHEMA,
        dbtool_version: env!("CARGO_PKG_VERSION"),
        generated_at: report.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        status,
        exit_code: status.code(),
        duration_seconds: report.duration.as_secs_f64(),
        targets: report
            .targets
            .iter()
            .map(|t| WireTarget {
                target: &t.name,
                kind: t.kind.as_str(),
                up: t.up,
                status: t.status(),
                error: t.error.as_deref(),
                server_version: t.server_version.as_deref(),
                server_version_num: t.server_version_num,
                duration_seconds: t.duration.as_secs_f64(),
                previous_run: t
                    .previous_run
                    .map(|p| p.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                checks: t
                    .checks
                    .iter()
                    .map(|c| WireCheck {
                        name: c.name,
                        status: c.status,
                        summary: &c.summary,
                        threshold: &c.threshold,
                        duration_seconds: c.duration.as_secs_f64(),
                        measured_at: c
                            .freshness
                            .as_ref()
                            .map(|f| f.measured_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                        age_seconds: c.freshness.as_ref().map(|f| f.age.as_secs_f64()),
                        reused: c.freshness.as_ref().map(|f| f.reused),
                        findings: &c.findings,
                        metrics: c
                            .samples
                            .iter()
                            .map(|s| WireMetric {
                                name: s.family.name,
                                labels: s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                                value: Some(s.value).filter(|v| v.is_finite()),
                                delta: s.delta,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    super::json_text::to_writer_pretty(&mut *out, &wire)?;
    writeln!(out)
}

//! The health report value and the renderers that print it. Checks never print.

pub mod atomic;
pub mod finding;
pub mod json;
pub mod json_text;
pub mod nagios;
pub mod printable;
pub mod prometheus;
pub mod table;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::report::finding::{Finding, Limits, Sample, Severity};

/// Version of the JSON wire format; bumped only on incompatible changes.
pub const JSON_SCHEMA: u32 = 1;

/// One run of `dbtool health` over one or more targets.
#[derive(Clone, Debug)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    pub duration: Duration,
    pub targets: Vec<TargetReport>,
}

/// The result for one database server.
#[derive(Clone, Debug)]
pub struct TargetReport {
    pub name: String,
    /// What the target is (PostgreSQL, PgBouncer, Redis): `kind` of JSON and of `dbtool_build_info`.
    pub kind: crate::db::TargetKind,
    /// Whether dbtool could connect.
    pub up: bool,
    /// Why the target could not be checked (unreachable, timed out); never contains a password.
    pub error: Option<String>,
    pub server_version: Option<String>,
    pub server_version_num: Option<u32>,
    pub duration: Duration,
    pub checks: Vec<CheckReport>,
    /// When the previous run that `--state` compared counters with was taken.
    pub previous_run: Option<DateTime<Utc>>,
}

/// The result of one check on one target.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub name: &'static str,
    pub status: Severity,
    pub summary: String,
    /// The thresholds in force, as "warning=70 critical=90".
    pub threshold: String,
    pub duration: Duration,
    pub findings: Vec<Finding>,
    pub samples: Vec<Sample>,
    /// The main threshold in force, for Nagios perfdata; None when the check has none.
    pub limits: Option<Limits>,
    /// Server settings (name → value) for `--state` to compare with the previous run's; never
    /// rendered. Secrets arrive as fingerprints.
    pub settings: std::collections::BTreeMap<String, String>,
    /// Set by a scheduled job that keeps results (`refresh`): when the check's rows were
    /// measured and whether this run reused them. None in a one-shot run.
    pub freshness: Option<Freshness>,
}

/// How old a check's result is, in a run that may reuse kept results.
#[derive(Clone, Debug)]
pub struct Freshness {
    pub measured_at: DateTime<Utc>,
    pub age: Duration,
    /// Evaluated from kept rows: no query ran for it this time.
    pub reused: bool,
}

impl TargetReport {
    /// A target that could not be reached: CRITICAL, `dbtool_up 0`.
    pub fn down(name: String, error: String, duration: Duration) -> TargetReport {
        TargetReport {
            name,
            kind: crate::db::TargetKind::Postgres,
            up: false,
            error: Some(error),
            server_version: None,
            server_version_num: None,
            duration,
            checks: Vec::new(),
            previous_run: None,
        }
    }

    pub fn status(&self) -> Severity {
        if !self.up {
            return Severity::Critical;
        }
        let base = if self.error.is_some() {
            Severity::Unknown
        } else {
            Severity::Ok
        };
        self.checks.iter().fold(base, |w, c| w.worst(c.status))
    }
}

impl Report {
    /// The worst status over all targets: the exit code.
    pub fn status(&self) -> Severity {
        self.targets.iter().fold(Severity::Ok, |w, t| w.worst(t.status()))
    }
}

/// The formats a health report renders to.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Table,
    Json,
    Prometheus,
    /// Nagios/Icinga plugin output: a status line, long text and perfdata.
    Nagios,
}

/// How a report is written besides its format.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Colour the table (a terminal).
    pub colour: bool,
    /// Bound on Nagios output, in bytes.
    pub max_output: usize,
}

impl Style {
    pub fn plain() -> Style {
        Style {
            colour: false,
            max_output: nagios::DEFAULT_MAX_OUTPUT,
        }
    }
}

/// Writes the report in the chosen format.
pub fn render(report: &Report, format: Format, out: &mut dyn std::io::Write, style: Style) -> std::io::Result<()> {
    let colour = style.colour;
    match format {
        Format::Nagios => nagios::render(report, out, style.max_output),
        Format::Table => table::render(report, out, colour),
        Format::Json => json::render(report, out),
        Format::Prometheus => prometheus::render(report, out),
    }
}

//! One check's report from the gathered rows: its queries' failures as findings (naming the
//! privilege or server version it needs), then `Check::evaluate`, its status the worst finding.

use std::time::{Duration, Instant};

use super::query::version_name;
use super::runner::Outcomes;
use super::{Check, EvalContext, Query, QueryFailure, Thresholds};
use crate::report::finding::{Finding, Limits, Severity};
use crate::report::CheckReport;

fn failure_finding(check: &dyn Check, q: &Query, f: &QueryFailure, user: &str) -> Finding {
    let object = f
        .database
        .as_ref()
        .map_or_else(|| check.name().to_string(), |d| format!("database {d}"));
    let message = if let Some(v) = f.needs_version {
        format!("{} needs {}+", check.name(), version_name(v))
    } else if f.not_visited {
        return Finding::new(Severity::Ok, object, f.message.clone());
    } else if f.is_benign() {
        return Finding::new(
            Severity::Ok,
            object,
            format!(
                "not checked this run: the server ended dbtool's session there ({}); dropped or being dropped?",
                f.message
            ),
        );
    } else if f.sqlstate.as_deref() == Some("42501") {
        format!(
            "permission denied ({}); grant {} to {user}",
            f.message,
            check.privilege()
        )
    } else {
        format!("query {} failed: {}", q.name, f.message)
    };
    Finding::new(Severity::Unknown, object, message)
}

/// Evaluates one check over the gathered outcomes.
pub fn evaluate(
    check: &dyn Check,
    thresholds: &Thresholds,
    outcomes: &Outcomes,
    plan_top: usize,
    version: u32,
    user: &str,
) -> CheckReport {
    let started = Instant::now();
    let mut findings = Vec::new();
    let mut runnable = true;
    let mut query_time = Duration::ZERO;
    for q in check.queries() {
        let Some(o) = outcomes.get(q.name) else { continue };
        query_time += o.duration;
        let unexpected: Vec<&QueryFailure> = o.failures.iter().filter(|f| !check.expected_failure(f)).collect();
        findings.extend(unexpected.iter().map(|f| failure_finding(check, q, f, user)));
        if o.succeeded == 0 && !unexpected.is_empty() {
            runnable = false;
        }
    }
    let threshold = thresholds
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut report = CheckReport {
        name: check.name(),
        status: Severity::Ok,
        summary: String::new(),
        threshold,
        duration: Duration::ZERO,
        findings: Vec::new(),
        samples: Vec::new(),
        settings: Default::default(),
        freshness: None,
        limits: check.main_threshold().map(|main| Limits {
            main,
            warning: thresholds.0.get(main.warning).copied().unwrap_or(0.0),
            critical: thresholds.0.get(main.critical).copied().unwrap_or(0.0),
            lower_is_worse: check.lower_is_worse(),
        }),
    };
    if runnable {
        let ctx = EvalContext {
            outcomes,
            thresholds,
            top_n: plan_top,
            server_version_num: version,
        };
        match check.evaluate(&ctx) {
            Ok(out) => {
                report.summary = out.summary;
                report.findings = out.findings;
                report.samples = out.samples;
                report.settings = out.settings;
            }
            Err(e) => findings.push(Finding::new(
                Severity::Unknown,
                check.name(),
                format!("unexpected query result: {e}"),
            )),
        }
    } else {
        report.summary = findings.first().map(|f| f.message.clone()).unwrap_or_default();
    }
    report.findings.extend(findings);
    report.status = report.findings.iter().fold(Severity::Ok, |w, f| w.worst(f.severity));
    report.duration = query_time + started.elapsed();
    report
}

//! The `health` kind: the checks of `dbtool health` against one target, written to `output`.

use anyhow::bail;
use tokio_util::sync::CancellationToken;
use toml::Value;

use super::Outcome;
use crate::checks::runner::run_target_with_timeout;
use crate::cli::health::HealthArgs;
use crate::db::Target;
use crate::report::Format;
use crate::report::Report;
use crate::settings::schedule::Job;
use crate::settings::Loaded;

fn strings(job: &Job, key: &str) -> Vec<String> {
    job.options
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn positive(job: &Job, key: &str) -> Option<usize> {
    job.options
        .get(key)
        .and_then(Value::as_integer)
        .and_then(|n| usize::try_from(n).ok())
}

pub(super) async fn run(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let format = match job.options.get("format").and_then(Value::as_str) {
        Some("json") => Format::Json,
        Some("table") => Format::Table,
        _ => Format::Prometheus,
    };
    let args = HealthArgs {
        format: Some(format),
        checks: strings(job, "checks"),
        skip: strings(job, "skip"),
        databases: strings(job, "databases"),
        top: positive(job, "top"),
        max_connections: positive(job, "max_connections"),
        timeout: job.timeout,
        ..HealthArgs::default()
    };
    let settings = crate::commands::health::resolve(&args, loaded, &crate::db::ProcessEnv)?;
    // One target per run (each target's run is claimed on its own), so the runner's per-target
    // function is called directly rather than `health::execute`'s multi-target stream.
    let started = std::time::Instant::now();
    let generated_at = chrono::Utc::now();
    let t = tokio::select! {
        r = run_target_with_timeout(target, &settings.plan, settings.timeout) => r,
        () = cancel.cancelled() => bail!("cancelled"),
    };
    let report = Report {
        generated_at,
        duration: started.elapsed(),
        targets: vec![t],
    };
    if let Some(path) = &job.output {
        let mut buf = Vec::with_capacity(64 * 1024);
        crate::report::render(&report, format, &mut buf, false)?;
        crate::report::atomic::write(path, &buf)?;
    }
    let status = report.status();
    let failure = report
        .targets
        .iter()
        .find_map(|t| t.error.as_ref().filter(|_| !t.up))
        .map(|err| format!("target unreachable: {err}"));
    Ok(Outcome {
        failure,
        message: format!("health {status}"),
        report: Some(report),
        ..Outcome::default()
    })
}

//! The `health` kind: the checks of `dbtool health` against one target, written to `output`.

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::checks::runner::run_target_with_timeout;
use crate::db::pool::Pools;
use crate::db::Target;
use crate::report::Report;
use crate::settings::jobs::HealthJob;
use crate::settings::schedule::Job;

pub(super) async fn run(
    h: &HealthJob,
    job: &Job,
    target: &Target,
    pools: &Pools,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    // One target per run (each target's run is claimed on its own), so the runner's per-target
    // function is called directly rather than `health::execute`'s multi-target stream.
    let started = std::time::Instant::now();
    let generated_at = chrono::Utc::now();
    // Warm sessions kept across runs: no backend start-up, caches already filled. A Redis
    // target has none (`of` refuses it), and its run needs none.
    let pool = pools.of(target, &h.plan.session, h.plan.max_connections).ok();
    let t = tokio::select! {
        r = run_target_with_timeout(target, &h.plan, h.timeout, pool.as_deref(), Some(&h.refresh)) => r,
        () = cancel.cancelled() => bail!("cancelled"),
    };
    let report = Report {
        generated_at,
        duration: started.elapsed(),
        targets: vec![t],
    };
    if let Some(path) = &job.output {
        let mut buf = Vec::with_capacity(64 * 1024);
        let style = crate::report::Style {
            colour: false,
            max_output: h.max_output,
        };
        crate::report::render(&report, h.format, &mut buf, style)?;
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

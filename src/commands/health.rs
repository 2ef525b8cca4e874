//! `dbtool health`: run the checks against every target and render one report.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use futures_util::stream::{self, StreamExt};

use crate::checks::runner::run_target_with_timeout;

use crate::checks;
use crate::cli::health::HealthArgs;
use crate::db::ProcessEnv;
use crate::report::{self, Report};
use crate::settings::health::{resolve, HealthSettings};
use crate::settings::Settings;

/// Checks every target concurrently (bounded); one slow or dead target holds up no other.
pub async fn execute(s: &HealthSettings) -> Report {
    let started = Instant::now();
    let generated_at = chrono::Utc::now();
    let mut targets: Vec<_> = stream::iter(s.targets.iter().enumerate())
        .map(|(i, t)| async move { (i, run_target_with_timeout(t, &s.plan, s.timeout, None, None).await) })
        .buffer_unordered(s.concurrency)
        .collect()
        .await;
    targets.sort_by_key(|(i, _)| *i);
    Report {
        generated_at,
        duration: started.elapsed(),
        targets: targets.into_iter().map(|(_, t)| t).collect(),
    }
}

pub async fn run(args: &HealthArgs, loaded: &Settings) -> anyhow::Result<u8> {
    let settings = resolve(&args.options, &args.conn, &args.tier, loaded, &ProcessEnv)?;
    let mut report = execute(&settings).await;
    // Deltas since the previous run are applied to the finished report, after evaluation:
    // checks stay pure functions of one run's rows.
    let next_state = match &settings.state {
        Some(path) => Some((path, checks::state::apply(&mut report, &checks::state::load(path)?))),
        None => None,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let colour = settings.output.is_none() && report::table::colour_for_stdout();
    let style = report::Style {
        colour,
        max_output: settings.max_output,
    };
    report::render(&report, settings.format, &mut buf, style)?;
    match &settings.output {
        Some(path) => report::atomic::write(path, &buf)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)
                .and_then(|_| out.flush())
                .context("writing the report to stdout")?;
        }
    }
    // Saved only once the report is out, so a failed write loses no output.
    if let Some((path, state)) = next_state {
        checks::state::save(path, &state)?;
    }
    Ok(report.status().code())
}

//! `dbtool health`: run the checks against every target and render one report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt};

use crate::checks::runner::run_target_with_timeout;

use crate::checks::plan::Plan;

use crate::checks::{self, Thresholds};
use crate::cli::health::HealthArgs;
use crate::db::Target;
use crate::db::{Env, ProcessEnv};
use crate::report::Format;
use crate::report::{self, Report};
use crate::settings::{apply_set, Loaded};

use super::targets;

/// Everything a health run needs, resolved once from defaults, file, environment and flags.
#[derive(Clone)]
pub struct HealthSettings {
    pub targets: Vec<Target>,
    pub plan: Plan,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub timeout: Duration,
    pub concurrency: usize,
    /// `--state`: counters of the previous run, for deltas.
    pub state: Option<PathBuf>,
}

pub fn resolve(args: &HealthArgs, loaded: &Loaded, env: &dyn Env) -> anyhow::Result<HealthSettings> {
    for name in args.checks.iter().chain(&args.skip) {
        if checks::find(name).is_none() {
            let known: Vec<&str> = checks::REGISTRY.iter().map(|c| c.name()).collect();
            bail!("unknown check '{name}'; known checks: {}", known.join(", "));
        }
    }
    let mut thresholds: BTreeMap<&'static str, Thresholds> = checks::REGISTRY
        .iter()
        .map(|c| (c.name(), loaded.thresholds(*c)))
        .collect();
    for s in &args.set {
        apply_set(&mut thresholds, s)?;
    }
    let selected = checks::REGISTRY.iter().copied().filter(|c| {
        if !args.checks.is_empty() {
            return args.checks.iter().any(|n| n == c.name());
        }
        !args.skip.iter().any(|n| n == c.name()) && loaded.check_enabled(c.name()).unwrap_or(c.enabled_by_default())
    });
    let h = &loaded.file.health;
    let databases = if args.databases.is_empty() {
        h.databases.clone()
    } else {
        Some(args.databases.clone())
    };
    let plan = Plan {
        checks: selected
            .map(|c| (c, thresholds.get(c.name()).cloned().unwrap_or_default()))
            .collect(),
        databases,
        top_n: args.top.or(h.top).unwrap_or(20),
        max_connections: args.max_connections.or(h.max_connections).unwrap_or(3).max(1),
        session: targets::session(&args.conn, loaded, true),
    };
    Ok(HealthSettings {
        targets: targets::resolve(&args.conn, loaded, env)?,
        plan,
        format: args
            .format
            .or(h.format)
            .unwrap_or_else(|| default_format(args.output.as_deref())),
        output: args.output.clone(),
        timeout: args
            .timeout
            .or(h.timeout.map(|d| d.0))
            .unwrap_or(Duration::from_secs(30)),
        concurrency: h.concurrency.unwrap_or(8).max(1),
        state: args.state.clone().or_else(|| h.state.clone()),
    })
}

/// Table, except for a `.prom` file: node_exporter's textfile collector reads only Prometheus text
/// there, and a table in it is a scrape error nobody sees until the alerts go quiet.
fn default_format(output: Option<&std::path::Path>) -> Format {
    match output.and_then(|p| p.extension()) {
        Some(ext) if ext == "prom" => Format::Prometheus,
        _ => Format::Table,
    }
}

/// Checks every target concurrently (bounded); one slow or dead target holds up no other.
pub async fn execute(s: &HealthSettings) -> Report {
    let started = Instant::now();
    let generated_at = chrono::Utc::now();
    let mut targets: Vec<_> = stream::iter(s.targets.iter().enumerate())
        .map(|(i, t)| async move { (i, run_target_with_timeout(t, &s.plan, s.timeout).await) })
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

pub async fn run(args: &HealthArgs, loaded: &Loaded) -> anyhow::Result<u8> {
    let settings = resolve(args, loaded, &ProcessEnv)?;
    let mut report = execute(&settings).await;
    // Deltas since the previous run are applied to the finished report, after evaluation:
    // checks stay pure functions of one run's rows.
    let next_state = match &settings.state {
        Some(path) => Some((path, checks::state::apply(&mut report, &checks::state::load(path)?))),
        None => None,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let colour = settings.output.is_none() && report::table::colour_for_stdout();
    report::render(&report, settings.format, &mut buf, colour)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prom_file_defaults_to_prometheus_text() {
        // Regression: `--output dbtool.prom` without --format wrote a table node_exporter rejects.
        assert_eq!(
            default_format(Some(std::path::Path::new("/var/lib/node/dbtool.prom"))),
            Format::Prometheus
        );
        assert_eq!(default_format(Some(std::path::Path::new("report.txt"))), Format::Table);
        assert_eq!(default_format(None), Format::Table);
    }
}

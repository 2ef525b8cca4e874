//! `dbtool schedule`: the cron daemon. Loads `[[jobs]]`, runs one loop per job, claims each
//! run on its target (exactly once across replicas), serves metrics, shuts down gracefully.

pub mod claim;
pub mod history;
pub mod http;
pub mod kinds;
pub mod metrics;
mod outcome;
pub mod preflight;
pub mod probe;
pub mod procstat;
pub mod runner;
pub mod serve;
pub mod signals;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use crate::cli::schedule::ScheduleArgs;
use crate::settings::{targets, Settings};
use runner::{Generation, Shared};
use signals::{Event, Signals};

/// Loads and validates everything a generation needs, once per load: the file (every problem
/// in one error), the jobs' options, the targets.
pub(crate) fn load(path: &Path, args: &ScheduleArgs) -> anyhow::Result<Generation> {
    let loaded = Settings::load(Some(path))?;
    let mut settings = loaded.schedule.clone();
    if let Some(l) = args.listen {
        settings.listen = Some(l);
    }
    if let Some(m) = &args.metrics {
        settings.metrics_file = Some(m.clone());
    }
    if let Some(g) = args.grace_period {
        settings.grace_period = g;
    }
    let targets = targets::resolve(&crate::cli::ConnArgs::default(), &loaded, &crate::db::ProcessEnv)?;
    Ok(Generation {
        loaded: Arc::new(loaded),
        settings: Arc::new(settings),
        targets: Arc::new(targets),
        pools: Arc::default(),
    })
}

/// `dbtool schedule --list`: each job's next five run times.
fn list(gen: &Generation, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &gen.settings;
    let now = chrono::Utc::now();
    if json {
        return list_json(gen, out);
    }
    writeln!(out, "timezone {}", s.timezone)?;
    for job in &s.jobs {
        let target = match &job.target {
            crate::settings::schedule::TargetSel::All => "*".to_string(),
            crate::settings::schedule::TargetSel::Named(n) => n.clone(),
        };
        writeln!(
            out,
            "\n{} ({}, target {target}, schedule \"{}\")",
            job.name,
            job.kind.name(),
            job.schedule.source
        )?;
        for t in job.schedule.upcoming(now, s.timezone, 5) {
            writeln!(out, "  {}", t.format("%Y-%m-%d %H:%M:%S %Z"))?;
        }
    }
    Ok(())
}

/// `--list --format json`: `{"schema", "timezone", "jobs": [{"name", "kind", "target", "schedule", "next"}]}`.
fn list_json(gen: &Generation, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &gen.settings;
    let jobs: Vec<serde_json::Value> = s
        .jobs
        .iter()
        .map(|job| {
            let target = match &job.target {
                crate::settings::schedule::TargetSel::All => "*".to_string(),
                crate::settings::schedule::TargetSel::Named(n) => n.clone(),
            };
            let next: Vec<String> = job
                .schedule
                .upcoming(chrono::Utc::now(), s.timezone, 5)
                .iter()
                .map(|t| t.to_rfc3339())
                .collect();
            serde_json::json!({
                "name": job.name, "kind": job.kind.name(), "target": target,
                "schedule": job.schedule.source, "next": next,
            })
        })
        .collect();
    let v = serde_json::json!({"schema": 1, "timezone": s.timezone.name(), "jobs": jobs});
    writeln!(out, "{}", crate::report::json_text::to_string(&v)?)
}

pub async fn run(args: &ScheduleArgs, config: Option<&Path>) -> anyhow::Result<u8> {
    let Some(path) = config else {
        bail!("dbtool schedule needs a configuration file with [[jobs]]; give --config FILE (see deploy/dbtool.example.toml)");
    };
    let gen = Arc::new(load(path, args)?);
    if args.list {
        let mut out = std::io::stdout().lock();
        list(&gen, args.output.json(), &mut out)
            .and_then(|_| out.flush())
            .context("writing to stdout")?;
        return Ok(0);
    }
    if gen.settings.jobs.is_empty() {
        bail!("{} has no [[jobs]]; nothing to schedule", path.display());
    }
    let mut signals = Signals::install().context("installing signal handlers")?;
    let metrics = Arc::new(metrics::Metrics::default());
    let shared = Arc::new(Shared::new(metrics.clone()));
    let http_stop = CancellationToken::new();
    let prober = Arc::new(probe::Prober::new(gen.probe_view()));
    let server = match gen.settings.listen {
        Some(addr) => Some(http::serve(addr, metrics.clone(), prober.clone(), http_stop.clone()).await?),
        None => None,
    };
    let mut gen = gen;
    let mut stop = CancellationToken::new();
    runner::spawn_loops(&gen, &shared, &stop);
    tracing::info!(jobs = gen.settings.jobs.len(), config = %path.display(), "scheduler started");
    preflight_in_background(&gen, path);
    let why = loop {
        match signals.next().await {
            Event::Stop(why) => break why,
            Event::Reload => match load(path, args) {
                Ok(new) => {
                    stop.cancel();
                    stop = CancellationToken::new();
                    gen = Arc::new(new);
                    prober.replace(gen.probe_view());
                    let names: Vec<String> = gen.settings.jobs.iter().map(|j| j.name.clone()).collect();
                    metrics.retain(&names);
                    runner::spawn_loops(&gen, &shared, &stop);
                    tracing::info!(jobs = names.len(), "configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %crate::errors::render(e.as_ref()), "reload refused; keeping the running configuration")
                }
            },
        }
    };
    stop.cancel();
    shutdown(why, &gen, &shared).await;
    if let Some(path) = &gen.settings.metrics_file {
        metrics.write_file(path);
    }
    http_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(0)
}

/// Says at startup, once per target, which claimed job cannot run for want of dbtool's schema
/// (the daemon keeps going: a later `dbtool migrate` fixes it without a restart).
fn preflight_in_background(gen: &Arc<Generation>, path: &Path) {
    let (gen, path) = (gen.clone(), path.to_path_buf());
    tokio::spawn(async move {
        let session = targets::bookkeeping(&gen.loaded);
        for p in preflight::check(&gen.settings, &gen.targets, false, &session, &path).await {
            if p.unreachable {
                tracing::warn!(target = %p.target, "{}", p.message);
            } else {
                tracing::error!(target = %p.target, "{}", p.message);
            }
        }
    });
}

/// No new runs; running ones get the grace period, then are cancelled and given a moment.
async fn shutdown(why: &str, gen: &Generation, shared: &Shared) {
    let grace = gen.settings.grace_period;
    shared.runs.close();
    let running = shared.running_count();
    tracing::info!(
        signal = why,
        running,
        grace_s = grace.as_secs_f64(),
        "stopping: no new runs; waiting for running jobs"
    );
    if tokio::time::timeout(grace, shared.runs.wait()).await.is_err() {
        tracing::warn!(
            running = shared.running_count(),
            "grace period over; cancelling running jobs"
        );
        shared.cancel_runs.cancel();
        if tokio::time::timeout(std::time::Duration::from_secs(15), shared.runs.wait())
            .await
            .is_err()
        {
            tracing::error!("jobs did not stop after cancellation; exiting anyway");
        }
    }
    // Warm sessions end with a goodbye rather than a dropped socket in the server's log.
    gen.pools.close_idle(None).await;
    tracing::info!("scheduler stopped");
}

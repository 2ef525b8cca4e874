//! `dbtool serve`: the scheduler's listener without its jobs, for a stateless `/probe`
//! exporter that Prometheus drives (one process per shard, no cron, no claims).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use super::signals::{Event, Signals};
use super::{http, load, metrics, probe, runner};
use crate::cli::schedule::ScheduleArgs;
use crate::cli::serve::ServeArgs;

pub async fn run(args: &ServeArgs, config: Option<&Path>) -> anyhow::Result<u8> {
    let Some(path) = config else {
        bail!("dbtool serve needs a configuration file with [[targets]] or [probe] allow_hosts; give --config FILE (see deploy/dbtool.example.toml)");
    };
    let as_schedule = ScheduleArgs {
        listen: args.listen,
        ..ScheduleArgs::default()
    };
    let mut gen = Arc::new(load(path, &as_schedule)?);
    let Some(addr) = gen.settings.listen else {
        bail!(
            "dbtool serve needs an address: give --listen ADDR or [schedule] listen in {}",
            path.display()
        );
    };
    let mut signals = Signals::install().context("installing signal handlers")?;
    let metrics = Arc::new(metrics::Metrics::default());
    let prober = Arc::new(probe::Prober::new(gen.probe_view()));
    let http_stop = CancellationToken::new();
    let server = http::serve(addr, metrics.clone(), prober.clone(), http_stop.clone()).await?;
    let mut stop = CancellationToken::new();
    start_sweeping(&gen, &metrics, &stop);
    tracing::info!(config = %path.display(), "serving /probe");
    let why = loop {
        match signals.next().await {
            Event::Stop(why) => break why,
            Event::Reload => match load(path, &as_schedule) {
                Ok(new) => {
                    stop.cancel();
                    stop = CancellationToken::new();
                    gen = Arc::new(new);
                    prober.replace(gen.probe_view());
                    start_sweeping(&gen, &metrics, &stop);
                    tracing::info!("configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %crate::errors::render(e.as_ref()), "reload refused; keeping the running configuration")
                }
            },
        }
    };
    tracing::info!(signal = why, "stopping");
    stop.cancel();
    http_stop.cancel();
    let _ = server.await;
    gen.pools.close_idle(None).await;
    Ok(0)
}

/// The configuration's warm sessions: shown on /metrics, closed when idle or replaced.
fn start_sweeping(gen: &Arc<runner::Generation>, metrics: &metrics::Metrics, stop: &CancellationToken) {
    metrics.set_pools(&gen.pools);
    let (pools, stop) = (gen.pools.clone(), stop.clone());
    tokio::spawn(async move { runner::sweep_pools(&pools, &stop).await });
}

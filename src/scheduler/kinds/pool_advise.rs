//! The `pool-advise` kind: sample PostgreSQL (and PgBouncer) over the window, run the sizing
//! model, write the advice to `output` (Prometheus text by default, for the textfile collector).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio_util::sync::CancellationToken;
use toml::Value;

use super::Outcome;
use crate::cli::pool_advise::PoolAdviseArgs;
use crate::db::Target;
use crate::db::{ConnParams, ProcessEnv};
use crate::pool::render::PoolFormat;
use crate::pool::sample::{measure, SampleSpec};
use crate::pool::{model, render};
use crate::settings::schedule::Job;
use crate::settings::Loaded;

const DEFAULT_SAMPLE: Duration = Duration::from_secs(30);

fn u32_of(job: &Job, key: &str) -> Option<u32> {
    job.options.get(key)?.as_integer().and_then(|n| u32::try_from(n).ok())
}

fn f64_of(job: &Job, key: &str) -> Option<f64> {
    let v = job.options.get(key)?;
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// The job's keys read as `dbtool pool-advise` flags (which then override `[pool_advise]`).
pub(super) fn args_of(job: &Job) -> Result<PoolAdviseArgs, String> {
    let sample = match job.options.get("sample").and_then(Value::as_str) {
        Some(s) => Some(crate::duration::parse_duration(s)?),
        None => None,
    };
    let format = match job.options.get("format") {
        Some(v) => Some(
            v.clone()
                .try_into::<PoolFormat>()
                .map_err(|e| e.message().to_string())?,
        ),
        None => None,
    };
    Ok(PoolAdviseArgs {
        pgbouncer: job.options.get("pgbouncer").and_then(Value::as_str).map(str::to_string),
        sample,
        format,
        output: job.output.clone(),
        db_cores: u32_of(job, "db_cores"),
        ssd: job.options.get("ssd").and_then(Value::as_bool),
        app_instances: u32_of(job, "app_instances"),
        app_max_open: u32_of(job, "app_max_open"),
        app_max_idle: u32_of(job, "app_max_idle"),
        peak_factor: f64_of(job, "peak_factor"),
        headroom: f64_of(job, "headroom"),
        ..PoolAdviseArgs::default()
    })
}

pub(super) async fn run(
    job: &Job,
    target: &Target,
    loaded: &Loaded,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let args = args_of(job).map_err(|e| anyhow!("job '{}': {e}", job.name))?;
    let c = &loaded.file.pool_advise;
    let assumptions = crate::commands::pool_advise::assumptions(&args, loaded)?;
    let bouncer = match args.pgbouncer.as_deref().or(c.pgbouncer.as_deref()) {
        Some(dsn) => Some(ConnParams::resolve(Some(dsn), &ProcessEnv).context("pgbouncer")?),
        None => None,
    };
    let session = crate::commands::targets::session(&args.conn, loaded, true);
    let spec = SampleSpec {
        postgres: &target.params,
        session: &session,
        pgbouncer: bouncer.as_ref(),
        window: args.sample.or(c.sample.map(|d| d.0)).unwrap_or(DEFAULT_SAMPLE),
        poll: Duration::from_secs(1),
    };
    let measured = tokio::select! {
        m = measure(&spec) => m?,
        () = cancel.cancelled() => bail!("cancelled while sampling"),
    };
    let advice = model::advise(&measured, &assumptions);
    if let Some(path) = &job.output {
        let mut buf = Vec::with_capacity(16 * 1024);
        match args.format.or(c.format).unwrap_or(PoolFormat::Prometheus) {
            PoolFormat::Table => render::table(&measured, &advice, &mut buf),
            PoolFormat::Ini => render::ini(&measured, &advice, &mut buf),
            PoolFormat::Json => render::json(&measured, &advice, &mut buf),
            PoolFormat::Prometheus => render::prometheus(&measured, &advice, &target.name, &mut buf),
        }
        .context("rendering the advice")?;
        crate::report::atomic::write(path, &buf)?;
    }
    Ok(Outcome {
        message: format!("pool-advise {}", advice.status()),
        ..Outcome::default()
    })
}

//! `dbtool pool-advise`: sample PostgreSQL (and PgBouncer), run the sizing model, render.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::pool_advise::PoolAdviseArgs;

use crate::db::{ConnParams, ProcessEnv};
use crate::pool::render::PoolFormat;
use crate::pool::sample::{measure, SampleError, SampleSpec};
use crate::pool::{model, render, Assumptions};
use crate::settings::Loaded;

use super::targets;

const DEFAULT_SAMPLE: Duration = Duration::from_secs(30);
/// Connecting and the snapshot queries, on top of the window.
const SLACK: Duration = Duration::from_secs(30);

/// Flags over the `[pool_advise]` section over the defaults.
pub fn assumptions(args: &PoolAdviseArgs, loaded: &Loaded) -> anyhow::Result<Assumptions> {
    let c = &loaded.file.pool_advise;
    let a = Assumptions {
        db_cores: args.db_cores.or(c.db_cores),
        ssd: args.ssd.or(c.ssd),
        app_instances: args.app_instances.or(c.app_instances),
        app_max_open: args.app_max_open.or(c.app_max_open),
        app_max_idle: args.app_max_idle.or(c.app_max_idle),
        peak_factor: args.peak_factor.or(c.peak_factor),
        headroom: args.headroom.or(c.headroom),
    };
    for (flag, key, v) in [
        ("--peak-factor", "peak_factor", a.peak_factor),
        ("--headroom", "headroom", a.headroom),
    ] {
        if let Some(v) = v.filter(|v| !(1.0..=100.0).contains(v)) {
            bail!("{flag} (or {key} in [pool_advise]) is {v}; it must be a multiplier between 1 and 100, e.g. 1.5");
        }
    }
    for (flag, key, v) in [
        ("--db-cores", "db_cores", a.db_cores),
        ("--app-instances", "app_instances", a.app_instances),
    ] {
        if v == Some(0) {
            bail!("{flag} (or {key} in [pool_advise]) is 0; it must be at least 1");
        }
    }
    Ok(a)
}

pub async fn run(args: &PoolAdviseArgs, loaded: &Loaded) -> anyhow::Result<u8> {
    let c = &loaded.file.pool_advise;
    let assumptions = assumptions(args, loaded)?;
    let mut found = targets::resolve(&args.conn, loaded, &ProcessEnv)?;
    if found.len() != 1 {
        bail!("pool-advise sizes one server: give one --dsn (got {})", found.len());
    }
    let target = found.remove(0);
    let bouncer = match args.pgbouncer.as_deref().or(c.pgbouncer.as_deref()) {
        Some(dsn) => Some(ConnParams::resolve(Some(dsn), &ProcessEnv).context("--pgbouncer")?),
        None => None,
    };
    let window = args.sample.or(c.sample.map(|d| d.0)).unwrap_or(DEFAULT_SAMPLE);
    let session = targets::session(&args.conn, loaded, true);
    let spec = SampleSpec {
        postgres: &target.params,
        session: &session,
        pgbouncer: bouncer.as_ref(),
        window,
        poll: Duration::from_secs(1),
    };
    let measured = tokio::time::timeout(window + SLACK, measure(&spec))
        .await
        .with_context(|| format!("sampling did not finish within {}s", (window + SLACK).as_secs()))?
        .map_err(|e| match e {
            // A connect error already names the server (redacted); others need it added.
            SampleError::Connect { .. } => anyhow::Error::new(e),
            e => anyhow::Error::new(e).context(format!("sampling {}", target.params.redacted())),
        })?;
    let advice = model::advise(&measured, &assumptions);
    let mut buf = Vec::with_capacity(16 * 1024);
    match args.format.or(c.format).unwrap_or(PoolFormat::Table) {
        PoolFormat::Table => render::table(&measured, &advice, &mut buf),
        PoolFormat::Ini => render::ini(&measured, &advice, &mut buf),
        PoolFormat::Json => render::json(&measured, &advice, &mut buf),
        PoolFormat::Prometheus => render::prometheus(&measured, &advice, &target.name, &mut buf),
    }
    .context("rendering the advice")?;
    match &args.output {
        Some(path) => crate::report::atomic::write(path, &buf)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)
                .and_then(|_| out.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(advice.status().code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        Loaded {
            file: toml::from_str(text).unwrap_or_else(|e| panic!("{e}")),
            ..Loaded::default()
        }
    }

    #[test]
    fn flags_override_the_pool_advise_section() {
        let l = loaded("[pool_advise]\ndb_cores = 8\napp_instances = 3\nheadroom = 1.5\n");
        let args = PoolAdviseArgs {
            db_cores: Some(16),
            ..PoolAdviseArgs::default()
        };
        let a = assumptions(&args, &l).unwrap_or_default();
        assert_eq!(
            (a.db_cores, a.app_instances, a.headroom),
            (Some(16), Some(3), Some(1.5))
        );
    }

    #[test]
    fn nonsense_multipliers_are_refused_by_name() {
        let args = PoolAdviseArgs {
            peak_factor: Some(0.5),
            ..PoolAdviseArgs::default()
        };
        let err = assumptions(&args, &Loaded::default())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--peak-factor"), "{err}");
        assert!(toml::from_str::<crate::settings::FileConfig>("[pool_advise]\ncores = 8\n").is_err());
    }
}

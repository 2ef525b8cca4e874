//! One pool-advise run, whoever asks: `dbtool pool-advise` and the scheduler's job both sample
//! under the same bound, advise with the same model and render the same way.

use std::time::Duration;

use anyhow::Context;

use super::options::PoolAdviseOptions;
use super::render::{self, PoolFormat};
use super::sample::{measure, SampleError, SampleSpec};
use super::{model, Advice, Measured};
use crate::db::{ConnParams, ProcessEnv, SessionSettings, Target};

/// Connecting and the snapshot queries, on top of the window.
pub const SLACK: Duration = Duration::from_secs(30);

/// Samples the target (and PgBouncer) over the window, bounded by window + `SLACK`, and advises.
pub async fn run(
    opts: &PoolAdviseOptions,
    target: &Target,
    session: &SessionSettings,
) -> anyhow::Result<(Measured, Advice)> {
    let assumptions = opts.assumptions()?;
    let bouncer = match opts.pgbouncer.as_deref() {
        Some(dsn) => Some(ConnParams::resolve(Some(dsn), &ProcessEnv).context("--pgbouncer")?),
        None => None,
    };
    let window = opts.window();
    let postgres = target.postgres_params()?;
    let spec = SampleSpec {
        postgres,
        session,
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
            e => anyhow::Error::new(e).context(format!("sampling {}", postgres.redacted())),
        })?;
    let advice = model::advise(&measured, &assumptions);
    Ok((measured, advice))
}

/// The advice in `format`; Prometheus text labels it with the target's name.
pub fn render(format: PoolFormat, measured: &Measured, advice: &Advice, target: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(16 * 1024);
    match format {
        PoolFormat::Table => render::table(measured, advice, &mut buf),
        PoolFormat::Ini => render::ini(measured, advice, &mut buf),
        PoolFormat::Json => render::json(measured, advice, &mut buf),
        PoolFormat::Prometheus => render::prometheus(measured, advice, target, &mut buf),
    }
    .context("rendering the advice")?;
    Ok(buf)
}

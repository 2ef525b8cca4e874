//! The `pool-advise` kind: `pool::advise`, the same run as `dbtool pool-advise` (same sampling
//! bound), written to `output` (Prometheus text by default, for the textfile collector).

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::db::Target;
use crate::pool::advise;
use crate::settings::jobs::PoolAdviseJob;
use crate::settings::schedule::Job;
use crate::settings::{targets, Settings};

pub(super) async fn run(
    p: &PoolAdviseJob,
    job: &Job,
    target: &Target,
    loaded: &Settings,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let session = targets::session(&Default::default(), loaded, true);
    let (measured, advice) = tokio::select! {
        r = advise::run(&p.options, target, &session) => r?,
        () = cancel.cancelled() => bail!("cancelled while sampling"),
    };
    if let Some(path) = &job.output {
        let buf = advise::render(p.format, &measured, &advice, &target.name)?;
        crate::report::atomic::write(path, &buf)?;
    }
    Ok(Outcome {
        message: format!("pool-advise {}", advice.status()),
        ..Outcome::default()
    })
}

//! How each job kind runs, in-process, one file per kind; what it takes is its options type,
//! resolved by `settings::jobs` once per configuration load.

mod archive;
mod backup;
mod health;
mod pool_advise;
mod sleep;

use tokio_util::sync::CancellationToken;

use crate::db::pool::Pools;
use crate::db::Target;
use crate::report::Report;
use crate::settings::jobs::JobOptions;
use crate::settings::schedule::Job;
use crate::settings::Settings;

/// What a finished run reports: rows/bytes when the kind has them, a one-line summary, and
/// for health the report (served on /metrics).
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub message: String,
    pub report: Option<Report>,
    /// The run failed but still produced something worth keeping (a health report saying
    /// `dbtool_up 0`); the runner counts it as a failure with this message.
    pub failure: Option<String>,
}

/// Runs one job against one target until it finishes or `cancel` fires.
pub async fn execute(
    job: &Job,
    target: &Target,
    loaded: &Settings,
    pools: &Pools,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    match &job.options {
        JobOptions::Health(h) => health::run(h, job, target, pools, cancel).await,
        JobOptions::Sleep(o) => sleep::run(o, cancel).await,
        JobOptions::Archive(a) => archive::run(a, target, cancel).await,
        JobOptions::Backup(o) => backup::run(o, target, loaded, cancel).await,
        JobOptions::PoolAdvise(p) => pool_advise::run(p, job, target, loaded, cancel).await,
    }
}

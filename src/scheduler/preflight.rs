//! Before the first run: every target of a job that changes data (backup, archive) carries
//! dbtool's schema, where each run is claimed exactly once. Read-only jobs (health,
//! pool-advise) need none. Said once at daemon startup, and by `dbtool config check --target`.

use std::path::Path;

use crate::db::{SessionSettings, Target};
use crate::settings::schedule::{Schedule, TargetSel};

/// A target that a claimed job needs and that cannot take its claims, with the fix.
#[derive(Debug)]
pub struct Problem {
    pub target: String,
    /// Connecting failed (the server may just be down): not a verdict on the schema.
    pub unreachable: bool,
    pub message: String,
}

/// The claimed jobs that run against `target`; `any_name`: the target stands for every job
/// (a `--dsn` given to `config check`, which has no name in the file).
fn claimed_jobs(schedule: &Schedule, target: &Target, any_name: bool) -> Vec<String> {
    schedule
        .jobs
        .iter()
        .filter(|j| j.kind.claims())
        // Only PostgreSQL carries dbtool's schema; "*" of a claimed job skips the rest.
        .filter(|j| target.kind == crate::db::TargetKind::Postgres || !matches!(&j.target, TargetSel::All))
        .filter(|j| {
            any_name || matches!(&j.target, TargetSel::All) || j.target == TargetSel::Named(target.name.clone())
        })
        .map(|j| j.name.clone())
        .collect()
}

/// Checks each target that some claimed job uses; one problem per target that fails.
pub async fn check(
    schedule: &Schedule,
    targets: &[Target],
    any_name: bool,
    session: &SessionSettings,
    config: &Path,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for target in targets {
        let jobs = claimed_jobs(schedule, target, any_name);
        if jobs.is_empty() {
            continue;
        }
        let fix = if any_name {
            "run `dbtool migrate --dsn DSN` against it".to_string()
        } else {
            format!(
                "run `dbtool --config {} migrate --target {}`",
                config.display(),
                target.name
            )
        };
        let client = match async { crate::db::connect(target.postgres_params()?, session).await }.await {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem {
                    target: target.name.clone(),
                    unreachable: true,
                    message: format!(
                        "target '{}': cannot check dbtool's schema for job(s) {}: {e}",
                        target.name,
                        jobs.join(", ")
                    ),
                });
                continue;
            }
        };
        if let Err(e) = crate::db::migrate::require_current(&client).await {
            let e = match e {
                crate::db::migrate::MigrateError::Pending(p) => {
                    format!("dbtool's schema is missing or not up to date (pending: {p})")
                }
                other => other.to_string(),
            };
            problems.push(Problem {
                target: target.name.clone(),
                unreachable: false,
                message: format!(
                    "target '{}': job(s) {} claim each run in dbtool.job_runs, but {e}; {fix}",
                    target.name,
                    jobs.join(", ")
                ),
            });
        }
    }
    problems
}

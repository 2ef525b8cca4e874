//! One loop per job: sleep until the next cron time, skip when still running (never overlap),
//! catch up at most once after missed times, run each target's claim + job + bookkeeping.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::claim::{self, Claim};
use super::kinds;
use super::metrics::{Metrics, RunResult};
use super::outcome::{millis, settle};
use crate::db::Target;
use crate::settings::schedule::{Job, Schedule, TargetSel};
use crate::settings::{targets, Settings};

/// How long a cancelled job gets to clean up (kill its child, roll back) before it is dropped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);
/// History is pruned at most this often per target.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Shifts the daemon's clock when test jobs are enabled, so the tests can run two replicas
/// whose clocks disagree by a second or two, as two hosts' do.
pub const TEST_CLOCK_SKEW_ENV: &str = "DBTOOL_TEST_CLOCK_SKEW_MS";

/// The wall clock the schedule is read on (see TEST_CLOCK_SKEW_ENV).
fn now() -> DateTime<Utc> {
    static SKEW: std::sync::OnceLock<chrono::Duration> = std::sync::OnceLock::new();
    let skew = SKEW.get_or_init(|| {
        let enabled = std::env::var(crate::settings::jobs::TEST_JOBS_ENV).is_ok_and(|v| v == "1");
        let ms = std::env::var(TEST_CLOCK_SKEW_ENV)
            .ok()
            .and_then(|v| v.parse::<i64>().ok());
        chrono::Duration::milliseconds(ms.filter(|_| enabled).unwrap_or(0))
    });
    Utc::now() + *skew
}

/// One configuration's worth of jobs; a reload makes a new one.
pub struct Generation {
    pub loaded: Arc<Settings>,
    pub settings: Arc<Schedule>,
    pub targets: Arc<Vec<Target>>,
    /// Warm sessions for the read-only kinds, kept across runs of this configuration.
    pub pools: Arc<crate::db::pool::Pools>,
}

impl Generation {
    /// What `/probe` sees of this configuration: its targets, and its pools to share.
    pub fn probe_view(&self) -> super::probe::View {
        super::probe::View::new(self.loaded.clone(), self.targets.clone(), self.pools.clone())
    }
}

/// What outlives a reload: metrics, the set of running jobs, the run tracker.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    running: Mutex<HashSet<String>>,
    last_prune: Mutex<HashMap<String, Instant>>,
    pub runs: TaskTracker,
    /// Fired when the shutdown grace period is over: every running job is cancelled.
    pub cancel_runs: CancellationToken,
}

impl Shared {
    pub fn new(metrics: Arc<Metrics>) -> Shared {
        Shared {
            metrics,
            running: Mutex::new(HashSet::new()),
            last_prune: Mutex::new(HashMap::new()),
            runs: TaskTracker::new(),
            cancel_runs: CancellationToken::new(),
        }
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn running_count(&self) -> usize {
        self.lock_running().len()
    }
}

/// Starts one loop per job; they stop scheduling when `stop` fires (running jobs carry on).
pub fn spawn_loops(gen: &Arc<Generation>, shared: &Arc<Shared>, stop: &CancellationToken) {
    for i in 0..gen.settings.jobs.len() {
        let job = &gen.settings.jobs[i];
        let names: Vec<String> = targets_of(job, &gen.targets).into_iter().map(|t| t.name).collect();
        shared.metrics.register(&job.name, &names);
        let (gen, shared, stop) = (gen.clone(), shared.clone(), stop.clone());
        tokio::spawn(async move { job_loop(i, gen, shared, stop).await });
    }
    shared.metrics.set_pools(&gen.pools);
    let (pools, stop) = (gen.pools.clone(), stop.clone());
    tokio::spawn(async move { sweep_pools(&pools, &stop).await });
}

/// Closes warm sessions unused for `IDLE_MAX`; when this configuration is replaced, every idle
/// one (sessions still in use close when their run ends and the configuration is dropped).
pub async fn sweep_pools(pools: &crate::db::pool::Pools, stop: &CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            () = stop.cancelled() => break,
        }
        let closed = pools.close_idle(Some(crate::db::pool::IDLE_MAX)).await;
        if closed > 0 {
            tracing::debug!(closed, "closed warm sessions idle for over 10 minutes");
        }
    }
    pools.close_idle(None).await;
}

/// The targets a job runs on. `target = "*"` means every target for a health job, and the
/// PostgreSQL servers for the rest: a PgBouncer or Redis has nothing to back up or archive.
fn targets_of(job: &Job, all: &[Target]) -> Vec<Target> {
    let health = job.kind == crate::settings::jobs::Kind::Health;
    match &job.target {
        TargetSel::All => all
            .iter()
            .filter(|t| health || t.kind == crate::db::TargetKind::Postgres)
            .cloned()
            .collect(),
        TargetSel::Named(n) => all.iter().filter(|t| &t.name == n).cloned().collect(),
    }
}

async fn job_loop(index: usize, gen: Arc<Generation>, shared: Arc<Shared>, stop: CancellationToken) {
    let job = &gen.settings.jobs[index];
    let tz = gen.settings.timezone;
    let mut after = now();
    // Only a claimed job has a history to tell a time missed while no daemon ran.
    if job.catch_up && job.kind.claims() {
        if let Some(missed) = missed_while_down(job, &gen, tz).await.filter(|_| !stop.is_cancelled()) {
            tracing::info!(job = %job.name, scheduled_at = %missed, "catching up one run missed while no daemon ran");
            trigger(job, missed, &gen, &shared);
        }
    }
    loop {
        let Some(next) = job.schedule.next_after(after, tz) else {
            tracing::warn!(job = %job.name, "the schedule has no future run time; the job will not run again");
            shared.metrics.next_run(&job.name, None);
            return;
        };
        shared.metrics.next_run(&job.name, Some(next));
        // Timers run on the monotonic clock; loop until the wall clock has really reached `next`.
        while now() < next {
            let wait = (next - now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        // Woke late (machine slept, clock jumped): the times between `next` and now were missed.
        let now = now();
        let mut latest = next;
        let mut missed = 0u32;
        while let Some(t) = job.schedule.next_after(latest, tz).filter(|t| *t <= now) {
            latest = t;
            missed += 1;
            if missed > 100_000 {
                break;
            }
        }
        after = latest;
        if missed > 0 && !job.catch_up {
            tracing::warn!(job = %job.name, missed = missed + 1, "missed run times skipped (catch_up = false)");
            continue;
        }
        if missed > 0 {
            tracing::warn!(job = %job.name, missed, scheduled_at = %latest, "missed run times; running once for the latest");
        }
        trigger(job, latest, &gen, &shared);
    }
}

/// The latest cron time before now when the history on the job's first reachable target shows
/// an earlier run but not that one: the daemon (all replicas) was down at that time.
async fn missed_while_down(job: &Job, gen: &Generation, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let latest = job.schedule.latest_at_or_before(now(), tz)?;
    for target in targets_of(job, &gen.targets) {
        let Ok(params) = target.params() else { continue };
        let Ok(client) = crate::db::connect(params, &targets::bookkeeping(&gen.loaded)).await else {
            continue;
        };
        return match super::history::last_scheduled(&client, &job.name).await {
            Ok(Some(last)) if last < latest => Some(latest),
            _ => None,
        };
    }
    None
}

/// Starts a run for `scheduled_at` unless the job is still running.
fn trigger(job: &Job, scheduled_at: DateTime<Utc>, gen: &Arc<Generation>, shared: &Arc<Shared>) {
    if !shared.lock_running().insert(job.name.clone()) {
        tracing::warn!(job = %job.name, %scheduled_at, result = %"skipped_overlap", "still running; this run is skipped");
        shared.metrics.count(&job.name, RunResult::SkippedOverlap);
        return;
    }
    shared.metrics.started(&job.name);
    let (job, gen, shared2) = (job.clone(), gen.clone(), shared.clone());
    shared.runs.spawn(async move {
        let started = Instant::now();
        let targets = targets_of(&job, &gen.targets);
        // One task per target: a slow target holds up no other. Each target's result is its
        // own series (`target` label), so one failing server is not hidden by another.
        let mut set = tokio::task::JoinSet::new();
        for t in targets {
            let (job, gen, shared) = (job.clone(), gen.clone(), shared2.clone());
            set.spawn(async move {
                let name = t.name.clone();
                let run = tokio::spawn(async move { run_target(&job, &t, scheduled_at, &gen, &shared).await });
                // A panicked run is a failed run, not a dead daemon.
                (name, run.await.unwrap_or(RunResult::Failure), started.elapsed())
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok((target, result, took)) = done {
                shared2.metrics.finished(&job.name, &target, result, took);
            }
        }
        shared2.lock_running().remove(&job.name);
        if let Some(path) = &gen.settings.metrics_file {
            shared2.metrics.write_file(path);
        }
    });
}

async fn run_target(
    job: &Job,
    target: &Target,
    scheduled_at: DateTime<Utc>,
    gen: &Generation,
    shared: &Shared,
) -> RunResult {
    if !job.kind.claims() {
        return run_unclaimed(job, target, scheduled_at, gen, shared).await;
    }
    let started = Instant::now();
    let started_at = Utc::now();
    let claimed = claim::claim(
        target,
        &targets::bookkeeping(&gen.loaded),
        &job.name,
        job.kind.name(),
        scheduled_at,
    )
    .await;
    let held = match claimed {
        Ok(Claim::Won(held)) => held,
        Ok(Claim::Lost) => {
            tracing::info!(job = %job.name, target = %target.name, %scheduled_at, result = %"skipped_locked",
                "another runner has this run");
            return RunResult::SkippedLocked;
        }
        Err(e) => {
            tracing::error!(job = %job.name, target = %target.name, %scheduled_at, result = %"failure",
                duration_ms = millis(started), error = %e, "job failed: could not claim the run");
            return RunResult::Failure;
        }
    };
    tracing::info!(job = %job.name, kind = %job.kind.name(), target = %target.name, %scheduled_at, run_id = held.id, "job started");
    let token = shared.cancel_runs.child_token();
    let (result, outcome) = execute_bounded(job, target, gen, token).await;
    let done = settle(job, result, outcome, &shared.metrics);
    if done.result == RunResult::Success {
        prune_if_due(job, target, gen, shared, &held.client).await;
    }
    // Cancelled by shutdown after the grace period: history says so; the metric counts a failure.
    let status = match done.result {
        RunResult::Failure if shared.cancel_runs.is_cancelled() => crate::db::job_runs::RunStatus::Cancelled,
        r => r.status(),
    };
    if let Err(e) = held.release(status, done.rows, done.bytes, &done.message).await {
        tracing::warn!(job = %job.name, target = %target.name, error = %e, "run result not recorded in dbtool.job_runs");
    }
    super::outcome::tell(job, target, started_at, &done, &gen.loaded.file.notify).await;
    done.log(job, target, scheduled_at, started);
    done.result
}

/// A read-only job (health, pool-advise): no claim, no lock, no `dbtool.job_runs` row, no
/// write to the watched database. Every replica runs it, so each replica's textfile and
/// /metrics stay fresh, and a `pg_monitor` role on a database never migrated is enough.
async fn run_unclaimed(
    job: &Job,
    target: &Target,
    scheduled_at: DateTime<Utc>,
    gen: &Generation,
    shared: &Shared,
) -> RunResult {
    let started = Instant::now();
    tracing::info!(job = %job.name, kind = %job.kind.name(), target = %target.name, %scheduled_at, "job started");
    let token = shared.cancel_runs.child_token();
    let (result, outcome) = execute_bounded(job, target, gen, token).await;
    let done = settle(job, result, outcome, &shared.metrics);
    done.log(job, target, scheduled_at, started);
    done.result
}

/// Runs the job under its timeout: at the deadline the token is cancelled and the job gets
/// CANCEL_GRACE to stop (kill its child, roll back) before it is dropped.
async fn execute_bounded(
    job: &Job,
    target: &Target,
    gen: &Generation,
    token: CancellationToken,
) -> (RunResult, anyhow::Result<kinds::Outcome>) {
    let fut = kinds::execute(job, target, &gen.loaded, &gen.pools, token.clone());
    tokio::pin!(fut);
    let deadline = tokio::time::sleep(job.timeout.unwrap_or(Duration::from_secs(365 * 86_400)));
    tokio::pin!(deadline);
    tokio::select! {
        r = &mut fut => {
            let result = if r.is_ok() { RunResult::Success } else { RunResult::Failure };
            (result, r)
        }
        () = &mut deadline => {
            token.cancel();
            let cleanup = tokio::time::timeout(CANCEL_GRACE, &mut fut).await;
            let limit = humantime::format_duration(job.timeout.unwrap_or_default());
            let why = match cleanup {
                Ok(_) => format!("timed out after {limit}; cancelled"),
                Err(_) => format!("timed out after {limit}; did not stop within {CANCEL_GRACE:?} of cancellation, dropped"),
            };
            (RunResult::Timeout, Err(anyhow::anyhow!(why)))
        }
    }
}

async fn prune_if_due(job: &Job, target: &Target, gen: &Generation, shared: &Shared, client: &tokio_postgres::Client) {
    let keep = gen.settings.history_keep;
    if keep.is_zero() {
        return;
    }
    {
        let mut last = shared
            .last_prune
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.get(&target.name).is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        last.insert(target.name.clone(), Instant::now());
    }
    match super::history::prune(client, keep).await {
        Ok(n) if n > 0 => tracing::info!(job = %job.name, target = %target.name, deleted = n, "pruned job history"),
        Ok(_) => {}
        Err(e) => tracing::warn!(target = %target.name, error = %e, "job history not pruned"),
    }
}

//! A run cut off at a deadline (a `/probe` scrape) still reports what finished: each check
//! whose queries all came back is evaluated as usual; the others are UNKNOWN, saying why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::lanes::{Executed, Run, Sessions};
use super::plan::Plan;
use super::runner::{evaluate, merge, run_target_noting_connect, Outcomes};
use super::Scope;
use crate::db::pool::TargetPool;
use crate::db::{Target, TargetKind};
use crate::report::finding::Severity;
use crate::report::{CheckReport, TargetReport};

/// What a run has finished so far, noted as it goes.
#[derive(Default)]
pub struct Finished {
    results: Mutex<Vec<Executed>>,
    /// Every database's per-database queries came back.
    databases_done: AtomicBool,
    version: OnceLock<(u32, String)>,
}

impl Finished {
    pub(super) fn note(&self, e: &Executed) {
        let copy = (e.0, e.1.clone(), e.2);
        self.results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(copy);
    }

    pub(super) fn databases_done(&self) {
        self.databases_done.store(true, Ordering::SeqCst);
    }

    pub(super) fn version(&self, num: u32, text: &str) {
        let _ = self.version.set((num, text.to_string()));
    }
}

/// Runs the plan on `target` with the pool's sessions until `deadline`; past it, the run is
/// dropped (its statements cancelled, its sessions not lent again) and the report carries
/// the checks that finished and UNKNOWN for the rest.
pub async fn run_target_until(target: &Target, plan: &Plan, deadline: Duration, pool: &TargetPool) -> TargetReport {
    let started = Instant::now();
    let finished = Finished::default();
    let connected = AtomicBool::new(false);
    let run = Run {
        target,
        plan,
        sessions: Sessions::Warm(pool),
        finished: Some(&finished),
        refresh: None,
    };
    if let Ok(report) = tokio::time::timeout(deadline, run_target_noting_connect(&run, &connected)).await {
        return report;
    }
    let limit = humantime::format_duration(Duration::from_millis(
        u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
    ));
    let (Some((num, text)), true) = (finished.version.get(), connected.load(Ordering::SeqCst)) else {
        let why = format!(
            "no answer from the server within the probe's deadline of {limit}; check that it is running and reachable"
        );
        let mut r = TargetReport::down(target.name.clone(), why, started.elapsed());
        r.up = connected.load(Ordering::SeqCst);
        return r;
    };
    let results = std::mem::take(
        &mut *finished
            .results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut outcomes = Outcomes::new();
    merge(&mut outcomes, results);
    let dbs_done = finished.databases_done.load(Ordering::SeqCst);
    let why = format!(
        "not finished within the probe's deadline of {limit} (the scrape timeout minus [probe] timeout_margin); raise scrape_timeout or scrape this check on its own with ?check="
    );
    let checks: Vec<CheckReport> = plan
        .checks_of(TargetKind::Postgres)
        .map(|(c, t)| {
            let done = c.queries().iter().all(|q| match q.scope {
                Scope::Cluster => outcomes.contains_key(q.name),
                Scope::EachDatabase | Scope::Databases(_) => dbs_done,
            });
            if done {
                evaluate(*c, t, &outcomes, plan.top_n, *num, target.user())
            } else {
                unfinished(c.name(), &why)
            }
        })
        .collect();
    let all_done = checks.iter().all(|c| c.summary != why);
    TargetReport {
        name: target.name.clone(),
        up: true,
        error: (!all_done).then_some(why),
        server_version: Some(text.clone()),
        server_version_num: Some(*num),
        duration: started.elapsed(),
        checks,
        previous_run: None,
        kind: target.kind,
    }
}

fn unfinished(name: &'static str, why: &str) -> CheckReport {
    CheckReport {
        name,
        status: Severity::Unknown,
        summary: why.to_string(),
        threshold: String::new(),
        duration: Duration::ZERO,
        findings: Vec::new(),
        samples: Vec::new(),
        limits: None,
        settings: Default::default(),
        freshness: None,
    }
}

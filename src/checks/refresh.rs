//! Per-check refresh intervals of a scheduled health job (pgwatch's per-metric intervals,
//! postgres_exporter's `cache_seconds`): a check whose inputs change slowly keeps the rows of
//! its last run, per target, and is re-evaluated from them (thresholds in force now) until
//! they are older than its interval. A one-shot `dbtool health` keeps nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::plan::Plan;
use super::runner::Outcomes;
use super::Check;
use crate::db::row::rows_from_messages;
use crate::db::{Session, TargetKind};

const STARTED: &str = include_str!("../../queries/postmaster_start.sql");

/// A job's intervals and what it keeps; one per job and configuration load, so a reload (new
/// thresholds, a new check list) starts from nothing.
#[derive(Default)]
pub struct Refresh {
    /// Check name → interval; a check not listed (or 0) runs every time.
    pub intervals: BTreeMap<&'static str, Duration>,
    kept: Mutex<HashMap<String, TargetKept>>,
}

/// One target's kept results, valid for one life of its server.
#[derive(Default)]
struct TargetKept {
    started: String,
    /// When this run began reading: what it keeps was measured then.
    run_at: Option<(DateTime<Utc>, Instant)>,
    entries: BTreeMap<&'static str, Entry>,
}

/// A kept result is measured again once it is within this of its interval, so a run that
/// starts a little early (a faster connection than last time) does not skip a whole period:
/// a 5-minute refresh on a 1-minute schedule re-measures every fifth run.
const GRACE: Duration = Duration::from_secs(1);

/// Whether a result `age` old may be reused under `interval`.
fn young(age: Duration, interval: Duration) -> bool {
    age + GRACE < interval
}

/// The rows one check was evaluated from, and when they were measured; shared, so a run that
/// reuses them does not copy thousands of rows.
#[derive(Clone)]
pub struct Entry {
    pub outcomes: Arc<Outcomes>,
    pub measured_at: DateTime<Utc>,
    at: Instant,
}

impl Entry {
    pub fn age(&self) -> Duration {
        self.at.elapsed()
    }
}

impl Refresh {
    pub fn new(intervals: BTreeMap<&'static str, Duration>) -> Refresh {
        Refresh {
            intervals,
            kept: Mutex::default(),
        }
    }

    fn interval(&self, check: &str) -> Duration {
        self.intervals.get(check).copied().unwrap_or(Duration::ZERO)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TargetKept>> {
        // A panic elsewhere while holding it leaves a map that is still whole.
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets everything kept for `target`: it was down, timed out or restarted.
    pub fn forget(&self, target: &str) {
        self.lock().remove(target);
    }

    /// The kept results `plan` may reuse on `target` this run. Reads the server's start time
    /// first: after a restart (or when it cannot be read) nothing is reused.
    pub async fn reusable(&self, client: &Session, target: &str, plan: &Plan) -> BTreeMap<&'static str, Entry> {
        if self.intervals.values().all(Duration::is_zero) {
            return BTreeMap::new();
        }
        let started = client
            .simple_query(STARTED)
            .await
            .ok()
            .map(rows_from_messages)
            .and_then(|rows| rows.first().and_then(|r| r.str("started").ok().map(str::to_string)));
        let mut kept = self.lock();
        let Some(started) = started else {
            kept.remove(target);
            return BTreeMap::new();
        };
        let t = kept.entry(target.to_string()).or_default();
        if t.started != started {
            *t = TargetKept {
                started,
                ..TargetKept::default()
            };
        }
        t.run_at = Some((Utc::now(), Instant::now()));
        let postgres: Vec<&'static dyn Check> = plan.checks_of(TargetKind::Postgres).map(|(c, _)| *c).collect();
        let young = |c: &&'static dyn Check| {
            t.entries
                .get(c.name())
                .is_some_and(|e| young(e.age(), self.interval(c.name())))
        };
        // A kept check whose every query runs anyway for another check is measured afresh.
        let running: BTreeSet<&str> = postgres
            .iter()
            .filter(|c| !young(c))
            .flat_map(|c| c.queries().iter().map(|q| q.name))
            .collect();
        postgres
            .iter()
            .filter(|c| young(c) && !c.queries().iter().all(|q| running.contains(q.name)))
            .filter_map(|c| t.entries.get(c.name()).map(|e| (c.name(), e.clone())))
            .collect()
    }

    /// After a run: keeps the rows of each check that has an interval and was measured
    /// cleanly; a check that failed (an UNKNOWN, a query error anywhere) loses what was kept,
    /// so a stale OK is never served after a failed refresh.
    pub fn keep(
        &self,
        target: &str,
        measured: &[(&'static dyn Check, bool)],
        outcomes: &Outcomes,
        follow_ups: &[(&str, &'static str)],
    ) {
        let mut kept = self.lock();
        let Some(t) = kept.get_mut(target) else { return };
        let Some(now) = t.run_at else { return };
        for (check, clean) in measured {
            let name = check.name();
            if self.interval(name).is_zero() {
                continue;
            }
            let clean = *clean
                && check.queries().iter().all(|q| {
                    outcomes
                        .get(q.name)
                        .is_some_and(|o| o.failures.iter().all(|f| check.expected_failure(f)))
                });
            if !clean {
                t.entries.remove(name);
                continue;
            }
            let names = check
                .queries()
                .iter()
                .map(|q| q.name)
                .chain(follow_ups.iter().filter(|(c, _)| *c == name).map(|(_, f)| *f));
            let own: Outcomes = names.filter_map(|n| outcomes.get(n).map(|o| (n, o.clone()))).collect();
            t.entries.insert(
                name,
                Entry {
                    outcomes: Arc::new(own),
                    measured_at: now.0,
                    at: now.1,
                },
            );
        }
    }
}

/// The plan without the checks whose kept results are reused.
pub fn without(plan: &Plan, reused: &BTreeMap<&'static str, Entry>) -> Plan {
    let mut p = plan.clone();
    p.checks.retain(|(c, _)| !reused.contains_key(c.name()));
    p
}

#[cfg(test)]
#[path = "refresh_tests.rs"]
mod tests;

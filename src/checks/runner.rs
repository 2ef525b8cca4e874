//! Runs the enabled checks against one target.
//!
//! Each distinct query runs once: cluster-scope queries pipelined on the main connection,
//! per-database queries on one connection per database (bounded), all concurrently. Every
//! statement is its own read-only transaction (default_transaction_read_only is set at
//! connect), so a permission error in one check cannot abort another check's query.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use super::evaluate::evaluate;
use super::lanes::{exec, in_databases, Executed, Run, Sessions};
use super::plan::Plan;
use super::refresh::{self, Refresh};
use super::{Query, QueryFailure, QueryOutcome, Scope};
use crate::db::pool::TargetPool;
use crate::db::row::rows_from_messages;
use crate::db::{Session, Target, TargetKind};
use crate::report::finding::Severity;
use crate::report::{CheckReport, Freshness, TargetReport};

pub(super) type Outcomes = BTreeMap<&'static str, QueryOutcome>;

const LIST_DATABASES: &str = "/* dbtool: databases to visit */ \
SELECT datname FROM pg_database \
WHERE datallowconn AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT') ORDER BY 1";

pub(super) fn merge(outcomes: &mut Outcomes, results: Vec<Executed>) {
    for (name, result, took) in results {
        let o = outcomes.entry(name).or_default();
        o.duration += took;
        match result {
            Ok(rows) => {
                o.succeeded += 1;
                o.rows.extend(rows);
            }
            Err(f) => o.failures.push(f),
        }
    }
}

/// Runs every planned query on a server of `version` whose main database is `main_db`;
/// returns the outcomes.
async fn gather(
    client: &Session,
    run: &Run<'_>,
    main_db: &str,
    version: u32,
) -> Result<Outcomes, tokio_postgres::Error> {
    let plan = run.plan;
    let mut queries: Vec<&'static Query> = Vec::new();
    let postgres = plan.checks_of(TargetKind::Postgres);
    for q in postgres.flat_map(|(c, _)| c.queries().iter().copied()) {
        if !queries.iter().any(|x| x.name == q.name) {
            queries.push(q);
        }
    }
    let cluster: Vec<&'static Query> = queries.iter().copied().filter(|q| q.scope == Scope::Cluster).collect();
    let per_db: Vec<&'static Query> = queries.iter().copied().filter(|q| q.scope != Scope::Cluster).collect();

    let cluster_side = futures_util::future::join_all(cluster.iter().map(|q| async move {
        let e = exec(client, q, version, None).await;
        if let Some(f) = run.finished {
            f.note(&e);
        }
        e
    }));
    let db_side = async {
        if per_db.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let listed = client.simple_query(LIST_DATABASES).await.map(rows_from_messages);
        let (visits, missing) = super::visits::plan(listed, &plan.databases, &per_db);
        let results = in_databases(client, run, main_db, visits, version).await;
        if let Some(f) = run.finished {
            results.iter().for_each(|e| f.note(e));
            f.databases_done();
        }
        (results, missing)
    };
    // The database list first: polled first, it leads the main session's pipeline, so the
    // lanes start while the cluster queries are still running rather than after them.
    let ((db_results, missing), cluster_results) = futures_util::future::join(db_side, cluster_side).await;
    let mut outcomes = Outcomes::new();
    merge(&mut outcomes, cluster_results);
    merge(&mut outcomes, db_results);
    for (name, f) in missing {
        outcomes.entry(name).or_default().failures.push(f);
    }
    forget_vanished_databases(client, &mut outcomes).await;
    Ok(outcomes)
}

/// A database dropped while dbtool was checking it (its sessions are terminated mid-query) is not
/// a problem of the server: re-read pg_database, only when something failed, and forget the
/// failures of databases that are gone. Seen in CI, where tests drop their databases concurrently.
async fn forget_vanished_databases(client: &Session, outcomes: &mut Outcomes) {
    let failed_in_db = outcomes
        .values()
        .flat_map(|o| &o.failures)
        .any(|f| f.database.is_some());
    if !failed_in_db {
        return;
    }
    let Ok(rows) = client
        .simple_query("/* dbtool */ SELECT datname FROM pg_database")
        .await
        .map(rows_from_messages)
    else {
        return;
    };
    let existing: Vec<&str> = rows.iter().filter_map(|r| r.str("datname").ok()).collect();
    for o in outcomes.values_mut() {
        retain_existing(&mut o.failures, &existing);
    }
}

/// Keeps failures that are not about a database, or about one that still exists.
fn retain_existing(failures: &mut Vec<QueryFailure>, existing: &[&str]) {
    failures.retain(|f| f.database.as_deref().is_none_or(|d| existing.contains(&d)));
}

/// Connects, runs every planned check and returns the target's report; never fails.
pub async fn run_target(target: &Target, plan: &Plan) -> TargetReport {
    let run = Run {
        target,
        plan,
        sessions: Sessions::Fresh,
        finished: None,
        refresh: None,
    };
    let mut r = run_target_noting_connect(&run, &AtomicBool::new(false)).await;
    r.kind = target.kind;
    r
}

/// [`run_target`], setting `connected` once the server has answered.
pub(super) async fn run_target_noting_connect(run: &Run<'_>, connected: &AtomicBool) -> TargetReport {
    let (target, plan) = (run.target, run.plan);
    if target.kind != TargetKind::Postgres {
        return super::tier::run(target, plan, connected).await;
    }
    let started = Instant::now();
    let main_db = match target.params() {
        Ok(p) => p.dbname(),
        Err(e) => return TargetReport::down(target.name.clone(), e.to_string(), started.elapsed()),
    };
    let client = match run.open(main_db, None).await {
        Ok(c) => c,
        Err(e) => return TargetReport::down(target.name.clone(), e.to_string(), started.elapsed()),
    };
    connected.store(true, Ordering::Relaxed);
    let version = match client.server_version().await {
        Ok(v) => {
            if let Some(f) = run.finished {
                f.version(v.num, &v.text);
            }
            v
        }
        Err(e) => return answered_but(target, format!("connected, but {e}"), started),
    };
    let reused = match run.refresh {
        Some(r) => r.reusable(&client, &target.name, plan).await,
        None => BTreeMap::new(),
    };
    let fewer;
    let now = if reused.is_empty() {
        *run
    } else {
        fewer = refresh::without(plan, &reused);
        Run { plan: &fewer, ..*run }
    };
    match gather(&client, &now, main_db, version.num).await {
        Ok(mut outcomes) => {
            let asked = follow_ups(&client, now.plan, &mut outcomes).await;
            let checks = evaluate_checks(run, &reused, &outcomes, &asked, version.num);
            TargetReport {
                name: target.name.clone(),
                kind: target.kind,
                up: true,
                error: None,
                server_version: Some(version.text),
                server_version_num: Some(version.num),
                duration: started.elapsed(),
                checks,
                previous_run: None,
            }
        }
        Err(e) => answered_but(
            target,
            format!("connected, but the server stopped answering: {e}"),
            started,
        ),
    }
}

/// Evaluates the plan's checks: from this run's rows, or from the kept rows of a check that
/// `reused` (no duration: no query ran for it); then keeps what the job's refresh asks for.
fn evaluate_checks(
    run: &Run<'_>,
    reused: &BTreeMap<&'static str, refresh::Entry>,
    outcomes: &Outcomes,
    asked: &[(&'static str, &'static str)],
    version: u32,
) -> Vec<CheckReport> {
    let (plan, user) = (run.plan, run.target.user());
    let now = chrono::Utc::now();
    let mut measured = Vec::new();
    let mut checks = Vec::new();
    for (c, t) in plan.checks_of(TargetKind::Postgres) {
        let mut r;
        if let Some(e) = reused.get(c.name()) {
            r = evaluate(*c, t, &e.outcomes, plan.top_n, version, user);
            r.duration = Duration::ZERO;
            r.freshness = Some(Freshness {
                measured_at: e.measured_at,
                age: e.age(),
                reused: true,
            });
        } else {
            r = evaluate(*c, t, outcomes, plan.top_n, version, user);
            if run.refresh.is_some() {
                measured.push((*c, r.status != Severity::Unknown));
                r.freshness = Some(Freshness {
                    measured_at: now,
                    age: Duration::ZERO,
                    reused: false,
                });
            }
        }
        checks.push(r);
    }
    if let Some(refresh) = run.refresh {
        refresh.keep(&run.target.name, &measured, outcomes, asked);
    }
    checks
}

/// Runs the queries checks build from the gathered rows, one after another on the main
/// session; returns which check asked for which.
async fn follow_ups(client: &Session, plan: &Plan, outcomes: &mut Outcomes) -> Vec<(&'static str, &'static str)> {
    let asked: Vec<_> = plan
        .checks_of(TargetKind::Postgres)
        .filter_map(|(c, _)| c.follow_up(outcomes, plan).map(|f| (c.name(), f)))
        .collect();
    let mut names = Vec::new();
    for (check, f) in asked {
        let started = Instant::now();
        let result = client
            .simple_query(&f.sql)
            .await
            .map(rows_from_messages)
            .map_err(|e| super::lanes::failure(None, &e));
        merge(outcomes, vec![(f.name, result, started.elapsed())]);
        names.push((check, f.name));
    }
    names
}

/// A target that accepted the connection (up) but could not be checked.
pub(super) fn answered_but(target: &Target, message: String, started: Instant) -> TargetReport {
    let mut r = TargetReport::down(target.name.clone(), message, started.elapsed());
    r.up = true;
    r
}

/// `run_target` bounded by a timeout; a target that runs out of time reports UNKNOWN. With
/// `pool` (the daemon) its sessions come from and go back to the target's warm pool; with
/// `refresh` (a scheduled job) slow checks reuse their kept rows, and a target that is down
/// or out of time loses them.
pub async fn run_target_with_timeout(
    target: &Target,
    plan: &Plan,
    timeout: Duration,
    pool: Option<&TargetPool>,
    refresh: Option<&Refresh>,
) -> TargetReport {
    let started = Instant::now();
    let connected = AtomicBool::new(false);
    let run = Run {
        target,
        plan,
        sessions: pool.map_or(Sessions::Fresh, Sessions::Warm),
        finished: None,
        refresh,
    };
    let mut report = match tokio::time::timeout(timeout, run_target_noting_connect(&run, &connected)).await {
        Ok(r) => r,
        Err(_) => {
            let up = connected.load(Ordering::Relaxed);
            let message = if up {
                "health run did not finish within {}; raise --timeout or look at the server's load"
            } else {
                "no answer from the server within {} (--timeout); check that it is running and reachable"
            };
            let mut r = TargetReport::down(
                target.name.clone(),
                message.replace("{}", &humantime::format_duration(timeout).to_string()),
                started.elapsed(),
            );
            // A server that never completed the connection is down (dbtool_up 0), not slow.
            r.up = up;
            r
        }
    };
    report.kind = target.kind;
    if let (Some(r), false) = (refresh, report.up && report.error.is_none()) {
        r.forget(&target.name);
    }
    report
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;

//! Runs the checks of a target that is not PostgreSQL: PgBouncer's admin console (SHOW
//! commands over the simple query protocol), Redis (`tier_redis.rs`). Its report has the same shape as a PostgreSQL
//! target's, so every renderer, the fleet bounds and the scheduler treat it alike.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::lanes::exec;
use super::plan::Plan;
use super::runner::{answered_but, evaluate, merge, Outcomes};
use super::Query;
use crate::db::row::rows_from_messages;
use crate::db::{connect_session, SessionSettings, Target, TargetKind};
use crate::report::TargetReport;

/// Connects, runs the planned checks of the target's kind and returns its report; never fails.
pub(super) async fn run(target: &Target, plan: &Plan, connected: &AtomicBool) -> TargetReport {
    match target.kind {
        TargetKind::Pgbouncer => pgbouncer(target, plan, connected).await,
        TargetKind::Redis => super::tier_redis::run(target, plan, connected).await,
        TargetKind::Postgres => TargetReport::down(
            target.name.clone(),
            "a PostgreSQL target reached the tier runner".into(),
            std::time::Duration::ZERO,
        ),
    }
}

/// "PgBouncer 1.18.0" → 11800, as server_version_num spells PostgreSQL's.
pub fn pgbouncer_version_num(text: &str) -> Option<u32> {
    let v = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some(major * 10000 + minor * 100 + patch)
}

async fn pgbouncer(target: &Target, plan: &Plan, connected: &AtomicBool) -> TargetReport {
    let started = Instant::now();
    // The admin console takes no startup options and reads SET as its own command.
    let admin = SessionSettings {
        admin_console: true,
        ..plan.session.clone()
    };
    let params = match target.params() {
        Ok(p) => p,
        Err(e) => return TargetReport::down(target.name.clone(), e.to_string(), started.elapsed()),
    };
    let session = match connect_session(params, &admin).await {
        Ok(s) => s,
        Err(e) => return TargetReport::down(target.name.clone(), e.to_string(), started.elapsed()),
    };
    connected.store(true, Ordering::Relaxed);
    let version = match session.simple_query("SHOW VERSION").await.map(rows_from_messages) {
        Ok(rows) => rows
            .first()
            .and_then(|r| r.opt_str("version").ok().flatten().map(str::to_string)),
        Err(e) => return answered_but(target, format!("connected, but SHOW VERSION failed: {e}"), started),
    };
    let num = version.as_deref().and_then(pgbouncer_version_num).unwrap_or(0);
    let checks: Vec<_> = plan.checks_of(TargetKind::Pgbouncer).collect();
    let mut queries: Vec<&'static Query> = Vec::new();
    for q in checks.iter().flat_map(|(c, _)| c.queries().iter().copied()) {
        if !queries.iter().any(|x| x.name == q.name) {
            queries.push(q);
        }
    }
    let results = futures_util::future::join_all(queries.iter().map(|q| exec(&session, q, num, None))).await;
    let mut outcomes = Outcomes::new();
    merge(&mut outcomes, results);
    TargetReport {
        name: target.name.clone(),
        kind: target.kind,
        up: true,
        error: None,
        server_version: version,
        server_version_num: Some(num),
        duration: started.elapsed(),
        checks: checks
            .iter()
            .map(|(c, t)| evaluate(*c, t, &outcomes, plan.top_n, num, target.user()))
            .collect(),
        previous_run: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pgbouncer_versions_become_numbers() {
        assert_eq!(super::pgbouncer_version_num("PgBouncer 1.18.0"), Some(11800));
        assert_eq!(super::pgbouncer_version_num("PgBouncer 1.23.1"), Some(12301));
        assert_eq!(super::pgbouncer_version_num("PgBouncer 1.21.0-rc1"), Some(12100));
        assert_eq!(super::pgbouncer_version_num("PgBouncer"), None);
    }
}

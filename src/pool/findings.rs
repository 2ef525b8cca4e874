//! Findings about the current PgBouncer configuration: pools that can exceed max_connections,
//! clients waiting, pools sitting idle.

use crate::report::finding::{Finding, Severity};

use super::model::{num, secs, Demand};
use super::{Derived, Measured};

pub(super) fn bouncer_findings(m: &Measured, d: &Derived, demands: &[Demand]) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(b) = &m.pgbouncer else {
        return out;
    };
    if let Some(cap) = d.configured_pool_capacity {
        if cap + d.bypass_connections > d.usable_connections {
            out.push(
                Finding::new(
                    Severity::Critical,
                    "pgbouncer pools",
                    format!(
                        "the configured pools can open {cap} server connections, plus {} that bypass PgBouncer, \
                     but PostgreSQL allows {} (max_connections {} − {} reserved): logins will fail at peak",
                        d.bypass_connections,
                        d.usable_connections,
                        m.postgres.max_connections,
                        m.postgres.reserved_connections
                    ),
                )
                .with_value(cap as f64),
            );
        }
    }
    for p in b.user_pools() {
        let stats = b.stats.iter().find(|s| s.database == p.database);
        let avg_wait = stats.map_or(0.0, |s| s.avg_wait_seconds);
        if p.cl_waiting_peak > 0 || p.maxwait_seconds_peak > 0.0 || avg_wait > 0.0005 {
            let pool_size = b
                .databases
                .iter()
                .find(|x| x.name == p.database)
                .map_or(0, |x| x.pool_size);
            // Past the host's useful concurrency a bigger pool moves the queue into PostgreSQL.
            let why = if pool_size >= d.useful_connections {
                format!(
                    "pool_size {pool_size} already matches the {} connections the host can keep busy: the queue is the host's, shorten transactions or add cores",
                    d.useful_connections
                )
            } else {
                format!("pool_size {pool_size} is too small for the measured demand")
            };
            out.push(
                Finding::new(
                    Severity::Warning,
                    format!("pool {}/{}", p.database, p.user),
                    format!(
                        "clients wait for a server: up to {} waiting, longest wait {}, mean wait {} per transaction; {why}",
                        p.cl_waiting_peak,
                        secs(p.maxwait_seconds_peak),
                        secs(avg_wait)
                    ),
                )
                .with_value(p.cl_waiting_peak as f64),
            );
        }
    }
    for db in b.databases.iter().filter(|x| x.name != "pgbouncer") {
        let busy = demands.iter().find(|x| x.name == db.name).map_or(0.0, |x| x.busy);
        let open: i64 = b
            .user_pools()
            .filter(|p| p.database == db.name)
            .map(|p| p.server_connections())
            .sum();
        if db.pool_size >= 4 && busy < 0.25 * db.pool_size as f64 && open * 2 >= db.pool_size {
            out.push(Finding::new(
                Severity::Warning,
                format!("database {}", db.name),
                format!(
                    "pool mostly idle: {open} server connections open for a mean of {} busy (pool_size {})",
                    num(busy),
                    db.pool_size
                ),
            ));
        }
    }
    out
}

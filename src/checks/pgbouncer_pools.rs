//! PgBouncer pools (SHOW POOLS with SHOW DATABASES' pool sizes): clients waiting for a server,
//! the longest wait, and how much of each pool is in use.

use std::collections::BTreeMap;

use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, Sample, Severity};

crate::query!(POOLS, "pgbouncer_pools", Cluster, [0 => "pgbouncer_pools.sql"]);
crate::query!(DATABASES, "pgbouncer_databases", Cluster, [0 => "pgbouncer_databases.sql"]);

/// The admin console's own pseudo-database: no server behind it, nothing to saturate.
pub const ADMIN_DB: &str = "pgbouncer";
/// What every PgBouncer check needs to read the admin console's SHOW commands.
pub const PRIVILEGE: &str = "a place in stats_users or admin_users of pgbouncer.ini";

family!(
    CLIENTS,
    Gauge,
    "dbtool_pgbouncer_pool_client_connections",
    "Client connections per pool (database, user) by state: active, waiting (SHOW POOLS cl_*)."
);
family!(
    SERVERS,
    Gauge,
    "dbtool_pgbouncer_pool_server_connections",
    "Server connections per pool by state: active, idle, used, tested, login (SHOW POOLS sv_*)."
);
family!(
    MAXWAIT,
    Gauge,
    "dbtool_pgbouncer_pool_maxwait_seconds",
    "How long the oldest waiting client of the pool has waited for a server (maxwait + maxwait_us)."
);
family!(
    SATURATION,
    Gauge,
    "dbtool_pgbouncer_pool_saturation_ratio",
    "Server connections linked to a client (sv_active) as a share of the database's pool_size."
);
family!(
    RESERVE,
    Gauge,
    "dbtool_pgbouncer_pool_reserve_in_use",
    "Server connections of the pool beyond pool_size, that is taken from the reserve pool."
);

pub struct PgbouncerPools;

const SV_STATES: &[&str] = &["active", "idle", "used", "tested", "login"];

impl Check for PgbouncerPools {
    fn name(&self) -> &'static str {
        "pgbouncer_pools"
    }
    fn description(&self) -> &'static str {
        "PgBouncer: clients waiting for a server, the longest wait, and pool saturation"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Pgbouncer
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&POOLS, &DATABASES];
        L
    }
    fn privilege(&self) -> &'static str {
        PRIVILEGE
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "waiting_warning",
            critical: "waiting_critical",
            family: &CLIENTS,
            scale: 1.0,
            uom: "",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "waiting_warning",
                default: 1.0,
                help: "clients waiting for a server in one pool",
            },
            ThresholdSpec {
                key: "waiting_critical",
                default: 10.0,
                help: "clients waiting for a server in one pool",
            },
            ThresholdSpec {
                key: "maxwait_warning",
                default: 1.0,
                help: "seconds the oldest waiting client has waited",
            },
            ThresholdSpec {
                key: "maxwait_critical",
                default: 5.0,
                help: "seconds the oldest waiting client has waited",
            },
            ThresholdSpec {
                key: "saturation_warning",
                default: 90.0,
                help: "server connections in use, percent of pool_size",
            },
            ThresholdSpec {
                key: "saturation_critical",
                default: 0.0,
                help: "server connections in use, percent of pool_size (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CLIENTS, &SERVERS, &MAXWAIT, &SATURATION, &RESERVE];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let mut pool_size: BTreeMap<&str, i64> = BTreeMap::new();
        for r in ctx.rows(&DATABASES) {
            pool_size.insert(
                r.str("name").in_query(&DATABASES)?,
                r.i64("pool_size").in_query(&DATABASES)?,
            );
        }
        let mut out = CheckOutput::default();
        let (mut waiting_total, mut worst_wait, mut pools) = (0i64, 0f64, 0usize);
        for r in ctx.rows(&POOLS) {
            let q = &POOLS;
            let db = r.str("database").in_query(q)?;
            if db == ADMIN_DB {
                continue;
            }
            pools += 1;
            let user = r.str("user").in_query(q)?;
            let pool = format!("pool {db}/{user}");
            let label = |s: Sample| s.label("database", db).label("user", user);
            let waiting = r.i64("cl_waiting").in_query(q)?;
            out.samples
                .push(label(Sample::new(&CLIENTS, r.i64("cl_active").in_query(q)? as f64)).label("state", "active"));
            out.samples
                .push(label(Sample::new(&CLIENTS, waiting as f64)).label("state", "waiting"));
            let mut servers = 0i64;
            for s in SV_STATES {
                let n = r.i64(&format!("sv_{s}")).in_query(q)?;
                servers += n;
                out.samples
                    .push(label(Sample::new(&SERVERS, n as f64)).label("state", *s));
            }
            // maxwait is whole seconds; maxwait_us (1.8+) the microseconds on top of them.
            let us = r.opt_i64("maxwait_us").unwrap_or(None).unwrap_or(0);
            let maxwait = r.f64("maxwait").in_query(q)? + us as f64 / 1e6;
            out.samples.push(label(Sample::new(&MAXWAIT, maxwait)));
            waiting_total += waiting;
            worst_wait = worst_wait.max(maxwait);

            let sev = Severity::above(waiting as f64, t.get("waiting_warning"), t.get("waiting_critical")).worst(
                Severity::above(maxwait, t.get("maxwait_warning"), t.get("maxwait_critical")),
            );
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(
                        sev,
                        pool.clone(),
                        format!(
                            "{waiting} client(s) waiting for a server, the oldest for {maxwait:.1}s; \
                             the pool is too small for the load, or a server session is held (look at long transactions)"
                        ),
                    )
                    .with_value(waiting as f64),
                );
            }
            if let Some(&size) = pool_size.get(db).filter(|s| **s > 0) {
                let active = r.i64("sv_active").in_query(q)?;
                let share = active as f64 / size as f64;
                out.samples.push(label(Sample::new(&SATURATION, share)));
                out.samples
                    .push(label(Sample::new(&RESERVE, (servers - size).max(0) as f64)));
                let sev = Severity::above(share * 100.0, t.get("saturation_warning"), t.get("saturation_critical"));
                if sev != Severity::Ok {
                    out.findings.push(
                        Finding::new(
                            sev,
                            pool,
                            format!(
                                "{active} of pool_size {size} server connections in use ({})",
                                super::pct(share)
                            ),
                        )
                        .with_value(share * 100.0),
                    );
                }
            }
        }
        out.summary = format!("{pools} pool(s), {waiting_total} client(s) waiting, longest wait {worst_wait:.1}s");
        Ok(out)
    }
}

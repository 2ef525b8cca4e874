//! PgBouncer databases (SHOW DATABASES): paused or disabled ones, server connections against
//! `max_db_connections`, pool and reserve sizes.

use super::pgbouncer_pools::{ADMIN_DB, DATABASES};
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MetricFamily, Sample, Severity};

family!(
    POOL_SIZE,
    Gauge,
    "dbtool_pgbouncer_database_pool_size",
    "The database's pool_size."
);
family!(
    RESERVE_POOL,
    Gauge,
    "dbtool_pgbouncer_database_reserve_pool",
    "The database's reserve_pool."
);
family!(
    MAX_CONNECTIONS,
    Gauge,
    "dbtool_pgbouncer_database_max_connections",
    "The database's max_db_connections (0: no limit)."
);
family!(
    CURRENT_CONNECTIONS,
    Gauge,
    "dbtool_pgbouncer_database_current_connections",
    "Server connections open to the database, all its pools."
);
family!(
    PAUSED,
    Gauge,
    "dbtool_pgbouncer_database_paused",
    "1 when the database is paused (PAUSE)."
);
family!(
    DISABLED,
    Gauge,
    "dbtool_pgbouncer_database_disabled",
    "1 when the database is disabled (DISABLE)."
);

pub struct PgbouncerDatabases;

impl Check for PgbouncerDatabases {
    fn name(&self) -> &'static str {
        "pgbouncer_databases"
    }
    fn description(&self) -> &'static str {
        "PgBouncer: paused or disabled databases, server connections against max_db_connections"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Pgbouncer
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&DATABASES];
        L
    }
    fn privilege(&self) -> &'static str {
        super::pgbouncer_pools::PRIVILEGE
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "max_connections_warning",
                default: 90.0,
                help: "server connections, percent of max_db_connections",
            },
            ThresholdSpec {
                key: "max_connections_critical",
                default: 100.0,
                help: "server connections, percent of max_db_connections",
            },
            ThresholdSpec {
                key: "paused",
                default: 1.0,
                help: "severity of a paused or disabled database: 1 WARNING, 2 CRITICAL, 0 off",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &POOL_SIZE,
            &RESERVE_POOL,
            &MAX_CONNECTIONS,
            &CURRENT_CONNECTIONS,
            &PAUSED,
            &DISABLED,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let t = ctx.thresholds;
        let q = &DATABASES;
        let paused_severity = match t.get("paused") {
            p if p >= 2.0 => Severity::Critical,
            p if p >= 1.0 => Severity::Warning,
            _ => Severity::Ok,
        };
        let mut out = CheckOutput::default();
        let (mut n, mut stopped) = (0usize, 0usize);
        for r in ctx.rows(q) {
            let name = r.str("name").in_query(q)?;
            if name == ADMIN_DB {
                continue;
            }
            n += 1;
            let object = format!("database {name}");
            let gauge = |f: &'static MetricFamily, v: f64| Sample::new(f, v).label("database", name);
            // max_connections, current_connections, paused and disabled: 1.9+ (Debian has 1.18).
            let max = r.opt_i64("max_connections").in_query(q)?.unwrap_or(0);
            let current = r.opt_i64("current_connections").in_query(q)?.unwrap_or(0);
            let paused = r.opt_i64("paused").in_query(q)?.unwrap_or(0) != 0;
            let disabled = r.opt_i64("disabled").in_query(q)?.unwrap_or(0) != 0;
            out.samples
                .push(gauge(&POOL_SIZE, r.i64("pool_size").in_query(q)? as f64));
            out.samples.push(gauge(
                &RESERVE_POOL,
                r.opt_i64("reserve_pool").in_query(q)?.unwrap_or(0) as f64,
            ));
            out.samples.push(gauge(&MAX_CONNECTIONS, max as f64));
            out.samples.push(gauge(&CURRENT_CONNECTIONS, current as f64));
            out.samples.push(gauge(&PAUSED, super::flag(paused)));
            out.samples.push(gauge(&DISABLED, super::flag(disabled)));
            for (on, what, undo) in [(paused, "paused", "RESUME"), (disabled, "disabled", "ENABLE")] {
                if on {
                    stopped += 1;
                    if paused_severity != Severity::Ok {
                        out.findings.push(Finding::new(
                            paused_severity,
                            object.clone(),
                            format!("{what}: its clients wait or are refused until {undo} {name} on the admin console"),
                        ));
                    }
                }
            }
            if max > 0 {
                let share = current as f64 / max as f64;
                let sev = Severity::above(
                    share * 100.0,
                    t.get("max_connections_warning"),
                    t.get("max_connections_critical"),
                );
                if sev != Severity::Ok {
                    out.findings.push(
                        Finding::new(
                            sev,
                            object,
                            format!("{current} of max_db_connections {max} server connections open"),
                        )
                        .with_value(share * 100.0),
                    );
                }
            }
        }
        out.summary = format!("{n} database(s), {stopped} paused or disabled");
        Ok(out)
    }
}

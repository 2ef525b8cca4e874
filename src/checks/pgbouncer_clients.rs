//! PgBouncer client connections (SHOW LISTS used_clients) against `max_client_conn`
//! (SHOW CONFIG): past it, PgBouncer refuses new clients.

use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, Sample, Severity};

crate::query!(LISTS, "pgbouncer_lists", Cluster, [0 => "pgbouncer_lists.sql"]);
crate::query!(CONFIG, "pgbouncer_config", Cluster, [0 => "pgbouncer_config.sql"]);

family!(
    CLIENTS,
    Gauge,
    "dbtool_pgbouncer_client_connections",
    "Client connections PgBouncer holds, all pools and the admin console (SHOW LISTS used_clients)."
);
family!(
    MAX_CLIENTS,
    Gauge,
    "dbtool_pgbouncer_max_client_connections",
    "The max_client_conn setting."
);
family!(
    USAGE,
    Gauge,
    "dbtool_pgbouncer_client_connections_usage_ratio",
    "Client connections as a share of max_client_conn."
);
family!(
    LIST_ITEMS,
    Gauge,
    "dbtool_pgbouncer_list_items",
    "Items of PgBouncer's internal lists (SHOW LISTS): databases, users, pools, clients and servers by state."
);

pub struct PgbouncerClients;

impl Check for PgbouncerClients {
    fn name(&self) -> &'static str {
        "pgbouncer_clients"
    }
    fn description(&self) -> &'static str {
        "PgBouncer: client connections against max_client_conn"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Pgbouncer
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&LISTS, &CONFIG];
        L
    }
    fn privilege(&self) -> &'static str {
        super::pgbouncer_pools::PRIVILEGE
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "warning",
            critical: "critical",
            family: &USAGE,
            scale: 100.0,
            uom: "%",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "warning",
                default: 80.0,
                help: "client connections, percent of max_client_conn",
            },
            ThresholdSpec {
                key: "critical",
                default: 95.0,
                help: "client connections, percent of max_client_conn",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CLIENTS, &MAX_CLIENTS, &USAGE, &LIST_ITEMS];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let mut out = CheckOutput::default();
        let mut used = None;
        for r in ctx.rows(&LISTS) {
            let list = r.str("list").in_query(&LISTS)?;
            let items = r.i64("items").in_query(&LISTS)?;
            if list == "used_clients" {
                used = Some(items);
            }
            out.samples
                .push(Sample::new(&LIST_ITEMS, items as f64).label("list", list));
        }
        let used = used.ok_or(EvalError::Setting {
            query: LISTS.name,
            name: "used_clients",
        })?;
        let mut max = None;
        for r in ctx.rows(&CONFIG) {
            if r.str("key").in_query(&CONFIG)? == "max_client_conn" {
                max = r.opt_f64("value").in_query(&CONFIG)?;
            }
        }
        let max = max.ok_or(EvalError::Setting {
            query: CONFIG.name,
            name: "max_client_conn",
        })?;
        out.samples.push(Sample::new(&CLIENTS, used as f64));
        out.samples.push(Sample::new(&MAX_CLIENTS, max));
        let share = if max > 0.0 { used as f64 / max } else { 0.0 };
        out.samples.push(Sample::new(&USAGE, share));
        out.summary = format!("{used} of max_client_conn {max} client connections ({})", pct(share));
        let t = ctx.thresholds;
        let sev = Severity::above(share * 100.0, t.get("warning"), t.get("critical"));
        if sev != Severity::Ok {
            out.findings.push(
                Finding::new(
                    sev,
                    "max_client_conn",
                    format!(
                        "{used} of max_client_conn {max} client connections in use ({}); past it PgBouncer refuses new clients",
                        pct(share)
                    ),
                )
                .with_value(share * 100.0),
            );
        }
        Ok(out)
    }
}

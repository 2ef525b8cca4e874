//! Redis clients (INFO clients and stats, CONFIG GET maxclients): connected and blocked
//! clients, bounds on their number, and connections rejected at maxclients.

use super::redis_info::{config, info, CONFIG, INFO};
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, Sample, Severity};

family!(
    CONNECTED,
    Gauge,
    "dbtool_redis_connected_clients",
    "Client connections (connected_clients), replicas not included."
);
family!(
    BLOCKED,
    Gauge,
    "dbtool_redis_blocked_clients",
    "Clients waiting in a blocking command (BLPOP, XREAD …)."
);
family!(
    MAX_CLIENTS,
    Gauge,
    "dbtool_redis_max_clients",
    "The maxclients setting."
);
family!(
    REJECTED,
    Counter,
    "dbtool_redis_rejected_connections_total",
    "Connections refused because of maxclients (rejected_connections)."
);
family!(
    RECEIVED,
    Counter,
    "dbtool_redis_connections_received_total",
    "Connections accepted (total_connections_received)."
);

/// The object of the finding about rejections since the server started; with `--state` the
/// finding about rejections since the previous run replaces it (`state.rs`).
pub const REJECTED_SINCE_START: &str = "rejected_connections since start";

pub struct RedisClients;

impl Check for RedisClients {
    fn name(&self) -> &'static str {
        "redis_clients"
    }
    fn description(&self) -> &'static str {
        "Redis: connected and blocked clients, bounds on their number, connections rejected at maxclients"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Redis
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&INFO, &CONFIG];
        L
    }
    fn privilege(&self) -> &'static str {
        "+info and +config|get in the user's ACL"
    }
    fn expected_failure(&self, failure: &super::QueryFailure) -> bool {
        failure.message.starts_with("CONFIG")
    }
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        static MAIN: MainThreshold = MainThreshold {
            warning: "too_many",
            critical: "too_many_critical",
            family: &CONNECTED,
            scale: 1.0,
            uom: "",
        };
        Some(&MAIN)
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "too_many",
                default: 100.0,
                help: "connected clients above which it is a WARNING (0: off); depends on the application",
            },
            ThresholdSpec {
                key: "too_many_critical",
                default: 0.0,
                help: "connected clients above which it is CRITICAL (0: off)",
            },
            ThresholdSpec {
                key: "too_few",
                default: 5.0,
                help: "connected clients below which it is a WARNING (0: off): the application's pools are gone",
            },
            ThresholdSpec {
                key: "rejected",
                default: 2.0,
                help: "severity of a rejected connection: 2 CRITICAL, 1 WARNING, 0 off",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CONNECTED, &BLOCKED, &MAX_CLIENTS, &REJECTED, &RECEIVED];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let r = info(ctx)?;
        let q = &INFO;
        let t = ctx.thresholds;
        let connected = r.f64("connected_clients").in_query(q)?;
        let blocked = r.f64("blocked_clients").in_query(q)?;
        let rejected = r.f64("rejected_connections").in_query(q)?;
        // maxclients is in INFO since 7.0; CONFIG may be refused.
        let max = config(ctx, "maxclients").or(r.opt_f64("maxclients").unwrap_or(None));
        let mut out = CheckOutput::default();
        out.samples.push(Sample::new(&CONNECTED, connected));
        out.samples.push(Sample::new(&BLOCKED, blocked));
        if let Some(m) = max {
            out.samples.push(Sample::new(&MAX_CLIENTS, m));
        }
        out.samples.push(Sample::new(&REJECTED, rejected));
        out.samples
            .push(Sample::new(&RECEIVED, r.f64("total_connections_received").in_query(q)?));
        let of_max = max.map_or_else(String::new, |m| format!(" of maxclients {m}"));
        out.summary = format!("{connected} connected{of_max}, {blocked} blocked, {rejected} rejected since start");

        let (many, many_crit, few) = (t.get("too_many"), t.get("too_many_critical"), t.get("too_few"));
        let sev = Severity::above(connected, many, many_crit);
        if sev != Severity::Ok {
            out.findings.push(
                Finding::new(
                    sev,
                    "connected_clients",
                    format!("{connected} clients connected{of_max}, above {many}: a connection leak or pools sized too big?"),
                )
                .with_value(connected),
            );
        }
        if few > 0.0 && connected < few {
            out.findings.push(
                Finding::new(
                    Severity::Warning,
                    "connected_clients",
                    format!("{connected} clients connected, under {few}: are the application's workers connected?"),
                )
                .with_value(connected),
            );
        }
        let rejected_severity = match t.get("rejected") {
            s if s >= 2.0 => Severity::Critical,
            s if s >= 1.0 => Severity::Warning,
            _ => Severity::Ok,
        };
        if rejected > 0.0 && rejected_severity != Severity::Ok {
            out.findings.push(
                Finding::new(
                    rejected_severity,
                    REJECTED_SINCE_START,
                    format!("{rejected} connection(s) rejected at maxclients since Redis started; raise maxclients or find who holds the connections"),
                )
                .with_value(rejected),
            );
        }
        Ok(out)
    }
}

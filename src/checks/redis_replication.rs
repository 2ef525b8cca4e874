//! Redis replication (INFO replication): the role; on a primary, its replicas and how far
//! behind each is; on a replica, the link to its primary (`master_link_status`).

use super::flag;
use super::redis_info::{field, info, number, INFO};
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MetricFamily, Sample, Severity};

family!(
    IS_REPLICA,
    Gauge,
    "dbtool_redis_replica",
    "1 when the server is a replica (role:slave), 0 on a primary."
);
family!(
    REPLICAS,
    Gauge,
    "dbtool_redis_connected_replicas",
    "Replicas connected to this primary (connected_slaves)."
);
family!(
    REPLICA_LAG_BYTES,
    Gauge,
    "dbtool_redis_replica_lag_bytes",
    "On a primary: master_repl_offset minus the replica's acknowledged offset, per replica."
);
family!(
    REPLICA_LAG_SECONDS,
    Gauge,
    "dbtool_redis_replica_lag_seconds",
    "On a primary: seconds since the replica's last acknowledgement (lag), per replica."
);
family!(
    LINK_UP,
    Gauge,
    "dbtool_redis_master_link_up",
    "On a replica: 1 when master_link_status is up, 0 when down."
);
family!(
    OFFSET,
    Gauge,
    "dbtool_redis_replication_offset_bytes",
    "master_repl_offset (on a replica: the offset it has processed)."
);

pub struct RedisReplication;

impl Check for RedisReplication {
    fn name(&self) -> &'static str {
        "redis_replication"
    }
    fn description(&self) -> &'static str {
        "Redis: role, replicas and their lag, the replica's link to its primary"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Redis
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&INFO];
        L
    }
    fn privilege(&self) -> &'static str {
        "+info in the user's ACL"
    }
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[
            ThresholdSpec {
                key: "lag_warning_seconds",
                default: 30.0,
                help: "seconds since a replica's last acknowledgement, on a primary",
            },
            ThresholdSpec {
                key: "lag_critical_seconds",
                default: 0.0,
                help: "seconds since a replica's last acknowledgement (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[
            &IS_REPLICA,
            &REPLICAS,
            &REPLICA_LAG_BYTES,
            &REPLICA_LAG_SECONDS,
            &LINK_UP,
            &OFFSET,
        ];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let r = info(ctx)?;
        let q = &INFO;
        let t = ctx.thresholds;
        let role = r.str("role").in_query(q)?;
        let offset = r.f64("master_repl_offset").in_query(q)?;
        let mut out = CheckOutput::default();
        out.samples.push(Sample::new(&IS_REPLICA, flag(role == "slave")));
        out.samples.push(Sample::new(&OFFSET, offset));
        if role == "slave" {
            let link = r.str("master_link_status").in_query(q)?;
            let primary = format!(
                "{}:{}",
                r.str("master_host").in_query(q)?,
                r.str("master_port").in_query(q)?
            );
            out.samples.push(Sample::new(&LINK_UP, flag(link == "up")));
            out.summary = format!("replica of {primary}, link {link}");
            if link != "up" {
                let down_for = r.opt_f64("master_link_down_since_seconds").unwrap_or(None);
                let since = down_for.map_or_else(String::new, |s| format!(" for {}", super::human_secs(s)));
                out.findings.push(Finding::new(
                    Severity::Critical,
                    format!("primary {primary}"),
                    format!("master_link_status is {link}{since}: the replica no longer receives writes"),
                ));
            }
            return Ok(out);
        }
        let replicas = r.f64("connected_slaves").in_query(q)?;
        out.samples.push(Sample::new(&REPLICAS, replicas));
        let mut worst = 0.0f64;
        for column in r
            .columns()
            .iter()
            .filter(|c| c.starts_with("slave") && c[5..].parse::<u32>().is_ok())
        {
            let value = r.str(column).in_query(q)?;
            // `slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0`
            let name = format!(
                "{}:{}",
                field(value, "ip").unwrap_or("?"),
                field(value, "port").unwrap_or("?")
            );
            let acked = number(value, "offset").unwrap_or(offset);
            let lag = number(value, "lag").unwrap_or(0.0);
            worst = worst.max(lag);
            out.samples
                .push(Sample::new(&REPLICA_LAG_BYTES, (offset - acked).max(0.0)).label("replica", name.as_str()));
            out.samples
                .push(Sample::new(&REPLICA_LAG_SECONDS, lag).label("replica", name.as_str()));
            let sev = Severity::above(lag, t.get("lag_warning_seconds"), t.get("lag_critical_seconds"));
            if sev != Severity::Ok {
                out.findings.push(
                    Finding::new(sev, format!("replica {name}"), format!("last acknowledged {lag}s ago"))
                        .with_value(lag),
                );
            }
        }
        out.summary = format!("primary, {replicas} replica(s) connected, longest lag {worst}s");
        Ok(out)
    }
}

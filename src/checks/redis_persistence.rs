//! Redis persistence (INFO persistence): the last RDB save and AOF write failed or not, and
//! changes not yet saved.

use super::flag;
use super::redis_info::{info, INFO};
use super::{Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MetricFamily, Sample, Severity};

family!(
    CHANGES,
    Gauge,
    "dbtool_redis_changes_since_last_save",
    "Writes since the last RDB save (rdb_changes_since_last_save)."
);
family!(
    LAST_SAVE,
    Gauge,
    "dbtool_redis_last_save_timestamp_seconds",
    "Unix time of the last successful RDB save."
);
family!(
    RDB_OK,
    Gauge,
    "dbtool_redis_rdb_last_bgsave_ok",
    "1 when the last background RDB save succeeded."
);
family!(
    AOF_ENABLED,
    Gauge,
    "dbtool_redis_aof_enabled",
    "1 when the append-only file is on."
);
family!(
    AOF_OK,
    Gauge,
    "dbtool_redis_aof_last_write_ok",
    "1 when the last AOF write succeeded (1 too when AOF is off)."
);

pub struct RedisPersistence;

impl Check for RedisPersistence {
    fn name(&self) -> &'static str {
        "redis_persistence"
    }
    fn description(&self) -> &'static str {
        "Redis: failed RDB saves and AOF writes, changes not yet saved"
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
        &[ThresholdSpec {
            key: "changes_warning",
            default: 0.0,
            help: "writes not yet saved to the RDB file (0: off)",
        }]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&CHANGES, &LAST_SAVE, &RDB_OK, &AOF_ENABLED, &AOF_OK];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let r = info(ctx)?;
        let q = &INFO;
        let changes = r.f64("rdb_changes_since_last_save").in_query(q)?;
        let rdb_ok = r.str("rdb_last_bgsave_status").in_query(q)? == "ok";
        let aof_enabled = r.i64("aof_enabled").in_query(q)? != 0;
        let aof_ok = r.str("aof_last_write_status").in_query(q)? == "ok";
        let mut out = CheckOutput::default();
        out.samples.push(Sample::new(&CHANGES, changes));
        out.samples
            .push(Sample::new(&LAST_SAVE, r.f64("rdb_last_save_time").in_query(q)?));
        out.samples.push(Sample::new(&RDB_OK, flag(rdb_ok)));
        out.samples.push(Sample::new(&AOF_ENABLED, flag(aof_enabled)));
        out.samples.push(Sample::new(&AOF_OK, flag(aof_ok)));
        if !rdb_ok {
            out.findings.push(Finding::new(
                Severity::Critical,
                "rdb_last_bgsave_status",
                "the last background save failed: with stop-writes-on-bgsave-error (the default) Redis refuses writes; see the Redis log (disk full, permissions, fork)",
            ));
        }
        if aof_enabled && !aof_ok {
            out.findings.push(Finding::new(
                Severity::Critical,
                "aof_last_write_status",
                "the last append-only file write failed; see the Redis log (disk full, permissions)",
            ));
        }
        let warn = ctx.thresholds.get("changes_warning");
        if warn > 0.0 && changes >= warn {
            out.findings.push(
                Finding::new(
                    Severity::Warning,
                    "rdb_changes_since_last_save",
                    format!("{changes} writes not yet saved"),
                )
                .with_value(changes),
            );
        }
        let aof = if aof_enabled { "AOF on" } else { "AOF off" };
        out.summary = format!(
            "last RDB save {}, {aof}, {changes} change(s) since",
            if rdb_ok { "ok" } else { "FAILED" }
        );
        Ok(out)
    }
}

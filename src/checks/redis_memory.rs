//! Redis memory (INFO memory, CONFIG GET maxmemory): used memory against maxmemory, or against
//! the host's memory when maxmemory is 0 (saying so); RSS, fragmentation, evictions.

use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, ThresholdSpec};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, Sample, Severity};

use super::redis_info::{config, info, CONFIG, INFO};

family!(
    USED,
    Gauge,
    "dbtool_redis_memory_used_bytes",
    "Memory Redis has allocated (used_memory)."
);
family!(
    RSS,
    Gauge,
    "dbtool_redis_memory_rss_bytes",
    "Memory the operating system gives Redis (used_memory_rss)."
);
family!(
    MAX,
    Gauge,
    "dbtool_redis_memory_max_bytes",
    "The maxmemory setting; 0 means no limit."
);
family!(
    LIMIT,
    Gauge,
    "dbtool_redis_memory_limit_bytes",
    "What used memory is judged against: maxmemory, or the host's memory (total_system_memory) when maxmemory is 0."
);
family!(
    USAGE,
    Gauge,
    "dbtool_redis_memory_usage_ratio",
    "used_memory / dbtool_redis_memory_limit_bytes."
);
family!(
    FRAGMENTATION,
    Gauge,
    "dbtool_redis_memory_fragmentation_ratio",
    "used_memory_rss / used_memory (mem_fragmentation_ratio)."
);
family!(
    EVICTED,
    Counter,
    "dbtool_redis_evicted_keys_total",
    "Keys evicted because of maxmemory."
);
family!(EXPIRED, Counter, "dbtool_redis_expired_keys_total", "Keys expired.");

pub struct RedisMemory;

impl Check for RedisMemory {
    fn name(&self) -> &'static str {
        "redis_memory"
    }
    fn description(&self) -> &'static str {
        "Redis: used memory against maxmemory (or the host's memory), RSS, fragmentation, evictions"
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
        // CONFIG refused: INFO's maxmemory stands in, and the summary says so.
        failure.message.starts_with("CONFIG")
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
                default: 90.0,
                help: "used memory, percent of maxmemory (of the host's memory when maxmemory is 0)",
            },
            ThresholdSpec {
                key: "critical",
                default: 0.0,
                help: "used memory, percent of maxmemory (0: off)",
            },
        ]
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&USED, &RSS, &MAX, &LIMIT, &USAGE, &FRAGMENTATION, &EVICTED, &EXPIRED];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let r = info(ctx)?;
        let q = &INFO;
        let used = r.f64("used_memory").in_query(q)?;
        let configured = config(ctx, "maxmemory");
        // INFO has maxmemory since 3.2; CONFIG may be refused by the ACL.
        let max = match configured {
            Some(m) => m,
            None => r.f64("maxmemory").in_query(q)?,
        };
        let mut out = CheckOutput::default();
        out.samples.push(Sample::new(&USED, used));
        out.samples
            .push(Sample::new(&RSS, r.f64("used_memory_rss").in_query(q)?));
        out.samples.push(Sample::new(&MAX, max));
        if let Some(f) = r.opt_f64("mem_fragmentation_ratio").unwrap_or(None) {
            out.samples.push(Sample::new(&FRAGMENTATION, f));
        }
        out.samples
            .push(Sample::new(&EVICTED, r.f64("evicted_keys").in_query(q)?));
        out.samples
            .push(Sample::new(&EXPIRED, r.f64("expired_keys").in_query(q)?));
        let host = r.opt_f64("total_system_memory").unwrap_or(None).filter(|h| *h > 0.0);
        let (limit, against) = match (max > 0.0, host) {
            (true, _) => (max, format!("maxmemory {}", bytes(max))),
            (false, Some(h)) => (h, format!("the host's memory {} (maxmemory is 0: no limit)", bytes(h))),
            (false, None) => {
                out.summary = format!("{} used, no maxmemory and no host memory figure", bytes(used));
                return Ok(out);
            }
        };
        let share = used / limit;
        out.samples.push(Sample::new(&LIMIT, limit));
        out.samples.push(Sample::new(&USAGE, share));
        let source = if configured.is_none() {
            " (maxmemory from INFO: CONFIG GET was refused)"
        } else {
            ""
        };
        out.summary = format!("{} used of {against}, {}{source}", bytes(used), pct(share));
        let t = ctx.thresholds;
        let sev = Severity::above(share * 100.0, t.get("warning"), t.get("critical"));
        if sev != Severity::Ok {
            out.findings.push(
                Finding::new(
                    sev,
                    "used_memory",
                    format!(
                        "{} used of {against}, {}; past maxmemory Redis evicts keys or refuses writes",
                        bytes(used),
                        pct(share)
                    ),
                )
                .with_value(share * 100.0),
            );
        }
        Ok(out)
    }
}

/// Bytes for people: 1536 → "1.5 KiB".
pub fn bytes(n: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

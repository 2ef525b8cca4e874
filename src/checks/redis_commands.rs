//! Redis commands (INFO stats and commandstats): commands processed, keyspace hits and misses,
//! and per-command calls and time for the top N commands by calls (bounded cardinality).

use super::redis_info::{info, number, INFO};
use super::{pct, Check, CheckOutput, EvalContext, EvalError, Query, RowContext, Scope, Variant};
use crate::db::TargetKind;
use crate::report::finding::{MetricFamily, Sample};

pub static COMMANDSTATS: Query = Query {
    name: "redis_commandstats",
    scope: Scope::Cluster,
    variants: &[Variant {
        min_version: 0,
        sql: "INFO commandstats",
    }],
    snapshot_stats: false,
};

family!(
    PROCESSED,
    Counter,
    "dbtool_redis_commands_processed_total",
    "Commands processed (total_commands_processed)."
);
family!(
    HITS,
    Counter,
    "dbtool_redis_keyspace_hits_total",
    "Key lookups that found the key."
);
family!(
    MISSES,
    Counter,
    "dbtool_redis_keyspace_misses_total",
    "Key lookups that did not."
);
family!(
    HIT_RATIO,
    Gauge,
    "dbtool_redis_keyspace_hit_ratio",
    "hits / (hits + misses) since start; use rate() of the counters for a current ratio."
);
family!(
    CALLS,
    Counter,
    "dbtool_redis_command_calls_total",
    "Calls per command, the top N commands by calls (INFO commandstats)."
);
family!(
    SECONDS,
    Counter,
    "dbtool_redis_command_seconds_total",
    "Time spent in each command, the same top N (usec)."
);

pub struct RedisCommands;

/// `calls=2,usec=10,usec_per_call=5.00,…` → (calls, usec).
fn calls_usec(value: &str) -> Option<(f64, f64)> {
    Some((number(value, "calls")?, number(value, "usec")?))
}

impl Check for RedisCommands {
    fn name(&self) -> &'static str {
        "redis_commands"
    }
    fn description(&self) -> &'static str {
        "Redis: commands processed, keyspace hit ratio, calls and time of the busiest commands"
    }
    fn kind(&self) -> TargetKind {
        TargetKind::Redis
    }
    fn queries(&self) -> &'static [&'static Query] {
        static L: &[&Query] = &[&INFO, &COMMANDSTATS];
        L
    }
    fn privilege(&self) -> &'static str {
        "+info in the user's ACL"
    }
    fn metrics(&self) -> &'static [&'static MetricFamily] {
        static L: &[&MetricFamily] = &[&PROCESSED, &HITS, &MISSES, &HIT_RATIO, &CALLS, &SECONDS];
        L
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError> {
        let r = info(ctx)?;
        let q = &INFO;
        let processed = r.f64("total_commands_processed").in_query(q)?;
        let (hits, misses) = (
            r.f64("keyspace_hits").in_query(q)?,
            r.f64("keyspace_misses").in_query(q)?,
        );
        let mut out = CheckOutput::default();
        out.samples.push(Sample::new(&PROCESSED, processed));
        out.samples.push(Sample::new(&HITS, hits));
        out.samples.push(Sample::new(&MISSES, misses));
        let ratio = (hits + misses > 0.0).then(|| hits / (hits + misses));
        if let Some(ratio) = ratio {
            out.samples.push(Sample::new(&HIT_RATIO, ratio));
        }
        let mut commands: Vec<(String, f64, f64)> = Vec::new();
        if let Some(stats) = ctx.rows(&COMMANDSTATS).first() {
            for column in stats.columns() {
                let Some(command) = column.strip_prefix("cmdstat_") else {
                    continue;
                };
                let value = stats.str(column).in_query(&COMMANDSTATS)?;
                if let Some((calls, usec)) = calls_usec(value) {
                    commands.push((command.to_string(), calls, usec));
                }
            }
        }
        commands.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (command, calls, usec) in commands.iter().take(ctx.top_n) {
            out.samples
                .push(Sample::new(&CALLS, *calls).label("command", command.as_str()));
            out.samples
                .push(Sample::new(&SECONDS, usec / 1e6).label("command", command.as_str()));
        }
        let busiest = commands.first().map_or_else(String::new, |(c, calls, usec)| {
            format!("; busiest {c}: {calls} calls, {:.1} µs per call", usec / calls.max(1.0))
        });
        out.summary = format!(
            "{processed} commands since start, keyspace hit ratio {}{busiest}",
            ratio.map_or_else(|| "n/a".to_string(), pct)
        );
        Ok(out)
    }
}

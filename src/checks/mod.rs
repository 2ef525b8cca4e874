//! The check architecture: the `Check` trait, what a check returns, and the registry.
//!
//! A check declares the queries it needs (see `query.rs`), its thresholds and its metric
//! families; the runner executes each distinct query once and hands the rows to `evaluate`,
//! which turns rows into findings and samples. Checks never print: renderers do.

/// A check's statically declared metric family: `family!(IDENT, Gauge, "name", "help")`.
/// Defined before the check modules so every one of them uses this one definition.
macro_rules! family {
    ($ident:ident, $kind:ident, $name:literal, $help:literal) => {
        pub static $ident: $crate::report::finding::MetricFamily = $crate::report::finding::MetricFamily {
            name: $name,
            help: $help,
            kind: $crate::report::finding::MetricKind::$kind,
        };
    };
}

mod evaluate;
mod lanes;
pub mod limits;
pub mod options;
pub mod partial;
pub mod plan;
pub mod query;
pub mod refresh;
pub mod runner;
pub mod shared;
pub mod state;
mod state_settings;
#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod threshold_keys;
mod tier;
mod tier_redis;
mod visits;

pub mod archiver;
pub mod bloat;
pub mod cache_hit;
pub mod checkpoints;
pub mod connections;
pub mod custom;
pub mod database_activity;
pub mod hygiene;
pub mod indexes;
pub mod locks;
pub mod long_transactions;
pub mod maintenance;
pub mod pgbouncer_clients;
pub mod pgbouncer_connections;
pub mod pgbouncer_databases;
pub mod pgbouncer_pools;
pub mod pgbouncer_stats;
pub mod redis_clients;
pub mod redis_commands;
pub mod redis_info;
pub mod redis_memory;
pub mod redis_persistence;
pub mod redis_replication;
pub mod replication;
pub mod sequences;
pub mod server;
pub mod top_queries;
pub mod vacuum;
pub mod waits;
pub mod wal;
pub mod xmin_horizon;

use std::collections::BTreeMap;

use crate::db::row::{Row, RowError};
use crate::db::TargetKind;
use crate::report::finding::{Finding, MainThreshold, MetricFamily, Sample};
pub use query::{Query, QueryFailure, QueryOutcome, Scope, Variant};

/// A threshold a check reads, with its default; overridable in config and with `--set`.
#[derive(Debug)]
pub struct ThresholdSpec {
    pub key: &'static str,
    pub default: f64,
    pub help: &'static str,
}

/// Thresholds resolved for one check (defaults overlaid by config and flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thresholds(pub BTreeMap<String, f64>);

impl Thresholds {
    pub fn defaults(specs: &[ThresholdSpec]) -> Thresholds {
        Thresholds(specs.iter().map(|s| (s.key.to_string(), s.default)).collect())
    }

    /// The value of a declared threshold. An undeclared key is a programming error: the
    /// registry test (`threshold_keys.rs`) finds it in the source, and debug builds (every test
    /// run) stop here. A release build falls back to 0 (disabled) rather than panicking.
    pub fn get(&self, key: &str) -> f64 {
        let value = self.0.get(key).copied();
        debug_assert!(value.is_some(), "threshold '{key}' was not declared by the check");
        value.unwrap_or(0.0)
    }
}

/// Everything `evaluate` may look at.
pub struct EvalContext<'a> {
    pub outcomes: &'a BTreeMap<&'static str, QueryOutcome>,
    pub thresholds: &'a Thresholds,
    pub top_n: usize,
    pub server_version_num: u32,
}

impl EvalContext<'_> {
    /// Rows of a query this check declared; empty when it failed everywhere.
    pub fn rows(&self, query: &Query) -> &[Row] {
        self.outcomes.get(query.name).map(|o| o.rows.as_slice()).unwrap_or(&[])
    }

    /// Whether a query produced anything to evaluate (it may have failed in some databases).
    pub fn has_rows(&self, query: &Query) -> bool {
        self.outcomes.get(query.name).is_some_and(QueryOutcome::usable)
    }
}

/// What a check found, before the runner adds status and timing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckOutput {
    /// One line for the summary table: "41 of 97 usable connections (42%)".
    pub summary: String,
    pub findings: Vec<Finding>,
    pub samples: Vec<Sample>,
    /// Settings for `--state` to compare run to run (see `CheckReport::settings`).
    pub settings: BTreeMap<String, String>,
}

/// A check whose rows did not have the expected shape: the check reports UNKNOWN.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{query}: {source}")]
    Row {
        query: &'static str,
        #[source]
        source: RowError,
    },
    #[error("{query}: setting {name} is missing or not a number; the role may not see it")]
    Setting { query: &'static str, name: &'static str },
}

/// Adds the query name to a row-reading error.
pub trait RowContext<T> {
    fn in_query(self, query: &Query) -> Result<T, EvalError>;
}

impl<T> RowContext<T> for Result<T, RowError> {
    fn in_query(self, query: &Query) -> Result<T, EvalError> {
        self.map_err(|source| EvalError::Row {
            query: query.name,
            source,
        })
    }
}

/// A health check. Implementations are unit structs listed in `REGISTRY`.
pub trait Check: Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn enabled_by_default(&self) -> bool {
        true
    }
    /// The kind of target it runs on; a run gives each target the checks of its kind.
    fn kind(&self) -> TargetKind {
        TargetKind::Postgres
    }
    fn queries(&self) -> &'static [&'static Query];
    fn thresholds(&self) -> &'static [ThresholdSpec] {
        &[]
    }
    /// The thresholds `--warning`/`--critical` set and the family they judge (check_postgres'
    /// `-w`/`-c`); None when the check has no single main threshold.
    fn main_threshold(&self) -> Option<&'static MainThreshold> {
        None
    }
    /// Whether a lower value is worse (a hit ratio), so a warning sits above its critical.
    fn lower_is_worse(&self) -> bool {
        false
    }
    fn metrics(&self) -> &'static [&'static MetricFamily];
    /// How long a scheduled job may reuse this check's last rows (`refresh`); zero, the
    /// default, runs it every time. Set for checks whose inputs change slowly and whose
    /// alerts wait minutes anyway (docs/src/configuration.md gives each reason).
    fn default_refresh(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// The privilege a role needs for this check, named in UNKNOWN findings on permission errors.
    fn privilege(&self) -> &'static str {
        "pg_monitor"
    }
    /// A failure that is an answer rather than an error (pg_stat_statements not installed):
    /// the runner neither reports it as UNKNOWN nor skips `evaluate`, which sees it in
    /// `ctx.outcomes` and says what it means.
    fn expected_failure(&self, _failure: &QueryFailure) -> bool {
        false
    }
    /// A query built from the rows of the others (the texts of the top statements only), run
    /// on the main session after them; its outcome is under `FollowUp::name` for `evaluate`.
    fn follow_up(&self, _outcomes: &BTreeMap<&'static str, QueryOutcome>, _plan: &plan::Plan) -> Option<FollowUp> {
        None
    }
    fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<CheckOutput, EvalError>;
}

/// A query a check asks for once the planned ones have answered. Its failures are the check's to
/// read: the runner does not report them.
#[derive(Debug, PartialEq)]
pub struct FollowUp {
    pub name: &'static str,
    pub sql: String,
}

/// Every check, in report order: the single source for `--check`/`--skip`, config sections,
/// `dbtool checks` and the manual's check list, docs/src/checks.md (a test pins that they agree).
pub static REGISTRY: &[&dyn Check] = &[
    &connections::Connections,
    &locks::Locks,
    &waits::Waits,
    &long_transactions::LongTransactions,
    &vacuum::Vacuum,
    &xmin_horizon::XminHorizon,
    &maintenance::Maintenance,
    &cache_hit::CacheHit,
    &server::Server,
    &hygiene::Hygiene,
    &replication::Replication,
    &archiver::Archiver,
    &wal::Wal,
    &database_activity::DatabaseActivity,
    &checkpoints::Checkpoints,
    &sequences::Sequences,
    &indexes::Indexes,
    &bloat::Bloat,
    &top_queries::TopQueries,
    &pgbouncer_pools::PgbouncerPools,
    &pgbouncer_connections::PgbouncerConnections,
    &pgbouncer_clients::PgbouncerClients,
    &pgbouncer_databases::PgbouncerDatabases,
    &pgbouncer_stats::PgbouncerStats,
    &redis_memory::RedisMemory,
    &redis_clients::RedisClients,
    &redis_replication::RedisReplication,
    &redis_persistence::RedisPersistence,
    &redis_commands::RedisCommands,
];

pub fn find(name: &str) -> Option<&'static dyn Check> {
    REGISTRY.iter().copied().find(|c| c.name() == name)
}

/// A yes/no state as a sample value: 1 or 0.
pub fn flag(yes: bool) -> f64 {
    f64::from(u8::from(yes))
}

/// Formats a share (0..1) as a percentage for messages.
pub fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Formats seconds for people: 75 → "1m15s".
pub fn human_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".into();
    }
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registry_names_and_metric_families_are_unique_and_prefixed() {
        let mut names = HashSet::new();
        let mut families = HashSet::new();
        for c in REGISTRY {
            assert!(names.insert(c.name()), "duplicate check {}", c.name());
            for f in c.metrics() {
                assert!(f.name.starts_with("dbtool_"), "{} lacks prefix", f.name);
                assert!(families.insert(f.name), "family {} declared twice", f.name);
            }
            for t in c.thresholds() {
                assert!(!t.key.contains('.'), "{}: threshold keys have no dots", c.name());
            }
            if let Some(m) = c.main_threshold() {
                let keys: Vec<&str> = c.thresholds().iter().map(|t| t.key).collect();
                assert!(
                    keys.contains(&m.warning) && keys.contains(&m.critical),
                    "{}: main threshold keys undeclared",
                    c.name()
                );
                assert!(
                    c.metrics().iter().any(|f| std::ptr::eq(*f, m.family)),
                    "{}: main family not its own",
                    c.name()
                );
            }
        }
    }

    #[test]
    fn human_secs_formats() {
        assert_eq!(human_secs(75.0), "1m15s");
        assert_eq!(human_secs(3.0), "3s");
        assert_eq!(human_secs(90000.0), "1d01h");
        assert_eq!(human_secs(f64::INFINITY), "never");
    }
}

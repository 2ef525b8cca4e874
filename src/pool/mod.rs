//! pool-advise: measure PostgreSQL (and PgBouncer) load, size the pools, explain every number.
//!
//! `sample` takes two snapshots over a window and turns counters into rates (`Measured`);
//! `model` is a pure function from `Measured` + `Assumptions` to `Advice`; `render` prints it.

pub mod advise;
mod bouncer;
mod evidence;
mod findings;
mod load;
pub mod model;
pub mod options;
mod recommend;
pub mod render;
pub mod sample;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::finding::{Finding, Severity};

/// What the host and the application look like; `None` means "not given": the model assumes
/// a default and says so in `Advice::assumed`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Assumptions {
    pub db_cores: Option<u32>,
    pub ssd: Option<bool>,
    pub app_instances: Option<u32>,
    pub app_max_open: Option<u32>,
    pub app_max_idle: Option<u32>,
    pub peak_factor: Option<f64>,
    pub headroom: Option<f64>,
}

/// PostgreSQL's side, measured over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PgFigures {
    pub server_version_num: u32,
    pub max_connections: i64,
    /// superuser_reserved_connections plus, on 16+, reserved_connections.
    pub reserved_connections: i64,
    /// Client backends at the end of the window, dbtool's own session excluded.
    pub client_backends: i64,
    /// Most backends seen active or idle in transaction at once (polled).
    pub busy_backends_peak: i64,
    /// Commits + rollbacks per second, all databases.
    pub xact_rate: Option<f64>,
    /// Δ(active_time + idle_in_transaction_time) / window: the mean number of backends busy
    /// with a transaction (Little's law, L = ΣW / T). PostgreSQL 14+ only.
    pub busy_mean: Option<f64>,
    /// Session-level features seen in pg_stat_statements (LISTEN, session advisory locks, SET,
    /// PREPARE, temp tables, WITH HOLD cursors); None when pg_stat_statements is unavailable.
    pub session_features: Option<Vec<String>>,
}

/// One PgBouncer pool (a user × database pair), from SHOW POOLS; waits are the window's peak.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PoolFigures {
    pub database: String,
    pub user: String,
    pub cl_active: i64,
    pub cl_waiting: i64,
    pub cl_waiting_peak: i64,
    pub sv_active: i64,
    pub sv_idle: i64,
    pub sv_used: i64,
    pub sv_tested: i64,
    pub sv_login: i64,
    pub maxwait_seconds_peak: f64,
    pub pool_mode: String,
}

impl PoolFigures {
    pub fn server_connections(&self) -> i64 {
        self.sv_active + self.sv_idle + self.sv_used + self.sv_tested + self.sv_login
    }
}

/// One `[databases]` entry, from SHOW DATABASES.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DatabaseFigures {
    pub name: String,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub database: String,
    pub force_user: Option<String>,
    pub pool_size: i64,
    pub reserve_pool: i64,
    /// max_db_connections in effect for this database; 0 = unlimited.
    pub max_connections: i64,
}

/// Per-database rates from two SHOW STATS snapshots (total_* counters, not the 60 s averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsFigures {
    pub database: String,
    pub xact_rate: f64,
    pub query_rate: f64,
    /// (Δtotal_xact_time − Δtotal_wait_time) / window: mean server connections busy with a
    /// transaction (PgBouncer's xact time includes the client's wait for a server).
    pub busy_servers: f64,
    /// Δtotal_wait_time / window: mean clients waiting for a server.
    pub waiting_clients: f64,
    /// Mean transaction time as the client sees it, wait included (Δtotal_xact_time / Δxacts).
    pub avg_xact_seconds: f64,
    pub avg_query_seconds: f64,
    /// Mean wait per transaction (Δtotal_wait_time / Δtotal_xact_count).
    pub avg_wait_seconds: f64,
    /// Protocol-level Parse messages from clients per second (total_client_parse_count,
    /// PgBouncer 1.21+; None on older versions, which cannot tell).
    pub parse_rate: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BouncerFigures {
    pub version: Option<String>,
    pub config: BTreeMap<String, String>,
    pub pools: Vec<PoolFigures>,
    pub databases: Vec<DatabaseFigures>,
    pub stats: Vec<StatsFigures>,
}

impl BouncerFigures {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.config.get(key).map(String::as_str)
    }

    pub fn setting_i64(&self, key: &str) -> Option<i64> {
        self.setting(key)?.trim().parse().ok()
    }

    /// Pools of real databases (the admin console's own `pgbouncer` pool left out).
    pub fn user_pools(&self) -> impl Iterator<Item = &PoolFigures> {
        self.pools.iter().filter(|p| p.database != "pgbouncer")
    }
}

/// Everything sampled, the input of the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Measured {
    pub window_seconds: f64,
    pub postgres: PgFigures,
    pub pgbouncer: Option<BouncerFigures>,
}

/// Where a recommended setting goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Pgbouncer,
    Application,
    Postgresql,
    System,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Pgbouncer => "pgbouncer",
            Scope::Application => "application",
            Scope::Postgresql => "postgresql",
            Scope::System => "system",
        }
    }
}

/// One recommended number (or mode) with the reason that produced it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub scope: Scope,
    pub setting: String,
    pub current: Option<String>,
    pub recommended: String,
    pub reason: String,
}

/// A per-database pool_size that differs from default_pool_size: a `[databases]` override.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatabaseOverride {
    pub name: String,
    pub pool_size: i64,
    pub reason: String,
}

/// Derived figures the reasons quote, kept for JSON readers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Derived {
    pub demand: f64,
    pub needed: i64,
    pub useful_connections: i64,
    pub usable_connections: i64,
    pub bypass_connections: i64,
    pub server_budget: i64,
    pub configured_pool_capacity: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    pub recommendations: Vec<Recommendation>,
    pub overrides: Vec<DatabaseOverride>,
    pub findings: Vec<Finding>,
    /// Figures the model did not measure and assumed, each with the flag that sets it.
    pub assumed: Vec<String>,
    pub derived: Derived,
}

impl Advice {
    /// The worst finding; the Nagios exit code.
    pub fn status(&self) -> Severity {
        self.findings.iter().fold(Severity::Ok, |s, f| s.worst(f.severity))
    }

    pub fn get(&self, setting: &str) -> Option<&Recommendation> {
        self.recommendations.iter().find(|r| r.setting == setting)
    }
}

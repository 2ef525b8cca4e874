//! Flags of `dbtool pool-advise`.

use std::path::PathBuf;

use clap::Args;

use crate::pool::render::PoolFormat;

use super::ConnArgs;
use crate::duration::parse_duration;

pub const EXIT_CODES: &str = "\
Exit codes (Nagios plugin convention; the worst finding decides):
  0  OK: the pools fit the measured load and the server
  1  WARNING: clients waiting for a server, pools mostly idle, max_client_conn below what the
     application can open, demand beyond what the host can run, pool_mode at odds with the workload
  2  CRITICAL: the configured pools can open more server connections than max_connections allows
  3  UNKNOWN: PostgreSQL or the PgBouncer admin console unreachable, bad arguments or configuration";

#[derive(Debug, Args, Clone, Default)]
pub struct PoolAdviseArgs {
    /// PostgreSQL itself (not through PgBouncer): its limits and load
    #[command(flatten)]
    pub conn: ConnArgs,
    /// PgBouncer's admin console, e.g. postgres://admin@127.0.0.1:6432/pgbouncer (the user must be in
    /// admin_users or stats_users). Without it, advice comes from PostgreSQL alone
    #[arg(long, env = "DBTOOL_PGBOUNCER", value_name = "DSN")]
    pub pgbouncer: Option<String>,
    /// Sampling window: counters are read at its start and end, pools polled every second [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub sample: Option<std::time::Duration>,
    /// Output format [default: table]
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<PoolFormat>,
    /// Write the output to FILE atomically instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// CPU cores of the database host [default: 4, assumed]
    #[arg(long, value_name = "N")]
    pub db_cores: Option<u32>,
    /// Whether the database storage is SSD [default: true, assumed]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ssd: Option<bool>,
    /// Application instances sharing the pools [default: 1, assumed]
    #[arg(long, value_name = "N")]
    pub app_instances: Option<u32>,
    /// The application's max open connections per instance (e.g. Mattermost MaxOpenConns)
    #[arg(long, value_name = "N")]
    pub app_max_open: Option<u32>,
    /// The application's max idle connections per instance (e.g. Mattermost MaxIdleConns)
    #[arg(long, value_name = "N")]
    pub app_max_idle: Option<u32>,
    /// Expected peak load as a multiple of the sampled load [default: 1.0: the window is the peak]
    #[arg(long, value_name = "X")]
    pub peak_factor: Option<f64>,
    /// Spare capacity on top of the peak [default: 1.25]
    #[arg(long, value_name = "X")]
    pub headroom: Option<f64>,
}

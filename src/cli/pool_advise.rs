//! Flags of `dbtool pool-advise`.

use clap::Args;

use super::ConnArgs;
use crate::pool::options::PoolAdviseOptions;

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
    // The same options as the config file's section and a scheduled job's keys.
    #[command(flatten)]
    pub options: PoolAdviseOptions,
}

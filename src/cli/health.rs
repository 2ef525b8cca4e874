//! Flags of `dbtool health`.

use clap::Args;

use super::ConnArgs;
use crate::checks::options::HealthOptions;

pub const EXIT_CODES: &str = "\
Exit codes (Nagios plugin convention; the worst finding decides):
  0  OK
  1  WARNING
  2  CRITICAL, or a target is unreachable (dbtool_up 0)
  3  UNKNOWN: a check could not run, bad arguments or configuration, or --output/--state
     cannot be written (a directory, a full disk: the error names the path)";

#[derive(Debug, Args, Clone, Default)]
pub struct HealthArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub tier: TierArgs,
    // The same options as the config file's section and a scheduled job's keys.
    #[command(flatten)]
    pub options: HealthOptions,
}

/// The rest of the data tier: servers that are not PostgreSQL, checked in the same run.
/// In the config file they are `[[targets]]` entries with `kind = "pgbouncer"` or `"redis"`.
#[derive(Debug, Args, Clone, Default)]
pub struct TierArgs {
    /// A PgBouncer to check, by its admin console: URL or conninfo
    /// (postgres://stats@host:6432/pgbouncer; the database is always pgbouncer); repeatable.
    /// With no --dsn/--target, only the --pgbouncer/--redis targets are checked
    #[arg(long, value_name = "URL")]
    pub pgbouncer: Vec<String>,
    /// A Redis to check: redis://[user:password@]host:port[/db] (rediss:// for TLS,
    /// unix:///path for a socket); repeatable. Without a password in the URL, REDISCLI_AUTH
    #[arg(long, value_name = "URL")]
    pub redis: Vec<String>,
}

impl TierArgs {
    pub fn is_empty(&self) -> bool {
        self.pgbouncer.is_empty() && self.redis.is_empty()
    }
}

//! Flags of `dbtool migrate` and `dbtool history` (dbtool's own schema).

use clap::Args;

use super::output::OutputArgs;
use super::ConnArgs;

pub const MIGRATE_EXIT_CODES: &str = "\
Exit codes:
  0  the schema is up to date (with --status: nothing pending)
  1  with --status: migrations are pending
  2  a migration failed or an applied one was modified; nothing half-applied is left
  3  bad arguments, cannot connect";

pub const HISTORY_EXIT_CODES: &str = "\
Exit codes:
  0  the runs were shown (none is fine)
  3  bad arguments, cannot connect, dbtool's schema missing (run `dbtool migrate`)";

#[derive(Debug, Args, Clone, Default)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Show each migration's state instead of applying
    #[arg(long)]
    pub status: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Only runs of this job
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// How many runs, newest first
    #[arg(long, default_value_t = 20, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: i64,
    #[command(flatten)]
    pub output: OutputArgs,
}

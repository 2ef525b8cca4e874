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
    // The same options as the config file's section and a scheduled job's keys.
    #[command(flatten)]
    pub options: HealthOptions,
}

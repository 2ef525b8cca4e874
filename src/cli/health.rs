//! Flags of `dbtool health`.

use std::path::PathBuf;

use clap::Args;

use crate::report::Format;

use super::ConnArgs;
use crate::duration::parse_duration;

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
    /// Output format [default: table; prometheus when --output ends in .prom]
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of stdout: a file is replaced atomically (0644), a
    /// symlink followed, a device or FIFO (/dev/stdout) written into, a directory refused
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run only these checks (repeatable); see `dbtool checks`
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    /// Skip these checks (repeatable)
    #[arg(long = "skip", value_name = "NAME")]
    pub skip: Vec<String>,
    /// Per-table checks look only at these databases (repeatable) [default: every database that accepts connections]
    #[arg(long = "database", short = 'd', value_name = "NAME")]
    pub databases: Vec<String>,
    /// Override a threshold: CHECK.KEY=VALUE, e.g. connections.warning=80 (repeatable)
    #[arg(long = "set", value_name = "CHECK.KEY=VALUE")]
    pub set: Vec<String>,
    /// Offenders and per-table series kept per check [default: 20]
    #[arg(long)]
    pub top: Option<usize>,
    /// Bound on the whole run [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,
    /// Keep counters between runs in FILE (JSON, 0600, written atomically) and report what changed
    /// since the previous run; deadlocks increasing is a WARNING [config: health.state]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Connections dbtool may open per target [default: 3]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
}

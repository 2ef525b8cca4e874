//! Flags of `dbtool schedule`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::duration::parse_duration;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  stopped cleanly after SIGTERM/SIGINT, or --list printed
  3  bad configuration (each problem with its line and job), the --listen port is busy, internal error

Signals: SIGTERM/SIGINT stop starting jobs, wait up to the grace period for running ones, cancel
them, exit. SIGHUP reloads the configuration; a file with errors is refused and the running
configuration kept. A failing database fails that run only; the daemon keeps going.";

#[derive(Debug, Args, Clone, Default)]
pub struct ScheduleArgs {
    /// Print each job's next five run times and exit (--format json: one object)
    #[arg(long)]
    pub list: bool,
    // The output of --list.
    #[command(flatten)]
    pub output: super::output::OutputArgs,
    /// Serve /metrics, /probe and /healthz on this address, e.g. 127.0.0.1:19187 [default: [schedule] listen]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Write the scheduler's metrics to FILE (atomically) after every run [default: [schedule] metrics_file]
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// How long running jobs may finish after SIGTERM before they are cancelled [default: 60s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub grace_period: Option<std::time::Duration>,
}

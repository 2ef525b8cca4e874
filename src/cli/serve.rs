//! Flags of `dbtool serve`.

use std::net::SocketAddr;

use clap::Args;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  stopped cleanly after SIGTERM/SIGINT
  3  bad configuration (each problem with its line), no --listen address, the port is busy

Serves /probe?target=NAME (Prometheus' multi-target pattern), /metrics and /healthz; runs no
[[jobs]]. SIGHUP reloads the configuration; a file with errors is refused and the running
configuration kept.";

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to serve on, e.g. 127.0.0.1:19187 [default: [schedule] listen]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

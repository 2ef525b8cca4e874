//! dbtool: PostgreSQL health and maintenance toolkit. `run` is the whole program; `main.rs`
//! only parses arguments and turns the result into an exit code.

pub mod checks;
pub mod cli;
pub mod commands;
pub mod db;
pub mod duration;
pub mod errors;
pub mod host;
pub mod jobs;
pub mod notify;
pub mod pool;
pub mod report;
pub mod scheduler;
pub mod settings;

use cli::{Cli, LogFormat};

fn init_logging(global: &cli::GlobalArgs, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match global.verbose {
        // A daemon logs its job lines by default; one-shot commands only warnings.
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = std::env::var("DBTOOL_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match global.log_format {
        // JSON escapes every control character itself.
        LogFormat::Json => builder.with_writer(std::io::stderr).json().try_init(),
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder
                .with_ansi(ansi)
                .with_writer(move || report::printable::LogWriter::new(std::io::stderr(), ansi))
                .try_init()
        }
    };
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let daemon = matches!(&cli.command, cli::Command::Schedule(a) if !a.list);
    init_logging(&cli.global, daemon);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(commands::dispatch(cli))
}

/// The exit code for an error: a command may attach one with `Failure`, otherwise 3 (UNKNOWN).
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(3, |f| f.code)
}

/// An error with a specific exit code (a failed backup exits 2, say).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

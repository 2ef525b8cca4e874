//! Command-line flags (clap derive). Raw values only: `settings/` resolves them against the
//! config file and defaults, once.

pub mod archive;
pub mod backup;
pub mod completions;
pub mod health;
pub mod history;
pub mod output;
pub mod pool_advise;
pub mod schedule;
pub mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

/// Exit codes shared by every command, shown in `--help`.
pub const EXIT_CODES: &str = "\
Exit codes (Nagios plugin convention):
  0  OK
  1  WARNING
  2  CRITICAL (for health: a target is unreachable)
  3  UNKNOWN: bad arguments, bad configuration, internal error";

#[derive(Debug, Parser)]
#[command(
    name = "dbtool",
    version,
    about = "PostgreSQL health and maintenance toolkit",
    long_about = "PostgreSQL health and maintenance toolkit: health checks for Nagios and Prometheus, \
PgBouncer pool sizing, verified backups, safe row archiving, and a scheduler for all of them.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see docs/src/configuration.md
    #[arg(long, global = true, env = "DBTOOL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, env = "DBTOOL_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug); DBTOOL_LOG takes a tracing filter too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run health checks against one or more PostgreSQL servers
    #[command(after_help = health::EXIT_CODES)]
    Health(Box<health::HealthArgs>),
    /// Size PgBouncer and application pools from measured load, with a reason for every number
    #[command(after_help = pool_advise::EXIT_CODES)]
    PoolAdvise(pool_advise::PoolAdviseArgs),
    /// Start a throwaway local cluster, create some trouble, run the health report on it, remove it
    #[command(
        after_help = "Exit codes: 0 the report was shown (whatever it found), 3 the cluster could not be started"
    )]
    Demo(DemoArgs),
    /// List every check with its thresholds and metric families
    #[command(after_help = "Exit codes: 0 always")]
    Checks(ChecksArgs),
    /// Run the [[jobs]] of the config file on their cron schedules (a daemon; safe to run on two hosts)
    #[command(after_help = schedule::EXIT_CODES)]
    Schedule(schedule::ScheduleArgs),
    /// Serve /probe for Prometheus' multi-target pattern, with /metrics and /healthz (runs no jobs)
    #[command(after_help = serve::EXIT_CODES)]
    Serve(serve::ServeArgs),
    /// Configuration file tools
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Apply dbtool's own schema (dbtool.job_runs) to the target; --status shows what is applied
    #[command(after_help = history::MIGRATE_EXIT_CODES)]
    Migrate(history::MigrateArgs),
    /// Recent job runs recorded in dbtool.job_runs (archive, backup, scheduler)
    #[command(after_help = history::HISTORY_EXIT_CODES)]
    History(history::HistoryArgs),
    /// Move rows older than a cutoff into an archive table in small safe batches
    #[command(after_help = archive::EXIT_CODES)]
    Archive(Box<archive::ArchiveArgs>),
    /// Back up databases with pg_dump: verified, checksummed, retained, with metrics
    #[command(after_help = backup::BACKUP_EXIT_CODES)]
    Backup(Box<backup::BackupArgs>),
    /// List, verify and prune the backups in a destination
    #[command(
        subcommand,
        after_help = "Exit codes: see each subcommand's --help (0 ok, 2 a backup is bad or could not be deleted, 3 bad input)"
    )]
    Backups(backup::BackupsCommand),
    /// Restore a backup into a new or empty database, or prove it restores (--check)
    #[command(after_help = backup::RESTORE_EXIT_CODES)]
    Restore(backup::RestoreArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = completions::COMPLETIONS_EXIT_CODES)]
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), generated from these definitions
    #[command(after_help = completions::MAN_EXIT_CODES)]
    Man(completions::ManArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output format of the report
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::report::Format,
    /// Server binaries to use [default: the newest /usr/lib/postgresql/N/bin]
    #[arg(long, env = "DBTOOL_PG_BIN", value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ChecksArgs {
    #[command(flatten)]
    pub output: output::OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file; prints each error with its line
    #[command(
        after_help = "Exit codes: 0 valid, 1 invalid (or, with --target/--dsn, a target of a backup or archive job is unreachable or lacks dbtool's schema), 3 unreadable file or bad arguments"
    )]
    Check {
        /// The file to check [default: --config]
        file: Option<PathBuf>,
        /// Also connect to this [[targets]] entry (by name; repeat for several, `*` for all) and check
        /// that it carries the dbtool schema its backup and archive jobs claim their runs in
        #[arg(long, value_name = "NAME")]
        target: Vec<String>,
        /// Also connect to this server and check that it carries the dbtool schema that backup and
        /// archive jobs claim their runs in (repeat for several)
        #[arg(long, value_name = "DSN")]
        dsn: Vec<String>,
        #[command(flatten)]
        output: output::OutputArgs,
    },
}

/// Connection flags shared by every command that talks to PostgreSQL.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnArgs {
    /// Connection string, URL (postgres://user@host:5432/db) or conninfo ("host=/run/postgresql dbname=app");
    /// repeat for several targets. Without it the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
    /// PGPASSWORD, PGSSLMODE, ~/.pgpass …) and its defaults apply. In a URL, percent-encode a password's
    /// '/', '@' and ':' (%2F, %40, %3A). Errors point at a character position and never quote the DSN
    // why hide_env_values: clap would print DATABASE_URL, password and all, in --help.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "DSN")]
    pub dsn: Vec<String>,
    /// Only this [[targets]] entry of the config file, by its name; repeat for several. Not with --dsn
    #[arg(long, value_name = "NAME")]
    pub target: Vec<String>,
    /// statement_timeout of every dbtool session [default: 5s]
    #[arg(long, env = "DBTOOL_STATEMENT_TIMEOUT", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub statement_timeout: Option<std::time::Duration>,
    /// lock_timeout of every dbtool session [default: 100ms]
    #[arg(long, env = "DBTOOL_LOCK_TIMEOUT", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub lock_timeout: Option<std::time::Duration>,
}

//! One file per subcommand; `dispatch` routes the parsed command line.

pub mod archive;
pub mod backup;
pub mod backups;
pub mod checks;
pub mod completions;
pub mod config;
pub mod demo;
pub mod health;
pub mod migrate;
pub mod pool_advise;
pub mod restore;
pub mod targets;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::config::Loaded;

/// Runs the command and returns its exit code; errors go up to main, which prints them once.
pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Config(ConfigCommand::Check { file }) => {
            config::check(file.as_deref().or(cli.global.config.as_deref()))
        }
        Command::Checks(args) => checks::run(&args),
        Command::Schedule(args) => crate::scheduler::run(&args, cli.global.config.as_deref()).await,
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
        command => {
            let loaded = Loaded::load(cli.global.config.as_deref())?;
            match command {
                Command::Health(args) => health::run(&args, &loaded).await,
                Command::PoolAdvise(args) => pool_advise::run(&args, &loaded).await,
                Command::Demo(args) => demo::run(&args).await,
                Command::Migrate(args) => migrate::run(&args, &loaded).await,
                Command::History(args) => migrate::history(&args, &loaded).await,
                Command::Archive(args) => archive::run(&args, &loaded).await,
                Command::Backup(args) => backup::run(&args, &loaded).await,
                Command::Backups(cmd) => backups::run(&cmd, &loaded).await,
                Command::Restore(args) => restore::run(&args, &loaded).await,
                Command::Config(_)
                | Command::Checks(_)
                | Command::Schedule(_)
                | Command::Completions(_)
                | Command::Man(_) => unreachable_command(),
            }
        }
    }
}

fn unreachable_command() -> anyhow::Result<u8> {
    anyhow::bail!("internal error: command routed twice")
}

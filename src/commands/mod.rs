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

use crate::cli::{Cli, Command, ConfigCommand};
use crate::settings::Settings;

/// Runs the command and returns its exit code; errors go up to main, which prints them once.
/// Commands that read the configuration file load it here, once; the others never touch it.
pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let config_path = cli.global.config;
    let load = || Settings::load(config_path.as_deref());
    match cli.command {
        Command::Config(ConfigCommand::Check {
            file,
            target,
            dsn,
            output,
        }) => config::check(file.as_deref().or(config_path.as_deref()), &target, &dsn, output.json()).await,
        Command::Checks(args) => checks::run(&args, &load()?),
        Command::Schedule(args) => crate::scheduler::run(&args, config_path.as_deref()).await,
        Command::Serve(args) => crate::scheduler::serve::run(&args, config_path.as_deref()).await,
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
        Command::Health(args) => health::run(&args, &load()?).await,
        Command::PoolAdvise(args) => pool_advise::run(&args, &load()?).await,
        Command::Demo(args) => {
            // The demo reads no setting, but a broken --config file is still refused, as it always was.
            load()?;
            demo::run(&args).await
        }
        Command::Migrate(args) => migrate::run(&args, &load()?).await,
        Command::History(args) => migrate::history(&args, &load()?).await,
        Command::Archive(args) => archive::run(&args, &load()?).await,
        Command::Backup(args) => backup::run(&args, &load()?).await,
        Command::Backups(cmd) => backups::run(&cmd, &load()?).await,
        Command::Restore(args) => restore::run(&args, &load()?).await,
    }
}

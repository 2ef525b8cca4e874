//! Flags of `dbtool completions` and `dbtool man`: shell completion scripts and the man page,
//! both generated from the clap definitions so they never drift from the real flags.

use std::path::PathBuf;

use clap::Args;

pub const COMPLETIONS_EXIT_CODES: &str = "\
Exit codes: 0 the script was printed, 3 bad arguments or stdout not writable

Install, e.g.:
  bash  dbtool completions bash > /etc/bash_completion.d/dbtool
  zsh   dbtool completions zsh > \"${fpath[1]}/_dbtool\"
  fish  dbtool completions fish > ~/.config/fish/completions/dbtool.fish";

pub const MAN_EXIT_CODES: &str = "\
Exit codes: 0 the page was printed (or the pages written), 3 unknown command, bad arguments or a write error

Read it with: dbtool man | man -l -";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page of this subcommand instead of dbtool's own: health, "backups list" (or
    /// backups list, or backups-list, as the page is named)
    #[arg(value_name = "COMMAND", num_args = 0..)]
    pub command: Vec<String>,
    /// Write every page (dbtool.1, dbtool-health.1 …) into DIR instead, for packaging
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

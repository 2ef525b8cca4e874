//! `dbtool completions SHELL` and `dbtool man`: generated from the clap definitions.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::completions::{CompletionsArgs, ManArgs};
use crate::cli::Cli;

/// Prints the completion script for the shell.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails (a closed pipe, say): render to memory first.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "dbtool", &mut script);
    write_stdout(&script)
}

/// Prints a man page (roff) to stdout, or writes all of them into a directory.
pub fn man(args: &ManArgs) -> anyhow::Result<u8> {
    let cmd = Cli::command();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Built as clap_mangen::generate_to builds it, but each page goes through
        // report::atomic: 0644 whatever the umask (man runs as other users), and a symlinked
        // page is followed rather than replaced.
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        write_pages(cmd, dir)?;
        return Ok(0);
    }
    let page = match &args.command {
        None => clap_mangen::Man::new(cmd),
        Some(name) => {
            // Built as clap_mangen::generate_to builds it, so the page is titled dbtool-health(1)
            // and its synopsis says `dbtool health`.
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            let known: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            let sub = cmd
                .find_subcommand(name)
                .cloned()
                .with_context(|| format!("no command '{name}'; man pages exist for: {}", known.join(", ")))?;
            clap_mangen::Man::new(sub).source(concat!("dbtool ", env!("CARGO_PKG_VERSION")))
        }
    };
    let mut roff = Vec::new();
    page.render(&mut roff).context("rendering the man page")?;
    write_stdout(&roff)
}

/// The page of `cmd` and of each visible subcommand, recursively, as `dbtool-NAME.1`.
fn write_pages(cmd: clap::Command, dir: &std::path::Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut roff = Vec::new();
    man.render(&mut roff).context("rendering the man page")?;
    crate::report::atomic::write(&dir.join(man.get_filename()), &roff)?;
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .context("writing to stdout")?;
    Ok(0)
}

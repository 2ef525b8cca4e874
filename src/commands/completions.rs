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
    // "backups list", `backups list` as two words, or the page's own name "backups-list".
    let words: Vec<&str> = args.command.iter().flat_map(|w| w.split_whitespace()).collect();
    let page = if words.is_empty() {
        clap_mangen::Man::new(cmd)
    } else {
        // Built as clap_mangen::generate_to builds it, so the page is titled
        // dbtool-backups-list(1) and its synopsis says `dbtool backups list`.
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        let sub = find_page(&cmd, &words).with_context(|| {
            format!(
                "no command '{}'; man pages exist for: {}",
                words.join(" "),
                page_names(&cmd).join(", ")
            )
        })?;
        clap_mangen::Man::new(sub).source(concat!("dbtool ", env!("CARGO_PKG_VERSION")))
    };
    let mut roff = Vec::new();
    page.render(&mut roff).context("rendering the man page")?;
    write_stdout(&roff)
}

/// The (sub)command `words` name: a path of subcommand names, or one page name with dashes.
fn find_page(cmd: &clap::Command, words: &[&str]) -> Option<clap::Command> {
    let mut at = cmd;
    let mut walked = true;
    for w in words {
        match at.find_subcommand(w) {
            Some(sub) => at = sub,
            None => {
                walked = false;
                break;
            }
        }
    }
    if walked {
        return Some(at.clone());
    }
    let wanted = words.join(" ");
    let dashed = wanted.trim_start_matches("dbtool-");
    visible(cmd, "")
        .into_iter()
        .find(|(path, _)| path.replace(' ', "-") == dashed)
        .map(|(_, c)| c)
}

/// Every visible subcommand below `cmd` with its path ("backups list").
fn visible(cmd: &clap::Command, prefix: &str) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let path = format!("{prefix}{}", sub.get_name());
        out.push((path.clone(), sub.clone()));
        out.extend(visible(sub, &format!("{path} ")));
    }
    out
}

fn page_names(cmd: &clap::Command) -> Vec<String> {
    visible(cmd, "").into_iter().map(|(p, _)| p).collect()
}

/// The page of `cmd` and of each visible subcommand, recursively, as `dbtool-NAME.1`.
fn write_pages(cmd: clap::Command, dir: &std::path::Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir)?;
    }
    // The same page `dbtool man NAME` prints, version in the footer included.
    let man = clap_mangen::Man::new(cmd).source(concat!("dbtool ", env!("CARGO_PKG_VERSION")));
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

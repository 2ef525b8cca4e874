//! Interface promises that are easy to break silently: every command documents its exit codes,
//! and the manual's check list and metrics reference (docs/src/) agree with the registry.

use clap::CommandFactory;
use dbtool::checks::REGISTRY;
use dbtool::cli::Cli;

fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    let help = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    let has_children = cmd.get_subcommands().any(|c| c.get_name() != "help");
    if !has_children && !help.contains("Exit codes") {
        missing.push(path.to_string());
    }
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        walk(sub, &format!("{path} {}", sub.get_name()), missing);
    }
}

#[test]
fn every_command_documents_its_exit_codes_in_help() {
    let mut missing = Vec::new();
    walk(&Cli::command(), "dbtool", &mut missing);
    assert!(missing.is_empty(), "--help without 'Exit codes': {missing:?}");
}

/// A page of the manual (docs/src/NAME), where the reference tables live since the README
/// became the front door.
fn manual_page(name: &str) -> String {
    let path = format!("{}/docs/src/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn readme_lists_every_check_with_its_thresholds() {
    let readme = manual_page("checks.md");
    for check in REGISTRY {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", check.name())))
            .unwrap_or_else(|| panic!("docs/src/checks.md has no row for `{}`", check.name()));
        for t in check.thresholds() {
            assert!(
                row.contains(&format!("`{}`", t.key)),
                "docs/src/checks.md row of {} lacks threshold `{}`",
                check.name(),
                t.key
            );
        }
    }
}

#[test]
fn readme_documents_every_metric_family() {
    let readme = manual_page("metrics.md");
    let families = REGISTRY
        .iter()
        .flat_map(|c| c.metrics().iter())
        .chain(dbtool::report::prometheus::REPORT_FAMILIES.iter());
    for f in families {
        assert!(
            readme.contains(&format!("| `{}` |", f.name)),
            "docs/src/metrics.md lacks `{}`",
            f.name
        );
    }
}

#[test]
fn bad_arguments_exit_3_and_help_exits_0() {
    let bin = env!("CARGO_BIN_EXE_dbtool");
    let bad = std::process::Command::new(bin)
        .args(["health", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(3));
    let help = std::process::Command::new(bin)
        .args(["health", "--help"])
        .output()
        .expect("run");
    assert_eq!(help.status.code(), Some(0));
    let unknown_check = std::process::Command::new(bin)
        .args(["health", "--check", "nope"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run");
    assert_eq!(unknown_check.status.code(), Some(3));
    let err = String::from_utf8_lossy(&unknown_check.stderr);
    assert!(
        err.contains("unknown check 'nope'") && err.contains("connections"),
        "{err}"
    );
}

#[test]
fn config_check_reports_each_error_with_its_line_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[checks.connections]\nwarnign = 80\n\n[checks.bogus]\nwarning = 1\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dbtool"))
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:") && err.contains("warnign"), "{err}");
    assert!(err.contains("bad.toml:4:") && err.contains("unknown check"), "{err}");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[checks.connections]\nwarning = 80\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dbtool"))
        .args(["config", "check"])
        .arg(&good)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every `dbtool …` command line in the code blocks of README.md and of the manual's pages: a
/// `sh` block's lines that start with `dbtool`, and any block's lines that start with `$ dbtool`.
fn documented_commands() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let pages = std::fs::read_dir(root.join("docs/src")).expect("docs/src");
    files.extend(pages.map(|e| e.expect("docs/src entry").path()));
    let mut found = Vec::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(file).expect("read page");
        let name = file.strip_prefix(root).unwrap_or(file).display().to_string();
        let (mut fence, mut pending) = (None::<String>, String::new());
        for line in text.lines() {
            if let Some(lang) = line.strip_prefix("```") {
                fence = if fence.is_some() { None } else { Some(lang.to_string()) };
                continue;
            }
            let Some(lang) = &fence else { continue };
            let line = if pending.is_empty() {
                line.trim_start()
            } else {
                line.trim()
            };
            let start = line.strip_prefix("$ ").or((lang == "sh").then_some(line));
            let cmd = if pending.is_empty() {
                match start.filter(|l| l.starts_with("dbtool ")) {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                line
            };
            // A trailing backslash continues the command on the next line.
            match cmd.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => found.push((name.clone(), format!("{pending}{cmd}"))),
            }
            if !cmd.ends_with('\\') {
                pending.clear();
            }
        }
    }
    found
}

/// Shell words up to the first comment, redirection or pipe; quotes as sh reads them.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => (quote, in_word) = (Some(c), true),
            (None, '#' | '>' | '|' | ';' | '&') if !in_word || c != '#' => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, c) => (word, in_word) = (word + &c.to_string(), true),
        }
    }
    if in_word {
        words.push(word);
    }
    // `2>>log`: the 2 belongs to the redirection.
    if line.contains(" 2>") && words.last().is_some_and(|w| w == "2") {
        words.pop();
    }
    words
}

#[test]
fn every_dbtool_command_in_the_readme_and_the_manual_parses() {
    use clap::Parser;
    let commands = documented_commands();
    assert!(commands.len() > 30, "found only {commands:?}");
    let bad: Vec<String> = commands
        .iter()
        .filter_map(|(file, line)| {
            let err = Cli::try_parse_from(shell_words(line)).err()?;
            Some(format!(
                "{file}: {line}\n  {}",
                err.to_string().lines().next().unwrap_or("")
            ))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "documented commands that do not parse:\n{}",
        bad.join("\n")
    );
}

//! `dbtool completions` and `dbtool man`: generated from the clap definitions, so these check
//! that the output is there, is what each consumer expects, and names the real commands.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::dbtool;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = dbtool().args(args).output().expect("run dbtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bash_completion_is_valid_bash_and_completes_the_commands() {
    let (code, script, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(script.contains("complete -F _dbtool"), "{script}");
    for word in ["health", "checks", "--format", "prometheus", "completions", "man"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    // bash itself parses it (-n: read, do not run).
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    bash.stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let out = bash.wait_with_output().expect("bash -n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn zsh_and_fish_completions_are_what_those_shells_load() {
    let (code, zsh, err) = run(&["completions", "zsh"]);
    assert_eq!(code, 0, "{err}");
    assert!(zsh.starts_with("#compdef dbtool"), "{zsh}");
    assert!(zsh.contains("health"));
    let (code, fish, err) = run(&["completions", "fish"]);
    assert_eq!(code, 0, "{err}");
    assert!(fish.contains("complete -c dbtool"), "{fish}");
    assert!(fish.contains("health"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let (code, out, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 3, "{out}");
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn man_page_is_roff_with_the_commands() {
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH dbtool 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"), "{page}");
    assert!(page.contains("health"), "{page}");
}

#[test]
fn man_page_of_a_subcommand_has_its_flags_and_exit_codes() {
    let (code, page, err) = run(&["man", "health"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH dbtool-health 1"), "{page}");
    assert!(page.contains("\\-\\-format"), "{page}");
    assert!(page.contains("Exit codes"), "{page}");
    let (code, _, err) = run(&["man", "nosuch"]);
    assert_eq!(code, 3);
    assert!(err.contains("no command 'nosuch'") && err.contains("health"), "{err}");
}

#[test]
fn man_out_dir_writes_a_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "dbtool.1",
        "dbtool-health.1",
        "dbtool-checks.1",
        "dbtool-config-check.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
}

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

/// Issue 13 item 10: `dbtool man "backups list"` exited 3 while `--out-dir` wrote that page.
#[test]
fn man_page_of_a_nested_command_is_the_page_out_dir_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(dir.path().join("dbtool-backups-list.1")).expect("dbtool-backups-list.1");
    for args in [
        &["man", "backups list"][..],
        &["man", "backups", "list"],
        &["man", "backups-list"],
    ] {
        let (code, page, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(page.contains(".TH dbtool-backups-list 1"), "{args:?}: {page}");
        assert_eq!(page, written, "{args:?}");
    }
    let (code, _, err) = run(&["man", "backups nosuch"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("no command 'backups nosuch'") && err.contains("backups list"),
        "{err}"
    );
}

/// What bash offers after `words` (the last one being completed), from dbtool's own script.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let (code, script, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dbtool.bash");
    std::fs::write(&path, script).expect("write the script");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _dbtool dbtool \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        path.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["-c", &driver])
        .current_dir(dir.path())
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Issue 13 item 10: `health --check <TAB>` offered file names; now the registry's checks.
#[test]
fn health_check_and_skip_complete_check_names() {
    for flag in ["--check", "--skip"] {
        let offered = bash_complete(&["dbtool", "health", flag, ""]);
        for check in ["connections", "cache_hit", "vacuum", "replication"] {
            assert!(offered.iter().any(|o| o == check), "{flag}: {offered:?}");
        }
        assert!(
            !offered.iter().any(|o| o == "dbtool.bash"),
            "{flag} offers file names: {offered:?}"
        );
        let offered = bash_complete(&["dbtool", "health", flag, "cac"]);
        assert_eq!(offered, vec!["cache_hit".to_string()], "{flag}");
    }
}

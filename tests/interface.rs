//! Interface promises that are easy to break silently: every command documents its exit codes,
//! and the README's check list and metrics reference agree with the registry.

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

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

#[test]
fn readme_lists_every_check_with_its_thresholds() {
    let readme = readme();
    for check in REGISTRY {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", check.name())))
            .unwrap_or_else(|| panic!("README check table has no row for `{}`", check.name()));
        for t in check.thresholds() {
            assert!(
                row.contains(&format!("`{}`", t.key)),
                "README row of {} lacks threshold `{}`",
                check.name(),
                t.key
            );
        }
    }
}

#[test]
fn readme_documents_every_metric_family() {
    let readme = readme();
    let families = REGISTRY
        .iter()
        .flat_map(|c| c.metrics().iter())
        .chain(dbtool::report::prometheus::REPORT_FAMILIES.iter());
    for f in families {
        assert!(
            readme.contains(&format!("| `{}` |", f.name)),
            "README metrics reference lacks `{}`",
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

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

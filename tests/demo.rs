//! `dbtool demo`, the README's first command, run the way a new user runs it.

mod common;

/// Regression: the demo never ran in CI, so a change could break the front door unnoticed.
/// Its documented exit code is 0 whenever the report was shown (`dbtool demo --help`).
#[test]
fn demo_shows_the_health_report_on_its_trouble_and_exits_0() {
    let mut cmd = common::dbtool();
    // The major under test, as for every other cluster of the suite.
    if let Some(bin) = std::env::var_os("DBTOOL_TEST_PG_BIN") {
        cmd.env("DBTOOL_PG_BIN", bin);
    }
    let out = cmd.arg("demo").output().expect("run dbtool demo");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("demo — "), "the report's header line:\n{stdout}");
    for check in ["connections", "locks", "long_transactions", "vacuum", "server"] {
        assert!(stdout.contains(&format!("│ {check} ")), "no {check} row:\n{stdout}");
    }
    // The table it made with dead tuples and autovacuum off: the demo's trouble reached the report.
    assert!(
        stdout.contains("chat.public.posts") && stdout.contains("autovacuum is disabled"),
        "{stdout}"
    );
    assert!(stderr.contains("removing the cluster"), "{stderr}");
}

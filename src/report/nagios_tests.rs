use super::*;
use crate::report::finding::Finding;

#[test]
fn labels_are_quoted_when_needed_and_quotes_doubled() {
    assert_eq!(quote("connections_usage_ratio"), "connections_usage_ratio");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's=x"), "'it''s=x'");
    assert_eq!(quote("a|b\n"), "'a¦b\\n'");
}

#[test]
fn numbers_have_no_exponent() {
    assert_eq!(number(1.3e20), "130000000000000000000");
    assert_eq!(number(42.0), "42");
    assert_eq!(number(0.1234567891), "0.123457");
    assert_eq!(number(-0.0000001), "0");
}

#[test]
fn a_pipe_in_text_does_not_start_perfdata() {
    assert_eq!(clean("x | y\x1b"), "x ¦ y\\x1b");
}

fn report(findings: Vec<Finding>) -> Report {
    use std::time::Duration;
    let status = findings.iter().fold(Severity::Ok, |w, f| w.worst(f.severity));
    let check = CheckReport {
        name: "vacuum",
        status,
        summary: "all fine".into(),
        threshold: String::new(),
        duration: Duration::ZERO,
        findings,
        samples: vec![],
        limits: None,
        settings: Default::default(),
        freshness: None,
    };
    let mut t = TargetReport::down("main".into(), String::new(), Duration::ZERO);
    (t.up, t.error, t.checks) = (true, None, vec![check]);
    Report {
        generated_at: chrono::Utc::now(),
        duration: Duration::ZERO,
        targets: vec![t],
    }
}

fn rendered(r: &Report, max: usize) -> String {
    let mut out = Vec::new();
    render(r, &mut out, max).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn worst_first_three_phrases_then_a_count() {
    let f = |s: Severity, o: &str| Finding::new(s, o, "bad");
    let r = report(vec![
        f(Severity::Warning, "t1"),
        f(Severity::Unknown, "t2"),
        f(Severity::Critical, "t3"),
        f(Severity::Warning, "t4"),
        f(Severity::Warning, "t5"),
    ]);
    let out = rendered(&r, DEFAULT_MAX_OUTPUT);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "POSTGRES CRITICAL - vacuum: t3 bad, vacuum: t1 bad, vacuum: t4 bad, 2 more"
    );
    assert_eq!(lines[1], "CRITICAL vacuum: t3 bad");
    assert_eq!(lines[5], "UNKNOWN vacuum: t2 bad", "UNKNOWN ranks below WARNING");
}

#[test]
fn the_status_line_survives_any_bound_and_the_rest_goes_whole() {
    let many: Vec<Finding> = (0..50)
        .map(|i| Finding::new(Severity::Warning, format!("table_{i:02}"), "x".repeat(40)))
        .collect();
    let r = report(many);
    let tiny = rendered(&r, 10);
    assert_eq!(tiny.lines().count(), 1, "{tiny}");
    assert!(tiny.starts_with("POSTGRES WARNING - vacuum: table_00 "), "{tiny}");
    let out = rendered(&r, 700);
    assert!(out.len() <= 700, "{}", out.len());
    let last = out.lines().last().expect("lines");
    assert!(
        last.starts_with("... ") && last.contains("more line(s) cut at 700 bytes"),
        "{out}"
    );
    assert!(out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("..."))
        .all(|l| l.len() == "WARNING vacuum: table_00 ".len() + 40));
}

#[test]
fn an_ok_check_reads_as_its_summary() {
    let out = rendered(&report(vec![]), DEFAULT_MAX_OUTPUT);
    assert_eq!(out, "POSTGRES OK - vacuum: all fine\nOK vacuum: all fine\n");
}

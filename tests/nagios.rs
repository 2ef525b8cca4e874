//! `dbtool health --format nagios` as Nagios and Icinga run it, against a real cluster: the
//! status line and exit code, perfdata read back by an independent parser written from the
//! plugin guidelines (tests/nagios/plugin.py), thresholds that round-trip, the output bound,
//! and hostile names that must not break the grammar.

mod common;

use common::{fresh_db, run_dbtool, strings};
use serde_json::Value;

#[path = "nagios/plugin.rs"]
mod plugin;

use plugin::{parse, perf};

async fn nagios(dsn: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = strings(&["health", "--format", "nagios", "--dsn", dsn]);
    args.extend(strings(extra));
    run_dbtool(args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ok_output_parses_and_default_thresholds_round_trip() {
    let db = fresh_db("nagios_ok").await;
    let (code, out, err) = nagios(&db.dsn(), &["--check", "connections"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("POSTGRES OK - connections: ") && out.contains(" usable connections ("),
        "{out}"
    );
    let parsed = parse(&out);
    assert_eq!(parsed["state"], "OK");
    let usage = perf(&parsed, "connections_usage_ratio");
    assert_eq!(usage["uom"], "%");
    // The thresholds in force, as the JSON report states them.
    let (_, json, _) = run_dbtool(strings(&[
        "health",
        "--format",
        "json",
        "--dsn",
        &db.dsn(),
        "--check",
        "connections",
    ]))
    .await;
    let json: Value = serde_json::from_str(&json).expect("JSON");
    let threshold = json["targets"][0]["checks"][0]["threshold"]
        .as_str()
        .expect("threshold");
    assert_eq!(
        threshold,
        format!(
            "critical={} warning={}",
            usage["crit"].as_str().unwrap(),
            usage["warn"].as_str().unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warning_and_critical_are_real_and_round_trip() {
    let db = fresh_db("nagios_levels").await;
    let _held = db.client().await;
    // One connection of the cluster's few usable ones is well over 1 percent.
    let (code, out, err) = nagios(&db.dsn(), &["--check", "connections", "-w", "1", "-c", "95.5"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("POSTGRES WARNING - connections: "), "{out}");
    let parsed = parse(&out);
    let usage = perf(&parsed, "connections_usage_ratio");
    assert_eq!(
        (usage["warn"].as_str(), usage["crit"].as_str()),
        (Some("1"), Some("95.5"))
    );
    assert!(usage["value"].as_f64().unwrap() >= 1.0, "{usage}");

    let (code, out, err) = nagios(
        &db.dsn(),
        &["--check", "connections", "--warning", "1", "--critical", "2"],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.starts_with("POSTGRES CRITICAL - connections: "), "{out}");
    let usage = perf(&parse(&out), "connections_usage_ratio").clone();
    assert_eq!((usage["warn"].as_str(), usage["crit"].as_str()), (Some("1"), Some("2")));

    // Lower is worse for a hit ratio: the ranges alert below the thresholds ("98:").
    let (_, out, _) = nagios(&db.dsn(), &["--check", "cache_hit", "-w", "97", "-c", "80"]).await;
    let parsed = parse(&out);
    let head = parsed["perf"][0].clone();
    assert!(
        head["label"].as_str().unwrap().starts_with("database_cache_hit_ratio/"),
        "{out}"
    );
    assert_eq!(
        (head["warn"].as_str(), head["crit"].as_str()),
        (Some("97:"), Some("80:"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shorthands_are_refused_without_one_check_that_has_a_main_threshold() {
    let db = fresh_db("nagios_refused").await;
    for (extra, expect) in [
        (&["-w", "5"][..], "select exactly one with --check NAME"),
        (
            &["--check", "connections", "--check", "locks", "-c", "5"][..],
            "select exactly one",
        ),
        (
            &["--check", "vacuum", "--warning", "5"][..],
            "check 'vacuum' has no main threshold",
        ),
        (
            &["--check", "connections", "-w", "95"][..],
            "--warning/--critical connections.warning: 95 is above critical 90",
        ),
        (
            &["--check", "connections", "--critical", "120"][..],
            "--critical 120 (the connections.critical threshold): 120 is above 100 percent",
        ),
    ] {
        let (code, out, err) = nagios(&db.dsn(), extra).await;
        assert_eq!(code, 3, "{extra:?}: {out}{err}");
        assert!(err.contains(expect), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

/// Sequences at 99% of their range: one CRITICAL finding (and samples) each.
async fn full_sequences(db: &common::TestDb, names: &[String]) {
    let admin = db.client().await;
    for name in names {
        let ident = common::quote_ident(name);
        let literal = ident.replace('\'', "''");
        admin
            .batch_execute(&format!(
                "CREATE SEQUENCE {ident} MAXVALUE 100; SELECT setval('{literal}', 99);"
            ))
            .await
            .expect("create sequence");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_cut_at_whole_lines_within_max_output() {
    let db = fresh_db("nagios_cap").await;
    let names: Vec<String> = (0..120)
        .map(|i| format!("a_rather_long_sequence_name_{i:03}"))
        .collect();
    full_sequences(&db, &names).await;
    // Only this test's database: others come and go while the suite runs.
    let args = ["--check", "sequences", "--top", "500", "--database", db.name()];
    let (code, full, err) = nagios(&db.dsn(), &[&args[..], &["--max-output", "1000000"]].concat()).await;
    assert_eq!(code, 2, "{full}{err}");
    assert!(full.len() > 8192, "enough to cut: {} bytes", full.len());
    for max in [None, Some("1500")] {
        let extra: Vec<&str> = match max {
            Some(m) => [&args[..], &["--max-output", m]].concat(),
            None => args.to_vec(),
        };
        let (code, out, _) = nagios(&db.dsn(), &extra).await;
        assert_eq!(code, 2);
        let limit: usize = max.map_or(4096, |m| m.parse().unwrap());
        assert!(out.len() <= limit, "{} bytes over {limit}", out.len());
        assert!(out.len() > limit - 300, "filled: {} bytes", out.len());
        let lines: Vec<&str> = out.lines().collect();
        let full_lines: Vec<&str> = full.lines().collect();
        assert_eq!(lines[0], full_lines[0], "the status line is never cut");
        assert!(lines[0].starts_with("POSTGRES CRITICAL - sequences: "), "{}", lines[0]);
        // Whole lines of the full output, in its order (worst first), then a note of the cut.
        let kept = lines.iter().take_while(|l| !l.starts_with("... ")).count();
        assert!(kept < lines.len(), "{out}");
        assert_eq!(&lines[..kept], &full_lines[..kept]);
        assert!(lines[kept].contains("more line(s) cut"), "{out}");
        parse(&out);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_cannot_break_the_status_line_or_the_perfdata() {
    let db = fresh_db("nagios_hostile").await;
    let evil = "s'q|x=1;2 'a''b' \r\n| y=3 \u{1b}[2J\u{7}";
    full_sequences(&db, &[evil.to_string()]).await;
    let (code, out, err) = nagios(&db.dsn(), &["--check", "sequences", "--database", db.name()]).await;
    assert_eq!(code, 2, "{out}{err}");
    let first = out.lines().next().unwrap();
    let (text, _) = first.split_once(" | ").unwrap_or((first, ""));
    assert!(
        !text.contains('|') && text.starts_with("POSTGRES CRITICAL - sequences: "),
        "{first}"
    );
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "control bytes escaped: {out:?}"
    );
    let parsed = parse(&out);
    assert!(
        parsed["status"].as_str().unwrap().contains("x=1;2"),
        "the name stays in the text: {parsed}"
    );
    // Every item is one of ours, whole: the name is in one label and added no items.
    let labels = perf_labels(&parsed);
    let hostile: Vec<&&str> = labels.iter().filter(|l| l.contains("s'q")).collect();
    assert!(!hostile.is_empty(), "{labels:?}");
    for l in &hostile {
        assert!(l.contains("s'q¦x=1;2 'a''b' \\r\\n¦ y=3 \\x1b[2J\\x07"), "{l}");
    }
    assert!(!labels.iter().any(|l| l.starts_with(" y") || *l == "y"), "{labels:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_targets_prefix_each_line_and_the_status_line_names_the_worst() {
    let db = fresh_db("nagios_multi").await;
    let dead = "host=127.0.0.1 port=1 dbname=postgres user=postgres password=Sekr3tPw connect_timeout=2";
    let (code, out, err) = run_dbtool(strings(&[
        "health",
        "--format",
        "nagios",
        "--dsn",
        &db.dsn(),
        "--dsn",
        dead,
        "--check",
        "connections",
    ]))
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        !out.contains("Sekr3t") && !err.contains("Sekr3t"),
        "no password: {out}{err}"
    );
    let parsed = parse(&out);
    let status = parsed["status"].as_str().unwrap();
    assert!(status.starts_with("POSTGRES CRITICAL - ["), "{status}");
    assert!(status.contains("unreachable"), "{status}");
    let long: Vec<&str> = parsed["long"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(long.len() >= 2, "{out}");
    for line in &long {
        assert!(line.starts_with('['), "each line names its target: {line}");
    }
    assert!(long[0].contains("] CRITICAL unreachable"), "worst first: {long:?}");
    assert!(long.iter().any(|l| l.contains("] OK connections: ")), "{long:?}");
    let labels = perf_labels(&parsed);
    assert!(
        labels.iter().any(|l| l.ends_with("/connections_usage_ratio")),
        "{labels:?}"
    );
}

/// The labels of the parsed output's perfdata items.
fn perf_labels(parsed: &serde_json::Value) -> Vec<&str> {
    parsed["perf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect()
}

//! Every threshold a check reads is one it declares: `Thresholds::get` of an undeclared key
//! would read 0 (a typo'd key silently disables an alert), so the registry test below reads
//! each check's source for the keys it asks for.

use super::{Check, Thresholds, REGISTRY};

/// The string literals passed to `thresholds.get(…)` (or `t.get(…)`, `t` being
/// `ctx.thresholds` by the house habit) in `source`.
fn keys_read(source: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for needle in ["thresholds.get(\"", " t.get(\"", "(t.get(\""] {
        for (at, _) in source.match_indices(needle) {
            let rest = &source[at + needle.len()..];
            if let Some(end) = rest.find('"') {
                keys.push(rest[..end].to_string());
            }
        }
    }
    keys
}

#[test]
fn every_threshold_a_check_reads_is_declared() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/checks");
    let mut undeclared = Vec::new();
    let mut read_any = 0;
    for check in REGISTRY {
        let path = format!("{dir}/{}.rs", check.name());
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let declared: Vec<&str> = check.thresholds().iter().map(|t| t.key).collect();
        for key in keys_read(&source) {
            read_any += 1;
            if !declared.contains(&key.as_str()) {
                undeclared.push(format!("{}.{key}", check.name()));
            }
        }
    }
    assert!(
        read_any > 10,
        "the scan found only {read_any} threshold reads: update keys_read"
    );
    assert!(
        undeclared.is_empty(),
        "thresholds read but not declared: {undeclared:?}"
    );
}

#[test]
fn the_scan_sees_each_spelling() {
    let src = r#"let w = ctx.thresholds.get("warning"); let (a, b) = (t.get("x"), t.get("y"));"#;
    assert_eq!(keys_read(src), ["warning", "y", "x"]);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "not declared")]
fn reading_an_undeclared_threshold_fails_in_debug_builds() {
    let t = Thresholds::defaults(super::connections::Connections.thresholds());
    let _ = t.get("warnnig");
}

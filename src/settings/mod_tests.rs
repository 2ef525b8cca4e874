use super::*;

fn parse(text: &str) -> Result<Settings, Errors> {
    Settings::parse(text.to_string(), Path::new("c.toml"))
}

#[test]
fn unknown_keys_and_checks_are_errors_with_lines() {
    let err = parse("statement_timeout = \"5s\"\nbogus = 1\n")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains(":2:") && e.contains("bogus")),
        "{err:?}"
    );
    let err = parse("\n[checks.conections]\nwarning = 80\n")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("unknown check") && e.contains("connections")),
        "{err:?}"
    );
    let err = parse("[checks.connections]\n\nwarnign = 80\n")
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains(":3:") && e.contains("warnign")),
        "{err:?}"
    );
    let err = parse("[health]\ntimeout = \"soon\"\n").err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains(":2:") && e.contains("not a duration")),
        "{err:?}"
    );
}

#[test]
fn thresholds_layer_file_then_set() {
    let loaded = parse("[checks.connections]\nwarning = 50\n").ok();
    let loaded = loaded.as_ref().map(|l| l.thresholds(&checks::connections::Connections));
    assert_eq!(loaded.map(|t| t.get("warning")), Some(50.0));
    let mut all = BTreeMap::new();
    assert!(apply_set(&mut all, "connections.critical=95", crate::checks::find).is_ok());
    assert_eq!(all.get("connections").map(|t| t.get("critical")), Some(95.0));
    assert!(apply_set(&mut all, "connections.nope=1", crate::checks::find).is_err());
    assert!(apply_set(&mut all, "connections.warning=abc", crate::checks::find).is_err());
}

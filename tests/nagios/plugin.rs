//! Plugin output read by tests/nagios/plugin.py, an independent reader written from the
//! monitoring plugins' guidelines, not from dbtool's renderer.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The output as the guidelines' reader sees it; panics with the reader's complaint.
pub fn parse(output: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nagios/plugin.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (the independent perfdata reader) must be installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(output.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "not plugin output by the guidelines: {}\n{output}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader's JSON")
}

pub fn perf<'a>(parsed: &'a Value, label: &str) -> &'a Value {
    parsed["perf"]
        .as_array()
        .expect("perf")
        .iter()
        .find(|p| p["label"] == label)
        .unwrap_or_else(|| panic!("no perfdata '{label}' in {parsed}"))
}

//! Running `dbtool health` from tests and reading its JSON report.

use std::time::Duration;

use serde_json::Value;

use super::dbtool;

/// Runs the binary off the async runtime; returns (exit code, stdout, stderr).
pub async fn run_dbtool(args: Vec<String>) -> (i32, String, String) {
    let mut cmd = dbtool();
    cmd.args(&args);
    run_command(cmd).await
}

/// Runs a prepared command (the binary with its own environment) off the async runtime;
/// returns (exit code, stdout, stderr).
pub async fn run_command(mut cmd: std::process::Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run dbtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `dbtool health --format json --dsn DSN EXTRA...`: (exit code, report).
pub async fn health_report(dsn: &str, extra: &[&str]) -> (i32, Value) {
    let mut a = strings(&["health", "--format", "json", "--dsn", dsn]);
    a.extend(strings(extra));
    let (code, out, err) = run_dbtool(a).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v)
}

/// The check named `name` of the first target.
pub fn check_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"][0]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// Findings of a check as (severity, object, message).
pub fn findings(check: &Value) -> Vec<(String, String, String)> {
    check["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
                    (s("severity"), s("object"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the first metric named `name` whose labels include all of `labels`.
pub fn metric(check: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    check["metrics"].as_array()?.iter().find_map(|m| {
        let matches = m["name"] == name && labels.iter().all(|(k, v)| m["labels"][*k] == *v);
        if matches {
            m["value"].as_f64()
        } else {
            None
        }
    })
}

/// Waits until `sql` returns true (statistics and lock waits show up asynchronously), 10 s at
/// most. NULL counts as "not yet": a session's wait_event_type is NULL before it starts to wait
/// (reading it as bool panicked, a CI flake).
pub async fn wait_until(client: &tokio_postgres::Client, sql: &str) {
    for _ in 0..100 {
        if client
            .query_one(sql, &[])
            .await
            .ok()
            .and_then(|r| r.try_get::<_, Option<bool>>(0).ok().flatten())
            .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition never became true: {sql}");
}

//! Several targets from the config file's [[targets]]: checked concurrently, each labelled,
//! and an unreachable one (refused, or accepting but never answering) holds up no other.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{fresh_db, own_cluster, run_dbtool, strings};
use tempcluster::ClusterOptions;

/// A TCP port that accepts connections and never says a word: a hung server or a dead
/// network path. Returns the port and a count of connections accepted.
fn blackhole() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(conn); // never read, never closed until the test process exits
        }
    });
    (port, accepted)
}

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

#[tokio::test]
async fn unreachable_targets_are_down_and_hold_up_no_other() {
    let (main, other) = (fresh_db("fleet_main").await, fresh_db("fleet_other").await);
    let stopped = own_cluster(ClusterOptions::default());
    stopped.stop().expect("stop");
    let (port, accepted) = blackhole();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dbtool.toml");
    let toml = format!(
        r#"
[health]
# Shorter than the default connect_timeout (10s): the run's bound cuts the hung target off.
timeout = "3s"

[[targets]]
name = "hung"
dsn = "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable"

[[targets]]
name = "stopped"
dsn = "{stopped}"

[[targets]]
name = "main"
dsn = "{main}"

[[targets]]
name = "other"
dsn = "{other}"
"#,
        stopped = stopped.dsn("postgres"),
        main = main.dsn(),
        other = other.dsn(),
    );
    std::fs::write(&config, toml).expect("config");
    let (code, out, err) = run_dbtool(strings(&[
        "--config",
        &config.to_string_lossy(),
        "health",
        "--format",
        "prometheus",
        "--check",
        "connections",
    ]))
    .await;
    assert_eq!(code, 2, "an unreachable target is CRITICAL: {err}\n{out}");
    for (target, up) in [("hung", 0.0), ("stopped", 0.0), ("main", 1.0), ("other", 1.0)] {
        assert_eq!(
            sample(&out, &format!("dbtool_up{{target=\"{target}\"}}")),
            up,
            "{target}"
        );
    }
    for target in ["main", "other"] {
        let status = format!("dbtool_check_status{{target=\"{target}\",check=\"connections\"}}");
        assert_eq!(sample(&out, &status), 0.0, "{target} was fully checked:\n{out}");
    }
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "dbtool never tried the hung target"
    );
    // That main and other were fully checked (above) while the hung target used up the run's
    // bound is what shows it held up no other: had they waited for it, the bound would have
    // cut them off too. Comparing durations measured the machine's load, not that (it flaked).
    assert!(
        out.contains("dbtool_scrape_duration_seconds{target=\"hung\"}"),
        "the hung target still reports how long it was tried:\n{out}"
    );
}

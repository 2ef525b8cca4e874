//! Real Prometheus tooling for tests: promtool's metrics linter and a node_exporter whose
//! textfile collector reads what dbtool wrote. Missing tools fail the test, never skip it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `promtool check metrics` on the text; Err carries promtool's complaints.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}); scripts/test installs the Debian package prometheus"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1; the body, or None while nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    http_get_status(port, path).map(|(_, body)| body)
}

/// A plain HTTP/1.0 GET on 127.0.0.1; (status code, body), or None while nothing answers.
pub fn http_get_status(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.")?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Kills the child on drop so no exporter outlives its test.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fresh ports tried by [`spawn_on_free_port`] before it gives up.
const LISTEN_ATTEMPTS: u32 = 5;

/// Starts a server on a port of [`free_port`], as the cluster helpers do: between the probe and
/// the server's bind another process may take the port, and the server then exits ("address
/// already in use"); it is started again on a fresh port. `spawn(port)` starts it; `ready(port)`
/// says that what answers on the port is this server (not whoever took it); `log()` is what
/// the server said, for the failure message. Waits `within` for each attempt.
pub fn spawn_on_free_port(
    what: &str,
    within: Duration,
    mut spawn: impl FnMut(u16) -> std::process::Child,
    ready: impl Fn(u16) -> bool,
    log: impl Fn() -> String,
) -> (Killed, u16) {
    let mut exits = Vec::new();
    for _ in 0..LISTEN_ATTEMPTS {
        let port = free_port();
        let mut child = Killed(spawn(port));
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                exits.push(format!("port {port}: exited ({status}): {}", log().trim()));
                break;
            }
            // Ready, and still alive: a server that lost its port may answer through the thief
            // for a moment before it exits.
            if ready(port) && matches!(child.0.try_wait(), Ok(None)) {
                return (child, port);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} on port {port} not ready within {within:?}: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("{what} did not start on {LISTEN_ATTEMPTS} fresh ports: {exits:#?}");
}

/// Starts node_exporter with only the textfile collector on `dir`; returns it, once it serves
/// its own metrics, and its port.
pub fn start_node_exporter(dir: &Path) -> (Killed, u16) {
    let log = dir.with_extension("node_exporter.log");
    let spawn = |port: u16| {
        let stderr = std::fs::File::create(&log).expect("node_exporter log");
        Command::new("prometheus-node-exporter")
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus-node-exporter not runnable ({e}); scripts/test installs it"))
    };
    let ready = |port| http_get(port, "/metrics").is_some_and(|b| b.contains("node_textfile_scrape_error"));
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = spawn_on_free_port("node_exporter", Duration::from_secs(20), spawn, ready, text);
    let _ = std::fs::remove_file(&log);
    started
}

/// Scrapes a node_exporter once it answers (at most 10 s).
pub async fn scrape_node_exporter(dir: &Path) -> String {
    let (_exporter, port) = start_node_exporter(dir);
    for _ in 0..100 {
        let got = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
            .await
            .ok()
            .flatten();
        if let Some(body) = got {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node_exporter on port {port} never answered");
}

/// Starts a real Prometheus (Debian `prometheus`) in `dir` (config and TSDB live there) that
/// scrapes 127.0.0.1:`scrape_port` every second and evaluates `rule_file` every second.
pub fn start_prometheus(dir: &Path, scrape_port: u16, rule_file: &Path) -> (Killed, u16) {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n",
        rules = rule_file.display()
    );
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).expect("write prometheus.yml");
    let log = dir.join("prometheus.log");
    let spawn = |port: u16| {
        let stderr = std::fs::File::create(&log).expect("prometheus.log");
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("prometheus not runnable ({e}); scripts/test installs the Debian package prometheus")
            })
    };
    // /-/healthy answers as soon as the web server runs, naming Prometheus.
    let ready = |port| http_get(port, "/-/healthy").is_some_and(|b| b.contains("Prometheus"));
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    spawn_on_free_port("prometheus", Duration::from_secs(30), spawn, ready, text)
}

/// GETs `path` until it answers 200 OK, at most `within`; panics naming `what` otherwise.
pub async fn get_when_up(what: &str, port: u16, path: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    loop {
        let p = path.to_string();
        match tokio::task::spawn_blocking(move || http_get_status(port, &p))
            .await
            .ok()
            .flatten()
        {
            Some((200, body)) => return body,
            other => last = other.or(last),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} on port {port} did not answer {path} with 200 within {within:?}; last answer: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Metric names in Prometheus text: sample lines and `# TYPE` lines.
pub fn metric_names_in(exposition: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in exposition.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split_whitespace().next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            names.insert(name.to_string());
        }
    }
    names
}

//! `/probe` (issue 20): a real Prometheus scraping `dbtool serve` through file_sd with the
//! shipped scrape config and rules; refusals before any connection; a scrape timeout shorter
//! than a check made slow for real; the in-flight bound; no password anywhere.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cluster, dbtool, fresh_db, own_cluster};
use common::{http_get, spawn_on_free_port, Killed};
use tempcluster::ClusterOptions;

const PASSWORD: &str = "pr0be-S3cret-never-shown";
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");

/// A GET with Prometheus' timeout header; (status, body, how long it took).
fn get(port: u16, path: &str, scrape_timeout: Option<&str>) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to dbtool");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let header = scrape_timeout.map_or(String::new(), |t| {
        format!("X-Prometheus-Scrape-Timeout-Seconds: {t}\r\n")
    });
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n").expect("write request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read answer");
    let (head, body) = buf.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_string(), started.elapsed())
}

/// `dbtool serve` on a free port with `config`; its stderr goes to `dir/dbtool.log`.
fn serve(dir: &Path, config: &str) -> (Killed, u16) {
    let cfg = dir.join("dbtool.toml");
    std::fs::write(&cfg, config).expect("write config");
    let log = dir.join("dbtool.log");
    let spawn = |port: u16| {
        dbtool()
            .arg("--config")
            .arg(&cfg)
            .args(["-vv", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start dbtool serve")
    };
    let ready = |port| http_get(port, "/healthz").is_some_and(|b| b == "ok\n");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    spawn_on_free_port("dbtool serve", Duration::from_secs(60), spawn, ready, text)
}

/// A password file readable only by its owner, as `[auth]` requires.
fn password_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("monitoring.password");
    std::fs::write(&path, format!("{PASSWORD}\n")).expect("password file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A sample's value in an exposition: the first line starting with `series `.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn assert_no_password(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "the password shows in {what}: {text}");
}

/// The shipped scrape config, pointed at this dbtool and these targets, scraping every 2 s.
fn prometheus_config(dir: &Path, dbtool_port: u16) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(SHIPPED).join("dbtool-probe.yml")).expect("shipped config");
    let text = text
        .replace("127.0.0.1:19187", &format!("127.0.0.1:{dbtool_port}"))
        .replace("scrape_interval: 30s", "scrape_interval: 2s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 2s")
        .replace("evaluation_interval: 30s", "evaluation_interval: 1s");
    std::fs::copy(
        Path::new(SHIPPED).join("dbtool-rules.yml"),
        dir.join("dbtool-rules.yml"),
    )
    .expect("rules");
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).expect("prometheus.yml");
    path
}

fn start_prometheus(dir: &Path, config: &Path) -> (Killed, u16) {
    let log = dir.join("prometheus.log");
    let spawn = |port: u16| {
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("prometheus.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus not runnable ({e}); scripts/test --deps-only installs it"))
    };
    let ready = |port| http_get(port, "/-/ready").is_some_and(|b| b.contains("Ready"));
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    spawn_on_free_port("prometheus", Duration::from_secs(60), spawn, ready, text)
}

/// Polls Prometheus' API at `path` until `done` holds for its JSON; panics with the last answer.
fn poll_prometheus(port: u16, path: &str, within: Duration, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(body) = http_get(port, path) {
            if serde_json::from_str(&body).is_ok_and(|v| done(&v)) {
                return;
            }
            last = body;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("Prometheus {path} never reached the expected state within {within:?}; last answer: {last}");
}

/// Issue 20: three targets through file_sd (a [[targets]] name, an address with &auth, a
/// stopped server), scraped by a real Prometheus with the shipped config and rules.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_probes_three_targets_and_the_stopped_one_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (fresh_db("probe_a").await, fresh_db("probe_b").await);
    let stopped = own_cluster(ClusterOptions::default());
    let down_dsn = stopped.tcp_dsn("postgres");
    stopped.stop().expect("stop the third server");
    let port = cluster().port();
    let config = format!(
        "[[targets]]\nname = \"a\"\ndsn = {}\n\n[[targets]]\nname = \"down\"\ndsn = {}\n\n\
         [probe]\nallow_hosts = [\"127.0.0.1:{port}\"]\n\n\
         [auth.monitoring]\nuser = \"postgres\"\npassword_file = {}\nsslmode = \"disable\"\n",
        toml_str(&a.tcp_dsn()),
        toml_str(&down_dsn),
        toml_str(&password_file(dir.path()).to_string_lossy())
    );
    let (_dbtool, dbtool_port) = serve(dir.path(), &config);
    let b_target = format!("127.0.0.1:{port}/{}", b.name());
    std::fs::create_dir_all(dir.path().join("dbtool-targets")).expect("targets dir");
    std::fs::write(
        dir.path().join("dbtool-targets/test.yml"),
        format!("- targets: [a, down]\n- targets: ['{b_target}']\n  labels:\n    __param_auth: monitoring\n"),
    )
    .expect("targets file");
    let prom_config = prometheus_config(dir.path(), dbtool_port);
    let (_prom, prom_port) = start_prometheus(dir.path(), &prom_config);
    let wanted = [("a", 1.0), (b_target.as_str(), 1.0), ("down", 0.0)];
    poll_prometheus(
        prom_port,
        "/api/v1/query?query=dbtool_up",
        Duration::from_secs(90),
        |v| {
            let got: Vec<(String, f64)> = v["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let t = r["metric"]["target"].as_str()?.to_string();
                    Some((t, r["value"][1].as_str()?.parse().ok()?))
                })
                .collect();
            wanted.iter().all(|(t, up)| got.iter().any(|(g, v)| g == t && v == up))
        },
    );
    // Every scrape itself succeeded, the stopped server's too: its answer says dbtool_up 0.
    poll_prometheus(
        prom_port,
        "/api/v1/query?query=up%7Bjob%3D%22dbtool-probe%22%7D",
        Duration::from_secs(30),
        |v| {
            let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
            r.len() == 3 && r.iter().all(|s| s["value"][1] == "1")
        },
    );
    // The shipped rules, unchanged, on probed series: the stopped target's alert is pending.
    poll_prometheus(prom_port, "/api/v1/alerts", Duration::from_secs(60), |v| {
        v["data"]["alerts"].as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "PostgresDown" && a["labels"]["target"] == "down" && a["state"] == "pending"
        })
    });
    let targets = http_get(prom_port, "/api/v1/targets").unwrap_or_default();
    assert_no_password("Prometheus' targets", &targets);
    let metrics = http_get(dbtool_port, "/metrics").expect("/metrics");
    assert!(
        value(&metrics, "dbtool_probe_duration_seconds_count{kind=\"postgres\"}").is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    assert!(metrics.contains("dbtool_pool_sessions{target=\"a\"}"), "{metrics}");
    assert_no_password("/metrics", &metrics);
    assert_no_password(
        "dbtool's log",
        &std::fs::read_to_string(dir.path().join("dbtool.log")).unwrap_or_default(),
    );
}

/// A probe dbtool's configuration does not allow is refused before any connection: a listener
/// on the refused address never sees one. Bad parameters are 400, and refusals are counted.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_come_before_any_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db("probe_refused").await;
    let bait = std::net::TcpListener::bind("127.0.0.1:0").expect("bait listener");
    bait.set_nonblocking(true).expect("nonblocking");
    let bait_port = bait.local_addr().expect("addr").port();
    let config = format!(
        "[[targets]]\nname = \"a\"\ndsn = {}\n\n[probe]\nallow_hosts = [\"db-*.prod.internal\"]\n\n\
         [auth.monitoring]\nuser = \"postgres\"\npassword_file = {}\n",
        toml_str(&db.tcp_dsn()),
        toml_str(&password_file(dir.path()).to_string_lossy())
    );
    let (_dbtool, port) = serve(dir.path(), &config);
    let refused = [
        (
            format!("/probe?target=127.0.0.1:{bait_port}/postgres&auth=monitoring"),
            403,
            "allow_hosts",
        ),
        ("/probe?target=nosuch".to_string(), 403, "no [[targets]] name"),
        (
            format!("/probe?target=127.0.0.1:{bait_port}/x&auth=other"),
            403,
            "[auth.NAME]",
        ),
        (format!("/probe?target=a&password={PASSWORD}"), 400, "unknown parameter"),
        ("/probe?target=a&check=no_such_check".to_string(), 400, "unknown check"),
    ];
    for (path, status, why) in &refused {
        let (got, body, _) = get(port, path, None);
        assert_eq!((got, body.lines().count()), (*status, 1), "{path}: {body}");
        assert!(body.contains(why), "{path}: {body}");
        assert_no_password(path, &body);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        bait.accept().is_err(),
        "dbtool connected to an address it was told to refuse"
    );
    let metrics = http_get(port, "/metrics").expect("/metrics");
    for (reason, n) in [
        ("host_not_allowed", 1.0),
        ("unknown_target", 1.0),
        ("unknown_auth", 1.0),
        ("bad_request", 2.0),
    ] {
        let series = format!("dbtool_probe_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&metrics, &series), Some(n), "{metrics}");
    }
    common::promtool_check_metrics(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    let (status, body, _) = get(port, "/probe?target=a&check=connections&format=json", None);
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["targets"][0]["target"], "a");
    assert_eq!(doc["targets"][0]["checks"].as_array().map(Vec::len), Some(1), "{body}");
    assert_no_password(
        "dbtool's log",
        &std::fs::read_to_string(dir.path().join("dbtool.log")).unwrap_or_default(),
    );
}

/// A check made slow for real (two duplicate indexes, which the indexes check sizes, on a
/// table another session is dropping, so pg_relation_size waits on its lock) and a 2 s scrape
/// timeout: the answer still comes within the timeout with dbtool_up 1, the slow check UNKNOWN
/// and the checks that finished; the waiting statement is cancelled rather than left to its
/// statement_timeout; at most `max_in_flight` probes run at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_check_still_answers_within_the_scrape_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db("probe_slow").await;
    let client = db.client().await;
    client
        .batch_execute("CREATE TABLE slow (id int); CREATE INDEX slow_a ON slow (id); CREATE INDEX slow_b ON slow (id)")
        .await
        .expect("the table");
    // A message of its own: BEGIN inside the one above would take the CREATEs into its transaction.
    client
        .batch_execute("BEGIN; DROP TABLE slow")
        .await
        .expect("hold the lock");
    let config = format!(
        "statement_timeout = \"60s\"\nlock_timeout = \"60s\"\n\n[[targets]]\nname = \"slow\"\ndsn = {}\n\n\
         [probe]\nmax_in_flight = 1\n",
        toml_str(&db.tcp_dsn())
    );
    let (_dbtool, port) = serve(dir.path(), &config);
    let watcher = std::thread::spawn(move || {
        let mut most = 0.0_f64;
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            if let Some(n) = http_get(port, "/metrics").and_then(|m| value(&m, "dbtool_probes_in_flight")) {
                most = most.max(n);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        most
    });
    let probes: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || get(port, "/probe?target=slow&check=indexes&check=connections", Some("2"))))
        .collect();
    let answers: Vec<_> = probes.into_iter().map(|p| p.join().expect("probe thread")).collect();
    for (status, body, took) in &answers {
        assert!(*took < Duration::from_millis(2500), "answered after {took:?}: {body}");
        if *status == 200 {
            assert_eq!(value(body, "dbtool_up{target=\"slow\"}"), Some(1.0), "{body}");
            assert_eq!(
                value(body, "dbtool_check_status{target=\"slow\",check=\"indexes\"}"),
                Some(3.0),
                "{body}"
            );
            // What finished is there: the connections check does not wait on the lock.
            assert_eq!(
                value(body, "dbtool_check_status{target=\"slow\",check=\"connections\"}"),
                Some(0.0),
                "{body}"
            );
            assert!(
                body.contains("dbtool_connections_usage_ratio{target=\"slow\"}"),
                "{body}"
            );
        } else {
            assert_eq!(*status, 503, "{body}");
        }
    }
    assert!(answers.iter().any(|(s, _, _)| *s == 200), "{answers:?}");
    let most = watcher.join().expect("watcher");
    assert!(most <= 1.0, "{most} probes in flight with max_in_flight = 1");
    // The abandoned statement was cancelled: nothing of dbtool's waits on the lock for long.
    let admin = common::connect(&cluster().dsn("postgres")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbtool' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} dbtool statements still wait on the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.batch_execute("ROLLBACK").await.expect("release");
    // The pool lent no session in an unknown state: the next probe answers normally.
    let (status, body, _) = get(port, "/probe?target=slow&check=indexes", Some("10"));
    assert_eq!(status, 200, "{body}");
    // WARNING: the duplicate indexes, back now that the lock is gone.
    assert_eq!(
        value(&body, "dbtool_check_status{target=\"slow\",check=\"indexes\"}"),
        Some(1.0),
        "{body}"
    );
}

/// The shipped scrape configs pass `promtool check config`.
#[test]
fn shipped_scrape_configs_are_valid() {
    for file in ["dbtool-probe.yml", "dbtool-probe-sharded.yml"] {
        let out = Command::new("promtool")
            .args(["check", "config", file])
            .current_dir(SHIPPED)
            .output()
            .unwrap_or_else(|e| panic!("promtool not runnable ({e}); scripts/test --deps-only installs it"));
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An address target whose `[auth]` logs in by client certificate with an encrypted PKCS#8
/// key: `sslpassword_file` decrypts it and the probe answers dbtool_up 1; without it the
/// configuration is refused at the section's line, naming sslpassword_file. The key's password
/// shows in no answer and no log.
#[tokio::test]
async fn an_auth_with_an_encrypted_key_and_its_sslpassword_file_probes_up() {
    use common::cert_cluster::{cert_cluster, CERT_USER, KEY_PASSWORD};
    use std::os::unix::fs::PermissionsExt;
    let c = cert_cluster().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("key.password");
    std::fs::write(&pw, format!("{KEY_PASSWORD}\n")).expect("key password file");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let auth = format!(
        "[probe]\nallow_hosts = [\"127.0.0.1:*\"]\n\n[auth.certs]\nuser = \"{CERT_USER}\"\nsslmode = \"require\"\n\
         sslcert = {}\nsslkey = {}\n",
        toml_str(&c.file("client.crt")),
        toml_str(&c.file("enc.key"))
    );
    let without = dir.path().join("without.toml");
    std::fs::write(&without, &auth).expect("write config");
    let check = dbtool()
        .arg("--config")
        .arg(&without)
        .args(["config", "check"])
        .output()
        .expect("config check");
    let said = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(!check.status.success(), "{said}");
    assert!(
        said.contains("without.toml:4:") && said.contains("[auth.certs] sslkey") && said.contains("sslpassword_file"),
        "{said}"
    );
    let config = format!("{auth}sslpassword_file = {}\n", toml_str(&pw.to_string_lossy()));
    let (_dbtool, port) = serve(dir.path(), &config);
    let path = format!(
        "/probe?target=127.0.0.1:{}/postgres&auth=certs&check=connections",
        c.cluster.port()
    );
    let (status, body, _) = get(port, &path, Some("10"));
    assert_eq!(status, 200, "{body}");
    let up = body.lines().find_map(|l| {
        l.strip_prefix("dbtool_up{")?
            .split_once("} ")?
            .1
            .trim()
            .parse::<f64>()
            .ok()
    });
    assert_eq!(up, Some(1.0), "{body}");
    let log = std::fs::read_to_string(dir.path().join("dbtool.log")).unwrap_or_default();
    for text in [&body, &log, &said] {
        assert!(!text.contains(KEY_PASSWORD), "the key's password shows: {text}");
    }
}

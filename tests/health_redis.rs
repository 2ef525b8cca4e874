//! `dbtool health --redis`: a real redis-server (Debian's) the test starts, checked the way an
//! SRE would point dbtool at it, with the conditions of a common Redis alert set.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

async fn health(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = dbtool();
    cmd.arg("health").args(args).env_remove("REDISCLI_AUTH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd).await
}

async fn json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = health(&a, env).await;
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"][0]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

fn metric(check: &Value, name: &str) -> Option<f64> {
    check["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
}

fn poll(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_filled_past_90_percent_of_maxmemory_is_a_warning() {
    let r = Redis::start(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let mut c = r.connection();
    let chunk = "x".repeat(16 * 1024);
    let used = |r: &Redis| r.info("used_memory").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let mut i = 0;
    while used(&r) < 0.92 * 4.0 * 1024.0 * 1024.0 {
        // noeviction refuses writes past maxmemory: stop there.
        if redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&chunk)
            .query::<()>(&mut c)
            .is_err()
        {
            break;
        }
        i += 1;
    }
    let (code, report, err) = json(&["--redis", &r.url(), "--check", "redis_memory"], &[]).await;
    let mem = check(&report, "redis_memory");
    assert_eq!(mem["status"], "WARNING", "{mem}\n{err}");
    assert!(
        mem["summary"]
            .as_str()
            .is_some_and(|s| s.contains("of maxmemory 4.0 MiB")),
        "{mem}"
    );
    assert!(
        metric(mem, "dbtool_redis_memory_usage_ratio").is_some_and(|v| v >= 0.9),
        "{mem}"
    );
    assert_eq!(code, 1);
    assert_eq!(report["targets"][0]["kind"], "redis");
    assert!(report["targets"][0]["server_version"]
        .as_str()
        .is_some_and(|v| v.starts_with("Redis ")));

    // Without maxmemory the host's memory is the yardstick, and the summary says so.
    let plain = Redis::start(&[]);
    let (_, report, _) = json(&["--redis", &plain.url(), "--check", "redis_memory"], &[]).await;
    let mem = check(&report, "redis_memory");
    assert!(
        mem["summary"].as_str().is_some_and(|s| s.contains("the host's memory")),
        "{mem}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_rejected_at_maxclients_are_critical_then_judged_since_the_previous_run() {
    let r = Redis::start(&["--maxclients", "3"]);
    let held: Vec<redis::Connection> = (0..3).map(|_| r.connection()).collect();
    // The fourth is refused: Redis accepts the socket, then answers with an error.
    let client = redis::Client::open(r.url()).expect("url");
    let refused = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(refused.is_err(), "a fourth client was let in");
    drop(held);
    poll("the held connections to close", || {
        r.info("connected_clients").is_some_and(|v| v == "1")
    });
    assert_eq!(r.info("rejected_connections").as_deref(), Some("1"));

    let state = tempfile::tempdir().expect("tempdir");
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_string_lossy().to_string();
    let args = [
        "--redis",
        &r.url(),
        "--check",
        "redis_clients",
        "--set",
        "redis_clients.too_few=0",
        "--state",
        &state_arg,
    ];
    let (code, report, err) = json(&args, &[]).await;
    let clients = check(&report, "redis_clients");
    assert_eq!(clients["status"], "CRITICAL", "{clients}\n{err}");
    assert!(
        findings(clients)
            .iter()
            .any(|(_, _, m)| m.contains("1 connection(s) rejected at maxclients")),
        "{clients}"
    );
    assert_eq!(code, 2);
    // The next run knows the previous one: nothing rejected since then is OK.
    let (code, report, _) = json(&args, &[]).await;
    assert_eq!(check(&report, "redis_clients")["status"], "OK", "{report}");
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_with_its_link_up_then_its_primary_stopped() {
    let mut primary = Redis::start(&[]);
    let port = primary.port().to_string();
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &port]);
    poll("the replica's link up", || {
        replica.info("master_link_status").is_some_and(|v| v == "up")
    });
    let (code, report, err) = json(&["--redis", &replica.url(), "--check", "redis_replication"], &[]).await;
    let rep = check(&report, "redis_replication");
    assert_eq!(rep["status"], "OK", "{rep}\n{err}");
    assert_eq!(metric(rep, "dbtool_redis_master_link_up"), Some(1.0), "{rep}");
    assert_eq!(code, 0);
    let (_, report, _) = json(&["--redis", &primary.url(), "--check", "redis_replication"], &[]).await;
    assert_eq!(
        metric(check(&report, "redis_replication"), "dbtool_redis_connected_replicas"),
        Some(1.0)
    );

    primary.stop();
    poll("the replica's link down", || {
        replica.info("master_link_status").is_some_and(|v| v == "down")
    });
    // The stopped primary is down (dbtool_up 0) and holds up nothing; the replica says why.
    let (code, report, err) = json(
        &[
            "--redis",
            &replica.url(),
            "--redis",
            &primary.url(),
            "--check",
            "redis_replication",
        ],
        &[],
    )
    .await;
    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets[1]["up"], false, "{report}");
    let rep = &targets[0]["checks"][0];
    assert_eq!(rep["status"], "CRITICAL", "{rep}\n{err}");
    assert!(
        findings(rep)
            .iter()
            .any(|(_, _, m)| m.starts_with("master_link_status is down")),
        "{rep}"
    );
    assert_eq!(code, 2);
    let (_, prom, _) = health(&["--format", "prometheus", "--redis", &primary.url()], &[]).await;
    assert!(
        prom.contains(&format!("dbtool_up{{target=\"{}\"}} 0", primary.label())),
        "{prom}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_from_rediscli_auth_is_used_and_never_shown() {
    let secret = "s3cr3t-redis-pw";
    let r = Redis::start(&["--requirepass", secret]);
    let (code, report, err) = json(&["--redis", &r.url()], &[("REDISCLI_AUTH", secret)]).await;
    assert_eq!(report["targets"][0]["up"], true, "{report}\n{err}");
    assert!((0..=2).contains(&code), "{report}");
    let (_, prom, err) = health(
        &["--format", "prometheus", "--redis", &r.url()],
        &[("REDISCLI_AUTH", secret)],
    )
    .await;
    assert!(
        !prom.contains(secret) && !err.contains(secret),
        "password shown: {prom}\n{err}"
    );
    promtool_check_metrics(&prom).unwrap_or_else(|e| panic!("{e}\n{prom}"));
    assert!(prom.contains("dbtool_redis_memory_used_bytes{target=\""), "{prom}");
    assert!(prom.contains(",kind=\"redis\"} 1"), "{prom}");
    let (_, nagios, _) = health(
        &["--format", "nagios", "--redis", &r.url()],
        &[("REDISCLI_AUTH", secret)],
    )
    .await;
    assert!(nagios.starts_with("REDIS "), "{nagios}");
    assert!(!nagios.contains(secret), "{nagios}");

    // A wrong password: the target is reported, the password is not.
    let url = format!("redis://:wrong-{secret}@127.0.0.1:{}", r.port());
    let (code, out, err) = health(&["--redis", &url], &[]).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "password shown: {out}\n{err}"
    );
}

/// Issue 15: rediss:// against a Redis serving TLS with a certificate from the suite's test
/// CA: trusted with `?sslrootcert=` naming that CA, refused (CRITICAL, down, naming the
/// certificate problem) with another CA or with the system's roots.
#[tokio::test(flavor = "multi_thread")]
async fn rediss_is_trusted_with_the_ca_given_and_refused_with_another() {
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path().join("tls");
    common::tls::make_ca_and_localhost(&dir);
    common::tls::make_unrelated_ca(&dir, "other");
    let tls_port = free_port().to_string();
    let file = |name: &str| dir.join(name).display().to_string();
    // The plain port stays for the harness' own readiness check; dbtool gets the TLS one.
    let r = Redis::start(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &file("server.crt"),
        "--tls-key-file",
        &file("server.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let url = |ca: Option<&str>| {
        let base = format!("rediss://localhost:{tls_port}");
        ca.map_or(base.clone(), |c| format!("{base}?sslrootcert={}", file(c)))
    };

    let (code, report, err) = json(&["--redis", &url(Some("ca.crt")), "--check", "redis_memory"], &[]).await;
    let t = &report["targets"][0];
    assert_eq!(t["up"], true, "{report}\n{err}\n{}", r.log_text());
    assert!(
        t["server_version"].as_str().is_some_and(|v| v.starts_with("Redis ")),
        "{t}"
    );
    assert_eq!(t["target"], format!("localhost:{tls_port}/0"), "{t}");
    assert!(code < 2, "{report}\n{err}");

    for untrusted in [url(Some("other.crt")), url(None)] {
        let (code, report, err) = json(&["--redis", &untrusted, "--check", "redis_memory"], &[]).await;
        let t = &report["targets"][0];
        assert_eq!(t["up"], false, "{untrusted}: {report}");
        assert_eq!(code, 2, "{untrusted}: {report}\n{err}");
        let error = t["error"].as_str().unwrap_or_default();
        assert!(error.contains("certificate"), "{untrusted}: {error}");
        assert!(error.contains("sslrootcert"), "the fix is named: {error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }

    // A file that is not there is refused before any connection, naming it.
    let missing = format!("rediss://localhost:{tls_port}?sslrootcert=/nonexistent/ca.crt");
    let (code, _, err) = health(&["--redis", &missing], &[]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("sslrootcert /nonexistent/ca.crt:"), "{err}");
}

//! `dbtool health --pgbouncer`: a real PgBouncer (Debian's) in front of the suite's cluster,
//! checked through its admin console the way a DBA would point dbtool at it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `dbtool health --format FORMAT ARGS…`: (exit code, stdout, stderr).
async fn health(format: &str, args: &[&str]) -> (i32, String, String) {
    let mut a = strings(&["health", "--format", format]);
    a.extend(strings(args));
    run_dbtool(a).await
}

fn json(out: &str, err: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

/// The first target of `kind` (JSON `kind`: postgres, pgbouncer, redis).
fn target<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} target in {report}"))
}

fn check<'a>(target: &'a Value, name: &str) -> &'a Value {
    target["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {target}"))
}

/// Polls SHOW POOLS until `db`'s pool has at least `n` clients waiting for `secs` seconds.
async fn wait_for_waiters(bouncer: &PgBouncer, db: &str, n: i64, secs: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = bouncer.admin("SHOW POOLS").await;
        let seen = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get("database") == Some(db) => Some((
                r.get("cl_waiting").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0),
                r.get("maxwait").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0),
            )),
            _ => None,
        });
        if seen.is_some_and(|(w, m)| w >= n && m >= secs) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool {db} never had {n} waiting for {secs}s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_waiting_for_a_pool_of_one_are_reported_with_their_wait() {
    let db = fresh_db("pgbouncer waiting").await;
    let bouncer = PgBouncer::start(
        cluster(),
        &[db.name()],
        &[
            ("pool_mode", "transaction"),
            ("default_pool_size", "1"),
            ("reserve_pool_size", "0"),
        ],
    );
    // The pool's one server connection, held in a transaction.
    let holder = connect(&bouncer.dsn(db.name())).await;
    holder.batch_execute("BEGIN; SELECT 1").await.expect("hold the server");
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let dsn = bouncer.dsn(db.name());
        waiters.push(tokio::spawn(async move {
            let c = connect(&dsn).await;
            let _ = c.simple_query("SELECT 1").await;
        }));
    }
    wait_for_waiters(&bouncer, db.name(), 3, 1).await;

    let admin = bouncer.admin_dsn();
    let (code, out, err) = health("json", &["--pgbouncer", &admin]).await;
    let report = json(&out, &err);
    let t = &report["targets"][0];
    assert_eq!(t["up"], true, "{report}");
    assert!(
        t["server_version"].as_str().is_some_and(|v| v.starts_with("PgBouncer")),
        "{t}"
    );
    let pools = check(t, "pgbouncer_pools");
    assert_eq!(pools["status"], "WARNING", "{pools}");
    let finding = findings(pools)
        .into_iter()
        .find(|(_, object, _)| object == &format!("pool {}/postgres", db.name()))
        .unwrap_or_else(|| panic!("no finding for the pool: {pools}"));
    assert!(finding.2.starts_with("3 client(s) waiting"), "{finding:?}");
    assert!(finding.2.contains("the oldest for"), "{finding:?}");
    assert_eq!(code, 1, "{out}\n{err}");
    // No Postgres check ran on the admin console.
    assert!(
        t["checks"].as_array().is_some_and(|c| c
            .iter()
            .all(|c| c["name"].as_str().is_some_and(|n| n.starts_with("pgbouncer_")))),
        "{t}"
    );

    // A lower critical bound makes the same state CRITICAL.
    let (code, out, err) = health(
        "json",
        &["--pgbouncer", &admin, "--set", "pgbouncer_pools.waiting_critical=3"],
    )
    .await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert_eq!(
        check(&json(&out, &err)["targets"][0], "pgbouncer_pools")["status"],
        "CRITICAL"
    );

    // The Prometheus text passes promtool and carries the pool's labels.
    let (_, prom, err) = health("prometheus", &["--pgbouncer", &admin]).await;
    promtool_check_metrics(&prom).unwrap_or_else(|e| panic!("{e}\n{prom}\n{err}"));
    let waiting = format!(
        "dbtool_pgbouncer_pool_client_connections{{target=\"127.0.0.1:{}/pgbouncer\",database=\"{}\",user=\"postgres\",state=\"waiting\"}} 3",
        bouncer.port(),
        db.name()
    );
    assert!(prom.contains(&waiting), "{waiting} not in\n{prom}");
    assert!(prom.contains("dbtool_up{target=\"127.0.0.1:"), "{prom}");
    assert!(
        prom.contains(",kind=\"pgbouncer\"} 1"),
        "dbtool_build_info names the kind: {prom}"
    );

    // SHOW SERVERS and SHOW CLIENTS, one by one: the held server, the three waiting clients
    // and how long the first of them has waited.
    let series = |family: &str, extra: &str| {
        format!(
            "{family}{{target=\"127.0.0.1:{}/pgbouncer\",database=\"{}\",user=\"postgres\"{extra}}} ",
            bouncer.port(),
            db.name()
        )
    };
    let value = |head: &str| -> f64 {
        prom.lines()
            .find_map(|l| l.strip_prefix(head))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {head} in\n{prom}"))
    };
    assert_eq!(value(&series("dbtool_pgbouncer_servers", ",state=\"active\"")), 1.0);
    assert_eq!(value(&series("dbtool_pgbouncer_clients", ",state=\"waiting\"")), 3.0);
    assert_eq!(value(&series("dbtool_pgbouncer_clients", ",state=\"active\"")), 1.0);
    let longest = value(&series("dbtool_pgbouncer_client_longest_wait_seconds", ""));
    assert!((1.0..60.0).contains(&longest), "longest wait {longest}");
    let oldest = value(&series("dbtool_pgbouncer_server_oldest_connection_seconds", ""));
    assert!((1.0..120.0).contains(&oldest), "oldest server connection {oldest}");
    let connections = check(t, "pgbouncer_connections");
    assert_eq!(connections["status"], "OK", "{connections}");
    assert!(
        connections["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("1 server connection(s)") && s.contains("4 client(s), 3 waiting")),
        "{connections}"
    );

    holder.batch_execute("COMMIT").await.expect("release the server");
    for w in waiters {
        w.await.expect("waiter");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_database_is_reported() {
    let db = fresh_db("pgbouncer paused").await;
    let bouncer = PgBouncer::start(cluster(), &[db.name()], &[("pool_mode", "transaction")]);
    bouncer.admin(&format!("PAUSE {}", db.name())).await;
    let (code, out, err) = health("json", &["--pgbouncer", &bouncer.admin_dsn()]).await;
    let report = json(&out, &err);
    let dbs = check(&report["targets"][0], "pgbouncer_databases");
    assert_eq!(dbs["status"], "WARNING", "{dbs}");
    let (_, object, message) = findings(dbs).into_iter().next().expect("a finding");
    assert_eq!(object, format!("database {}", db.name()));
    assert!(message.starts_with("paused") && message.contains("RESUME"), "{message}");
    assert_eq!(code, 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_pgbouncer_is_down_while_postgres_in_the_same_run_is_checked() {
    let db = fresh_db("pgbouncer stopped").await;
    let dead = {
        let bouncer = PgBouncer::start(cluster(), &[db.name()], &[]);
        // The password must appear nowhere in the report, whatever happens to the target.
        format!("{} password=s3cr3t-pgb", bouncer.admin_dsn())
    };
    let (code, out, err) = health(
        "json",
        &[
            "--dsn",
            &db.dsn(),
            "--pgbouncer",
            &dead,
            "--check",
            "connections",
            "--check",
            "pgbouncer_pools",
        ],
    )
    .await;
    let report = json(&out, &err);
    let targets = report["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "{report}");
    let pg = target(&report, "postgres");
    assert_eq!(pg["up"], true, "{pg}");
    assert_eq!(check(pg, "connections")["status"], "OK", "{pg}");
    let down = target(&report, "pgbouncer");
    assert_eq!(down["up"], false, "{down}");
    assert!(down["error"].as_str().is_some_and(|e| !e.is_empty()), "{down}");
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        !out.contains("s3cr3t") && !err.contains("s3cr3t"),
        "password in output: {out}\n{err}"
    );
    let (_, prom, _) = health(
        "prometheus",
        &[
            "--dsn",
            &db.dsn(),
            "--pgbouncer",
            &dead,
            "--check",
            "connections",
            "--check",
            "pgbouncer_pools",
        ],
    )
    .await;
    assert!(prom.contains("/pgbouncer\"} 0"), "{prom}");
    assert!(!prom.contains("s3cr3t"), "password in metrics: {prom}");
    promtool_check_metrics(&prom).unwrap_or_else(|e| panic!("{e}\n{prom}"));
}

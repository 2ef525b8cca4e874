//! `dbtool pool-advise` against a real PgBouncer in front of a real throwaway cluster, under a
//! bounded in-process load: too small a pool is found and fixed, an oversized one is CRITICAL.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::run_dbtool as run;
use common::{cluster, dbtool, fresh_db, promtool_check_metrics, PgBouncer};
use serde_json::Value;

/// Clients of the load; each runs `SELECT pg_sleep(SLEEP)` transactions back to back.
const CLIENTS: usize = 24;
const SLEEP: &str = "0.02";
/// The longest a load runs if nobody stops it (a test that panicked mid-window).
const LOAD_AT_MOST: Duration = Duration::from_secs(120);
const SAMPLE: &str = "5s";

fn advise_args(dsn: &str, bouncer: &PgBouncer, format: &str, sample: &str) -> Vec<String> {
    [
        "pool-advise",
        "--dsn",
        dsn,
        "--pgbouncer",
        &bouncer.admin_dsn(),
        "--format",
        format,
        "--sample",
        sample,
        "--db-cores",
        "8",
        "--ssd",
        "--app-instances",
        "1",
        "--app-max-open",
        "24",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// CLIENTS concurrent connections through PgBouncer running short transactions until `stop`
/// is set; returns the number of transactions completed.
fn start_load(dsn: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = tokio::time::Instant::now() + LOAD_AT_MOST;
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (dsn, done, stop) = (dsn.clone(), done.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| panic!("load client through PgBouncer: {e}"));
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                    client
                        .simple_query(&format!("SELECT pg_sleep({SLEEP})"))
                        .await
                        .unwrap_or_else(|e| panic!("load query: {e}"));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.expect("load task");
        }
        done.load(Ordering::Relaxed)
    })
}

/// What one loaded run saw: exit code, the JSON report, the ini output of a second
/// pool-advise sampling the same window, and the transactions the load completed.
struct Loaded {
    code: i32,
    report: Value,
    ini: String,
    done: u64,
}

/// Runs pool-advise twice at once (JSON and ini) while the load runs.
async fn advise_under_load(dsn: &str, bouncer: &PgBouncer, db: &str, pool_size: usize) -> Loaded {
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(bouncer.dsn(db), stop.clone());
    // The window opens once every client is in (active or waiting) and PgBouncer has opened the
    // pool's server connections, however slow connecting is: PgBouncer logs in one server
    // connection at a time, so on a loaded machine a larger pool's first seconds would measure
    // its logins, not its size. The load runs until both samples are taken.
    pool_warm(bouncer, db, pool_size.min(CLIENTS)).await;
    let ((code, out, err), (ini_code, ini, ini_err)) = tokio::join!(
        run(advise_args(dsn, bouncer, "json", SAMPLE)),
        run(advise_args(dsn, bouncer, "ini", SAMPLE))
    );
    stop.store(true, Ordering::Relaxed);
    let done = load.await.expect("load");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    assert_eq!(ini_code, code, "ini run: {ini_err}");
    Loaded {
        code,
        report,
        ini,
        done,
    }
}

/// Polls SHOW POOLS until all CLIENTS of the load are active or waiting on `db`'s pool and at
/// least `servers` server connections are logged in (active, idle or used).
async fn pool_warm(bouncer: &PgBouncer, db: &str, servers: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pools = bouncer.admin("SHOW POOLS").await;
        let sum = |columns: &[&str]| -> usize {
            pools
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) if r.get("database") == Some(db) => Some(
                        columns
                            .iter()
                            .filter_map(|c| r.get(*c)?.parse::<usize>().ok())
                            .sum::<usize>(),
                    ),
                    _ => None,
                })
                .sum()
        };
        let (clients, logged_in) = (
            sum(&["cl_active", "cl_waiting"]),
            sum(&["sv_active", "sv_idle", "sv_used"]),
        );
        if clients >= CLIENTS && logged_in >= servers {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "within 60 s only {clients} of {CLIENTS} load clients connected and {logged_in} of {servers} server connections logged in: {}",
            bouncer.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stats<'a>(v: &'a Value, db: &str) -> &'a Value {
    v["measured"]["pgbouncer"]["stats"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["database"] == db))
        .unwrap_or_else(|| panic!("no stats for {db} in {v}"))
}

fn pool<'a>(v: &'a Value, db: &str) -> &'a Value {
    v["measured"]["pgbouncer"]["pools"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["database"] == db))
        .unwrap_or_else(|| panic!("no pool for {db} in {v}"))
}

fn recommended(v: &Value, setting: &str) -> String {
    v["advice"]["recommendations"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["setting"] == setting))
        .and_then(|r| r["recommended"].as_str())
        .unwrap_or_else(|| panic!("no {setting} in {v}"))
        .to_string()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_small_pool_is_found_and_the_recommendation_removes_the_wait() {
    let db = fresh_db("pool_small").await;
    let bouncer = PgBouncer::start(
        cluster(),
        &[db.name()],
        &[("pool_mode", "transaction"), ("default_pool_size", "2")],
    );

    // 1. Two servers for 24 busy clients: clients wait, and a larger pool is recommended.
    let first = advise_under_load(&db.dsn(), &bouncer, db.name(), 2).await;
    let (before, done_before) = (&first.report, first.done);
    assert_eq!(first.code, 1, "WARNING expected: {before:#}");
    let findings = before["advice"]["findings"].as_array().expect("findings");
    assert!(
        findings
            .iter()
            .any(|f| f["severity"] == "WARNING" && f["message"].as_str().unwrap_or("").contains("clients wait")),
        "{findings:#?}"
    );
    let size: i64 = recommended(before, "default_pool_size").parse().expect("a number");
    assert!(size > 2, "recommended default_pool_size {size} is not larger than 2");
    let (s0, p0) = (stats(before, db.name()), pool(before, db.name()));
    assert!(f(&p0["cl_waiting_peak"]) >= 10.0, "{p0}");

    // 2. Apply the [pgbouncer] section pool-advise writes, RELOAD, repeat the same load.
    assert!(
        first.ini.contains(&format!("\ndefault_pool_size = {size}\n")),
        "{}",
        first.ini
    );
    let body: String = first
        .ini
        .lines()
        .filter(|l| !l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    bouncer.reconfigure(&body).await;
    let shown = bouncer.admin("SHOW CONFIG").await;
    let applied = common::show_value(&shown, "default_pool_size");
    assert_eq!(
        applied.as_deref(),
        Some(size.to_string().as_str()),
        "RELOAD did not apply: {}",
        bouncer.log_text()
    );

    let second = advise_under_load(&db.dsn(), &bouncer, db.name(), size as usize).await;
    let (after, done_after) = (&second.report, second.done);
    let (s1, p1) = (stats(after, db.name()), pool(after, db.name()));
    eprintln!(
        "before: pool 2, {:.1} xact/s, mean wait {:.1} ms, mean waiting {:.2}, peak cl_waiting {}, {} transactions\n\
         after:  pool {size}, {:.1} xact/s, mean wait {:.1} ms, mean waiting {:.2}, peak cl_waiting {}, {} transactions",
        f(&s0["xact_rate"]), f(&s0["avg_wait_seconds"]) * 1e3, f(&s0["waiting_clients"]), p0["cl_waiting_peak"], done_before,
        f(&s1["xact_rate"]), f(&s1["avg_wait_seconds"]) * 1e3, f(&s1["waiting_clients"]), p1["cl_waiting_peak"], done_after,
    );
    // What the pool size decides, whatever the machine's speed: a larger pool must at least
    // halve the waiting. Throughput depends on the machine's load during each window, so it
    // is bounded by the pool's capacity only: 2 servers can run at most 2 / SLEEP transactions a
    // second (pg_sleep never returns early).
    let capacity = 2.0 / SLEEP.parse::<f64>().expect("SLEEP is a number");
    assert!(
        f(&s0["xact_rate"]) <= capacity * 1.1,
        "a pool of 2 cannot run {} xact/s",
        s0["xact_rate"]
    );
    assert!(
        f(&s1["avg_wait_seconds"]) < f(&s0["avg_wait_seconds"]) / 2.0,
        "avg wait did not fall: {s0} → {s1}"
    );
    assert!(
        f(&s1["waiting_clients"]) < f(&s0["waiting_clients"]) / 2.0,
        "waiting did not fall: {s0} → {s1}"
    );
    assert!(
        f(&p1["cl_waiting_peak"]) < f(&p0["cl_waiting_peak"]),
        "cl_waiting did not fall: {p0} → {p1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_beyond_max_connections_are_critical() {
    let db = fresh_db("pool_oversized").await;
    // The cluster allows 100 connections; one pool of 150 plus a reserve of 10 can exceed it.
    let bouncer = PgBouncer::start(
        cluster(),
        &[db.name()],
        &[
            ("pool_mode", "transaction"),
            ("default_pool_size", "150"),
            ("reserve_pool_size", "10"),
        ],
    );
    let client = common::connect(&bouncer.dsn(db.name())).await;
    client.simple_query("SELECT 1").await.expect("through PgBouncer");
    let (code, out, err) = run(advise_args(&db.dsn(), &bouncer, "json", "1s")).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    assert_eq!(code, 2, "CRITICAL expected: {v:#}");
    let critical = v["advice"]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["severity"] == "CRITICAL"))
        .unwrap_or_else(|| panic!("no CRITICAL finding: {v:#}"));
    assert!(
        critical["message"]
            .as_str()
            .unwrap_or("")
            .contains("160 server connections"),
        "{critical}"
    );
    assert_eq!(v["advice"]["derived"]["configured_pool_capacity"], 160);
    // The recommendation fits: pools + reserve within max_connections.
    let size: i64 = recommended(&v, "default_pool_size").parse().expect("a number");
    assert!(size < 100, "{size}");

    let (code, prom, err) = run(advise_args(&db.dsn(), &bouncer, "prometheus", "1s")).await;
    assert_eq!(code, 2, "{err}");
    promtool_check_metrics(&prom).unwrap_or_else(|e| panic!("promtool: {e}\n{prom}"));
    let label = format!("database=\"{}\",user=\"postgres\"}} 0", db.name());
    let waiting = prom
        .lines()
        .find(|l| l.starts_with("dbtool_pgbouncer_clients_waiting{target=\""));
    assert!(waiting.is_some_and(|l| l.ends_with(&label)), "{prom}");
    assert!(
        prom.lines()
            .any(|l| l.starts_with("dbtool_pool_advise_status{target=") && l.ends_with("} 2")),
        "{prom}"
    );
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pgbouncer_advice_comes_from_postgres_and_names_assumptions() {
    // A cluster of its own: on the shared one, the loaded test beside it may hold 18 server
    // connections at this moment, and the advice would rightly not be OK.
    let own = common::own_cluster(tempcluster::ClusterOptions::default());
    let db = common::fresh_db_on(&own, "pool_pg_only").await;
    let args: Vec<String> = ["pool-advise", "--dsn", &db.dsn(), "--format", "json", "--sample", "1s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, out, err) = run(args).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    assert_eq!(code, 0, "{v:#}");
    let assumed = v["advice"]["assumed"].as_array().expect("assumed");
    assert!(
        assumed.iter().any(|a| a.as_str().unwrap_or("").contains("--db-cores")),
        "{assumed:?}"
    );
    assert!(v["measured"]["pgbouncer"].is_null());
    assert!(v["measured"]["postgres"]["max_connections"] == 100);
}

#[test]
fn unreachable_postgres_is_unknown_with_a_clear_message() {
    let out = dbtool()
        .args([
            "pool-advise",
            "--dsn",
            "host=127.0.0.1 port=1 user=x password=hunter2",
            "--sample",
            "1s",
        ])
        .output()
        .expect("run dbtool");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PostgreSQL: could not connect") && !err.contains("hunter2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_admin_console_is_unknown_and_named() {
    let db = fresh_db("pool_no_bouncer").await;
    let port = common::free_port();
    let bouncer = format!("postgres://admin:hunter2@127.0.0.1:{port}/pgbouncer");
    let args: Vec<String> = [
        "pool-advise",
        "--dsn",
        &db.dsn(),
        "--pgbouncer",
        &bouncer,
        "--sample",
        "1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out, err) = run(args).await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("PgBouncer admin console: could not connect"), "{err}");
    assert!(err.contains(&port.to_string()) && !err.contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_user_without_rights_is_told_what_to_add() {
    let db = fresh_db("pool_not_admin").await;
    let bouncer = PgBouncer::start(cluster(), &[db.name()], &[]);
    let console = format!("host=127.0.0.1 port={} user=monitor dbname=pgbouncer", bouncer.port());
    let args: Vec<String> = [
        "pool-advise",
        "--dsn",
        &db.dsn(),
        "--pgbouncer",
        &console,
        "--sample",
        "1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out, err) = run(args).await;
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("not allowed") && err.contains("admin_users or stats_users"),
        "{err}"
    );
}

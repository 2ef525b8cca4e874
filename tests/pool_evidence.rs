//! What pool-advise takes as evidence, against a real PgBouncer in transaction mode and a
//! real pgbench: session features count only when the pooled users use them inside the
//! sample window (a backup before it does not make the advice session mode), and a window
//! without load keeps the current settings instead of advising a pool of one.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::run_dbtool as run;
use common::{cluster, fresh_db, PgBouncer};
use serde_json::Value;

fn pgbench() -> PathBuf {
    let bin = common::backup::pg15().join("pgbench");
    assert!(bin.is_file(), "{} is missing: install postgresql-15", bin.display());
    bin
}

/// `pgbench -S` through PgBouncer for `seconds`: plain read-only transactions, simple protocol.
fn select_load(bouncer: &PgBouncer, db: &str, seconds: u32) -> Child {
    Command::new(pgbench())
        .args(["-n", "-S", "-c", "4", "-j", "2", "-T", &seconds.to_string()])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &bouncer.port().to_string(),
            "-U",
            "postgres",
            db,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("pgbench: {e}"))
}

fn finish(load: Child) {
    let out = load.wait_with_output().expect("pgbench");
    assert!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn advise(db: &str, bouncer: &PgBouncer, sample: &str) -> Value {
    let args: Vec<String> = [
        "pool-advise",
        "--dsn",
        db,
        "--pgbouncer",
        &bouncer.admin_dsn(),
        "--format",
        "json",
        "--sample",
        sample,
        "--db-cores",
        "4",
        "--ssd",
        "--app-instances",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out, err) = run(args).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    assert!(code == 0 || code == 1, "exit {code}: {v:#}\n{err}");
    v
}

fn recommended(v: &Value, setting: &str) -> (String, String) {
    let r = v["advice"]["recommendations"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["setting"] == setting))
        .unwrap_or_else(|| panic!("no {setting} in {v:#}"));
    (
        r["recommended"].as_str().unwrap_or_default().to_string(),
        r["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// The features pool-advise found; failing when pg_stat_statements was not read at all (the
/// test would prove nothing).
fn features(v: &Value) -> Vec<String> {
    v["measured"]["postgres"]["session_features"]
        .as_array()
        .unwrap_or_else(|| panic!("pg_stat_statements was not read: {v:#}"))
        .iter()
        .map(|f| f.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_before_sampling_does_not_turn_the_advice_into_session_mode() {
    let db = fresh_db("pool_evidence").await;
    let client = db.client().await;
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .expect("pg_stat_statements (tempcluster preloads it)");
    let init = Command::new(pgbench())
        .args(["-i", "-s", "1", "-q", &db.dsn()])
        .output()
        .expect("pgbench -i");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    // Regression: pg_dump's SET and PREPARE and dbtool's advisory lock sat in
    // pg_stat_statements, and the advice said session mode under a plain pgbench -S.
    let dest = tempfile::tempdir().expect("tempdir");
    let out = common::backup::backup_db(&db, dest.path(), &[]);
    common::backup::assert_exit(&out, 0);
    // The same user's session features, also before the window.
    client
        .batch_execute(
            "SET work_mem = '8MB'; PREPARE p AS SELECT 1; EXECUTE p; SELECT pg_advisory_lock(42); \
             SELECT pg_advisory_unlock(42); LISTEN dbtool_evidence; RESET work_mem",
        )
        .await
        .expect("session features before the window");
    let bouncer = PgBouncer::start(
        cluster(),
        &[db.name()],
        &[("pool_mode", "transaction"), ("default_pool_size", "5")],
    );

    // dbtool's own session advisory lock inside the window (an archive run, as the pooled
    // user): PostgreSQL 18 drops a statement's leading comment from pg_stat_statements, so
    // the marker that leaves it out must sit inside the statement.
    common::posts::create_daily_posts(&client, 200).await;
    let archiver = tokio::spawn({
        let args = common::posts::daily_archive_args(&db.dsn());
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
            tokio::task::spawn_blocking(move || common::dbtool().args(&args).output())
                .await
                .expect("join")
                .expect("dbtool archive")
        }
    });
    let load = select_load(&bouncer, db.name(), 7);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let v = advise(&db.dsn(), &bouncer, "4s").await;
    finish(load);
    let archived = archiver.await.expect("archive run");
    assert_eq!(archived.status.code(), Some(0), "{}", common::posts::text(&archived));
    assert_eq!(features(&v), Vec::<String>::new(), "{v:#}");
    let (mode, reason) = recommended(&v, "pool_mode");
    assert_eq!(mode, "transaction", "{reason}\n{v:#}");

    // The same run with a client that SETs inside the window: now it is evidence. (Pins that
    // the first half could fail.)
    let load = select_load(&bouncer, db.name(), 7);
    let setter = tokio::spawn({
        let dsn = bouncer.dsn(db.name());
        async move {
            let c = common::connect(&dsn).await;
            let until = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
            while tokio::time::Instant::now() < until {
                c.batch_execute("SET search_path = public")
                    .await
                    .expect("SET through PgBouncer");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let v = advise(&db.dsn(), &bouncer, "4s").await;
    finish(load);
    setter.await.expect("setter");
    let found = features(&v);
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("SET (") && f.contains("postgres on")),
        "{found:?}\n{v:#}"
    );
    assert_eq!(recommended(&v, "pool_mode").0, "session", "{v:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_keeps_the_current_pool_sizes_and_says_why() {
    let db = fresh_db("pool_idle").await;
    db.client()
        .await
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .expect("pg_stat_statements");
    let bouncer = PgBouncer::start(
        cluster(),
        &[db.name()],
        &[("pool_mode", "transaction"), ("default_pool_size", "7")],
    );
    // Regression: an idle window advised default_pool_size 1.
    let v = advise(&db.dsn(), &bouncer, "2s").await;
    let (size, reason) = recommended(&v, "default_pool_size");
    assert_eq!(size, "7", "{reason}\n{v:#}");
    let assumed = v["advice"]["assumed"].to_string();
    assert!(assumed.contains("insufficient load to measure"), "{assumed}");
    let (mode, reason) = recommended(&v, "pool_mode");
    assert_eq!(mode, "transaction", "{reason}");
    assert!(reason.contains("too little load"), "{reason}");
}

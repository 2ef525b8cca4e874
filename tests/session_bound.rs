//! `health --max-connections N` holds at most N sessions on the server at any moment, the
//! first one included, however many databases it visits.
//!
//! Regression (issue "Do no harm", item 6): with `--max-connections 2` a watcher saw three
//! dbtool sessions at once: a closed lane's backend was still there when the next one opened.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use common::*;

/// Runs `dbtool health` over `dbs` with `--max-connections n` while a watcher counts the
/// server's sessions of this run (its own application_name); returns the most seen at once
/// and the report.
async fn most_sessions_seen(main: &TestDb, dbs: &[TestDb], n: &str, app: &str) -> (i64, serde_json::Value) {
    let watcher = main.client().await;
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'");
    let watch = {
        let (stop, most) = (stop.clone(), most.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let seen: i64 = watcher.query_one(&sql, &[]).await.expect("count sessions").get(0);
                most.fetch_max(seen, Ordering::Relaxed);
            }
        })
    };
    let dsn = format!("{} application_name={app}", main.dsn());
    let mut args = vec!["--max-connections", n, "--database", main.name()];
    for db in dbs {
        args.extend(["--database", db.name()]);
    }
    let (_, report) = health_report(&dsn, &args).await;
    stop.store(true, Ordering::Relaxed);
    watch.await.expect("watcher");
    (most.load(Ordering::Relaxed), report)
}

async fn databases(hint: &str, n: usize) -> Vec<TestDb> {
    let mut dbs = Vec::new();
    for i in 0..n {
        let db = fresh_db(&format!("{hint}_{i}")).await;
        db.client()
            .await
            .batch_execute("CREATE TABLE t (id int PRIMARY KEY); CREATE SEQUENCE s")
            .await
            .expect("create objects");
        dbs.push(db);
    }
    dbs
}

#[tokio::test]
async fn max_connections_counts_every_session_the_first_included() {
    let main = fresh_db("bound_main").await;
    let dbs = databases("bound_other", 6).await;
    for round in 0..3 {
        let (most, report) = most_sessions_seen(&main, &dbs, "2", "dbtool_bound_two").await;
        assert_eq!(report["targets"][0]["up"], true, "{report:#}");
        assert!(
            most <= 2,
            "round {round}: {most} sessions at once with --max-connections 2"
        );
        assert!(most >= 1, "the watcher never saw dbtool");
        // Every database was visited: per-database checks report no failure anywhere.
        let vacuum = check_of(&report, "vacuum");
        assert_eq!(vacuum["status"], "OK", "{vacuum:#}");
    }
}

#[tokio::test]
async fn max_connections_one_checks_the_connected_database_and_says_which_it_skipped() {
    let main = fresh_db("bound_one").await;
    let dbs = databases("bound_one_other", 2).await;
    let (most, report) = most_sessions_seen(&main, &dbs, "1", "dbtool_bound_one").await;
    assert!(most <= 1, "{most} sessions at once with --max-connections 1");
    let sequences = check_of(&report, "sequences");
    assert_eq!(sequences["status"], "OK", "{sequences:#}");
    let skipped: Vec<String> = findings(sequences)
        .into_iter()
        .filter(|(_, _, m)| m.contains("not visited: --max-connections 1"))
        .map(|(_, object, _)| object)
        .collect();
    let expected: Vec<String> = dbs.iter().map(|d| format!("database {}", d.name())).collect();
    assert_eq!(skipped.len(), expected.len(), "{sequences:#}");
    for e in expected {
        assert!(skipped.contains(&e), "{e} not reported as skipped: {sequences:#}");
    }
}

//! Which metric names dbtool really emits: each command that writes metrics is run for real
//! and its output read, so a rule or panel that names a metric nobody emits fails a test.
//!
//! Adding a command (backup, archive, schedule, pool-advise as they land): write an async
//! function that runs it against the suite's cluster and returns `names_in(&its output)`, add
//! it to `PRODUCERS`, and delete its `PENDING` entry (the test insists on both).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use crate::common::run_dbtool;
use crate::common::{dbtool, fresh_db, http_get, start_node_exporter, TestDb};

#[path = "commands.rs"]
mod commands;

pub type Names = BTreeSet<String>;
type Producer = fn(PathBuf) -> Pin<Box<dyn Future<Output = Names> + Send>>;

/// Every source of metrics this test runs for real: (command as in `dbtool help`, or an
/// exporter, how to get its real output). `dir` is a scratch directory of the producer's own.
pub const PRODUCERS: &[(&str, Producer)] = &[
    ("health", |dir| Box::pin(health(dir))),
    ("health", |dir| Box::pin(commands::health_replication(dir))),
    ("health", |dir| Box::pin(commands::health_pgbouncer(dir))),
    ("health", |dir| Box::pin(commands::health_redis(dir))),
    ("backup", |dir| Box::pin(commands::backup(dir))),
    ("archive", |dir| Box::pin(commands::archive(dir))),
    ("schedule", |dir| Box::pin(commands::schedule(dir))),
    ("serve", |dir| Box::pin(commands::serve(dir))),
    ("pool-advise", |dir| Box::pin(commands::pool_advise(dir))),
    ("node_exporter", |dir| Box::pin(node_exporter(dir))),
];

/// A part of dbtool that is not in this build yet.
#[derive(Debug)]
#[allow(dead_code)] // constructed only while some part is PENDING
pub enum Feature {
    /// A subcommand, as `dbtool help` lists it.
    Command(&'static str),
    /// A health check, as `dbtool checks --format json` lists it.
    Check(&'static str),
}

/// Metrics the shipped rules and dashboard use from parts still being written (issues 3–7).
/// Honest by construction: an entry counts only while its feature is absent from the binary;
/// once the feature is there, its metrics must be in real output or the test fails.
pub const PENDING: &[(Feature, &[&str])] = &[];

/// Metrics from views older servers lack, by the server_version_num that has them: on an older
/// server they cannot be in the output, and the rest of the check still holds.
pub const SINCE_VERSION: &[(u32, &[&str])] = &[(
    140000,
    &[
        "dbtool_wal_generated_bytes_total",
        "dbtool_wal_records_total",
        "dbtool_wal_full_page_images_total",
        "dbtool_wal_buffers_full_total",
    ],
)];

/// Subcommands known to emit no metrics. A subcommand that is in neither this list, nor
/// `PRODUCERS`, nor `PENDING` fails the test: someone must say whether it emits metrics.
pub const NO_METRICS: &[&str] = &[
    "demo",
    "checks",
    "config",
    "completions",
    "man",
    "help",
    "backups",
    "restore",
    "migrate",
    "history",
];

/// Health checks the rules and dashboard have been reviewed against. A check outside this
/// list and `PENDING` fails the test, so a pending check cannot land under another name
/// and leave its pending metrics unverified for ever.
pub const KNOWN_CHECKS: &[&str] = &[
    "replication",
    "archiver",
    "database_activity",
    "checkpoints",
    "connections",
    "locks",
    "long_transactions",
    "vacuum",
    "cache_hit",
    "sequences",
    "indexes",
    "bloat",
    "top_queries",
    "server",
    "xmin_horizon",
    "maintenance",
    "wal",
    "waits",
    "hygiene",
    "pgbouncer_pools",
    "pgbouncer_connections",
    "pgbouncer_clients",
    "pgbouncer_databases",
    "pgbouncer_stats",
    "redis_memory",
    "redis_clients",
    "redis_replication",
    "redis_persistence",
    "redis_commands",
];

pub use crate::common::metric_names_in as names_in;

/// Issue 13 items 5 and 6: an output of dbtool passes `promtool check metrics` with zero
/// problems (lint included), and every dbtool series in it carries `target`. Its metric names.
pub fn linted(what: &str, text: &str) -> Names {
    if let Err(problems) = crate::common::promtool_check_metrics(text) {
        panic!("promtool check metrics on {what}:\n{problems}\n{text}");
    }
    let untargeted: Vec<&str> = text
        .lines()
        // /probe's own series (dbtool_probe_*) describe the daemon's endpoint by target kind,
        // like process_*: no target is theirs.
        .filter(|l| l.starts_with("dbtool_") && !l.starts_with("dbtool_probe") && !l.contains("{target=\""))
        .collect();
    assert!(
        untargeted.is_empty(),
        "{what}: series without a target label: {untargeted:#?}"
    );
    let names = names_in(text);
    assert!(!names.is_empty(), "{what}: no metrics at all");
    names
}
pub use crate::common::wait_until as wait_for;

/// [`run_dbtool`] with extra environment variables.
/// Runs a dbtool command printing Prometheus text, whose exit is a Nagios status (0-2, not a
/// failure: the metrics are printed whatever the findings), and lints what it printed.
pub async fn nagios_scrape(what: &str, args: Vec<String>) -> Names {
    let (code, out, err) = run_dbtool(args).await;
    assert!((0..=2).contains(&code), "dbtool {what} exited {code}: {err}\n{out}");
    linted(what, &out)
}

pub async fn run_dbtool_env(args: Vec<String>, env: &[(&str, &str)]) -> (i32, String, String) {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let out = tokio::task::spawn_blocking(move || dbtool().args(&args).envs(env).output())
        .await
        .expect("join")
        .expect("run dbtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Subcommands of this build, from `dbtool help`.
pub async fn subcommands() -> Names {
    let (code, out, err) = run_dbtool(vec!["help".into()]).await;
    assert_eq!(code, 0, "dbtool help failed: {err}");
    let commands = out
        .split("Commands:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in dbtool help:\n{out}"));
    commands
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // "  name  about"; a wrapped about line is indented further.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Health checks of this build, from `dbtool checks --format json`.
pub async fn checks() -> Names {
    let (code, out, err) = run_dbtool(vec!["checks".into(), "--format".into(), "json".into()]).await;
    assert_eq!(code, 0, "dbtool checks --format json failed: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks list: {out}"))
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// A database with every condition the health families describe: dead tuples in a table that
/// autovacuum may not touch, block reads, a session idle in transaction holding an ACCESS
/// EXCLUSIVE lock and a session waiting for it. Returns the real `--format prometheus` output.
pub async fn health_exposition(extra: &[&str]) -> (String, Conditions) {
    let db = fresh_db("emitted").await;
    let setup = db.client().await;
    setup
        .batch_execute(
            "CREATE TABLE posts (id int PRIMARY KEY, body text) WITH (autovacuum_enabled = false);
             INSERT INTO posts SELECT g, 'post ' || g FROM generate_series(1, 10000) g;
             DELETE FROM posts WHERE id % 2 = 0;
             SELECT count(*) FROM posts;",
        )
        .await
        .expect("setup");
    wait_for(
        &setup,
        "SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 'posts'",
    )
    .await;
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let waiter = db.client().await;
    let waiting = tokio::spawn(async move { waiter.simple_query("SELECT count(*) FROM posts").await.map(|_| ()) });
    wait_for(
        &setup,
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    .await;
    let mut args: Vec<String> = [
        "health",
        "--format",
        "prometheus",
        "--set",
        "cache_hit.min_blocks=1",
        "--dsn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(db.dsn());
    args.extend(extra.iter().map(|s| s.to_string()));
    let (code, out, err) = run_dbtool(args).await;
    assert!((0..=2).contains(&code), "dbtool health exited {code}: {err}\n{out}");
    waiting.abort();
    (
        out,
        Conditions {
            _db: db,
            _sessions: [holder, setup],
        },
    )
}

/// The sessions and the database of a condition, kept until the caller is done with it.
pub struct Conditions {
    _db: TestDb,
    _sessions: [tokio_postgres::Client; 2],
}

async fn health(_dir: PathBuf) -> Names {
    // An inactive physical slot that reserves WAL, for the replication check's slot families.
    let slot = format!("dbtool_emitted_{}", std::process::id());
    let admin = crate::common::connect(&crate::common::cluster().dsn("postgres")).await;
    admin
        .execute("SELECT pg_create_physical_replication_slot($1, true)", &[&slot])
        .await
        .expect("create a replication slot");
    let (out, _conditions) = health_exposition(&[]).await;
    admin
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .expect("drop the replication slot");
    assert!(
        out.lines().any(|l| l.starts_with("dbtool_up{") && l.ends_with(" 1")),
        "health could not connect, so its output proves little:\n{out}"
    );
    linted("health --format prometheus", &out)
}

/// node_exporter's own textfile families, read from a real node_exporter serving dbtool's file.
async fn node_exporter(dir: PathBuf) -> Names {
    let db = fresh_db("emitted_textfile").await;
    let file = dir.join("dbtool.prom");
    let args = vec![
        "health".into(),
        "--format".into(),
        "prometheus".into(),
        "--dsn".into(),
        db.dsn(),
        "--output".into(),
        file.display().to_string(),
    ];
    let (code, _, err) = run_dbtool(args).await;
    assert!((0..=2).contains(&code), "dbtool health --output exited {code}: {err}");
    let (_exporter, port) = start_node_exporter(&dir);
    for _ in 0..100 {
        if let Some(body) = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
            .await
            .ok()
            .flatten()
        {
            return names_in(&body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node_exporter on port {port} never answered");
}

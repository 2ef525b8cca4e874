//! Producers for the commands and checks of issues 3–7: each runs the real command against a
//! throwaway cluster (with a standby, a PgBouncer, pg_dump 15 …) and returns the metric names
//! in its real output. Listed in `PRODUCERS` (emitted.rs).

use std::path::PathBuf;
use std::time::Duration;

use tempcluster::ClusterOptions;

use super::{linted, nagios_scrape, run_dbtool, run_dbtool_env, wait_for, Names};
use crate::common::PgBouncer;
use crate::common::{cluster, connect, fresh_db, fresh_db_on, own_cluster, Killed};

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// health's replication families, from a primary with a streaming standby and from the standby.
pub async fn health_replication(_dir: PathBuf) -> Names {
    // Data checksums on, so the hygiene check's checksum counters are emitted too.
    let primary = own_cluster(ClusterOptions {
        initdb_args: vec!["--data-checksums".into()],
        ..Default::default()
    });
    let standby = crate::common::streaming_standby(&primary).await;
    let p = connect(&primary.dsn("postgres")).await;
    // The standby's own lag is only known once it has replayed a transaction.
    p.batch_execute("CREATE TABLE replicated AS SELECT 1 AS one")
        .await
        .expect("write on the primary");
    let s = crate::common::caught_up(&p, &standby).await;
    // dbtool emits the standby's replay lag only when it can be told (receive position and last
    // replayed transaction known); under load the receiver can lag behind the replay check above.
    wait_for(
        &s,
        "SELECT pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_xact_replay_timestamp() IS NOT NULL",
    )
    .await;
    let mut names = replication_names(&primary.dsn("postgres")).await;
    // The standby's replay lag is emitted only while it can be told; a loaded machine can catch
    // the receiver between messages (seen in CI), so ask again, a bounded number of times.
    for _ in 0..40 {
        let standby_names = replication_names(&standby.dsn("postgres")).await;
        let told = standby_names.contains("dbtool_replication_replay_lag_seconds");
        names.extend(standby_names);
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    names
}

/// Metric names of `dbtool health --check replication` against one server.
async fn replication_names(dsn: &str) -> Names {
    let args = strings(&[
        "health",
        "--format",
        "prometheus",
        "--check",
        "replication",
        "--check",
        "hygiene",
        "--dsn",
        dsn,
    ]);
    nagios_scrape("health --check replication", args).await
}

/// `dbtool backup --metrics` after a successful backup, on the major under test with client
/// tools that can dump it (tests/common/backup.rs).
pub async fn backup(dir: PathBuf) -> Names {
    let db = fresh_db_on(crate::common::backup::backup_cluster(), "emitted_backup").await;
    db.client()
        .await
        .batch_execute("CREATE TABLE t AS SELECT generate_series(1, 100) AS id")
        .await
        .expect("seed");
    let metrics = dir.join("backup.prom");
    let dest = dir.join("backups");
    let args = strings(&[
        "backup",
        "--dsn",
        &db.dsn(),
        "--dest",
        &dest.display().to_string(),
        "--metrics",
        &metrics.display().to_string(),
    ]);
    let client = crate::common::backup::client();
    let (code, out, err) = run_dbtool_env(args, &[("DBTOOL_PG_BIN", &client.display().to_string())]).await;
    assert_eq!(code, 0, "dbtool backup failed: {err}\n{out}");
    let text = std::fs::read_to_string(&metrics).unwrap_or_else(|e| panic!("{}: {e}", metrics.display()));
    linted("backup --metrics", &text)
}

/// `dbtool archive --metrics` moving old rows of a posts table.
pub async fn archive(dir: PathBuf) -> Names {
    let db = fresh_db("emitted_archive").await;
    crate::common::posts::create_daily_posts(&db.client().await, 1000).await;
    let metrics = dir.join("archive.prom");
    let mut args = crate::common::posts::daily_archive_args(&db.dsn());
    args.extend(["--metrics".to_string(), metrics.display().to_string()]);
    let (code, out, err) = run_dbtool(args).await;
    assert_eq!(code, 0, "dbtool archive failed: {err}\n{out}");
    let text = std::fs::read_to_string(&metrics).unwrap_or_else(|e| panic!("{}: {e}", metrics.display()));
    linted("archive --metrics", &text)
}

/// `dbtool schedule --metrics` once a health job has run (every second).
pub async fn schedule(dir: PathBuf) -> Names {
    let db = fresh_db("emitted_schedule").await;
    let (code, _, err) = run_dbtool(strings(&["migrate", "--dsn", &db.dsn()])).await;
    assert_eq!(code, 0, "dbtool migrate failed: {err}");
    let config = dir.join("dbtool.toml");
    let metrics = dir.join("schedule.prom");
    std::fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"main\"\ndsn = \"{}\"\n\n[[jobs]]\nname = \"health\"\nkind = \"health\"\n\
             schedule = \"* * * * * *\"\ntarget = \"main\"\noutput = \"{}\"\ncatch_up = false\nchecks = [\"connections\"]\n",
            db.dsn(),
            dir.join("health.prom").display()
        ),
    )
    .expect("write config");
    let port = crate::common::free_port();
    let child = crate::common::dbtool()
        .arg("--config")
        .arg(&config)
        .arg("schedule")
        .arg("--metrics")
        .arg(&metrics)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dbtool schedule");
    let _daemon = Killed(child);
    for _ in 0..200 {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if text.contains("dbtool_job_last_success_timestamp_seconds{") {
            let mut names = linted("schedule's metrics_file", &text);
            names.extend(served_metrics("schedule", port).await);
            return names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "dbtool schedule wrote no successful run into {} within 20 s",
        metrics.display()
    );
}

/// The daemon's /metrics on 127.0.0.1:`port`, linted.
async fn served_metrics(daemon: &str, port: u16) -> Names {
    let served = tokio::task::spawn_blocking(move || crate::common::http_get(port, "/metrics"))
        .await
        .expect("join")
        .unwrap_or_else(|| panic!("dbtool {daemon} does not answer on 127.0.0.1:{port}/metrics"));
    linted(&format!("{daemon}'s /metrics"), &served)
}

/// `dbtool serve`: its /metrics (the probe self-metrics) after one /probe of a `[[targets]]`
/// entry, and that probe's answer.
pub async fn serve(dir: PathBuf) -> Names {
    let db = fresh_db("emitted_serve").await;
    let config = dir.join("dbtool.toml");
    std::fs::write(
        &config,
        format!("[[targets]]\nname = \"main\"\ndsn = \"{}\"\n", db.dsn()),
    )
    .expect("write config");
    let port = crate::common::free_port();
    let child = crate::common::dbtool()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dbtool serve");
    let _daemon = Killed(child);
    for _ in 0..200 {
        let probed = tokio::task::spawn_blocking(move || crate::common::http_get(port, "/probe?target=main"))
            .await
            .expect("join");
        if let Some(probed) = probed.filter(|p| p.contains("dbtool_up{")) {
            let mut names = linted("serve's /probe", &probed);
            names.extend(served_metrics("serve", port).await);
            return names;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("dbtool serve answered no /probe within 20 s");
}

/// `dbtool pool-advise --format prometheus` against a real PgBouncer.
pub async fn pool_advise(_dir: PathBuf) -> Names {
    let db = fresh_db("emitted_pool").await;
    let bouncer = PgBouncer::start(cluster(), &[db.name()], &[]);
    // PgBouncer shows a pool only once a client has used it.
    let client = connect(&bouncer.dsn(db.name())).await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("a query through PgBouncer");
    let args = strings(&[
        "pool-advise",
        "--dsn",
        &db.dsn(),
        "--pgbouncer",
        &bouncer.admin_dsn(),
        "--format",
        "prometheus",
        "--sample",
        "1s",
    ]);
    nagios_scrape("pool-advise --format prometheus", args).await
}

/// `dbtool health --pgbouncer`: a real PgBouncer whose pool has been used, so every
/// `dbtool_pgbouncer_pool_*` family has a series.
pub async fn health_pgbouncer(_dir: PathBuf) -> Names {
    let db = fresh_db("emitted_bouncer").await;
    let bouncer = PgBouncer::start(cluster(), &[db.name()], &[]);
    let client = connect(&bouncer.dsn(db.name())).await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("a query through PgBouncer");
    let args = strings(&["health", "--pgbouncer", &bouncer.admin_dsn(), "--format", "prometheus"]);
    nagios_scrape("health --pgbouncer --format prometheus", args).await
}

/// `dbtool health --redis`: a real redis-server with a replica attached, AOF on and a few
/// commands run, so every `dbtool_redis_*` family has a series.
pub async fn health_redis(_dir: PathBuf) -> Names {
    let primary = crate::common::Redis::start(&["--appendonly", "yes"]);
    let port = primary.port().to_string();
    let replica = crate::common::Redis::start(&["--replicaof", "127.0.0.1", &port]);
    let mut c = primary.connection();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).expect("SET");
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut c).expect("GET");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while replica.info("master_link_status").as_deref() != Some("up") {
        assert!(std::time::Instant::now() < deadline, "the replica never linked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut names = Names::new();
    for url in [primary.url(), replica.url()] {
        let args = strings(&["health", "--redis", &url, "--format", "prometheus"]);
        names.extend(nagios_scrape("health --redis --format prometheus", args).await);
    }
    names
}

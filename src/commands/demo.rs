//! `dbtool demo`: a throwaway cluster with real trouble in it, and the health report on it.
//!
//! Starts a cluster from the installed server binaries, creates a chat-style `posts` table with
//! dead tuples and autovacuum off, a session idle in transaction holding an ACCESS EXCLUSIVE
//! lock, and a session blocked behind it; runs the report; removes everything.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use tempcluster::{ClusterOptions, TempCluster};
use tokio_postgres::NoTls;

use crate::checks::options::HealthOptions;
use crate::cli::DemoArgs;
use crate::db::Target;
use crate::db::{ConnParams, MapEnv};
use crate::report;
use crate::settings::Settings;

const SETUP: &str = "
CREATE TABLE posts (id text PRIMARY KEY, channel_id text NOT NULL, create_at bigint NOT NULL, message text)
    WITH (autovacuum_enabled = false);
INSERT INTO posts SELECT md5(i::text), 'town-square', 1600000000000 + i * 1000, repeat('hello ', 10)
    FROM generate_series(1, 20000) i;
DELETE FROM posts WHERE create_at % 3000 = 0;
ANALYZE posts;";

async fn client(dsn: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls)
        .await
        .context("connecting to the demo cluster")?;
    tokio::spawn(conn);
    Ok(client)
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    eprintln!("dbtool demo: starting a throwaway PostgreSQL cluster ...");
    let opts = ClusterOptions {
        bin_dir: args.pg_bin.clone(),
        conf: vec!["max_connections = 20".into()],
        ..ClusterOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || TempCluster::start(opts))
        .await
        .context("starting the demo cluster")??;
    eprintln!(
        "dbtool demo: cluster on port {} (data in {}); creating activity ...",
        cluster.port(),
        cluster.data_dir().display()
    );
    let admin = client(&cluster.dsn("postgres")).await?;
    admin.batch_execute("CREATE DATABASE chat").await?;
    let chat_dsn = cluster.dsn("chat");
    let setup = client(&chat_dsn).await?;
    setup.batch_execute(SETUP).await.context("creating the demo table")?;
    // Statistics reach pg_stat views when a backend flushes them; a closed session flushes.
    drop(setup);

    let holder = client(&chat_dsn).await?;
    holder
        .batch_execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE; SELECT 1")
        .await?;
    let waiter = client(&chat_dsn).await?;
    let blocked = tokio::spawn(async move { waiter.simple_query("SELECT count(*) FROM posts").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let params = ConnParams::resolve(Some(&cluster.dsn("postgres")), &MapEnv(Default::default()))?;
    let health = HealthOptions {
        // Seconds instead of minutes, so the trouble made a moment ago shows.
        set: [
            "locks.warning_seconds=1",
            "locks.critical_seconds=600",
            "long_transactions.idle_warning_seconds=2",
        ]
        .map(String::from)
        .to_vec(),
        ..HealthOptions::default()
    };
    let mut settings = crate::settings::health::resolve(
        &health,
        &Default::default(),
        &Default::default(),
        &Settings::default(),
        &MapEnv(Default::default()),
    )?;
    settings.targets = vec![Target::postgres("demo".into(), crate::db::TargetKind::Postgres, params)];
    let report = super::health::execute(&settings).await;

    let mut buf = Vec::new();
    let style = report::Style {
        colour: report::table::colour_for_stdout(),
        ..report::Style::plain()
    };
    report::render(&report, args.format, &mut buf, style)?;
    std::io::stdout().lock().write_all(&buf)?;
    eprintln!("dbtool demo: thresholds for locks and idle transactions were lowered to seconds for the demo; removing the cluster ...");
    blocked.abort();
    drop(holder);
    drop(admin);
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    // The demo succeeded if it showed a report; its findings are the point, not a failure.
    Ok(0)
}

//! `dbtool archive --max-lag`: batches wait while a streaming standby's replay lag exceeds the
//! limit, stop cleanly at `--max-runtime` if it never recovers, and go on once it does.

mod common;

use common::posts::{archive, count, count_old, create_posts, fingerprint, in_both, text};
use common::{connect, fresh_db_on, own_cluster, streaming_standby, wait_until};
use tempcluster::ClusterOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lag_waits_for_a_lagging_standby_and_continues_when_it_catches_up() {
    // The standby (a copy of this configuration) reports its positions every second, so the
    // primary sees its replay lag grow while it applies nothing.
    let primary = own_cluster(ClusterOptions {
        conf: vec!["wal_receiver_status_interval = 1s".into()],
        ..ClusterOptions::default()
    });
    let db = fresh_db_on(&primary, "archive_lag").await;
    let standby = streaming_standby(&primary).await;
    let p = db.client().await;
    // The standby receives WAL but applies none of it: its replay lag keeps growing.
    let s = connect(&standby.dsn("postgres")).await;
    s.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause replay");
    create_posts(&p, "posts", 20_000).await;
    wait_until(
        &p,
        "SELECT max(extract(epoch FROM replay_lag)) > 1.5 FROM pg_stat_replication",
    )
    .await;
    let old = count_old(&p, "posts").await;
    let before = fingerprint(&p, &["posts"]).await;

    let out = archive(&db.dsn(), &["--max-lag", "1s", "--max-runtime", "3s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stopped: a standby stayed behind --max-lag until --max-runtime"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pausing: a standby's replay lag is"),
        "{}",
        text(&out)
    );
    assert_eq!(
        count_old(&p, "posts").await,
        old,
        "no batch ran while the standby lagged"
    );

    // Once the standby applies its backlog the lag drops (the last measured value lingers
    // a few seconds), and the same command runs to the end.
    s.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .expect("resume replay");
    let out = archive(&db.dsn(), &["--max-lag", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{old} rows moved; done")),
        "{}",
        text(&out)
    );
    assert_eq!(count(&p, "archive.posts").await, old);
    assert_eq!(in_both(&p, "posts", "archive.posts").await, 0);
    assert_eq!(fingerprint(&p, &["posts", "archive.posts"]).await, before);
}

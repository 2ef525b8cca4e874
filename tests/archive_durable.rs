//! `dbtool archive` exit 0 means the rows are moved for good: a crash of either server right
//! after the run must not undo what it reported. Batches commit asynchronously (one WAL flush
//! saved per batch), so this holds only because the run flushes before it reports (or, for a
//! role that may not emit the logical message the flush writes, waits for the WAL writer), and
//! because a `--dest-dsn` destination commits synchronously before the source deletes.
//!
//! The clusters here make asynchronous commits linger: the WAL writer flushes every 10 s at
//! most and the background writer (whose page writes would flush WAL) is off. Without the
//! destination's synchronous commit, the cross-database test loses rows on every run. Without
//! the final flush, the same-database test loses the whole run on PostgreSQL 18, whose WAL
//! writer leaves WAL unwritten meanwhile; earlier majors write completed WAL pages to the OS
//! (which an immediate stop does not lose), so there only a run whose last batch shares the
//! unwritten last page would lose it.

mod common;

use common::posts::{archive, count, count_old, create_posts, fingerprint, text};
use common::{fresh_db_on, own_cluster, quote_ident, stop_immediately, TestDb};
use tempcluster::{ClusterOptions, TempCluster};

/// Ten batches or so per run.
const BATCHES: &[&str] = &["--batch-size", "200"];

fn lingering_commits() -> TempCluster {
    own_cluster(ClusterOptions {
        conf: vec![
            "synchronous_commit = off".into(),
            "wal_writer_delay = 10s".into(),
            "wal_writer_flush_after = 1GB".into(),
            "bgwriter_lru_maxpages = 0".into(),
            "wal_buffers = 16MB".into(),
        ],
        ..ClusterOptions::default()
    })
}

fn crash_and_restart(cluster: &TempCluster) {
    stop_immediately(cluster);
    common::start_again(cluster);
}

/// Crashes the server, then checks that all `old` rows are in the archive, none is left in
/// the source, and the rows' contents match `before`.
async fn crash_then_all_moved(cluster: &TempCluster, db: &TestDb, old: i64, before: (i64, String)) {
    crash_and_restart(cluster);
    let c = db.client().await;
    assert_eq!(
        count_old(&c, "posts").await,
        0,
        "exit 0, yet the crash undid moved rows"
    );
    assert_eq!(count(&c, "archive.posts").await, old);
    assert_eq!(fingerprint(&c, &["posts", "archive.posts"]).await, before);
}

#[tokio::test]
async fn rows_reported_moved_survive_a_server_crash_right_after_the_run() {
    let cluster = lingering_commits();
    let db = fresh_db_on(&cluster, "archive_durable").await;
    let c = db.client().await;
    create_posts(&c, "posts", 4_000).await;
    // The setup itself committed asynchronously; a checkpoint makes it durable.
    c.batch_execute("CHECKPOINT").await.expect("checkpoint");
    let old = count_old(&c, "posts").await;
    let before = fingerprint(&c, &["posts"]).await;

    let out = archive(&db.dsn(), BATCHES);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{old} rows moved; done")),
        "{}",
        text(&out)
    );
    crash_then_all_moved(&cluster, &db, old, before).await;
}

#[tokio::test]
async fn a_cross_database_destination_with_asynchronous_commit_never_loses_a_row() {
    // The source is durable by default; the destination, on a server of its own, is not.
    let source_cluster = own_cluster(ClusterOptions {
        conf: vec!["synchronous_commit = on".into()],
        ..ClusterOptions::default()
    });
    let cold_cluster = lingering_commits();
    let db = fresh_db_on(&source_cluster, "archive_hot").await;
    let cold = fresh_db_on(&cold_cluster, "archive_cold").await;
    let c = db.client().await;
    create_posts(&c, "posts", 4_000).await;
    c.batch_execute("CHECKPOINT").await.expect("checkpoint");
    let old = count_old(&c, "posts").await;
    let cc = cold.client().await;
    // The destination table exists (and is durable) before the run; the run only inserts.
    cc.batch_execute(
        "CREATE SCHEMA archive;
         CREATE TABLE archive.posts (Id text PRIMARY KEY, CreateAt bigint NOT NULL,
             UpdateAt bigint NOT NULL DEFAULT 0, ChannelId text NOT NULL, Message text,
             Props jsonb NOT NULL DEFAULT '{}', IsPinned boolean DEFAULT false);
         CHECKPOINT",
    )
    .await
    .expect("destination table");

    let out = archive(&db.dsn(), &["--dest-dsn", &cold.dsn(), "--batch-size", "200"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count_old(&c, "posts").await, 0);
    crash_and_restart(&cold_cluster);

    let cc = cold.client().await;
    assert_eq!(
        count(&cc, "archive.posts").await,
        old,
        "rows deleted at the source were lost at the destination"
    );
}

/// The WAL writer must flush here, so this cluster keeps its defaults (asynchronous commit,
/// as everywhere in the suite); on PostgreSQL 18 a run that did not wait loses its rows.
#[tokio::test]
async fn without_the_privilege_to_write_wal_the_run_waits_for_the_wal_writer() {
    let cluster = own_cluster(ClusterOptions::default());
    let db = fresh_db_on(&cluster, "archive_no_emit").await;
    let c = db.client().await;
    create_posts(&c, "posts", 4_000).await;
    // A hardened database: the archiving role owns the table but may not emit logical
    // messages (function privileges are per database, so this touches no other test).
    c.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE dbtool_archiver LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER TABLE posts OWNER TO dbtool_archiver;
         GRANT CREATE ON DATABASE {} TO dbtool_archiver;
         DO $$ DECLARE f regprocedure; BEGIN
           FOR f IN SELECT oid FROM pg_proc WHERE proname = 'pg_logical_emit_message' LOOP
             EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
           END LOOP; END $$;
         CHECKPOINT",
        quote_ident(db.name())
    ))
    .await
    .expect("a role without pg_logical_emit_message");
    let old = count_old(&c, "posts").await;
    let before = fingerprint(&c, &["posts"]).await;

    let out = archive(&format!("{} user=dbtool_archiver", db.dsn()), BATCHES);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waiting for the WAL writer"),
        "{}",
        text(&out)
    );
    crash_then_all_moved(&cluster, &db, old, before).await;
}

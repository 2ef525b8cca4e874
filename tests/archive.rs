//! `dbtool archive` against a real cluster, on a Mattermost-like posts table.

mod common;

use common::posts::{archive, count, count_old, create_posts, fingerprint, in_both, text};
use common::{dbtool, fresh_db, keep_busy, promtool_check_metrics};

#[tokio::test]
async fn moves_exactly_the_old_rows_and_creates_the_destination_like_the_source() {
    let db = fresh_db("archive_moves").await;
    let c = db.client().await;
    create_posts(&c, "posts", 20_000).await;
    let old = count_old(&c, "posts").await;
    let before = fingerprint(&c, &["posts"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("archive.prom");
    let out = archive(
        &db.dsn(),
        &["--batch-size", "700", "--metrics", metrics.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{old} rows moved; done")), "{}", text(&out));
    assert_eq!(count(&c, "archive.posts").await, old);
    assert_eq!(count_old(&c, "posts").await, 0, "nothing old left");
    assert_eq!(
        count(&c, "posts").await,
        20_000 - old,
        "nothing newer than the cutoff touched"
    );
    assert_eq!(in_both(&c, "posts", "archive.posts").await, 0);
    assert_eq!(
        fingerprint(&c, &["posts", "archive.posts"]).await,
        before,
        "row contents unchanged"
    );

    // Same columns and types, the primary key and the CreateAt index, no foreign keys.
    let shape = "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull, ', ' ORDER BY attnum)
                 FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped";
    let src: String = c.query_one(shape, &[&"public.posts"]).await.expect("shape").get(0);
    let dst: String = c.query_one(shape, &[&"archive.posts"]).await.expect("shape").get(0);
    assert_eq!(src, dst);
    let idx: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'archive' AND tablename = 'posts'",
            &[],
        )
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(idx, 2, "primary key and createat index copied");

    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    promtool_check_metrics(&prom).expect("promtool accepts the metrics");
    // Issue 13 item 5: every series names its target (host:port/dbname, parsed from the DSN).
    let cl = common::cluster();
    let target = format!("{}:{}/{}", cl.socket_dir().display(), cl.port(), db.name());
    assert!(
        prom.contains(&format!(
            "dbtool_archive_rows_total{{target=\"{target}\",table=\"public.posts\"}} {old}\n"
        )),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "dbtool_archive_remaining_rows{{target=\"{target}\",table=\"public.posts\"}} 0\n"
        )),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "dbtool_archive_status{{target=\"{target}\",table=\"public.posts\"}} 0\n"
        )),
        "{prom}"
    );
    assert!(prom.contains(&format!(
        "dbtool_archive_last_success_timestamp_seconds{{target=\"{target}\",table=\"public.posts\"}}"
    )));

    // A second run finds nothing, adds to the counter's total, and both runs are in the history.
    let again = archive(&db.dsn(), &["--metrics", metrics.to_str().expect("path")]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 rows moved; done"));
    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    assert!(
        prom.contains(&format!(
            "dbtool_archive_rows_total{{target=\"{target}\",table=\"public.posts\"}} {old}\n"
        )),
        "{prom}"
    );
    let runs: Vec<(String, Option<i64>)> = c
        .query(
            "SELECT status, rows FROM dbtool.job_runs WHERE kind = 'archive' ORDER BY id",
            &[],
        )
        .await
        .expect("job_runs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        runs,
        vec![("success".to_string(), Some(old)), ("success".to_string(), Some(0))]
    );
}

#[tokio::test]
async fn key_walk_and_cross_database_destination_move_the_same_rows() {
    let db = fresh_db("archive_walks").await;
    let cold = fresh_db("archive_cold").await;
    let c = db.client().await;
    create_posts(&c, "posts", 8_000).await;
    let old = count_old(&c, "posts").await;
    let before = fingerprint(&c, &["posts"]).await;
    let out = archive(&db.dsn(), &["--walk", "key", "--batch-size", "300"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(&c, "archive.posts").await, old);
    assert_eq!(fingerprint(&c, &["posts", "archive.posts"]).await, before);

    // Back to a fresh table and into another database.
    c.batch_execute("DROP TABLE posts; DROP TABLE archive.posts")
        .await
        .expect("reset");
    create_posts(&c, "posts", 8_000).await;
    let old_rows = "SELECT md5(string_agg(u::text, E'\\n' ORDER BY u.id)) FROM (SELECT * FROM posts WHERE createat <
                    (extract(epoch FROM now() - interval '2 years') * 1000)::bigint) u";
    let old_md5: String = c.query_one(old_rows, &[]).await.expect("md5").get(0);
    let out = archive(&db.dsn(), &["--dest-dsn", &cold.dsn(), "--batch-size", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cc = cold.client().await;
    assert_eq!(count(&cc, "archive.posts").await, old);
    assert_eq!(count_old(&c, "posts").await, 0);
    assert_eq!(count(&c, "posts").await, 8_000 - old);
    // Row contents survive the trip through another database.
    let cold_rows = "SELECT md5(string_agg(u::text, E'\\n' ORDER BY u.id)) FROM (SELECT * FROM archive.posts) u";
    let cold_md5: String = cc.query_one(cold_rows, &[]).await.expect("md5").get(0);
    assert_eq!(cold_md5, old_md5);
}

#[tokio::test]
async fn dry_run_counts_shows_sql_and_changes_nothing() {
    let db = fresh_db("archive_dry").await;
    let c = db.client().await;
    create_posts(&c, "posts", 3_000).await;
    let old = count_old(&c, "posts").await;
    let before = fingerprint(&c, &["posts"]).await;
    let out = archive(&db.dsn(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!(": {old}")), "{stdout}");
    assert!(stdout.contains("CREATE TABLE IF NOT EXISTS \"archive\".\"posts\" (LIKE \"public\".\"posts\""));
    assert!(stdout.contains("FOR UPDATE OF s SKIP LOCKED"));
    assert_eq!(fingerprint(&c, &["posts"]).await, before);
    let created: bool = c
        .query_one(
            "SELECT to_regclass('archive.posts') IS NOT NULL OR to_regnamespace('dbtool') IS NOT NULL",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    assert!(
        !created,
        "a dry run creates neither the destination nor dbtool's schema"
    );
}

#[tokio::test]
async fn refuses_tables_without_a_key_bad_names_and_incompatible_destinations() {
    let db = fresh_db("archive_refuse").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE nokey (createat bigint, message text);
         CREATE TABLE x (id int PRIMARY KEY);
         CREATE TABLE ts (id int PRIMARY KEY, at timestamptz);
         CREATE SCHEMA archive; CREATE TABLE archive.ts (id int PRIMARY KEY, at date);",
    )
    .await
    .expect("setup");
    create_posts(&c, "posts", 100).await;

    let out = dbtool()
        .args([
            "archive",
            "--dsn",
            &db.dsn(),
            "--table",
            "nokey",
            "--column",
            "createat",
        ])
        .args(["--column-type", "epoch-ms", "--older-than", "1d"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no primary key"),
        "{}",
        text(&out)
    );

    let out = dbtool()
        .args(["archive", "--dsn", &db.dsn(), "--table", "posts\"; DROP TABLE x; --"])
        .args([
            "--column",
            "createat",
            "--column-type",
            "epoch-ms",
            "--older-than",
            "1d",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid table name"));
    let x_exists: bool = c
        .query_one("SELECT to_regclass('public.x') IS NOT NULL", &[])
        .await
        .expect("x")
        .get(0);
    assert!(x_exists, "table x survives");

    // bigint without --column-type: ambiguous, and the error shows a sample value.
    let out = dbtool()
        .args([
            "archive",
            "--dsn",
            &db.dsn(),
            "--table",
            "posts",
            "--column",
            "createat",
            "--older-than",
            "2y",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sample value 1") && err.contains("epoch-ms"), "{err}");

    let out = dbtool()
        .args([
            "archive",
            "--dsn",
            &db.dsn(),
            "--table",
            "ts",
            "--column",
            "at",
            "--older-than",
            "1d",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"at\" is timestamp with time zone in the source but date"),
        "{err}"
    );

    let out = archive(&db.dsn(), &["--purge"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--confirm-purge"));
}

#[tokio::test]
async fn injection_shaped_names_are_quoted_safely_when_they_are_real_tables() {
    let db = fresh_db("archive_quoted").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE x (id int PRIMARY KEY)").await.expect("x");
    create_posts(&c, "\"posts\"\"; DROP TABLE x; --\"", 2_000).await;
    let old = count_old(&c, "\"posts\"\"; DROP TABLE x; --\"").await;
    let out = dbtool()
        .args([
            "archive",
            "--dsn",
            &db.dsn(),
            "--table",
            "\"posts\"\"; DROP TABLE x; --\"",
        ])
        .args([
            "--column",
            "createat",
            "--column-type",
            "epoch-ms",
            "--older-than",
            "2y",
        ])
        .args(["--dest", "archive.\"odd'name\""])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(&c, "archive.\"odd'name\"").await, old);
    assert_eq!(count(&c, "x").await, 0, "table x is still there");
}

#[tokio::test]
async fn no_delete_copies_purge_deletes_and_config_jobs_run_by_name() {
    let db = fresh_db("archive_modes").await;
    let c = db.client().await;
    create_posts(&c, "posts", 4_000).await;
    let old = count_old(&c, "posts").await;
    let out = archive(&db.dsn(), &["--no-delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        (count(&c, "posts").await, count(&c, "archive.posts").await),
        (4_000, old)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dbtool.toml");
    std::fs::write(
        &config,
        "[[archive]]\nname = \"old-posts\"\ntable = \"public.posts\"\ncolumn = \"createat\"\n\
         column_type = \"epoch-ms\"\nolder_than = \"2y\"\npurge = true\nconfirm_purge = true\nbatch_size = 500\n",
    )
    .expect("config");
    let out = dbtool()
        .args([
            "archive",
            "--config",
            config.to_str().expect("path"),
            "--dsn",
            &db.dsn(),
            "--job",
            "old-posts",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{old} rows purged")));
    assert_eq!(count(&c, "posts").await, 4_000 - old);
    let check = dbtool().args(["config", "check"]).arg(&config).output().expect("run");
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    std::fs::write(
        &config,
        "[[archive]]\ntable = \"posts\"\ncolumn = \"c\"\nolder_than = \"1d\"\nbogus = 1\n",
    )
    .expect("config");
    let check = dbtool().args(["config", "check"]).arg(&config).output().expect("run");
    assert_eq!(check.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&check.stderr).contains(":5:"),
        "{}",
        text(&check)
    );
}

#[tokio::test]
async fn a_key_already_archived_is_replaced_by_the_row_being_moved() {
    let db = fresh_db("archive_conflict").await;
    let c = db.client().await;
    create_posts(&c, "posts", 3_000).await;
    let old = count_old(&c, "posts").await;
    let out = archive(&db.dsn(), &["--no-delete"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The source row changes after it was copied: moving it must keep the new version.
    let id: String = c
        .query_one(
            "UPDATE posts SET message = 'edited after the copy' WHERE id = (SELECT id FROM archive.posts LIMIT 1) RETURNING id",
            &[],
        )
        .await
        .expect("update")
        .get(0);
    let before = fingerprint(&c, &["posts"]).await;
    let out = archive(&db.dsn(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{old} rows moved; done")));
    assert_eq!(in_both(&c, "posts", "archive.posts").await, 0);
    assert_eq!(fingerprint(&c, &["posts", "archive.posts"]).await, before);
    let message: String = c
        .query_one("SELECT message FROM archive.posts WHERE id = $1", &[&id])
        .await
        .expect("row")
        .get(0);
    assert_eq!(message, "edited after the copy");
}

#[tokio::test]
async fn where_narrows_the_rows_and_cannot_smuggle_a_second_statement() {
    let db = fresh_db("archive_where").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE x (id int PRIMARY KEY)").await.expect("x");
    create_posts(&c, "posts", 3_000).await;
    let old = count_old(&c, "posts").await;
    let kept: i64 = c
        .query_one(
            "SELECT count(*) FROM posts WHERE channelid = 'ch3'
             AND createat < (extract(epoch FROM now() - interval '2 years') * 1000)::bigint",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let out = archive(&db.dsn(), &["--where", "true; DROP TABLE x"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--where"),
        "{}",
        text(&out)
    );
    assert_eq!(count(&c, "x").await, 0, "table x is still there");
    let out = archive(&db.dsn(), &["--where", "s.channelid <> 'ch3'"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(&c, "archive.posts").await, old - kept);
    assert_eq!(count_old(&c, "posts").await, kept);
}

#[tokio::test]
async fn timestamptz_timestamp_and_date_columns_are_detected() {
    let db = fresh_db("archive_types").await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL,
                              local timestamp NOT NULL, day date NOT NULL);
         INSERT INTO events (at, local, day)
         SELECT now() - i * interval '1 day', (now() - i * interval '1 day')::timestamp, (now() - i * interval '1 day')::date
         FROM generate_series(0, 99) i;",
    )
    .await
    .expect("events");
    for (column, age, expect_left) in [("at", "60d", 60), ("local", "40 days", 40), ("day", "20d", 21)] {
        let out = dbtool()
            .args(["archive", "--dsn", &db.dsn(), "--table", "events", "--column", column])
            .args(["--older-than", age, "--dest", &format!("archive.events_{column}")])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let left = count(&c, "events").await;
        assert!(
            (expect_left - 1..=expect_left + 1).contains(&left),
            "{column}: {left} left\n{}",
            text(&out)
        );
    }
    // Identity values travel as they are (OVERRIDING SYSTEM VALUE).
    let ids: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT id FROM events UNION ALL SELECT id FROM archive.events_at
             UNION ALL SELECT id FROM archive.events_local UNION ALL SELECT id FROM archive.events_day) u
             WHERE id BETWEEN 1 AND 100",
            &[],
        )
        .await
        .expect("ids")
        .get(0);
    assert_eq!(ids, 100);
}

/// Cron chains and scripts start the next run the moment the last one exits; the server
/// ends the old session a little later (later still on a busy machine, which CI showed), so
/// the run must release its lock itself. Busy sessions widen that window here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_right_after_another_finds_the_table_free() {
    let db = fresh_db("archive_back_to_back").await;
    let c = db.client().await;
    create_posts(&c, "posts", 2_000).await;
    let old = count_old(&c, "posts").await;
    let busy = keep_busy(&db, 4).await;
    for run in 0..40 {
        let out = tokio::task::spawn_blocking({
            let dsn = db.dsn();
            move || archive(&dsn, &[])
        })
        .await
        .expect("join");
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", text(&out));
    }
    drop(busy);
    assert_eq!(count(&c, "archive.posts").await, old);
}

/// Issue 13 item 5: the same table archived in two databases, each run's textfile in one
/// node_exporter directory. Without `target` both files held `dbtool_archive_status{table=
/// "public.posts"}` and node_exporter dropped one as a duplicate; now both are served.
#[tokio::test]
async fn the_same_table_in_two_databases_is_two_series_in_node_exporter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dbs = Vec::new();
    for (i, hint) in ["archive_two_a", "archive_two_b"].into_iter().enumerate() {
        let db = fresh_db(hint).await;
        create_posts(&db.client().await, "posts", 2_000).await;
        let file = dir.path().join(format!("dbtool_archive_{i}.prom"));
        let out = archive(&db.dsn(), &["--metrics", file.to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        dbs.push(db);
    }
    let body = common::scrape_node_exporter(dir.path()).await;
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    let cl = common::cluster();
    for db in &dbs {
        let target = format!("{}:{}/{}", cl.socket_dir().display(), cl.port(), db.name());
        // node_exporter sorts the labels.
        let series = format!("dbtool_archive_status{{table=\"public.posts\",target=\"{target}\"}} 0");
        assert!(body.contains(&series), "{series} missing:\n{body}");
    }
}

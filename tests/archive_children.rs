//! `dbtool archive` with children: rows that refer to the archived rows move in the same
//! batch (named with --child, or found through ON DELETE CASCADE foreign keys), and what it
//! refuses: an unnamed RESTRICT child, a child column without an index, a cycle.

mod common;

use common::family::{self, archived, broken, create_children, old_children, CHILDREN, CHILD_FLAGS};
use common::posts::{archive, count, count_old, create_posts, create_threads, killed_sessions_gone, text};
use common::{fresh_db, promtool_check_metrics};

async fn fingerprints(c: &tokio_postgres::Client) -> Vec<(i64, String)> {
    let mut out = vec![family::fingerprint(c, "posts", "archive").await];
    for (table, ..) in CHILDREN {
        out.push(family::fingerprint(c, table, "archive").await);
    }
    out
}

#[tokio::test]
async fn children_named_and_cascading_move_with_their_parents_in_each_batch() {
    let db = fresh_db("archive_children").await;
    let c = db.client().await;
    create_posts(&c, "posts", 6_000).await;
    create_children(&c).await;
    let old = count_old(&c, "posts").await;
    let old_kids = old_children(&c).await;
    assert!(
        old_kids.iter().all(|n| *n > 100),
        "every child has old rows: {old_kids:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("archive.prom");
    let mut args = CHILD_FLAGS.to_vec();
    args.extend(["--batch-size", "300", "--metrics", metrics.to_str().expect("path")]);
    let out = archive(&db.dsn(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The source's own tables and their archives cannot be read together before the run:
    // the archive tables do not exist yet. Compare after with the counts instead.
    assert_eq!(count(&c, "archive.posts").await, old);
    assert_eq!(count_old(&c, "posts").await, 0);
    for ((table, ..), n) in CHILDREN.iter().zip(&old_kids) {
        assert_eq!(
            archived(&c, table).await,
            *n,
            "{table}: every old child moved\n{}",
            text(&out)
        );
    }
    assert_eq!(broken(&c).await, Vec::<String>::new());
    assert_eq!(old_children(&c).await, vec![0, 0, 0, 0]);

    // Per table in the summary, the JSON and the metrics.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("public.reactions: {} rows moved", old_kids[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("public.attachments: {} rows moved", old_kids[2])),
        "{stdout}"
    );
    let prom = std::fs::read_to_string(&metrics).expect("metrics file");
    promtool_check_metrics(&prom).expect("promtool accepts the metrics");
    let cl = common::cluster();
    let target = format!("{}:{}/{}", cl.socket_dir().display(), cl.port(), db.name());
    for (table, n) in [
        ("public.reactions", old_kids[0]),
        ("public.\\\"Fi\\\"\\\"le.Info\\\"", old_kids[1]),
        ("public.attachments", old_kids[2]),
        ("public.attachment_notes", old_kids[3]),
    ] {
        let series = format!("dbtool_archive_rows_total{{target=\"{target}\",table=\"{table}\"}} {n}\n");
        assert!(prom.contains(&series), "{series} in\n{prom}");
        let remaining = format!("dbtool_archive_remaining_rows{{target=\"{target}\",table=\"{table}\"}} 0\n");
        assert!(prom.contains(&remaining), "{remaining} in\n{prom}");
    }

    // Contents unchanged: a second population of old rows, fingerprinted across source and
    // archive before and after (the archive tables exist now).
    c.batch_execute(
        "INSERT INTO posts (id, createat, channelid, message)
         SELECT 'again-' || i, (extract(epoch FROM now() - interval '3 years') * 1000)::bigint - i, 'x', 'm' || i
         FROM generate_series(1, 2000) i",
    )
    .await
    .expect("more posts");
    family::add_children(&c, "again-").await;
    let before = fingerprints(&c).await;
    let out = archive(
        &db.dsn(),
        &[&CHILD_FLAGS[..], &["--walk", "key", "--batch-size", "170", "--json"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fingerprints(&c).await, before);
    assert_eq!(broken(&c).await, Vec::<String>::new());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kids = &json["archive"]["children"];
    assert_eq!(kids[2]["table"], "public.attachments");
    assert_eq!(kids[2]["foreign_key"], "attachments_post_id_fkey");
    assert_eq!(kids[3]["parent"], "public.attachments");
    assert_eq!(kids[0]["remaining"], 0);
}

#[tokio::test]
async fn refuses_unnamed_restrict_children_unindexed_columns_and_cycles() {
    let db = fresh_db("archive_children_refuse").await;
    let c = db.client().await;
    create_posts(&c, "posts", 500).await;
    c.batch_execute(
        "CREATE TABLE \"Pins\" (id int PRIMARY KEY, \"Post\" text REFERENCES posts (id) ON DELETE RESTRICT);
         CREATE INDEX ON \"Pins\" (\"Post\");
         INSERT INTO \"Pins\" SELECT row_number() OVER (), id FROM posts WHERE right(id, 1) < '4';
         CREATE TABLE noindex (id int PRIMARY KEY, postid text);",
    )
    .await
    .expect("setup");
    let refused = |out: &std::process::Output, want: &str| {
        assert_eq!(out.status.code(), Some(3), "{}", text(out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want:?} in {}", text(out));
    };
    // A RESTRICT child not named: named in the error, with its constraint and the flag.
    let out = archive(&db.dsn(), &[]);
    refused(
        &out,
        "public.\"Pins\" refers to public.posts through foreign key \"Pins_Post_fkey\" (ON DELETE RESTRICT)",
    );
    refused(&out, "add --child 'public.\"Pins\":\"Post\"'");
    // Named: it moves. A child without an index: the exact CREATE INDEX to run.
    let out = archive(
        &db.dsn(),
        &["--child", "\"Pins\":\"Post\"", "--child", "noindex:postid"],
    );
    refused(
        &out,
        "CREATE INDEX CONCURRENTLY ON \"public\".\"noindex\" (\"postid\");",
    );
    refused(&out, "--allow-seq-scan");
    let out = archive(
        &db.dsn(),
        &[
            "--child",
            "public.\"Pins\":\"Post\"",
            "--child",
            "noindex:postid",
            "--allow-seq-scan",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Named, a RESTRICT child moves with its posts: the key is checked at the end of the
    // statement, when posts and pins are gone together.
    let pins_old: i64 = c
        .query_one(
            "SELECT count(*) FROM \"Pins\" p JOIN posts s ON s.id = p.\"Post\"
             WHERE s.createat < (extract(epoch FROM now() - interval '2 years') * 1000)::bigint",
            &[],
        )
        .await
        .expect("pins")
        .get(0);
    assert!(pins_old > 0);
    let out = archive(
        &db.dsn(),
        &[
            "--child",
            "\"Pins\":\"Post\"",
            "--child",
            "noindex:postid",
            "--allow-seq-scan",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count(&c, "archive.\"Pins\"").await, pins_old);
    assert_eq!(count_old(&c, "posts").await, 0);
    c.batch_execute(
        "INSERT INTO posts (id, createat, channelid) SELECT 'again-' || i, 0, 'x' FROM generate_series(1, 10) i",
    )
    .await
    .expect("more old posts");
    // Bad specs are refused before connecting.
    let out = archive(&db.dsn(), &["--child", "noindex"]);
    refused(&out, "--child 'noindex'");
    // A cycle: posts -> threads (CASCADE) -> posts.
    c.batch_execute(
        "CREATE TABLE threads (id int PRIMARY KEY, post_id text REFERENCES posts (id) ON DELETE CASCADE);
         CREATE INDEX ON threads (post_id);
         ALTER TABLE posts ADD COLUMN thread int REFERENCES threads (id) ON DELETE CASCADE;",
    )
    .await
    .expect("cycle");
    let out = archive(
        &db.dsn(),
        &[
            "--child",
            "\"Pins\":\"Post\"",
            "--child",
            "noindex:postid",
            "--allow-seq-scan",
        ],
    );
    refused(
        &out,
        "the tables form a cycle (public.posts -> public.threads -> public.posts)",
    );
    assert_eq!(count_old(&c, "posts").await, 10, "nothing moved");
}

#[tokio::test]
async fn a_named_grandchild_and_a_cross_database_destination_keep_families_whole() {
    let db = fresh_db("archive_children_cross").await;
    let cold = fresh_db("archive_children_cold").await;
    let c = db.client().await;
    create_posts(&c, "posts", 4_000).await;
    create_threads(&c).await;
    let old = count_old(&c, "posts").await;
    let all_members = count(&c, "threadmemberships").await;
    let old_members: i64 = c
        .query_one(
            "SELECT count(*) FROM threadmemberships WHERE postid IN (SELECT id FROM posts WHERE createat <
             (extract(epoch FROM now() - interval '2 years') * 1000)::bigint)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    let out = archive(
        &db.dsn(),
        &[
            "--dest-dsn",
            &cold.dsn(),
            "--walk",
            "key",
            "--batch-size",
            "250",
            "--child",
            "threads:postid",
            "--child",
            "threadmemberships:postid=threads.postid",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cc = cold.client().await;
    assert_eq!(count(&cc, "archive.posts").await, old);
    assert_eq!(count(&cc, "archive.threadmemberships").await, old_members);
    assert_eq!(count(&c, "threadmemberships").await, all_members - old_members);
    let orphans: i64 = c
        .query_one("SELECT count(*) FROM threadmemberships m WHERE NOT EXISTS (SELECT 1 FROM threads t WHERE t.postid = m.postid)", &[])
        .await
        .expect("orphans")
        .get(0);
    assert_eq!(orphans, 0, "every membership left has its thread");
    let stray: i64 = c
        .query_one(
            "SELECT count(*) FROM threads t WHERE NOT EXISTS (SELECT 1 FROM posts p WHERE p.id = t.postid)",
            &[],
        )
        .await
        .expect("stray")
        .get(0);
    assert_eq!(stray, 0, "every thread left has its post");
}

/// Every row's text of `table` in `c` and of `archive.table` in `cold` (when it exists), sorted.
async fn rows_of(c: &tokio_postgres::Client, cold: &tokio_postgres::Client, table: &str) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for (client, name) in [(c, table.to_string()), (cold, format!("archive.{table}"))] {
        let exists: bool = client
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&name])
            .await
            .expect("to_regclass")
            .get(0);
        if exists {
            let sql = format!("SELECT t::text FROM {name} t");
            rows.extend(
                client
                    .query(&sql, &[])
                    .await
                    .expect("rows")
                    .iter()
                    .map(|r| r.get::<_, String>(0)),
            );
        }
    }
    rows.sort_unstable();
    rows
}

/// kill -9 of a --dest-dsn run with a child and a grandchild: a kill between the two commits
/// leaves a family in both databases, never in neither; the next run finishes the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_cross_database_run_with_children_loses_nothing() {
    let db = fresh_db("archive_children_cross_kill").await;
    let cold = fresh_db("archive_children_cross_kill_cold").await;
    let c = db.client().await;
    let cc = cold.client().await;
    create_posts(&c, "posts", 20_000).await;
    create_threads(&c).await;
    let tables = ["posts", "threads", "threadmemberships"];
    let mut before = Vec::new();
    for t in tables {
        before.push(rows_of(&c, &cc, t).await);
    }
    let args = [
        "--dest-dsn",
        &cold.dsn(),
        "--child",
        "threads:postid",
        "--child",
        "threadmemberships:postid=threads.postid",
    ];
    let mut kills = 0;
    for round in 0..10u64 {
        killed_sessions_gone(&c).await;
        let mut cmd = common::posts::archive_cmd(&db.dsn(), &args);
        let mut child = cmd
            .args(["--batch-size", "60", "--sleep", "40ms"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(200 + (round * 71) % 300));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        child.wait().expect("wait");
    }
    assert!(kills >= 5, "only {kills} kills landed");
    killed_sessions_gone(&c).await;
    let out = archive(&db.dsn(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count_old(&c, "posts").await, 0);
    for (t, rows) in tables.iter().zip(&before) {
        let mut now = rows_of(&c, &cc, t).await;
        let total = now.len();
        now.dedup();
        assert_eq!(now.len(), total, "{t}: a row is in both databases after the final run");
        assert_eq!(&now, rows, "{t}: every row in exactly one place, unchanged");
    }
    let stray: i64 = c
        .query_one(
            "SELECT count(*) FROM threads t WHERE NOT EXISTS (SELECT 1 FROM posts p WHERE p.id = t.postid)",
            &[],
        )
        .await
        .expect("stray")
        .get(0);
    assert_eq!(stray, 0, "every thread left has its post");
}

/// --no-delete copies the children along; --purge deletes them along (named and CASCADE).
#[tokio::test]
async fn copy_and_purge_take_the_children_along() {
    let db = fresh_db("archive_children_modes").await;
    let c = db.client().await;
    create_posts(&c, "posts", 3_000).await;
    create_children(&c).await;
    let old_kids = old_children(&c).await;
    let all_kids: Vec<i64> = {
        let mut v = Vec::new();
        for (table, ..) in CHILDREN {
            v.push(count(&c, table).await);
        }
        v
    };
    let out = archive(&db.dsn(), &[&CHILD_FLAGS[..], &["--no-delete"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (((table, ..), old), all) in CHILDREN.iter().zip(&old_kids).zip(&all_kids) {
        assert_eq!(archived(&c, table).await, *old, "{table} copied");
        assert_eq!(count(&c, table).await, *all, "{table} left in place");
    }
    let out = archive(&db.dsn(), &[&CHILD_FLAGS[..], &["--purge", "--confirm-purge"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(count_old(&c, "posts").await, 0);
    assert_eq!(old_children(&c).await, vec![0, 0, 0, 0]);
    for (((table, ..), old), all) in CHILDREN.iter().zip(&old_kids).zip(&all_kids) {
        assert_eq!(
            count(&c, table).await,
            all - old,
            "{table}: the old rows purged, no other"
        );
    }
}

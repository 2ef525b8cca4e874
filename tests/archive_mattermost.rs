//! `dbtool archive --preset mattermost` on a schema with Mattermost's own table and column
//! names (tests/fixtures/mattermost.sql): posts with every table that refers to them, pinned
//! posts kept, and the files manifest exact, also across kill -9.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::posts::{killed_sessions_gone, text};
use common::{dbtool, fresh_db};
use tokio_postgres::Client;

/// The tables that refer to a post, and their column holding its id.
const CHILDREN: [(&str, &str); 8] = [
    ("reactions", "postid"),
    ("fileinfo", "postid"),
    ("threads", "postid"),
    ("threadmemberships", "postid"),
    ("preferences", "name"),
    ("postspriority", "postid"),
    ("postacknowledgements", "postid"),
    ("persistentnotifications", "postid"),
];

const OLD: &str = "createat < (extract(epoch FROM now() - interval '2 years') * 1000)::bigint";

/// `n` posts over four years (none within a day of the 2-year cutoff); every fourth a thread
/// root whose replies are spread over other ages; and children of every kind.
async fn create_mattermost(c: &Client, n: i64) {
    c.batch_execute(include_str!("fixtures/mattermost.sql"))
        .await
        .expect("schema");
    let sql = format!(
        "INSERT INTO posts (id, createat, updateat, deleteat, userid, channelid, rootid, message, type, props, ispinned)
         SELECT left(md5('p' || i), 26), (extract(epoch FROM now()) * 1000)::bigint - h * 3600000, 0, 0,
                left(md5('u' || (i % 9)), 26), left(md5('c' || (i % 5)), 26),
                CASE WHEN i % 4 = 0 THEN '' ELSE left(md5('p' || (i - i % 4 + 4)), 26) END,
                'message ' || i, '', '{{}}', i % 23 = 0
         FROM generate_series(1, {n}) i,
              LATERAL (SELECT (i::bigint * 7919) % 35040 AS raw) r,
              LATERAL (SELECT CASE WHEN raw BETWEEN 17496 AND 17544 THEN raw + 100 ELSE raw END AS h) hh;
         INSERT INTO reactions (userid, postid, emojiname, createat)
         SELECT left(md5('u' || k), 26), id, 'smile', createat FROM posts, generate_series(1, 2) k
         WHERE ascii(right(id, 1)) % 3 >= k;
         INSERT INTO fileinfo (id, creatorid, postid, createat, path, thumbnailpath, previewpath, name, size)
         SELECT left(md5('f' || id), 26), userid, id, createat,
                'data/20240101/teams/noteam/channels/' || channelid || '/users/' || userid || '/' || left(md5('f' || id), 26) || '/file ' || id || '.png',
                CASE WHEN ascii(id) % 2 = 0 THEN 'data/' || id || '/file_thumb.jpg' ELSE '' END,
                CASE WHEN ascii(id) % 2 = 0 THEN 'data/' || id || '/file_preview.jpg' ELSE '' END,
                'file ' || id || '.png', 1000
         FROM posts WHERE ascii(right(id, 2)) % 5 = 0;
         INSERT INTO threads (postid, replycount, lastreplyat, participants, channelid)
         SELECT id, 3, createat, '[]', channelid FROM posts WHERE rootid = '';
         INSERT INTO threadmemberships (postid, userid, following, lastviewed, lastupdated, unreadmentions)
         SELECT postid, left(md5('u' || k), 26), true, 0, 0, 0 FROM threads, generate_series(1, 2) k;
         INSERT INTO preferences SELECT left(md5('u1'), 26), 'flagged_post', id, 'true' FROM posts WHERE ascii(right(id, 3)) % 7 = 0;
         INSERT INTO preferences SELECT left(md5('u' || k), 26), 'display_settings', 'use_military_time', 'false'
         FROM generate_series(1, 50) k;
         INSERT INTO postspriority SELECT id, channelid, 'urgent', true, false FROM posts WHERE ascii(right(id, 4)) % 11 = 0;
         INSERT INTO postacknowledgements SELECT id, userid, 0 FROM posts WHERE ascii(right(id, 4)) % 11 = 0;
         INSERT INTO persistentnotifications SELECT id, createat, 0, 0, 1 FROM posts WHERE ascii(right(id, 5)) % 13 = 0;
         ANALYZE;"
    );
    c.batch_execute(&sql).await.expect("data");
}

async fn number(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

fn archive_cmd(dsn: &str, extra: &[&str]) -> Command {
    let mut cmd = dbtool();
    cmd.args(["archive", "--dsn", dsn, "--preset", "mattermost", "--older-than", "2y"])
        .args(extra);
    cmd
}

fn archive(dsn: &str, extra: &[&str]) -> Output {
    archive_cmd(dsn, extra).output().expect("run dbtool archive")
}

/// Every family whole: no child left behind with its post archived, none archived ahead of
/// its post, and no thread pointing at a post that is not in posts.
async fn families_whole(c: &Client) {
    for (table, col) in CHILDREN {
        let behind = number(
            c,
            &format!("SELECT count(*) FROM {table} x JOIN archive.posts p ON p.id = x.{col}"),
        )
        .await;
        assert_eq!(behind, 0, "{table}: rows left behind by their archived post");
        let early = number(
            c,
            &format!("SELECT count(*) FROM archive.{table} x JOIN posts p ON p.id = x.{col}"),
        )
        .await;
        assert_eq!(early, 0, "{table}: rows archived while their post stays");
    }
    let dangling = number(
        c,
        "SELECT count(*) FROM threads t WHERE NOT EXISTS (SELECT 1 FROM posts p WHERE p.id = t.postid)",
    )
    .await;
    assert_eq!(dangling, 0, "a thread row points at a post no longer in posts");
}

/// The manifest holds exactly the non-empty paths of the archived file infos, once each.
async fn manifest_exact(c: &Client, manifest: &std::path::Path) {
    let text = std::fs::read_to_string(manifest).unwrap_or_default();
    let mut listed: Vec<&str> = text.lines().collect();
    let total = listed.len();
    listed.sort_unstable();
    listed.dedup();
    assert_eq!(listed.len(), total, "no path is listed twice");
    let mut want: Vec<String> = c
        .query(
            "SELECT v.path FROM archive.fileinfo f,
             LATERAL (VALUES (f.path), (f.thumbnailpath), (f.previewpath)) v(path) WHERE v.path <> ''",
            &[],
        )
        .await
        .expect("archived paths")
        .iter()
        .map(|r| r.get(0))
        .collect();
    want.sort_unstable();
    assert!(!want.is_empty());
    assert_eq!(listed, want, "the manifest lists exactly the files of archived rows");
}

#[tokio::test]
async fn the_mattermost_preset_moves_posts_with_their_families_keeps_pinned_and_lists_files() {
    let db = fresh_db("archive_mattermost").await;
    let c = db.client().await;
    create_mattermost(&c, 6_000).await;
    let old_unpinned = number(&c, &format!("SELECT count(*) FROM posts WHERE {OLD} AND NOT ispinned")).await;
    let old_pinned = number(&c, &format!("SELECT count(*) FROM posts WHERE {OLD} AND ispinned")).await;
    assert!(old_pinned > 0);
    let before: Vec<i64> = {
        let mut v = Vec::new();
        for (table, _) in CHILDREN {
            v.push(number(&c, &format!("SELECT count(*) FROM {table}")).await);
        }
        v
    };

    let dry = archive(&db.dsn(), &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let shown = String::from_utf8_lossy(&dry.stdout);
    assert!(shown.contains("-- the preset stands for:"), "{shown}");
    assert!(
        shown.contains("--table 'public.posts' --column 'createat' --column-type epoch-ms"),
        "{shown}"
    );
    for (table, col) in CHILDREN {
        assert!(shown.contains(&format!("--child '{table}:{col}'")), "{shown}");
    }
    assert!(shown.contains("--where 's.ispinned IS NOT TRUE'"), "{shown}");
    assert_eq!(
        number(&c, "SELECT count(*) FROM pg_namespace WHERE nspname = 'archive'").await,
        0
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("files.txt");
    let out = archive(
        &db.dsn(),
        &[
            "--batch-size",
            "200",
            "--files-manifest",
            manifest.to_str().expect("path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(number(&c, "SELECT count(*) FROM archive.posts").await, old_unpinned);
    assert_eq!(
        number(&c, &format!("SELECT count(*) FROM posts WHERE {OLD}")).await,
        old_pinned,
        "pinned posts stay"
    );
    families_whole(&c).await;
    for ((table, _), n) in CHILDREN.iter().zip(&before) {
        let now = number(
            &c,
            &format!("SELECT (SELECT count(*) FROM {table}) + (SELECT count(*) FROM archive.{table})"),
        )
        .await;
        assert_eq!(now, *n, "{table}: nothing lost or doubled");
        assert!(
            number(&c, &format!("SELECT count(*) FROM archive.{table}")).await > 0,
            "{table} moved"
        );
    }
    assert_eq!(
        number(
            &c,
            "SELECT count(*) FROM preferences WHERE category = 'display_settings'"
        )
        .await,
        50,
        "preferences that are not about a post stay"
    );
    manifest_exact(&c, &manifest).await;

    // --include-pinned takes the pinned ones too, and their files join the manifest.
    let out = archive(
        &db.dsn(),
        &["--include-pinned", "--files-manifest", manifest.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(number(&c, &format!("SELECT count(*) FROM posts WHERE {OLD}")).await, 0);
    families_whole(&c).await;
    manifest_exact(&c, &manifest).await;
}

/// Runs the preset with `--files-manifest` (and `extra`) killed with -9 at varied moments
/// until eight kills landed, then once to the end; returns the manifest's folder.
async fn killed_then_finished(c: &Client, dsn: &str, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("files.txt");
    let path = manifest.to_str().expect("path");
    let mut args = vec!["--files-manifest", path];
    args.extend(extra);
    // 20 ms between batches keeps ~10,000 old posts busy for over 5 s of sleeps alone, so the
    // kills land however fast the machine runs the batches themselves.
    let mut kills = 0;
    for round in 0..30u64 {
        if kills >= 8 {
            break;
        }
        killed_sessions_gone(c).await;
        let mut child = archive_cmd(dsn, &args)
            .args(["--batch-size", "40", "--sleep", "20ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(120 + (round * 53) % 250));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("kill -9");
            kills += 1;
        }
        child.wait().expect("wait");
    }
    assert!(kills >= 6, "only {kills} kills landed");
    killed_sessions_gone(c).await;
    let out = archive(dsn, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dir.path().join("files.txt.pending").exists());
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_manifest_stays_exact_across_kill_9() {
    let db = fresh_db("archive_mattermost_kill").await;
    let c = db.client().await;
    create_mattermost(&c, 20_000).await;
    let dir = killed_then_finished(&c, &db.dsn(), &[]).await;
    families_whole(&c).await;
    manifest_exact(&c, &dir.path().join("files.txt")).await;
}

/// With --dest-dsn the source's deleting transaction decides: a kill between the two commits
/// leaves rows in both databases, unlisted, and the run that moves them again lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_manifest_stays_exact_across_kill_9_into_another_database() {
    let db = fresh_db("archive_mattermost_cross_kill").await;
    let cold = fresh_db("archive_mattermost_cross_cold").await;
    let c = db.client().await;
    create_mattermost(&c, 20_000).await;
    let dir = killed_then_finished(&c, &db.dsn(), &["--dest-dsn", &cold.dsn()]).await;
    assert_eq!(
        number(&c, &format!("SELECT count(*) FROM posts WHERE {OLD} AND NOT ispinned")).await,
        0
    );
    let cc = cold.client().await;
    let left = number(
        &cc,
        "SELECT count(*) FROM archive.fileinfo WHERE postid NOT IN (SELECT id FROM archive.posts)",
    )
    .await;
    assert_eq!(left, 0, "every archived file info has its post in the archive");
    manifest_exact(&cc, &dir.path().join("files.txt")).await;
}

/// What a run killed between its COMMIT and the manifest's append leaves: `FILE.pending`.
/// The next run appends its paths if that transaction committed (cutting off a half-written
/// append first), and drops them if it did not.
#[tokio::test]
async fn a_pending_list_is_settled_by_the_fate_of_its_transaction() {
    let db = fresh_db("archive_mattermost_pending").await;
    let mut c = db.client().await;
    create_mattermost(&c, 50).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("files.txt");
    let pending = dir.path().join("files.txt.pending");
    let tx = c.transaction().await.expect("begin");
    let xid = "SELECT txid_current()::text";
    let committed: String = tx.query_one(xid, &[]).await.expect("xid").get(0);
    tx.batch_execute("CREATE TABLE marker ()").await.expect("write");
    tx.commit().await.expect("commit");
    let tx = c.transaction().await.expect("begin");
    let aborted: String = tx.query_one(xid, &[]).await.expect("xid").get(0);
    tx.rollback().await.expect("rollback");

    // Committed: "old" stays, the half-appended "half" is cut off, both paths appended.
    std::fs::write(&manifest, "old\nhalf").expect("manifest");
    std::fs::write(&pending, format!("{committed}\n4\na/one.png\nb/two.png\n")).expect("pending");
    let path = manifest.to_str().expect("path");
    // A run with nothing to move (no post is 100 years old) still settles the pending list.
    let settle = || {
        let out = dbtool()
            .args([
                "archive",
                "--dsn",
                &db.dsn(),
                "--preset",
                "mattermost",
                "--older-than",
                "100y",
            ])
            .args(["--files-manifest", path])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            std::fs::read_to_string(&manifest).expect("read"),
            "old\na/one.png\nb/two.png\n"
        );
        assert!(!pending.exists());
    };
    settle();
    // Rolled back: its paths are dropped.
    std::fs::write(&pending, format!("{aborted}\n27\nc/three.png\n")).expect("pending");
    settle();
}

//! `archive --where` can never widen the selection past the cutoff, and `--dry-run` runs its
//! predicate read-only (issue "Do no harm", item 3).

mod common;

use common::posts::text;
use common::{chain, dbtool, fresh_db, TestDb};
use dbtool::jobs::archive::batch::{self, Guard, Mode, Walk};
use dbtool::jobs::archive::ident::QualifiedName;
use dbtool::jobs::archive::{cross_db, plan};

/// `items`: ids 1..=100 three years old, 101..=200 one year old; `x` is ')' on even ids.
async fn create_items(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, createat bigint NOT NULL, x text);
         CREATE INDEX ON items (createat);
         INSERT INTO items
         SELECT i, (extract(epoch FROM now() - CASE WHEN i <= 100 THEN interval '3 years' ELSE interval '1 year' END)
                    * 1000)::bigint,
                CASE WHEN i % 2 = 0 THEN ')' ELSE '(' END
         FROM generate_series(1, 200) i;",
    )
    .await
    .expect("create items");
}

async fn n(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Rows still in `items` that are newer than the cutoff: always 100, whatever a run did.
async fn new_rows_in_place(c: &tokio_postgres::Client) -> i64 {
    n(c, "SELECT count(*) FROM items WHERE id > 100").await
}

fn archive_items(db: &TestDb, extra: &[&str]) -> std::process::Output {
    dbtool()
        .args([
            "archive",
            "--dsn",
            &db.dsn(),
            "--table",
            "items",
            "--column",
            "createat",
        ])
        .args(["--column-type", "epoch-ms", "--older-than", "2y"])
        .args(extra)
        .output()
        .expect("run dbtool archive")
}

#[tokio::test]
async fn where_text_that_closes_the_parenthesis_is_refused_and_moves_nothing() {
    let db = fresh_db("archive_where_widen").await;
    let cold = fresh_db("archive_where_widen_cold").await;
    let c = db.client().await;
    create_items(&c).await;
    let cold_dsn = cold.dsn();
    let modes: [&[&str]; 3] = [&[], &["--purge", "--confirm-purge"], &["--dest-dsn", &cold_dsn]];
    for mode in modes {
        for hostile in [
            "id > 90) OR (true",
            "true) OR (true",
            "a); DELETE FROM items; --",
            "id > 0 /* ) */ ) OR (true",
            "x = ')' ) OR ( x = '('",
        ] {
            let out = archive_items(&db, &[&["--where", hostile][..], mode].concat());
            assert_eq!(out.status.code(), Some(3), "{hostile:?} {mode:?}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("--where is refused at character"), "{stderr}");
            assert_eq!(n(&c, "SELECT count(*) FROM items").await, 200, "{hostile:?} {mode:?}");
        }
    }
    let moved: bool = c
        .query_one("SELECT to_regclass('archive.items') IS NOT NULL", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(!moved, "no run got as far as creating the destination");
}

#[tokio::test]
async fn parentheses_inside_comments_and_strings_are_fine_and_stay_before_the_cutoff() {
    let db = fresh_db("archive_where_fine").await;
    let cold = fresh_db("archive_where_fine_cold").await;
    let c = db.client().await;
    create_items(&c).await;
    // Old rows with x = ')' (the even ids up to 100) go; every new row stays.
    let out = archive_items(&db, &["--where", "x = ')'", "--batch-size", "7"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(n(&c, "SELECT count(*) FROM archive.items").await, 50);
    assert_eq!(new_rows_in_place(&c).await, 100);
    let out = archive_items(
        &db,
        &["--where", "id > 0 /* ) */", "--walk", "key", "--batch-size", "9"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(n(&c, "SELECT count(*) FROM archive.items").await, 100);
    assert_eq!(new_rows_in_place(&c).await, 100);

    // The same through --dest-dsn and --purge, on a refilled table.
    c.batch_execute("DROP TABLE items").await.expect("drop");
    create_items(&c).await;
    let out = archive_items(&db, &["--where", "x = ')' -- keep '('", "--dest-dsn", &cold.dsn()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cc = cold.client().await;
    assert_eq!(n(&cc, "SELECT count(*) FROM archive.items WHERE id <= 100").await, 50);
    assert_eq!(n(&cc, "SELECT count(*) FROM archive.items WHERE id > 100").await, 0);
    let out = archive_items(&db, &["--where", "$$)$$ <> x", "--purge", "--confirm-purge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(n(&c, "SELECT count(*) FROM items").await, 100);
    assert_eq!(new_rows_in_place(&c).await, 100);
}

/// Builds the batch SQL with a predicate that escaped its parentheses (as if the lexer had a
/// hole) and runs it: the server must refuse every row at or past the cutoff itself.
#[tokio::test]
async fn the_server_refuses_a_batch_that_would_touch_a_row_past_the_cutoff() {
    let db = fresh_db("archive_where_guard").await;
    let cold = fresh_db("archive_where_guard_cold").await;
    let mut c = db.client().await;
    create_items(&c).await;
    c.batch_execute("CREATE SCHEMA archive; CREATE TABLE archive.items (LIKE items INCLUDING ALL)")
        .await
        .expect("dest");
    let mut cc = cold.client().await;
    cc.batch_execute(
        "CREATE SCHEMA archive; CREATE TABLE archive.items (id int PRIMARY KEY, createat bigint NOT NULL, x text)",
    )
    .await
    .expect("cold dest");
    let name = QualifiedName::parse("items", "public").expect("name");
    let source = plan::load_source(&c, &name, "createat").await.expect("source");
    let cutoff = n(
        &c,
        "SELECT (extract(epoch FROM now() - interval '2 years') * 1000)::bigint",
    )
    .await;
    let guard = Guard {
        column: "\"createat\"".into(),
        cutoff: cutoff.to_string(),
    };
    let widened = format!("{} AND (true) OR (true)", guard.condition("s."));
    let dest = "\"archive\".\"items\"";
    let range = vec!["(0,0)".to_string(), "(100000,0)".to_string()];
    for mode in [Mode::Move, Mode::Purge, Mode::Copy] {
        for walk in [Walk::Ctid, Walk::Key] {
            let sql = batch::build(&source, &[], dest, mode, walk, &widened, &guard, 1000);
            let params: &[String] = if walk == Walk::Ctid { &range } else { &[] };
            let first = if walk == Walk::Ctid { &sql.next } else { &sql.first };
            let careful = if walk == Walk::Ctid {
                &sql.careful_next
            } else {
                &sql.careful_first
            };
            for text in [first, careful] {
                let stmt = c.prepare(text).await.expect("prepare");
                let e = batch::execute(&c, &stmt, params)
                    .await
                    .expect_err(&format!("{mode:?} {walk:?} must fail"));
                let e = chain(&e);
                assert!(e.contains("at or past the cutoff"), "{mode:?} {walk:?}: {e}");
                assert_eq!(n(&c, "SELECT count(*) FROM items").await, 200, "{mode:?} {walk:?}");
                assert_eq!(
                    n(&c, "SELECT count(*) FROM archive.items").await,
                    0,
                    "{mode:?} {walk:?}"
                );
            }
        }
    }
    let sql = cross_db::build(&source, &[], dest, Walk::Key, &widened, &guard, 1000, Mode::Move);
    let prepared = cross_db::prepare(&c, &cc, sql).await.expect("prepare");
    let e = cross_db::execute(&mut c, &mut cc, &prepared, true, &[], Mode::Move, None)
        .await
        .expect_err("cross-database batch must fail");
    let e = chain(&e);
    assert!(e.contains("at or past the cutoff"), "{e}");
    assert_eq!(n(&c, "SELECT count(*) FROM items").await, 200);
    assert_eq!(n(&cc, "SELECT count(*) FROM archive.items").await, 0);
}

#[tokio::test]
async fn dry_run_runs_the_predicate_read_only_and_changes_nothing() {
    let db = fresh_db("archive_where_dry").await;
    let c = db.client().await;
    create_items(&c).await;
    c.batch_execute(
        "CREATE TABLE log (id int); CREATE SEQUENCE seen;
         CREATE FUNCTION noisy(i int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS
         $$ BEGIN INSERT INTO log VALUES (i); PERFORM nextval('seen'); RETURN true; END $$;",
    )
    .await
    .expect("noisy function");
    let out = archive_items(&db, &["--dry-run", "--where", "noisy(id)"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only transaction"), "{stderr}");
    assert_eq!(
        n(&c, "SELECT count(*) FROM log").await,
        0,
        "the predicate inserted nothing"
    );
    let called: bool = c
        .query_one("SELECT is_called FROM seen", &[])
        .await
        .expect("sequence")
        .get(0);
    assert!(!called, "nextval was never taken");
    assert_eq!(n(&c, "SELECT count(*) FROM items").await, 200);
    // A predicate that only reads still gets its count.
    let out = archive_items(&db, &["--dry-run", "--where", "x = ')'"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("): 50"), "{}", text(&out));
}

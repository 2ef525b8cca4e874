//! A Mattermost-like posts table for the archive tests: text primary key (md5, so key order
//! is unrelated to physical order), CreateAt in epoch milliseconds, an index on it.

use std::process::{Command, Output};

/// Hours back from now that rows are spread over (4 years); about half are older than 2 years.
const SPREAD_HOURS: i64 = 35_040;

/// A plain `posts (id, create_at timestamptz)` table with one row per day back from now, `n`
/// days: the shape the archive output tests move rows of.
pub async fn create_daily_posts(client: &tokio_postgres::Client, n: i64) {
    client
        .batch_execute(&format!(
            "CREATE TABLE posts (id bigint PRIMARY KEY, create_at timestamptz NOT NULL);
             INSERT INTO posts SELECT g, now() - g * interval '1 day' FROM generate_series(1, {n}) g;"
        ))
        .await
        .expect("seed posts");
}

/// `dbtool archive` of that table's rows older than a year.
pub fn daily_archive_args(dsn: &str) -> Vec<String> {
    let args = [
        "archive",
        "--dsn",
        dsn,
        "--table",
        "public.posts",
        "--column",
        "create_at",
        "--older-than",
        "1y",
    ];
    args.iter().map(|a| a.to_string()).collect()
}

/// Creates `posts` with `n` rows; none within a day of the 2-year boundary, so "older than 2y"
/// counts do not depend on the millisecond the cutoff is taken.
pub async fn create_posts(client: &tokio_postgres::Client, table: &str, n: i64) {
    let sql = format!(
        "CREATE TABLE {table} (
             Id text PRIMARY KEY,
             CreateAt bigint NOT NULL,
             UpdateAt bigint NOT NULL DEFAULT 0,
             ChannelId text NOT NULL,
             Message text,
             Props jsonb NOT NULL DEFAULT '{{}}',
             IsPinned boolean DEFAULT false);
         CREATE INDEX ON {table} (CreateAt);
         INSERT INTO {table} (Id, CreateAt, ChannelId, Message, Props)
         SELECT md5(i::text), (extract(epoch FROM now()) * 1000)::bigint - h * 3600000,
                'ch' || (i % 17), 'message ' || i || repeat('x', (i % 40)), jsonb_build_object('i', i)
         FROM generate_series(1, {n}) i,
              LATERAL (SELECT (i::bigint * 7919) % {SPREAD_HOURS} AS raw) r,
              LATERAL (SELECT CASE WHEN raw BETWEEN 17496 AND 17544 THEN raw + 100 ELSE raw END AS h) hh;
         ANALYZE {table};"
    );
    client.batch_execute(&sql).await.expect("create posts");
}

/// Rows of `table` older than two years right now.
pub async fn count_old(client: &tokio_postgres::Client, table: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM {table} WHERE CreateAt < (extract(epoch FROM now() - interval '2 years') * 1000)::bigint"
    );
    client.query_one(&sql, &[]).await.expect("count").get(0)
}

pub async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// md5 over every row's text, in key order, across the given tables (same column order).
pub async fn fingerprint(client: &tokio_postgres::Client, tables: &[&str]) -> (i64, String) {
    let union: Vec<String> = tables.iter().map(|t| format!("SELECT * FROM {t}")).collect();
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(u::text, E'\\n' ORDER BY u.id)), '') FROM ({}) u",
        union.join(" UNION ALL ")
    );
    let row = client.query_one(&sql, &[]).await.expect("fingerprint");
    (row.get(0), row.get(1))
}

/// Keys present in both tables (must be zero after any run); 0 while `b` does not exist yet.
pub async fn in_both(client: &tokio_postgres::Client, a: &str, b: &str) -> i64 {
    let exists: bool = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&b])
        .await
        .expect("to_regclass")
        .get(0);
    if !exists {
        return 0;
    }
    let sql = format!("SELECT count(*) FROM {a} x JOIN {b} y USING (id)");
    client.query_one(&sql, &[]).await.expect("in both").get(0)
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dbtool archive` of the posts rows older than two years (`createat`, epoch ms), plus `extra`.
pub fn archive_cmd(dsn: &str, extra: &[&str]) -> Command {
    let mut cmd = super::dbtool();
    cmd.args(["archive", "--dsn", dsn, "--table", "posts", "--column", "createat"])
        .args(["--column-type", "epoch-ms", "--older-than", "2y"])
        .args(extra);
    cmd
}

/// The same, run to its end.
pub fn archive(dsn: &str, extra: &[&str]) -> Output {
    archive_cmd(dsn, extra).output().expect("run dbtool archive")
}

/// Waits until no dbtool session of a killed run is left in this database (a kill -9 leaves
/// its backend to notice the closed socket), so the next run starts from a settled state.
pub async fn killed_sessions_gone(c: &tokio_postgres::Client) {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND application_name LIKE 'dbtool%'";
    for _ in 0..500 {
        let n: i64 = c.query_one(sql, &[]).await.expect("activity").get(0);
        if n == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the sessions of killed runs never ended");
}

/// Threads for nine posts in ten (keyed by the post), each with two memberships: a child and
/// a grandchild of `posts`.
pub async fn create_threads(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE threads (postid text PRIMARY KEY, replycount int);
         CREATE TABLE threadmemberships (postid text, userid text, PRIMARY KEY (postid, userid));
         INSERT INTO threads SELECT id, 2 FROM posts WHERE right(id, 1) < '9';
         INSERT INTO threadmemberships SELECT t.postid, 'u' || u FROM threads t, generate_series(1, 2) u;",
    )
    .await
    .expect("threads");
}

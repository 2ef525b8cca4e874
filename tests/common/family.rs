//! Children of the archive tests' posts table: `reactions` (no foreign key, like Mattermost's),
//! a hostile-named `"Fi""le.Info"` with a `"Post Id"` column, and `attachments` with an
//! ON DELETE CASCADE key to posts and its own cascading grandchild `attachment_notes`.

use tokio_postgres::Client;

/// Each child table, the column that refers to its parent, and its parent's table and column
/// (for the invariants below).
pub const CHILDREN: [(&str, &str, &str, &str); 4] = [
    ("reactions", "postid", "posts", "id"),
    ("\"Fi\"\"le.Info\"", "\"Post Id\"", "posts", "id"),
    ("attachments", "post_id", "posts", "id"),
    ("attachment_notes", "attachment_id", "attachments", "id"),
];

/// The `--child` flags that name the children without a foreign key.
pub const CHILD_FLAGS: [&str; 4] = [
    "--child",
    "reactions:postid",
    "--child",
    "\"Fi\"\"le.Info\":\"Post Id\"",
];

/// Creates the children of every row now in `posts` (0–2 reactions, 0–1 file, 0–1 attachment
/// with 0–2 notes each).
pub async fn create_children(c: &Client) {
    c.batch_execute(
        "CREATE SEQUENCE family_ids;
         CREATE TABLE reactions (postid text NOT NULL, userid text NOT NULL, emojiname text NOT NULL,
                                 createat bigint, PRIMARY KEY (postid, userid, emojiname));
         CREATE TABLE \"Fi\"\"le.Info\" (id text PRIMARY KEY, \"Post Id\" text, path text);
         CREATE INDEX ON \"Fi\"\"le.Info\" (\"Post Id\");
         CREATE TABLE attachments (id bigint PRIMARY KEY, post_id text NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
                                   name text);
         CREATE INDEX ON attachments (post_id);
         CREATE TABLE attachment_notes (id bigint PRIMARY KEY,
                                        attachment_id bigint REFERENCES attachments (id) ON DELETE CASCADE, note text);
         CREATE INDEX ON attachment_notes (attachment_id);",
    )
    .await
    .expect("create children");
    add_children(c, "").await;
}

/// Children for the posts whose id starts with `prefix` that have none yet (ids from one
/// sequence, so they never meet the ids of rows already archived).
pub async fn add_children(c: &Client, prefix: &str) {
    let sql = format!(
        "INSERT INTO reactions SELECT p.id, 'u' || r, 'e' || r, p.createat
           FROM posts p, generate_series(1, 2) r WHERE p.id LIKE '{prefix}%' AND r <= ascii(right(p.id, 1)) % 3
           ON CONFLICT DO NOTHING;
         INSERT INTO \"Fi\"\"le.Info\" SELECT 'f-' || p.id, p.id, 'data/' || p.id || '.png'
           FROM posts p WHERE p.id LIKE '{prefix}%' AND ascii(left(p.id, 1)) % 3 = 0 ON CONFLICT DO NOTHING;
         INSERT INTO attachments SELECT nextval('family_ids'), p.id, 'a ' || p.id
           FROM posts p WHERE p.id LIKE '{prefix}%' AND right(p.id, 1) < '8'
             AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.post_id = p.id);
         INSERT INTO attachment_notes SELECT nextval('family_ids'), a.id, 'note ' || n
           FROM attachments a, generate_series(1, 2) n WHERE a.post_id LIKE '{prefix}%' AND n <= a.id % 3
             AND NOT EXISTS (SELECT 1 FROM attachment_notes x WHERE x.attachment_id = a.id);
         ANALYZE;"
    );
    c.batch_execute(&sql).await.expect("add children");
}

/// The archive tables are all created before the first batch: until then nothing moved.
async fn archive_exists(c: &Client) -> bool {
    let all = "SELECT (to_regclass('archive.posts') IS NOT NULL AND to_regclass('archive.reactions') IS NOT NULL
                AND to_regclass('archive.\"Fi\"\"le.Info\"') IS NOT NULL AND to_regclass('archive.attachments') IS NOT NULL
                AND to_regclass('archive.attachment_notes') IS NOT NULL)::int::bigint";
    number(c, all).await == 1
}

async fn number(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Every row of the table and its archive (in `archive_schema` of the same database), as one
/// md5 and a count: equal before and after a run means nothing lost, doubled or changed.
pub async fn fingerprint(c: &Client, table: &str, archive_schema: &str) -> (i64, String) {
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(u::text, E'\\n' ORDER BY u::text)), '')
         FROM (SELECT * FROM {table} UNION ALL SELECT * FROM {archive_schema}.{table}) u"
    );
    let row = c.query_one(&sql, &[]).await.expect("fingerprint");
    (row.get(0), row.get(1))
}

/// The invariants of a move with children, in one database: no child row in both its table
/// and its archive; no child left in the source whose parent was archived; no archived child
/// whose parent is still in the source. Returns what broke, empty when all hold.
pub async fn broken(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    if !archive_exists(c).await {
        return out;
    }
    for (table, col, parent, pcol) in CHILDREN {
        let arch = format!("archive.{table}");
        let parent_arch = format!("archive.{parent}");
        let checks = [
            (
                "in both",
                format!("SELECT count(*) FROM {table} x WHERE EXISTS (SELECT 1 FROM {arch} y WHERE y::text = x::text)"),
            ),
            (
                "left behind (parent archived)",
                format!("SELECT count(*) FROM {table} x JOIN {parent_arch} p ON p.{pcol} = x.{col}"),
            ),
            (
                "archived early (parent still in the source)",
                format!("SELECT count(*) FROM {arch} x JOIN {parent} p ON p.{pcol} = x.{col}"),
            ),
        ];
        for (what, sql) in checks {
            let n = number(c, &sql).await;
            if n > 0 {
                out.push(format!("{table}: {n} rows {what}"));
            }
        }
    }
    out
}

/// Rows of each child that refer to a post older than two years (what a run must move).
pub async fn old_children(c: &Client) -> Vec<i64> {
    let old = "SELECT id FROM posts WHERE createat < (extract(epoch FROM now() - interval '2 years') * 1000)::bigint";
    vec![
        number(c, &format!("SELECT count(*) FROM reactions WHERE postid IN ({old})")).await,
        number(c, &format!("SELECT count(*) FROM \"Fi\"\"le.Info\" WHERE \"Post Id\" IN ({old})")).await,
        number(c, &format!("SELECT count(*) FROM attachments WHERE post_id IN ({old})")).await,
        number(
            c,
            &format!("SELECT count(*) FROM attachment_notes WHERE attachment_id IN (SELECT id FROM attachments WHERE post_id IN ({old}))"),
        )
        .await,
    ]
}

/// Rows of `table` in the archive schema (0 while it does not exist).
pub async fn archived(c: &Client, table: &str) -> i64 {
    let exists = number(
        c,
        &format!(
            "SELECT (to_regclass('archive.{}') IS NOT NULL)::int::bigint",
            table.replace('\'', "''")
        ),
    )
    .await;
    if exists == 0 {
        return 0;
    }
    number(c, &format!("SELECT count(*) FROM archive.{table}")).await
}

/// md5 and count over the rows of `tables` together (same columns), ordered by their text.
pub async fn fingerprint_tables(c: &Client, tables: &[&str]) -> (i64, String) {
    let union: Vec<String> = tables.iter().map(|t| format!("SELECT * FROM {t}")).collect();
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(u::text, E'\\n' ORDER BY u::text)), '') FROM ({}) u",
        union.join(" UNION ALL ")
    );
    let row = c.query_one(&sql, &[]).await.expect("fingerprint");
    (row.get(0), row.get(1))
}

/// `truth_<n>` copies of each child table (n = its place in CHILDREN), kept up to date by
/// [`record_truth`]: what source and archive together must hold after any crash.
pub async fn record_truth(c: &Client) {
    for (i, (table, ..)) in CHILDREN.iter().enumerate() {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS truth_{i} AS TABLE {table} WITH NO DATA;
             INSERT INTO truth_{i} SELECT * FROM {table} x
             WHERE NOT EXISTS (SELECT 1 FROM truth_{i} t WHERE t::text = x::text)"
        );
        c.batch_execute(&sql).await.expect("record truth");
    }
}

/// What differs between each child's truth and its rows in source and archive together.
pub async fn lost_or_changed(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    if !archive_exists(c).await {
        return out;
    }
    for (i, (table, ..)) in CHILDREN.iter().enumerate() {
        let truth = fingerprint_tables(c, &[&format!("truth_{i}")]).await;
        let now = fingerprint(c, table, "archive").await;
        if truth != now {
            out.push(format!("{table}: truth {truth:?}, source and archive {now:?}"));
        }
    }
    out
}

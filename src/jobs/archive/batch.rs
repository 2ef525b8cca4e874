//! One batch in the same database: ONE statement (so ONE short transaction) that locks the
//! batch's rows, deletes them with RETURNING and inserts exactly those into the destination.
//!
//! A row is either still in the source or in the destination at every instant: the DELETE
//! and the INSERT commit together or not at all, whatever happens to dbtool or the server.
//! Rows another session has locked are skipped (SKIP LOCKED) and left for a later pass.
//!
//! Two walks choose the batch's rows:
//! - `Ctid`: a range of heap pages (`ctid >= '(lo,0)' AND ctid < '(hi,0)'`), which PostgreSQL
//!   14+ reads with a TID range scan: sequential I/O whatever the key looks like.
//! - `Key`: the next `batch_size` rows in key order after the last key seen (keyset walk);
//!   used on PostgreSQL 13, where a ctid range would be a sequential scan of the whole table.

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::ident::quote_ident;
use super::plan::Source;

/// What a batch does with the rows it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Delete from the source and insert into the destination, atomically.
    Move,
    /// Insert into the destination only (--no-delete).
    Copy,
    /// Delete only (--purge).
    Purge,
}

/// How batches walk the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Walk {
    /// Physical order: heap page ranges (TID range scans, PostgreSQL 14+).
    Ctid,
    /// Key order: keyset pagination on the primary (or unique) key.
    Key,
}

/// The SQL of a run's batches; `first` has no lower bound (key walk), `next` takes it as params.
#[derive(Debug, Clone)]
pub struct BatchSql {
    pub first: String,
    pub next: String,
}

/// The rows a batch touches: the range/keyset bound, the cutoff and --where.
pub fn selection(source: &Source, walk: Walk, predicate: &str, limit: i64, lower_bound: bool, select: &str) -> String {
    let table = source.name.quoted();
    match walk {
        Walk::Ctid => format!(
            "SELECT {select} FROM {table} s WHERE s.ctid >= $1::text::tid AND s.ctid < $2::text::tid AND {predicate}"
        ),
        Walk::Key => {
            let bound = if lower_bound {
                let params: Vec<String> = source
                    .key_columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("${}::text::{}", i + 1, c.sql_type))
                    .collect();
                format!("({}) > ({}) AND ", source.key_list("s."), params.join(", "))
            } else {
                String::new()
            };
            format!(
                "SELECT {select} FROM {table} s WHERE {bound}{predicate} ORDER BY {} LIMIT {limit}",
                source.key_list("s.")
            )
        }
    }
}

/// `ARRAY[key::text, ...]` of the batch's greatest key (how the key walk continues).
fn last_key_expr(source: &Source) -> String {
    let parts: Vec<String> = source.key.iter().map(|k| format!("{}::text", quote_ident(k))).collect();
    let desc: Vec<String> = source.key.iter().map(|k| format!("{} DESC", quote_ident(k))).collect();
    format!(
        "(SELECT ARRAY[{}] FROM batch ORDER BY {} LIMIT 1)",
        parts.join(", "),
        desc.join(", ")
    )
}

/// `INSERT INTO dest (...) ... ON CONFLICT (key) ...` for rows coming from `from`.
pub fn insert_sql(source: &Source, dest: &str, from: &str, overwrite: bool) -> String {
    let cols = source.column_list("");
    let set: Vec<String> = source
        .columns
        .iter()
        .filter(|c| !c.identity && !source.key.contains(&c.name))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
        .collect();
    // Moving: the row being deleted from the source is the truth, so an older copy already in
    // the archive (an earlier --no-delete run) is replaced rather than the source row dropped.
    let conflict = if overwrite && !set.is_empty() {
        format!("DO UPDATE SET {}", set.join(", "))
    } else {
        "DO NOTHING".to_string()
    };
    format!(
        "INSERT INTO {dest} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {from} ON CONFLICT ({}) {conflict}",
        source.key_list("")
    )
}

/// Builds the batch statements for a same-database run.
pub fn build(source: &Source, dest: &str, mode: Mode, walk: Walk, predicate: &str, limit: i64) -> BatchSql {
    let sql = |lower_bound: bool| {
        let key_cols = source.key_list("s.");
        let last = match walk {
            Walk::Key => last_key_expr(source),
            Walk::Ctid => "NULL::text[]".to_string(),
        };
        let table = source.name.quoted();
        match mode {
            Mode::Copy => {
                let batch = selection(source, walk, predicate, limit, lower_bound, &source.column_list("s."));
                format!(
                    "/* dbtool archive */ WITH batch AS ({batch}), ins AS ({} RETURNING 1)
                     SELECT (SELECT count(*) FROM ins) AS rows, (SELECT count(*) FROM batch) AS selected, {last} AS last_key",
                    insert_sql(source, dest, "batch", false)
                )
            }
            Mode::Move | Mode::Purge => {
                let batch = selection(
                    source,
                    walk,
                    predicate,
                    limit,
                    lower_bound,
                    &format!("s.ctid, {key_cols}"),
                );
                let returning = match mode {
                    Mode::Purge => "1".to_string(),
                    _ => source.column_list("t."),
                };
                let ins = match mode {
                    Mode::Move => format!(", ins AS ({})", insert_sql(source, dest, "moved", true)),
                    _ => String::new(),
                };
                format!(
                    "/* dbtool archive */ WITH batch AS ({batch} FOR UPDATE OF s SKIP LOCKED),
                     moved AS (DELETE FROM {table} t WHERE t.ctid = ANY (ARRAY(SELECT ctid FROM batch)) RETURNING {returning}){ins}
                     SELECT (SELECT count(*) FROM moved) AS rows, (SELECT count(*) FROM batch) AS selected, {last} AS last_key"
                )
            }
        }
    };
    BatchSql {
        first: sql(false),
        next: sql(true),
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Rows moved (or copied, or purged).
    pub rows: i64,
    /// Rows the batch selected (locked); fewer than the limit ends a key-walk pass.
    pub selected: i64,
    /// Greatest key of the batch, as text (key walk only).
    pub last_key: Option<Vec<String>>,
}

/// Runs one prepared batch statement with text parameters.
pub async fn execute(client: &Client, stmt: &Statement, params: &[String]) -> Result<Outcome, tokio_postgres::Error> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let row = client.query_one(stmt, &refs).await?;
    Ok(Outcome {
        rows: row.get("rows"),
        selected: row.get("selected"),
        last_key: row.get("last_key"),
    })
}

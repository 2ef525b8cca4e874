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

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use crate::db::{ColumnError, Columns};

use super::children::{self, Child};
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

/// The cutoff on its own, for the server to re-check on every row a batch deletes or copies.
///
/// The walk's WHERE already holds `cutoff AND (--where)`; this is the second line of defence:
/// if that text ever selected a row at or past the cutoff, the batch's statement fails on the
/// row (a failed statement changes nothing) instead of moving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The time column, quoted.
    pub column: String,
    /// The cutoff literal (see `cutoff::Cutoff::literal`).
    pub cutoff: String,
}

impl Guard {
    /// `s."createat" < 1700000000000`, the column prefixed by `alias` (`s.` or nothing).
    pub fn condition(&self, alias: &str) -> String {
        format!("{alias}{} < {}", self.column, self.cutoff)
    }

    /// 1 for a row before the cutoff; for any other row an error that fails the statement.
    /// PostgreSQL has no RAISE in plain SQL: the cast of a text naming the row to integer is the
    /// error, and as it depends on the row it is only evaluated on the CASE's ELSE path.
    pub fn check(&self, alias: &str) -> String {
        format!(
            "CASE WHEN {cond} THEN 1 ELSE ('dbtool archive: refusing a batch that touches a row at or past the cutoff \
             (' || coalesce({alias}{col}::text, 'NULL') || '); it was rolled back')::int END",
            cond = self.condition(alias),
            col = self.column
        )
    }
}

/// Column name of [`Guard::check`] in RETURNING lists (no table column is called that).
const GUARD_COLUMN: &str = "\"dbtool: before the cutoff\"";

/// The SQL of a run's batches; `first` has no lower bound (key walk), `next` takes it as params;
/// `careful_*` skip rows locked by others (see the module comment).
#[derive(Debug, Clone)]
pub struct BatchSql {
    pub first: String,
    pub next: String,
    pub careful_first: String,
    pub careful_next: String,
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

/// What an insert does when the destination already has the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// No ON CONFLICT clause: a duplicate fails the batch (which then changes nothing). Used
    /// by the fast form: speculative insertion costs about 40 % of a batch.
    Fail,
    Nothing,
    /// The row being deleted from the source replaces the archive's older copy.
    Update,
}

/// `INSERT INTO dest (...) ... ON CONFLICT (key) ...` for rows coming from `from`.
pub fn insert_sql(source: &Source, dest: &str, from: &str, on_conflict: Conflict) -> String {
    let cols = source.column_list("");
    let set: Vec<String> = source
        .columns
        .iter()
        .filter(|c| !c.identity && !source.key.contains(&c.name))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
        .collect();
    // Moving: the row being deleted from the source is the truth, so an older copy already in
    // the archive (an earlier --no-delete run) is replaced rather than the source row dropped.
    let conflict = match on_conflict {
        Conflict::Fail => {
            return format!("INSERT INTO {dest} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {from}")
        }
        Conflict::Update if !set.is_empty() => format!("DO UPDATE SET {}", set.join(", ")),
        // Only key columns: a no-op update still returns the row, which is how a cross-database
        // batch learns the destination holds it (DO NOTHING would return nothing, and the
        // source would keep a row already archived).
        Conflict::Update => match source.key_columns().into_iter().find(|c| !c.identity) {
            Some(k) => format!("DO UPDATE SET {0} = EXCLUDED.{0}", quote_ident(&k.name)),
            None => "DO NOTHING".to_string(),
        },
        _ => "DO NOTHING".to_string(),
    };
    format!(
        "INSERT INTO {dest} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {from} ON CONFLICT ({}) {conflict}",
        source.key_list("")
    )
}

/// Builds the batch statements for a same-database run; `children` move in the same statement.
#[allow(clippy::too_many_arguments)]
pub fn build(
    source: &Source,
    children: &[Child],
    dest: &str,
    mode: Mode,
    walk: Walk,
    predicate: &str,
    guard: &Guard,
    limit: i64,
) -> BatchSql {
    let sql = |lower_bound: bool, careful: bool| {
        let key_cols = source.key_list("s.");
        let last = match walk {
            Walk::Key => last_key_expr(source),
            Walk::Ctid => "NULL::text[]".to_string(),
        };
        let table = source.name.quoted();
        let counts = children::sql::counts(children, mode);
        match mode {
            Mode::Copy => {
                let batch = selection(source, walk, predicate, limit, lower_bound, &source.column_list("s."));
                // The copy's guard reads the destination row, which is the source row's copy.
                format!(
                    "/* dbtool archive */ WITH batch AS ({batch}), ins AS ({} RETURNING {} AS {GUARD_COLUMN}){}
                     SELECT (SELECT count(*) FROM ins) AS rows, (SELECT count(*) FROM batch) AS selected, {last} AS last_key, \
                     {counts}",
                    insert_sql(source, dest, "batch", Conflict::Nothing),
                    guard.check(""),
                    children::sql::ctes(children, "batch", mode, careful)
                )
            }
            Mode::Move | Mode::Purge => {
                let check = format!("{} AS {GUARD_COLUMN}", guard.check("s."));
                let returning = match mode {
                    // Children need the parents' values, purged or not.
                    Mode::Purge if children.is_empty() => check,
                    _ => format!("{}, {check}", source.column_list("s.")),
                };
                let ins = match mode {
                    Mode::Move => {
                        let conflict = if careful { Conflict::Update } else { Conflict::Fail };
                        format!(", ins AS ({})", insert_sql(source, dest, "moved", conflict))
                    }
                    _ => String::new(),
                };
                let ins = format!("{ins}{}", children::sql::ctes(children, "moved", mode, careful));
                if walk == Walk::Ctid && !careful {
                    // One TID range scan that deletes as it goes.
                    return format!(
                        "/* dbtool archive */ WITH moved AS (DELETE FROM {table} s WHERE s.ctid >= $1::text::tid \
                         AND s.ctid < $2::text::tid AND {predicate} RETURNING {returning}){ins} \
                         SELECT (SELECT count(*) FROM moved) AS rows, (SELECT count(*) FROM moved) AS selected, \
                         NULL::text[] AS last_key, {counts}"
                    );
                }
                let lock = if careful { " FOR UPDATE OF s SKIP LOCKED" } else { "" };
                // The predicate again in the DELETE: if a concurrent update replaced a row
                // between the two scans, PostgreSQL re-checks the new version against it.
                let batch = selection(
                    source,
                    walk,
                    predicate,
                    limit,
                    lower_bound,
                    &format!("s.ctid, {key_cols}"),
                );
                format!(
                    "/* dbtool archive */ WITH batch AS ({batch}{lock}), \
                     moved AS (DELETE FROM {table} s WHERE s.ctid = ANY (ARRAY(SELECT ctid FROM batch)) AND {predicate} \
                     RETURNING {returning}){ins} \
                     SELECT (SELECT count(*) FROM moved) AS rows, (SELECT count(*) FROM batch) AS selected, \
                     {last} AS last_key, {counts}"
                )
            }
        }
    };
    BatchSql {
        first: sql(false, false),
        next: sql(true, false),
        careful_first: sql(false, true),
        careful_next: sql(true, true),
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
    /// Rows moved of each child, in the order of the run's children.
    pub child_rows: Vec<i64>,
    /// With --files-manifest: the batch's xid and the files of its rows.
    pub files: Option<(String, Vec<String>)>,
}

/// Why a batch failed: the server refused it (SQLSTATE decides about retrying), or its
/// answer did not decode (never retried).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{}", crate::jobs::pg_error(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Column(#[from] ColumnError),
    /// The files manifest could not be written; the batch was rolled back or its files are pending.
    #[error("{0}")]
    Files(String),
    /// The destination confirmed fewer rows than it was sent; the source kept them all.
    #[error("the destination did not confirm every row of the batch; nothing was deleted from the source")]
    Incomplete,
}

impl BatchError {
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            BatchError::Query(e) => e.code(),
            BatchError::Column(_) | BatchError::Incomplete | BatchError::Files(_) => None,
        }
    }
}

/// Runs one prepared batch statement with text parameters.
pub async fn execute(client: &Client, stmt: &Statement, params: &[String]) -> Result<Outcome, BatchError> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let row = client.query_one(stmt, &refs).await?;
    Ok(Outcome {
        rows: row.col("rows")?,
        selected: row.col("selected")?,
        last_key: row.col("last_key")?,
        child_rows: row.col("child_rows")?,
        files: match row.columns().iter().any(|c| c.name() == "xid") {
            true => Some((row.col("xid")?, row.col("files")?)),
            false => None,
        },
    })
}

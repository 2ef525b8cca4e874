//! One batch into another database (`--dest-dsn`): there is no transaction spanning both, so
//! the order makes it safe: lock the batch in the source, insert it at the destination and
//! COMMIT there, then delete in the source exactly the rows the destination confirmed, and
//! commit. A crash between the two commits leaves rows in both places (never in neither); the
//! next run copies them again (ON CONFLICT on the destination key) and deletes them.

use std::collections::HashSet;

use tokio_postgres::{Client, Statement};

use super::batch::{insert_sql, BatchError, Conflict, Guard, Mode, Outcome, Walk};
use super::ident::quote_ident;
use super::plan::Source;
use crate::db::Columns;

/// The statements of a cross-database run, prepared on their own connections.
pub struct CrossSql {
    /// Source: lock and read the batch (first = no lower bound, for the key walk).
    pub select_first: String,
    pub select_next: String,
    /// Destination: upsert a JSON array of rows, returning the keys now present.
    pub insert: String,
    /// Source: delete by ctid (still locked by the open transaction, so stable).
    pub delete: String,
}

pub fn build(
    source: &Source,
    dest: &str,
    walk: Walk,
    predicate: &str,
    guard: &Guard,
    limit: i64,
    mode: Mode,
) -> CrossSql {
    let key_json = format!("jsonb_build_array({})::text", source.key_list("s."));
    let last: Vec<String> = source
        .key
        .iter()
        .map(|k| format!("s.{}::text", quote_ident(k)))
        .collect();
    // The guard fails the selecting statement on a row at or past the cutoff, before any of
    // the batch reaches the destination.
    let select = format!(
        "s.ctid::text AS tid, {key_json} AS key, to_jsonb(s)::text AS row, ARRAY[{}] AS key_text, {} AS guard",
        last.join(", "),
        guard.check("s.")
    );
    let lock = if mode == Mode::Copy {
        ""
    } else {
        " FOR UPDATE OF s SKIP LOCKED"
    };
    let sel = |lower| {
        format!(
            "/* dbtool archive */ {}{lock}",
            super::batch::selection(source, walk, predicate, limit, lower, &select)
        )
    };
    let from = format!("jsonb_populate_recordset(NULL::{dest}, $1::text::jsonb)");
    let dest_key = format!("jsonb_build_array({})::text", source.key_list(""));
    CrossSql {
        select_first: sel(false),
        select_next: sel(true),
        insert: format!(
            "/* dbtool archive */ {} RETURNING {dest_key}",
            insert_sql(
                source,
                dest,
                &from,
                if mode == Mode::Move {
                    Conflict::Update
                } else {
                    Conflict::Nothing
                }
            )
        ),
        delete: format!(
            "/* dbtool archive */ DELETE FROM {} s WHERE s.ctid = ANY ($1::text[]::tid[]) AND {}",
            source.name.quoted(),
            guard.condition("s.")
        ),
    }
}

/// Prepared statements for a cross-database run.
pub struct Prepared {
    pub select_first: Statement,
    pub select_next: Statement,
    pub insert: Statement,
    pub delete: Statement,
}

/// One cross-database batch. `src` must have no open transaction.
pub async fn execute(
    src: &mut Client,
    dst: &Client,
    p: &Prepared,
    first: bool,
    params: &[String],
    mode: Mode,
) -> Result<Outcome, BatchError> {
    let tx = src.transaction().await?;
    let select = if first { &p.select_first } else { &p.select_next };
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|x| x as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let rows = tx.query(select, &refs).await?;
    let selected = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let last_key: Option<Vec<String>> = rows.last().map(|r| r.col("key_text")).transpose()?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Outcome {
            rows: 0,
            selected,
            last_key,
        });
    }
    let json = format!(
        "[{}]",
        rows.iter()
            .map(|r| r.col::<&str>("row"))
            .collect::<Result<Vec<_>, _>>()?
            .join(",")
    );
    // Committed at the destination before anything is deleted at the source.
    let confirmed: HashSet<String> = dst
        .query(&p.insert, &[&json])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    let mut moved = i64::try_from(confirmed.len()).unwrap_or(i64::MAX);
    if mode == Mode::Move {
        let mut present: Vec<String> = Vec::new();
        for r in &rows {
            if confirmed.contains(r.col::<&str>("key")?) {
                present.push(r.col("tid")?);
            }
        }
        let deleted = tx.execute(&p.delete, &[&present]).await?;
        moved = i64::try_from(deleted).unwrap_or(i64::MAX);
    }
    tx.commit().await?;
    Ok(Outcome {
        rows: moved,
        selected,
        last_key,
    })
}

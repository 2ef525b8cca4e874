//! One batch into another database (`--dest-dsn`): there is no transaction spanning both, so
//! the order makes it safe: lock the batch in the source, insert it at the destination and
//! COMMIT there, then delete in the source exactly the rows the destination confirmed, and
//! commit. A crash between the two commits leaves rows in both places (never in neither); the
//! next run copies them again (ON CONFLICT on the destination key) and deletes them.
//!
//! Children go the same way: read (and locked) in the source transaction, inserted at the
//! destination in the parents' destination transaction, deleted in the source transaction
//! (children first) only once the destination has committed every one of them.

use std::collections::HashSet;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::batch::{insert_sql, BatchError, Conflict, Guard, Mode, Outcome, Walk};
use super::children::{self, Child};
use super::ident::quote_ident;
use super::manifest::Manifest;
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
    pub children: Vec<children::sql::CrossChild>,
    /// For each child: its parent node, and which of the parent's `refs` it refers to.
    pub links: Vec<(usize, usize)>,
    /// For each child: whether its rows carry `files` (`--files-from`).
    pub files: Vec<bool>,
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    source: &Source,
    kids: &[Child],
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
        "s.ctid::text AS tid, {key_json} AS key, to_jsonb(s)::text AS row, ARRAY[{}] AS key_text, {} AS guard, {}",
        last.join(", "),
        guard.check("s."),
        children::sql::refs_select(kids, 0, "s")
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
    let links = kids
        .iter()
        .map(|c| {
            let refs = children::sql::ref_columns(kids, c.parent);
            (c.parent, refs.iter().position(|r| r == &c.parent_column).unwrap_or(0))
        })
        .collect();
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
        children: children::sql::cross(kids, mode),
        links,
        files: kids.iter().map(|c| !c.files.is_empty()).collect(),
    }
}

/// One child's prepared statements.
pub struct ChildStmts {
    pub select: Statement,
    pub insert: Statement,
    pub delete: Statement,
}

/// Prepared statements for a cross-database run.
pub struct Prepared {
    pub select_first: Statement,
    pub select_next: Statement,
    pub insert: Statement,
    pub delete: Statement,
    pub children: Vec<ChildStmts>,
    pub links: Vec<(usize, usize)>,
    /// For each child: whether its rows carry `files` (`--files-from`).
    pub files: Vec<bool>,
}

pub async fn prepare(src: &Client, dst: &Client, c: CrossSql) -> Result<Prepared, tokio_postgres::Error> {
    let mut kids = Vec::new();
    for k in &c.children {
        kids.push(ChildStmts {
            select: src.prepare(&k.select).await?,
            insert: dst.prepare(&k.insert).await?,
            delete: src.prepare(&k.delete).await?,
        });
    }
    Ok(Prepared {
        select_first: src.prepare(&c.select_first).await?,
        select_next: src.prepare(&c.select_next).await?,
        insert: dst.prepare(&c.insert).await?,
        delete: src.prepare(&c.delete).await?,
        children: kids,
        links: c.links,
        files: c.files,
    })
}

fn json_array(rows: &[Row]) -> Result<String, BatchError> {
    let parts = rows
        .iter()
        .map(|r| r.col::<&str>("row"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("[{}]", parts.join(",")))
}

fn tids(rows: &[Row]) -> Result<Vec<String>, BatchError> {
    Ok(rows.iter().map(|r| r.col("tid")).collect::<Result<_, _>>()?)
}

/// The values of column `index` of `rows`' refs: what the next level's rows refer to.
fn refs(rows: &[Row], index: usize) -> Result<Vec<String>, BatchError> {
    let mut out = Vec::new();
    for r in rows {
        let refs: Vec<Option<String>> = r.col("refs")?;
        if let Some(Some(v)) = refs.get(index) {
            out.push(v.clone());
        }
    }
    Ok(out)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The files of the children's rows that carry them (`--files-from`).
fn files(p: &Prepared, kid_rows: &[Vec<Row>]) -> Result<Vec<String>, BatchError> {
    let mut out = Vec::new();
    for (krows, _) in kid_rows.iter().zip(&p.files).filter(|(_, f)| **f) {
        for r in krows {
            out.extend(r.col::<Vec<String>>("files")?);
        }
    }
    Ok(out)
}

/// One cross-database batch. `src` must have no open transaction. With a files manifest, the
/// source's deleting transaction takes the place of the same-database batch's in
/// manifest.rs: its xid goes in the pending list and it commits synchronously.
pub async fn execute(
    src: &mut Client,
    dst: &mut Client,
    p: &Prepared,
    first: bool,
    params: &[String],
    mode: Mode,
    manifest: Option<&Manifest>,
) -> Result<Outcome, BatchError> {
    let tx = src.transaction().await?;
    let select = if first { &p.select_first } else { &p.select_next };
    let refs_in: Vec<&(dyn ToSql + Sync)> = params.iter().map(|x| x as &(dyn ToSql + Sync)).collect();
    let rows = tx.query(select, &refs_in).await?;
    let selected = count(rows.len());
    let last_key: Option<Vec<String>> = rows.last().map(|r| r.col("key_text")).transpose()?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Outcome {
            rows: 0,
            selected,
            last_key,
            child_rows: vec![0; p.children.len()],
            files: None,
        });
    }
    // Each child's rows, read and locked in the source transaction, parents first.
    let mut kid_rows: Vec<Vec<Row>> = Vec::with_capacity(p.children.len());
    for (k, (parent, index)) in p.children.iter().zip(&p.links) {
        let values = match parent {
            0 => refs(&rows, *index)?,
            n => refs(&kid_rows[n - 1], *index)?,
        };
        kid_rows.push(tx.query(&k.select, &[&values]).await?);
    }
    // Committed at the destination, parents and children together, before anything is
    // deleted at the source.
    let dtx = dst.transaction().await?;
    let confirmed: HashSet<String> = dtx
        .query(&p.insert, &[&json_array(&rows)?])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    let mut child_rows = Vec::with_capacity(p.children.len());
    for (k, krows) in p.children.iter().zip(&kid_rows) {
        let n = match krows.is_empty() {
            true => 0,
            false => dtx.query(&k.insert, &[&json_array(krows)?]).await?.len(),
        };
        child_rows.push(count(n));
    }
    dtx.commit().await?;
    let mut moved = count(confirmed.len());
    if mode == Mode::Move {
        let mut present: Vec<String> = Vec::new();
        for r in &rows {
            if confirmed.contains(r.col::<&str>("key")?) {
                present.push(r.col("tid")?);
            }
        }
        // A child is only deleted with all of its parents' batch confirmed (an upsert returns
        // every row it was given, so anything else is a server surprise: nothing is deleted).
        let whole = present.len() == rows.len() && kid_rows.iter().zip(&child_rows).all(|(r, n)| count(r.len()) == *n);
        if !p.children.is_empty() && !whole {
            return Err(BatchError::Incomplete);
        }
        for (k, krows) in p.children.iter().zip(&kid_rows).rev() {
            if !krows.is_empty() {
                tx.execute(&k.delete, &[&tids(krows)?]).await?;
            }
        }
        let deleted = tx.execute(&p.delete, &[&present]).await?;
        moved = i64::try_from(deleted).unwrap_or(i64::MAX);
    }
    let listed = match (manifest, mode) {
        (Some(m), Mode::Move) => Some((m, files(p, &kid_rows)?)).filter(|(_, f)| !f.is_empty()),
        _ => None,
    };
    if let Some((m, files)) = &listed {
        tx.batch_execute("SET LOCAL synchronous_commit = on").await?;
        let xid: String = tx
            .query_one(include_str!("../../../queries/archive_xid.sql"), &[])
            .await?
            .col("xid")?;
        m.prepare(&xid, files).map_err(|e| BatchError::Files(e.to_string()))?;
    }
    tx.commit().await?;
    if let Some((m, files)) = &listed {
        m.committed(files).map_err(|e| BatchError::Files(e.to_string()))?;
    }
    Ok(Outcome {
        rows: moved,
        selected,
        last_key,
        child_rows,
        files: None,
    })
}

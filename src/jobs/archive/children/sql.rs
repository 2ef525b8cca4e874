//! The SQL that moves children: CTEs appended to a same-database batch, statements of a
//! cross-database batch, and the "remaining" counts.

use super::Child;
use crate::jobs::archive::batch::{insert_sql, Conflict, Mode};
use crate::jobs::archive::ident::quote_ident;
use crate::jobs::archive::plan::Source;

/// Name of child i's CTE (`c1` for `children[0]`); node 0 is `root` (the parent's CTE).
fn cte(node: usize, root: &str) -> String {
    match node {
        0 => root.to_string(),
        i => format!("c{i}"),
    }
}

/// `c."col" = ANY (ARRAY(SELECT p."pcol"::type FROM parent p))`: the parent's values cast to the
/// child column's type, so the child's index on it serves the lookup.
fn refers(c: &Child, parent: &str) -> String {
    format!(
        "c.{} = ANY (ARRAY(SELECT p.{}::{} FROM {parent} p))",
        quote_ident(&c.column),
        quote_ident(&c.parent_column),
        c.column_type()
    )
}

/// `, c1 AS (...), c1_ins AS (...)`: each child's rows of the parents in `root`, deleted (with
/// a copy inserted into its archive table) or copied, in the same statement as the parents.
/// Every data-modifying CTE runs to completion whether or not it is read, and foreign keys
/// are checked at the end of the statement, when parents and children are gone together.
pub fn ctes(children: &[Child], root: &str, mode: Mode, careful: bool) -> String {
    let mut out = String::new();
    for (i, c) in children.iter().enumerate() {
        let name = cte(i + 1, root);
        let table = c.source.name.quoted();
        let cols = c.source.column_list("c.");
        let cond = refers(c, &cte(c.parent, root));
        let dest = c.dest.quoted();
        match mode {
            Mode::Copy => out.push_str(&format!(
                ", {name} AS (SELECT {cols} FROM {table} c WHERE {cond}), {name}_ins AS ({} RETURNING 1)",
                insert_sql(&c.source, &dest, &name, Conflict::Nothing)
            )),
            Mode::Purge => out.push_str(&format!(
                ", {name} AS (DELETE FROM {table} c WHERE {cond} RETURNING {cols})"
            )),
            Mode::Move => {
                let conflict = if careful { Conflict::Update } else { Conflict::Fail };
                out.push_str(&format!(
                    ", {name} AS (DELETE FROM {table} c WHERE {cond} RETURNING {cols}), {name}_ins AS ({})",
                    insert_sql(&c.source, &dest, &name, conflict)
                ));
            }
        }
    }
    out
}

/// `ARRAY[(SELECT count(*) FROM c1), ...]::bigint[] AS child_rows`: rows moved per child.
pub fn counts(children: &[Child], mode: Mode) -> String {
    let parts: Vec<String> = (1..=children.len())
        .map(|i| match mode {
            Mode::Copy => format!("(SELECT count(*) FROM c{i}_ins)"),
            _ => format!("(SELECT count(*) FROM c{i})"),
        })
        .collect();
    let files: Vec<String> = children
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.files.is_empty())
        .map(|(i, c)| {
            let values: Vec<String> = c
                .files
                .iter()
                .map(|f| format!("(f.{}::text)", quote_ident(f)))
                .collect();
            format!(
                "SELECT v.path FROM c{} f, LATERAL (VALUES {}) v(path) WHERE v.path <> ''",
                i + 1,
                values.join(", ")
            )
        })
        .collect();
    // The manifest's paths, and the xid that says after a crash whether they committed.
    let files = match files.is_empty() {
        true => String::new(),
        false => format!(
            ", txid_current()::text AS xid, ARRAY({})::text[] AS files",
            files.join(" UNION ALL ")
        ),
    };
    format!("ARRAY[{}]::bigint[] AS child_rows{files}", parts.join(", "))
}

/// The values of `node`'s rows that its children refer to, in order (cross-database batches
/// send them back as the next query's parameter).
pub fn ref_columns(children: &[Child], node: usize) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for c in children.iter().filter(|c| c.parent == node) {
        if !cols.contains(&c.parent_column) {
            cols.push(c.parent_column.clone());
        }
    }
    cols
}

/// `ARRAY[alias."a"::text, ...]::text[] AS refs`
pub fn refs_select(children: &[Child], node: usize, alias: &str) -> String {
    let cols: Vec<String> = ref_columns(children, node)
        .iter()
        .map(|c| format!("{alias}.{}::text", quote_ident(c)))
        .collect();
    format!("ARRAY[{}]::text[] AS refs", cols.join(", "))
}

/// Cross-database statements of one child.
pub struct CrossChild {
    /// Source: lock and read the child rows of the given parent values ($1, text[]).
    pub select: String,
    /// Destination: upsert a JSON array of rows.
    pub insert: String,
    /// Source: delete by ctid.
    pub delete: String,
}

pub fn cross(children: &[Child], mode: Mode) -> Vec<CrossChild> {
    children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let table = c.source.name.quoted();
            let lock = if mode == Mode::Copy { "" } else { " FOR UPDATE OF c" };
            let dest = c.dest.quoted();
            let from = format!("jsonb_populate_recordset(NULL::{dest}, $1::text::jsonb)");
            let conflict = if mode == Mode::Move {
                Conflict::Update
            } else {
                Conflict::Nothing
            };
            CrossChild {
                select: format!(
                    "/* dbtool archive */ SELECT c.ctid::text AS tid, to_jsonb(c)::text AS row, {}{} FROM {table} c \
                     WHERE c.{} = ANY ($1::text[]::{}[]){lock}",
                    refs_select(children, i + 1, "c"),
                    file_paths(c),
                    quote_ident(&c.column),
                    c.column_type()
                ),
                insert: format!(
                    "/* dbtool archive */ {} RETURNING 1",
                    insert_sql(&c.source, &dest, &from, conflict)
                ),
                delete: format!("/* dbtool archive */ DELETE FROM {table} c WHERE c.ctid = ANY ($1::text[]::tid[])"),
            }
        })
        .collect()
}

/// `, … AS files`: the non-empty paths in a cross-database child row's `--files-from`
/// columns (the same paths the same-database statement lists), or nothing.
fn file_paths(c: &Child) -> String {
    if c.files.is_empty() {
        return String::new();
    }
    let values: Vec<String> = c.files.iter().map(|f| format!("c.{}::text", quote_ident(f))).collect();
    format!(
        ", array_remove(array_remove(ARRAY[{}], ''), NULL) AS files",
        values.join(", ")
    )
}

/// Counts child i's rows that still refer to a row older than the cutoff (through its parents).
pub fn remaining_sql(root: &Source, children: &[Child], i: usize, predicate: &str) -> String {
    // The values of node n that its children refer to, for rows still to archive.
    fn values(root: &Source, children: &[Child], node: usize, column: &str, predicate: &str) -> String {
        match node {
            0 => format!(
                "SELECT s.{} FROM {} s WHERE {predicate}",
                quote_ident(column),
                root.name.quoted()
            ),
            n => {
                let c = &children[n - 1];
                format!(
                    "SELECT x.{} FROM {} x WHERE x.{} IN ({})",
                    quote_ident(column),
                    c.source.name.quoted(),
                    quote_ident(&c.column),
                    values(root, children, c.parent, &c.parent_column, predicate)
                )
            }
        }
    }
    let c = &children[i];
    format!(
        "/* dbtool archive */ SELECT count(*) AS remaining FROM {} c WHERE c.{} IN ({})",
        c.source.name.quoted(),
        quote_ident(&c.column),
        values(root, children, c.parent, &c.parent_column, predicate)
    )
}

//! Building the tree of a run's tables: the children named with `--child`, then every foreign
//! key that refers to a table of the tree. An ON DELETE CASCADE child joins the tree (its rows
//! are archived, not deleted by the cascade); any other unnamed child would make the parent's
//! delete fail or rewrite the child's rows, so it is an error naming the flag to add.

use tokio_postgres::Client;

use super::{Child, ChildSpec};
use crate::db::Columns;
use crate::jobs::archive::ident::{quote_ident, QualifiedName};
use crate::jobs::archive::plan::{self, Source};
use crate::jobs::archive::ArchiveError;

struct ForeignKey {
    name: String,
    child: QualifiedName,
    on_delete: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
}

fn refused(why: String) -> ArchiveError {
    ArchiveError::Refused(why)
}

async fn foreign_keys(client: &Client, oid: i64) -> Result<Vec<ForeignKey>, ArchiveError> {
    let rows = client
        .query(include_str!("../../../../queries/archive_foreign_keys.sql"), &[&oid])
        .await
        .map_err(|source| ArchiveError::Db {
            what: "reading foreign keys from pg_constraint".into(),
            source,
        })?;
    let fk = |r: &tokio_postgres::Row| -> Result<ForeignKey, crate::db::ColumnError> {
        Ok(ForeignKey {
            name: r.col("name")?,
            child: QualifiedName {
                schema: r.col("child_schema")?,
                name: r.col("child_table")?,
            },
            on_delete: r.col("on_delete")?,
            columns: r.col("columns")?,
            parent_columns: r.col("parent_columns")?,
        })
    };
    Ok(rows.iter().map(fk).collect::<Result<_, _>>()?)
}

fn on_delete_words(code: &str) -> &'static str {
    match code {
        "c" => "ON DELETE CASCADE",
        "r" => "ON DELETE RESTRICT",
        "n" => "ON DELETE SET NULL",
        "d" => "ON DELETE SET DEFAULT",
        _ => "ON DELETE NO ACTION",
    }
}

/// The tables of the tree so far: node 0 is the archived table.
struct Tree<'a> {
    root: &'a Source,
    children: Vec<Child>,
}

impl Tree<'_> {
    fn node(&self, i: usize) -> &Source {
        match i {
            0 => self.root,
            i => &self.children[i - 1].source,
        }
    }

    fn find(&self, name: &QualifiedName) -> Option<usize> {
        (0..=self.children.len()).find(|&i| &self.node(i).name == name)
    }

    /// `node` and its ancestors up to the archived table, for naming a cycle.
    fn path(&self, mut node: usize) -> Vec<usize> {
        let mut path = vec![node];
        while node != 0 {
            node = self.children[node - 1].parent;
            path.push(node);
        }
        path
    }
}

/// The children of a run (named and found), parents before their children, each checked:
/// it exists, has a key, and (unless `allow_seq_scan`) an index on its column.
pub async fn discover(
    client: &Client,
    root: &Source,
    specs: &[String],
    dest_schema: &str,
    allow_seq_scan: bool,
) -> Result<Vec<Child>, ArchiveError> {
    let mut tree = Tree {
        root,
        children: Vec::new(),
    };
    for text in specs {
        let spec = ChildSpec::parse(text).map_err(|e| ArchiveError::Config(e.to_string()))?;
        let parent = match &spec.parent_table {
            None => 0,
            Some(p) => tree.find(p).ok_or_else(|| {
                ArchiveError::Config(format!(
                    "--child '{text}': the parent {p} is neither the archived table nor a child named before this one; \
                     name the parent first"
                ))
            })?,
        };
        if tree.find(&spec.table).is_some() {
            return Err(ArchiveError::Config(format!(
                "--child '{text}': {} is already a table of this run; each table can be moved along one path only",
                spec.table
            )));
        }
        let child = load(
            client,
            &tree,
            &spec.table,
            &spec.column,
            parent,
            spec.parent_column,
            dest_schema,
            None,
        )
        .await?;
        tree.children.push(child);
    }
    let mut node = 0;
    while node <= tree.children.len() {
        for fk in foreign_keys(client, tree.node(node).oid).await? {
            follow(client, &mut tree, node, fk, dest_schema).await?;
        }
        node += 1;
    }
    for (i, c) in tree.children.iter().enumerate() {
        if !allow_seq_scan {
            check_index(c)?;
        }
        let clash = tree.children[..i].iter().find(|o| o.dest == c.dest);
        if let Some(o) = clash.or_else(|| tree.children.iter().find(|o| o.source.name == c.dest)) {
            return Err(refused(format!(
                "{} and {} would both be archived into {}; archive them in separate runs",
                c.source.name, o.source.name, c.dest
            )));
        }
    }
    Ok(tree.children)
}

/// One foreign key referring to `node`: already covered by a named child, joins the tree
/// (CASCADE), or is an error.
async fn follow(
    client: &Client,
    tree: &mut Tree<'_>,
    node: usize,
    fk: ForeignKey,
    dest_schema: &str,
) -> Result<(), ArchiveError> {
    let parent_name = tree.node(node).name.clone();
    let child_cols: Vec<String> = fk.columns.iter().map(|c| quote_ident(c)).collect();
    if let Some(existing) = tree.find(&fk.child) {
        if tree.path(node).contains(&existing) {
            let names: Vec<String> = tree
                .path(node)
                .iter()
                .rev()
                .map(|&i| tree.node(i).name.to_string())
                .collect();
            return Err(refused(format!(
                "foreign key {} of {} refers back to {parent_name}: the tables form a cycle ({} -> {}); \
                 archive cannot move a cycle in batches",
                quote_ident(&fk.name),
                fk.child,
                names.join(" -> "),
                fk.child
            )));
        }
        let c = &tree.children[existing - 1];
        if c.parent == node && fk.columns == [c.column.clone()] && fk.parent_columns == [c.parent_column.clone()] {
            return Ok(());
        }
        return Err(refused(format!(
            "foreign key {} of {} ({}) refers to {parent_name}, but {} is moved along another path \
             (its column {} refers to {}); name it with --child so both agree, or drop the key",
            quote_ident(&fk.name),
            fk.child,
            child_cols.join(", "),
            fk.child,
            quote_ident(&c.column),
            tree.node(c.parent).name
        )));
    }
    let (col, pcol) = match (fk.columns.as_slice(), fk.parent_columns.as_slice()) {
        ([col], [pcol]) => (col.clone(), pcol.clone()),
        _ => {
            return Err(refused(format!(
                "foreign key {} of {} refers to {parent_name} over several columns ({}); archive moves children \
                 by one column only",
                quote_ident(&fk.name),
                fk.child,
                child_cols.join(", ")
            )))
        }
    };
    if fk.on_delete != "c" {
        let under = if node == 0 {
            String::new()
        } else {
            format!("={parent_name}.{}", quote_ident(&pcol))
        };
        return Err(refused(format!(
            "{} refers to {parent_name} through foreign key {} ({}), so moving rows of {parent_name} would fail or \
             change {}; move its rows along: add --child '{}:{}{under}'",
            fk.child,
            quote_ident(&fk.name),
            on_delete_words(&fk.on_delete),
            fk.child,
            fk.child,
            quote_ident(&col)
        )));
    }
    let child = load(
        client,
        tree,
        &fk.child,
        &col,
        node,
        Some(pcol),
        dest_schema,
        Some(fk.name),
    )
    .await?;
    tree.children.push(child);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn load(
    client: &Client,
    tree: &Tree<'_>,
    name: &QualifiedName,
    column: &str,
    parent: usize,
    parent_column: Option<String>,
    dest_schema: &str,
    via: Option<String>,
) -> Result<Child, ArchiveError> {
    let source = plan::load_source(client, name, column).await.map_err(|e| match e {
        ArchiveError::Refused(m) => refused(format!("child table: {m}")),
        e => e,
    })?;
    if source.column(column).is_none() {
        return Err(refused(format!(
            "child table {name} has no column {}",
            quote_ident(column)
        )));
    }
    let p = tree.node(parent);
    let parent_column = match parent_column {
        Some(c) => c,
        None => match p.key.as_slice() {
            [k] => k.clone(),
            _ => {
                return Err(ArchiveError::Config(format!(
                    "--child {name}: the key of {} has several columns; say which one {} refers to \
                     (TABLE:COLUMN=PARENT_COLUMN)",
                    p.name,
                    quote_ident(column)
                )))
            }
        },
    };
    if p.column(&parent_column).is_none() {
        return Err(refused(format!(
            "--child {name}: {} has no column {}",
            p.name,
            quote_ident(&parent_column)
        )));
    }
    let dest = QualifiedName {
        schema: dest_schema.to_string(),
        name: name.name.clone(),
    };
    Ok(Child {
        source,
        column: column.to_string(),
        parent,
        parent_column,
        dest,
        via,
        files: Vec::new(),
    })
}

/// Each batch finds a child's rows by its column: without an index that leads with it, every
/// batch would read the whole child table.
fn check_index(c: &Child) -> Result<(), ArchiveError> {
    // load_source was given the child column: `time_indexed` says whether an index leads with it.
    if c.source.time_indexed {
        return Ok(());
    }
    Err(refused(format!(
        "child table {} has no index whose first column is {}, so every batch would scan the whole table; \
         create one first: CREATE INDEX CONCURRENTLY ON {} ({}); (or accept the scans with --allow-seq-scan)",
        c.source.name,
        quote_ident(&c.column),
        c.source.name.quoted(),
        quote_ident(&c.column)
    )))
}

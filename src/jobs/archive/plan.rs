//! What an archive run works on: the source table (columns, key), and the destination, created
//! on first use or checked for compatibility.

use tokio_postgres::Client;

use crate::db::{ColumnError, Columns};

use super::ident::{quote_ident, QualifiedName};
use super::ArchiveError;

/// One column of the source, in table order.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// As `format_type` spells it: `bigint`, `timestamp with time zone`, `character varying(26)`.
    pub sql_type: String,
    pub not_null: bool,
    /// An identity column: never updated by ON CONFLICT (GENERATED ALWAYS refuses it).
    pub identity: bool,
}

/// The source table as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: QualifiedName,
    pub oid: i64,
    pub columns: Vec<Column>,
    /// Columns of the primary key, or of a unique index over NOT NULL columns.
    pub key: Vec<String>,
    /// Heap pages now, and the planner's row estimate (for the first batch size).
    pub blocks: i64,
    pub reltuples: f64,
    pub relpages: i64,
    /// A valid index leads with the time column (makes "anything left?" cheap).
    pub time_indexed: bool,
}

impl Source {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `"a", "b"` — every column, quoted, optionally prefixed (`t."a"`).
    pub fn column_list(&self, prefix: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{prefix}{}", quote_ident(&c.name)))
            .collect();
        cols.join(", ")
    }

    pub fn key_list(&self, prefix: &str) -> String {
        let cols: Vec<String> = self.key.iter().map(|c| format!("{prefix}{}", quote_ident(c))).collect();
        cols.join(", ")
    }

    /// The key columns with their types, for casts of key values sent as text.
    pub fn key_columns(&self) -> Vec<&Column> {
        self.key.iter().filter_map(|k| self.column(k)).collect()
    }
}

fn db(what: &str) -> impl Fn(tokio_postgres::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Db {
        what: what.to_string(),
        source,
    }
}

/// Reads the source table and picks its key; refuses views, partitioned parents and key-less tables.
pub async fn load_source(client: &Client, name: &QualifiedName, time_column: &str) -> Result<Source, ArchiveError> {
    let row = client
        .query_opt(
            include_str!("../../../queries/archive_table.sql"),
            &[&name.schema, &name.name],
        )
        .await
        .map_err(db("reading the source table from pg_class"))?
        .ok_or_else(|| ArchiveError::Refused(format!("table {name} does not exist (check --table and search_path)")))?;
    let relkind: String = row.col("relkind")?;
    match relkind.as_str() {
        "r" => {}
        "p" => {
            return Err(ArchiveError::Refused(format!(
                "{name} is a partitioned table; archive each partition (--table a partition), or detach old partitions"
            )))
        }
        _ => {
            return Err(ArchiveError::Refused(format!(
                "{name} is not a plain table (relkind {relkind})"
            )))
        }
    }
    let oid: i64 = row.col("oid")?;
    let columns = load_columns(client, oid).await?;
    let key = pick_key(client, oid, name).await?;
    let time_indexed = client
        .query_one(
            include_str!("../../../queries/archive_time_index.sql"),
            &[&oid, &time_column],
        )
        .await
        .map_err(db("looking for an index on the time column"))?
        .col("indexed")?;
    Ok(Source {
        name: name.clone(),
        oid,
        columns,
        key,
        blocks: row.col("blocks")?,
        reltuples: row.col("reltuples")?,
        relpages: row.col("relpages")?,
        time_indexed,
    })
}

pub async fn load_columns(client: &Client, oid: i64) -> Result<Vec<Column>, ArchiveError> {
    let rows = client
        .query(include_str!("../../../queries/archive_columns.sql"), &[&oid])
        .await
        .map_err(db("reading columns from pg_attribute"))?;
    let column = |r: &tokio_postgres::Row| -> Result<Column, ColumnError> {
        Ok(Column {
            name: r.col("name")?,
            sql_type: r.col("type")?,
            not_null: r.col("not_null")?,
            identity: r.col("identity")?,
        })
    };
    Ok(rows.iter().map(column).collect::<Result<_, _>>()?)
}

async fn pick_key(client: &Client, oid: i64, name: &QualifiedName) -> Result<Vec<String>, ArchiveError> {
    let rows = client
        .query(include_str!("../../../queries/archive_keys.sql"), &[&oid])
        .await
        .map_err(db("reading unique indexes from pg_index"))?;
    for r in &rows {
        if r.col::<bool>("not_null")? {
            return Ok(r.col("columns")?);
        }
    }
    Err(ArchiveError::Refused(format!(
        "table {name} has no primary key and no unique index over NOT NULL columns; archive needs one \
         to move each row exactly once — add a primary key"
    )))
}

/// Key column sets of every usable unique index on `oid` (for the destination check).
async fn unique_keys(client: &Client, oid: i64) -> Result<Vec<Vec<String>>, ArchiveError> {
    let rows = client
        .query(include_str!("../../../queries/archive_keys.sql"), &[&oid])
        .await
        .map_err(db("reading unique indexes of the destination"))?;
    Ok(rows.iter().map(|r| r.col("columns")).collect::<Result<_, _>>()?)
}

/// The statement that creates the destination in the same database.
pub fn create_like_sql(source: &Source, dest: &QualifiedName) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
         INCLUDING INDEXES INCLUDING IDENTITY)",
        quote_ident(&dest.schema),
        dest.quoted(),
        source.name.quoted()
    )
}

/// The statement that creates the destination in another database (no LIKE across databases):
/// same columns, types, NOT NULL and the key as primary key.
pub fn create_remote_sql(source: &Source, dest: &QualifiedName) -> String {
    let mut defs: Vec<String> = source
        .columns
        .iter()
        .map(|c| {
            let not_null = if c.not_null { " NOT NULL" } else { "" };
            format!("{} {}{not_null}", quote_ident(&c.name), c.sql_type)
        })
        .collect();
    defs.push(format!("PRIMARY KEY ({})", source.key_list("")));
    format!(
        "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} ({})",
        quote_ident(&dest.schema),
        dest.quoted(),
        defs.join(", ")
    )
}

/// Oid of an existing table `name`, or None.
pub async fn find_table(client: &Client, name: &QualifiedName) -> Result<Option<i64>, ArchiveError> {
    let row = client
        .query_opt(
            include_str!("../../../queries/archive_table.sql"),
            &[&name.schema, &name.name],
        )
        .await
        .map_err(db("looking up the destination"))?;
    Ok(row.map(|r| r.col("oid")).transpose()?)
}

/// Creates the destination if missing (`create_sql`), then checks it can take the source's rows.
pub async fn ensure_dest(
    client: &Client,
    source: &Source,
    dest: &QualifiedName,
    create_sql: &str,
) -> Result<bool, ArchiveError> {
    let created = match find_table(client, dest).await? {
        Some(_) => false,
        None => {
            client
                .batch_execute(create_sql)
                .await
                .map_err(db("creating the destination table"))?;
            true
        }
    };
    let oid = find_table(client, dest)
        .await?
        .ok_or_else(|| ArchiveError::Refused(format!("destination {dest} vanished after creation")))?;
    check_dest(client, source, dest, oid).await?;
    Ok(created)
}

/// The destination must have every source column with the same type, no extra column it
/// cannot fill, and a unique key on the source's key columns (for ON CONFLICT).
pub async fn check_dest(client: &Client, source: &Source, dest: &QualifiedName, oid: i64) -> Result<(), ArchiveError> {
    let dest_cols = load_columns(client, oid).await?;
    let mismatch = first_mismatch(&source.columns, &dest_cols);
    if let Some(why) = mismatch {
        return Err(ArchiveError::Refused(format!(
            "destination {dest} is not compatible with {}: {why}",
            source.name
        )));
    }
    let mut want = source.key.clone();
    want.sort();
    let has_key = unique_keys(client, oid).await?.into_iter().any(|mut k| {
        k.sort();
        k == want
    });
    if !has_key {
        return Err(ArchiveError::Refused(format!(
            "destination {dest} has no unique index on ({}), the source's key; add one so re-runs never duplicate rows",
            source.key.join(", ")
        )));
    }
    Ok(())
}

/// The first difference that would stop rows from moving, in words.
pub fn first_mismatch(source: &[Column], dest: &[Column]) -> Option<String> {
    for c in source {
        match dest.iter().find(|d| d.name == c.name) {
            None => return Some(format!("column {} ({}) is missing", quote_ident(&c.name), c.sql_type)),
            Some(d) if d.sql_type != c.sql_type => {
                return Some(format!(
                    "column {} is {} in the source but {} in the destination",
                    quote_ident(&c.name),
                    c.sql_type,
                    d.sql_type
                ))
            }
            Some(_) => {}
        }
    }
    dest.iter()
        .find(|d| d.not_null && source.iter().all(|c| c.name != d.name))
        .map(|d| {
            format!(
                "extra column {} is NOT NULL and not in the source",
                quote_ident(&d.name)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str) -> Column {
        Column {
            name: name.into(),
            sql_type: t.into(),
            not_null: false,
            identity: false,
        }
    }

    #[test]
    fn names_the_first_mismatch() {
        let src = vec![col("id", "text"), col("createat", "bigint")];
        assert_eq!(first_mismatch(&src, &src), None);
        let other = vec![col("id", "text"), col("createat", "integer")];
        let why = first_mismatch(&src, &other).unwrap_or_default();
        assert!(
            why.contains("\"createat\" is bigint in the source but integer"),
            "{why}"
        );
        let missing = vec![col("id", "text")];
        assert!(first_mismatch(&src, &missing).is_some_and(|w| w.contains("missing")));
        let mut extra = src.clone();
        extra.push(Column {
            not_null: true,
            ..col("x", "int")
        });
        assert!(first_mismatch(&src, &extra).is_some_and(|w| w.contains("extra column")));
    }
}

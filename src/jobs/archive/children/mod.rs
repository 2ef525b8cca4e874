//! Children: tables whose rows refer to the archived rows (`--child`, or found through ON
//! DELETE CASCADE foreign keys), moved in the same batch as their parents.
//!
//! The tables of a run form a tree: node 0 is the archived table, node i+1 is `children[i]`;
//! a child's parent always comes before it, so building the batch in order works.

mod discover;
pub mod sql;

pub use discover::discover;

use super::ident::{parse_part, QualifiedName};
use super::plan::Source;

/// `--child TABLE:COLUMN[=PARENT_COLUMN]` (or `=PARENT_TABLE.PARENT_COLUMN`), as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec {
    pub table: QualifiedName,
    pub column: String,
    /// The parent table when not the archived one (a grandchild's parent is a child).
    pub parent_table: Option<QualifiedName>,
    /// The parent's column the child column refers to; None: the parent's key.
    pub parent_column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--child '{input}': {why}; write TABLE:COLUMN[=PARENT_COLUMN], e.g. reactions:postid or threadmemberships:postid=threads.postid")]
pub struct SpecError {
    pub input: String,
    pub why: String,
}

/// Dotted identifiers at the start of `s` (`a`, `a.b`, `"x.y".z`), and the rest.
pub(super) fn dotted(s: &str) -> Result<(Vec<String>, &str), &'static str> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        let (part, after) = parse_part(rest)?;
        parts.push(part);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return Ok((parts, after)),
        }
    }
}

pub(super) fn qualified(parts: &[String]) -> Option<QualifiedName> {
    match parts {
        [name] => Some(QualifiedName {
            schema: "public".into(),
            name: name.clone(),
        }),
        [schema, name] => Some(QualifiedName {
            schema: schema.clone(),
            name: name.clone(),
        }),
        _ => None,
    }
}

impl ChildSpec {
    pub fn parse(input: &str) -> Result<ChildSpec, SpecError> {
        let err = |why: &str| SpecError {
            input: input.to_string(),
            why: why.to_string(),
        };
        let (table, rest) = dotted(input.trim()).map_err(err)?;
        let table = qualified(&table).ok_or_else(|| err("the table is schema.table or table"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| err("':' and the child's column expected after the table"))?;
        let (column, rest) = parse_part(rest).map_err(err)?;
        let (parent_table, parent_column) = match rest {
            "" => (None, None),
            r => {
                let r = r
                    .strip_prefix('=')
                    .ok_or_else(|| err("unexpected text after the column"))?;
                let (parts, after) = dotted(r).map_err(err)?;
                if !after.is_empty() {
                    return Err(err("unexpected text after the parent column"));
                }
                match parts.split_last() {
                    Some((col, [])) => (None, Some(col.clone())),
                    Some((col, table)) => (
                        Some(qualified(table).ok_or_else(|| err("the parent is [schema.]table.column"))?),
                        Some(col.clone()),
                    ),
                    None => return Err(err("empty parent column")),
                }
            }
        };
        Ok(ChildSpec {
            table,
            column,
            parent_table,
            parent_column,
        })
    }
}

/// One child table of a run.
#[derive(Debug, Clone)]
pub struct Child {
    pub source: Source,
    /// The child's column that holds the parent's value.
    pub column: String,
    /// 0: the archived table; i: `children[i - 1]`.
    pub parent: usize,
    pub parent_column: String,
    pub dest: QualifiedName,
    /// The foreign key it was found through (ON DELETE CASCADE), when not named.
    pub via: Option<String>,
    /// Columns naming application files (`--files-from`), listed in the files manifest.
    pub files: Vec<String>,
}

impl Child {
    /// The child column's type, for casting the parent's values to it (keeps its index usable).
    pub fn column_type(&self) -> String {
        self.source
            .column(&self.column)
            .map_or_else(|| "text".to_string(), |c| c.sql_type.clone())
    }
}

/// The report rows of the children, nothing moved yet.
pub fn reports(children: &[Child], root: &QualifiedName, mode: super::Mode) -> Vec<super::ChildReport> {
    let report = |c: &Child| super::ChildReport {
        table: c.source.name.to_string(),
        dest: (mode != super::Mode::Purge).then(|| c.dest.to_string()),
        parent: match c.parent {
            0 => root.to_string(),
            p => children[p - 1].source.name.to_string(),
        },
        column: c.column.clone(),
        parent_column: c.parent_column.clone(),
        foreign_key: c.via.clone(),
        rows: 0,
        remaining: None,
    };
    children.iter().map(report).collect()
}

/// Marks the columns of `--files-from` on its child table.
pub fn files_from(children: &mut [Child], spec: &super::manifest::FilesFrom) -> Result<(), super::ArchiveError> {
    let child = children
        .iter_mut()
        .find(|c| c.source.name == spec.table)
        .ok_or_else(|| {
            super::ArchiveError::Config(format!(
                "--files-from names {}, which is not a child of this run; add --child for it",
                spec.table
            ))
        })?;
    if let Some(missing) = spec.columns.iter().find(|c| child.source.column(c).is_none()) {
        return Err(super::ArchiveError::Refused(format!(
            "--files-from: {} has no column {}",
            spec.table,
            super::ident::quote_ident(missing)
        )));
    }
    child.files = spec.columns.clone();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(String, String, Option<String>, Option<String>), SpecError> {
        ChildSpec::parse(s).map(|c| {
            (
                c.table.to_string(),
                c.column,
                c.parent_table.map(|t| t.to_string()),
                c.parent_column,
            )
        })
    }

    #[test]
    fn parses_children_and_grandchildren() {
        assert_eq!(
            parse("reactions:postid"),
            Ok(("public.reactions".into(), "postid".into(), None, None))
        );
        assert_eq!(
            parse("app.\"File Info\":\"PostId\"=id"),
            Ok(("app.\"File Info\"".into(), "PostId".into(), None, Some("id".into())))
        );
        assert_eq!(
            parse("threadmemberships:postid=threads.postid"),
            Ok((
                "public.threadmemberships".into(),
                "postid".into(),
                Some("public.threads".into()),
                Some("postid".into())
            ))
        );
        assert_eq!(
            parse("\"a:b\":\"c=d\"=s.\"t.u\".v").map(|t| t.2),
            Ok(Some("s.\"t.u\"".into()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_child() {
        for bad in [
            "reactions",
            "reactions:",
            ":postid",
            "reactions:postid=",
            "r:p=a.b.c.d",
            "r:p;drop",
            "r:p=x y",
        ] {
            assert!(ChildSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

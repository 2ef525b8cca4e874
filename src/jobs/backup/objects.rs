//! The objects of a database by kind and name (`queries/backup_objects.sql`): recorded in the
//! manifest when the dump starts, and compared by `restore --check` with what the scratch
//! database holds after the restore. Row counts alone miss a restore that lost an index, a
//! constraint, a trigger or a function (a statement skipped or filtered out): this names it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tokio_postgres::Client;

use super::error::BackupError;
use super::session;

const OBJECTS_SQL: &str = include_str!("../../../queries/backup_objects.sql");

/// Kind ("index", "function" …) → sorted, quoted names.
pub type Inventory = BTreeMap<String, Vec<String>>;

/// One object the backup had and the restored database lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub kind: String,
    pub name: String,
}

/// The objects of the database `client` is connected to.
pub async fn read(client: &Client, database: &str) -> Result<Inventory, BackupError> {
    let what = "listing objects";
    let mut out = Inventory::new();
    for r in session::query(client, database, what, OBJECTS_SQL).await? {
        let (kind, name) = (r.str("kind"), r.str("name"));
        let (kind, name) = kind.and_then(|k| Ok((k, name?))).map_err(|e| BackupError::Query {
            database: database.into(),
            what,
            message: e.to_string(),
        })?;
        out.entry(kind.to_string()).or_default().push(name.to_string());
    }
    Ok(out)
}

/// What `expected` holds and `restored` lacks. Extra objects are fine: a template database
/// may add its own.
pub fn missing(expected: &Inventory, restored: &Inventory) -> Vec<Missing> {
    let mut out = Vec::new();
    for (kind, names) in expected {
        let have: BTreeSet<&String> = restored.get(kind).map(|v| v.iter().collect()).unwrap_or_default();
        out.extend(names.iter().filter(|n| !have.contains(n)).map(|n| Missing {
            kind: kind.clone(),
            name: n.clone(),
        }));
    }
    out
}

/// How many objects an inventory holds.
pub fn count(inv: &Inventory) -> usize {
    inv.values().map(Vec::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_restore_lost_and_ignores_extras() {
        let inv = |pairs: &[(&str, &str)]| {
            let mut i = Inventory::new();
            for (k, n) in pairs {
                i.entry(k.to_string()).or_default().push(n.to_string());
            }
            i
        };
        let expected = inv(&[("index", "public.a"), ("index", "public.b"), ("trigger", "public.t.x")]);
        let restored = inv(&[("index", "public.a"), ("function", "public.extra()")]);
        let lost: Vec<String> = missing(&expected, &restored)
            .into_iter()
            .map(|m| format!("{} {}", m.kind, m.name))
            .collect();
        assert_eq!(lost, ["index public.b", "trigger public.t.x"]);
        assert_eq!(count(&expected), 3);
    }
}
